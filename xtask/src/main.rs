//! Project automation, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod vm;

#[derive(Parser)]
#[command(name = "xtask", about = "vigil's project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot stock Debian kernels under QEMU and run vigil's probe and tests in each.
    VmTest(vm::Args),
    /// Measure vigil's overhead against auditd and bpftrace (BENCHMARKS.md).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::VmTest(args) => vm::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
