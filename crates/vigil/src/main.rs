//! vigil: eBPF security observability and runtime enforcement.
mod agent;
mod bpf_usage;
mod config;
mod debug;
mod decode;
mod events;
mod metrics;
mod output;
mod policy;
mod policy_check;
mod probe;
mod process_cache;
mod sensors;

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    /// Log filter (tracing syntax), e.g. `info` or `vigil=debug`.
    #[arg(long, global = true, default_value = "info", env = "VIGIL_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: watch processes and write events.
    Agent(config::AgentArgs),
    /// Show which hook kinds this kernel offers, found by trying each one.
    Probe {
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        output: String,
    },
    /// Work with TracingPolicy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Look inside a running vigil.
    #[command(subcommand)]
    Debug(DebugCommand),
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Per-program BPF run counts and run time of vigil's programs (kernel statistics).
    Progs {
        /// Seconds to measure (and between refreshes with --watch).
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Refresh until interrupted.
        #[arg(long)]
        watch: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policies offline (no root, no kernel); exits non-zero on any error.
    /// With --kernel (root), also load and attach every hook on this kernel,
    /// report how each is served or why it is refused, and detach.
    Check {
        /// Try every hook on this kernel; exit non-zero if a policy would be in the error state.
        #[arg(long)]
        kernel: bool,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = match config::expand_config_file(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Probe { output } => probe::run(output == "json").map(|()| ExitCode::SUCCESS),
        Command::Debug(DebugCommand::Progs { interval, watch }) => {
            let interval = std::time::Duration::try_from_secs_f64(interval)
                .context("--interval must be a positive number of seconds")?;
            debug::progs(interval, watch).map(|()| ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Check { files, kernel }) => {
            let report = vigil_policy::check_files(&files);
            print!("{report}");
            if !report.is_ok() {
                return Ok(ExitCode::FAILURE);
            }
            if !kernel {
                return Ok(ExitCode::SUCCESS);
            }
            let (report, served) = policy_check::on_this_kernel(&files)?;
            print!("{report}");
            Ok(if served {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Agent(args) => {
            let stop = Arc::new(AtomicBool::new(false));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let pipeline_stop = stop.clone();
                let pipeline = tokio::task::spawn_blocking(move || agent::run(args, pipeline_stop));
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .context("installing the SIGTERM handler")?;
                tokio::select! {
                    r = pipeline => return r.context("agent thread")?.map(|()| ExitCode::SUCCESS),
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                tracing::info!("stopping");
                stop.store(true, Ordering::Relaxed);
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}
