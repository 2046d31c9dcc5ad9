//! Getting the machine ready: Debian packages, a release build of vigil,
//! the workload programs and the C project the build workload compiles.
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

const PACKAGES: [&str; 5] = ["auditd", "bpftrace", "bpftool", "gcc", "make"];
const WORKLOADS: [&str; 4] = ["execstorm", "openloop", "connloop", "execrate"];

/// Installs what is missing; does nothing when all is there.
pub fn install_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .into_iter()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("bench: installing {}", missing.join(" "));
    run(Command::new("apt-get")
        .args(["-q", "update"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["-q", "-y", "--no-install-recommends", "install"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// `cargo build --release -p vigil`, into CARGO_TARGET_DIR if set.
pub fn build_vigil(root: &Path) -> Result<PathBuf> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .args(["build", "--release", "-p", "vigil"])
        .current_dir(root))?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let vigil = target.join("release/vigil");
    if !vigil.is_file() {
        bail!("cargo built vigil but {} is missing", vigil.display());
    }
    Ok(vigil)
}

/// Compiles bench/workloads/*.c into `bin`.
pub fn build_workloads(root: &Path, bin: &Path) -> Result<()> {
    fs::create_dir_all(bin)?;
    for name in WORKLOADS {
        let src = root.join(format!("bench/workloads/{name}.c"));
        run(Command::new("cc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(bin.join(name))
            .arg(&src))?;
    }
    Ok(())
}

/// Writes a C project of `files` translation units and a Makefile that
/// compiles each one and links them: the exec pattern of a real build
/// (make → cc → cc1, as; collect2 → ld).
pub fn generate_c_project(dir: &Path, files: usize) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    let mut main = String::from("#include <stdio.h>\n");
    for i in 0..files {
        main.push_str(&format!("unsigned long unit{i}(unsigned long);\n"));
        // Enough code per unit that the compiler does real work (~0.1 s).
        let mut unit = format!("unsigned long unit{i}(unsigned long x)\n{{\n");
        for j in 0..40 {
            unit.push_str(&format!(
                "\tfor (int k = 0; k < {j} + 3; k++) x = (x * {m}u) ^ (x >> {s}) ^ (unsigned long)k;\n",
                m = 2 * j + 2654435761u64,
                s = j % 13 + 1,
            ));
        }
        unit.push_str("\treturn x;\n}\n");
        fs::write(dir.join(format!("unit{i}.c")), unit)?;
    }
    main.push_str("int main(void)\n{\n\tunsigned long x = 1;\n");
    for i in 0..files {
        main.push_str(&format!("\tx = unit{i}(x);\n"));
    }
    main.push_str("\tprintf(\"%lu\\n\", x);\n\treturn 0;\n}\n");
    fs::write(dir.join("main.c"), main)?;
    let objs: Vec<String> = (0..files)
        .map(|i| format!("unit{i}.o"))
        .chain(["main.o".into()])
        .collect();
    fs::write(
        dir.join("Makefile"),
        format!(
            "CFLAGS = -O2\nOBJS = {}\n\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n\n%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\nclean:\n\trm -f prog $(OBJS)\n",
            objs.join(" ")
        ),
    )?;
    Ok(())
}

/// Whether this vigil build can load TracingPolicies (file and network
/// hooks); the reason when it cannot.
pub fn policy_support(vigil: &Path) -> Result<(), String> {
    let help = Command::new(vigil)
        .args(["agent", "--help"])
        .output()
        .map_err(|e| format!("running `vigil agent --help`: {e}"))?;
    if String::from_utf8_lossy(&help.stdout).contains("--tracing-policy") {
        Ok(())
    } else {
        Err("needs policy engine: this vigil has no `agent --tracing-policy`".into())
    }
}

/// One line per fact about the machine, for the report.
pub fn machine() -> Vec<(String, String)> {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / (1 << 20) as f64);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_owned())
        .unwrap_or_default();
    let version = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines().next().unwrap_or_default().trim().to_owned()
            })
            .unwrap_or_default()
    };
    vec![
        (
            "kernel".into(),
            read("/proc/sys/kernel/osrelease").trim().to_owned(),
        ),
        ("os".into(), os),
        ("cpu".into(), format!("{cpus} × {model}")),
        ("memory".into(), format!("{mem_gib:.1} GiB")),
        ("auditd".into(), version("auditctl", "-v")),
        ("bpftrace".into(), version("bpftrace", "--version")),
        ("cc".into(), version("cc", "--version")),
    ]
}

/// Processes named vigil that are not ours: their BPF programs run during
/// every configuration, the baseline included.
pub fn other_vigil_agents() -> String {
    let pids: Vec<String> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "vigil"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if pids.is_empty() {
        "none".into()
    } else {
        format!("pids {}", pids.join(", "))
    }
}

pub fn git_head(root: &Path) -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs a command to completion with inherited output; fails on non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
