//! Static builds of vigil and its integration tests, for guests with no libc.
use std::{
    env, fs,
    io::BufRead,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

const TARGET: &str = "x86_64-unknown-linux-gnu";

pub struct StaticBuild {
    pub vigil: PathBuf,
    /// Integration-test executables, if the crate has any.
    pub tests: Vec<PathBuf>,
    /// Why the tests could not be built; the matrix still runs the probe.
    pub tests_error: Option<String>,
}

/// A target dir of its own, so the static flags do not rebuild the normal one.
fn target_dir(workspace: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("static")
}

fn cargo(workspace: &Path) -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // glibc's static libs (and Debian's libelf.a/libz.a, picked by -static) link cleanly.
    cmd.current_dir(workspace)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_DIR", target_dir(workspace))
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

pub fn build(workspace: &Path) -> Result<StaticBuild> {
    eprintln!(
        "vm-test: static build of vigil in {}",
        target_dir(workspace).display()
    );
    let status = cargo(workspace)
        .args(["build", "--release", "--target", TARGET, "-p", "vigil"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("static build of vigil failed: {status}");
    }
    let vigil = target_dir(workspace).join(TARGET).join("release/vigil");
    ensure_static(&vigil)?;

    let has_tests = has_integration_tests(workspace)?;
    let (tests, tests_error) = match has_tests {
        false => (Vec::new(), None),
        true => match build_tests(workspace) {
            Ok(tests) => (tests, None),
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        },
    };
    Ok(StaticBuild {
        vigil,
        tests,
        tests_error,
    })
}

/// Whether the vigil package declares test targets (`tests/*.rs` or `[[test]]`).
fn has_integration_tests(workspace: &Path) -> Result<bool> {
    let out = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let vigil = meta["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "vigil"))
        .context("no vigil package in cargo metadata")?;
    Ok(vigil["targets"].as_array().is_some_and(|targets| {
        targets.iter().any(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"))
        })
    }))
}

/// `cargo test --no-run` for vigil's integration tests; the executables come
/// from cargo's JSON messages.
fn build_tests(workspace: &Path) -> Result<Vec<PathBuf>> {
    eprintln!("vm-test: static build of vigil's integration tests");
    let out = cargo(workspace)
        .args([
            "test",
            "--no-run",
            "--release",
            "--target",
            TARGET,
            "-p",
            "vigil",
            "--test",
            "*",
        ])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!(
            "static build of the integration tests failed: {}",
            out.status
        );
    }
    let mut tests = Vec::new();
    for line in out.stdout.lines() {
        let msg: serde_json::Value = serde_json::from_str(&line?).unwrap_or_default();
        let is_test = msg["reason"] == "compiler-artifact" && msg["profile"]["test"] == true;
        if let (true, Some(exe)) = (is_test, msg["executable"].as_str()) {
            let exe = PathBuf::from(exe);
            ensure_static(&exe)?;
            tests.push(exe);
        }
    }
    Ok(tests)
}

/// A dynamically linked binary would fail in the guest with a bare "not found".
fn ensure_static(exe: &Path) -> Result<()> {
    const PT_INTERP: u32 = 3;
    let elf = fs::read(exe).with_context(|| format!("reading {}", exe.display()))?;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        bail!("{} is not a 64-bit ELF", exe.display());
    };
    let interp = (0..phnum).any(|i| {
        elf.get(phoff + i * phentsize..phoff + i * phentsize + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) == PT_INTERP)
    });
    if interp {
        bail!("{} is dynamically linked (has PT_INTERP)", exe.display());
    }
    Ok(())
}
