//! `cargo xtask vm-test`: the kernel matrix (docs/testing.md).
//!
//! Builds vigil and its integration tests statically, boots each stock
//! Debian kernel under QEMU TCG with a busybox initramfs holding them, runs
//! `vigil probe` and the tests inside, and reads the results back from the
//! serial console. The host's own kernel is a column of the matrix too.
mod apt;
mod build;
mod initramfs;
mod kernels;
mod qemu;
mod report;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use report::{Status, Transcript};

#[derive(clap::Args)]
pub struct Args {
    /// Kernels to run, comma-separated: `host` and the names in
    /// xtask/src/vm/kernels.rs.
    #[arg(long, value_delimiter = ',', default_value = "host,6.1,6.12")]
    kernel: Vec<String>,
    /// Run only tests whose name contains this (probe features are named
    /// `probe/<feature>` and `proof/<feature>`).
    #[arg(long)]
    filter: Option<String>,
    /// Boot the one guest kernel given and open a shell on its console.
    #[arg(long)]
    shell: bool,
    /// Seconds a guest may run before QEMU is killed.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let workspace = workspace_root()?;
    let cache = cache_dir(&workspace);
    fs::create_dir_all(cache.join("run"))?;

    let guests = args
        .kernel
        .iter()
        .filter(|k| *k != "host")
        .map(|k| kernels::spec(k))
        .collect::<Result<Vec<_>>>()?;
    if args.shell && guests.len() != 1 {
        bail!("--shell needs exactly one guest kernel, e.g. --kernel 6.12");
    }

    let binaries = build::build(&workspace)?;

    let mut transcripts = Vec::new();
    if args.kernel.iter().any(|k| k == "host") && !args.shell {
        transcripts.push(run_on_host(&binaries, args.filter.as_deref()));
    }
    if !guests.is_empty() {
        let apt = apt::Apt::new(&cache)?;
        if !on_path("qemu-system-x86_64") {
            apt.install_qemu()?;
        }
        let busybox = busybox(&apt, &cache)?;
        let initramfs = cache.join("run/initramfs.cpio");
        let mut files = vec![initramfs::GuestFile {
            guest_path: "bin/vigil".into(),
            host_path: binaries.vigil.clone(),
        }];
        for test in &binaries.tests {
            files.push(initramfs::GuestFile {
                guest_path: format!("tests/{}", test_name(test)),
                host_path: test.clone(),
            });
        }
        files.extend(policy_files(&workspace)?);
        initramfs::build(&initramfs, &busybox, &files, args.filter.as_deref())?;
        for spec in guests {
            let kernel = kernels::fetch(&apt, spec, &cache)?;
            if args.shell {
                return qemu::shell(&kernel.vmlinux, &initramfs).map(|()| ExitCode::SUCCESS);
            }
            let log = cache.join(format!("run/{}.log", spec.name));
            eprintln!(
                "vm-test: booting {} ({}), console log in {}",
                spec.name,
                kernel.package,
                log.display()
            );
            let boot = qemu::boot(
                &kernel.vmlinux,
                &initramfs,
                Duration::from_secs(args.timeout),
                &log,
            )?;
            let mut t = Transcript::from_serial(spec.name, &boot.serial);
            t.seconds = boot.elapsed.as_secs_f64();
            if boot.timed_out {
                t.problem = Some(format!("timed out after {} s; QEMU killed", args.timeout));
            }
            transcripts.push(t);
        }
    }

    Ok(print_report(
        &transcripts,
        args.filter.as_deref(),
        binaries.tests_error.as_deref(),
        started.elapsed(),
    ))
}

/// The host's column: the same static binaries, run directly.
fn run_on_host(binaries: &build::StaticBuild, filter: Option<&str>) -> Transcript {
    let started = Instant::now();
    let mut t = Transcript::new("host");
    t.release = fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|r| r.trim().to_owned());
    t.probe = Some(capture(
        Command::new(&binaries.vigil).args(["probe", "--output", "json"]),
    ));
    for test in &binaries.tests {
        let section = capture(
            Command::new(test)
                .args(["--test-threads=1", "--show-output"])
                .args(filter)
                .env("VIGIL_BIN", &binaries.vigil),
        );
        t.tests.push((test_name(test), section));
    }
    t.seconds = started.elapsed().as_secs_f64();
    t
}

fn capture(cmd: &mut Command) -> report::Section {
    match cmd.output() {
        Ok(out) => report::Section {
            text: String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            rc: out.status.code(),
        },
        Err(e) => report::Section {
            text: format!("running {cmd:?}: {e}"),
            rc: None,
        },
    }
}

/// Prints the tables and the summary line; the exit code says whether anything failed.
fn print_report(
    transcripts: &[Transcript],
    filter: Option<&str>,
    tests_error: Option<&str>,
    elapsed: Duration,
) -> ExitCode {
    println!();
    report::print_capabilities(transcripts);
    println!();
    let per_kernel: Vec<_> = transcripts
        .iter()
        .map(|t| report::outcomes(t, filter))
        .collect();
    let never_run = report::proofs_never_run(&per_kernel);
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (t, outcomes) in transcripts.iter().zip(&per_kernel) {
        let (p, f, s) = (
            report::count(outcomes, Status::Pass),
            report::count(outcomes, Status::Fail),
            report::count(outcomes, Status::Skip),
        );
        let boot = t
            .init_uptime
            .map(|u| format!(", /init at {u:.1} s guest uptime"))
            .unwrap_or_default();
        println!(
            "{:5} {:28} {p:3} passed, {f} failed, {s:2} skipped  ({:.1} s{boot})",
            t.label,
            t.release.as_deref().unwrap_or("?"),
            t.seconds
        );
        for o in outcomes.iter().filter(|o| o.status == Status::Fail) {
            println!("      FAIL {}: {}", o.name, o.detail);
        }
        for o in outcomes.iter().filter(|o| o.status == Status::Skip) {
            println!("      SKIP {}: {}", o.name, o.detail);
        }
        passed += p;
        failed += f;
        skipped += s;
    }
    for o in &never_run {
        println!("FAIL {}: {}", o.name, o.detail);
    }
    failed += never_run.len();
    if let Some(e) = tests_error {
        println!("FAIL building the integration tests: {e}");
        failed += 1;
    }
    println!("matrix took {:.1} s", elapsed.as_secs_f64());
    println!("vm-test: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `kernel-1a2b3c4d` → `kernel`: cargo's hash suffix is noise in reports.
fn test_name(exe: &Path) -> String {
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("test");
    match name.rsplit_once('-') {
        Some((stem, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => stem.to_owned(),
        _ => name.to_owned(),
    }
}

fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// The policies the kernel tests load: the repository's defaults
/// (`/policies/default`) and Tetragon's examples (`/policies/tetragon`, from
/// `$VIGIL_TETRAGON_POLICIES` or `../shared/tetragon-policies`).
fn policy_files(workspace: &Path) -> Result<Vec<initramfs::GuestFile>> {
    let tetragon = std::env::var_os("VIGIL_TETRAGON_POLICIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("../shared/tetragon-policies"));
    let mut files = Vec::new();
    for (dir, guest_dir) in [
        (workspace.join("policies"), "policies/default"),
        (tetragon, "policies/tetragon"),
    ] {
        let entries = fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                files.push(initramfs::GuestFile {
                    guest_path: format!("{guest_dir}/{name}"),
                    host_path: path.clone(),
                });
            }
        }
    }
    Ok(files)
}

/// `$XDG_CACHE_HOME/vigil-vm`, else `.cache/vm` in the workspace (gitignored).
fn cache_dir(workspace: &Path) -> PathBuf {
    match env::var_os("XDG_CACHE_HOME") {
        Some(xdg) if !xdg.is_empty() => PathBuf::from(xdg).join("vigil-vm"),
        _ => workspace.join(".cache/vm"),
    }
}

fn on_path(tool: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// busybox-static's single binary, unpacked once into the cache.
fn busybox(apt: &apt::Apt, cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("busybox");
    let binary = dir.join("bin/busybox");
    if !binary.exists() {
        let deb = apt.download("busybox-static", &cache.join("debs"))?;
        apt::extract(&deb, "./bin/busybox", &dir)?;
        let _ = fs::remove_file(deb);
    }
    Ok(binary)
}
