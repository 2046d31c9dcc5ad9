//! Tetragon's example policies, unchanged, on this kernel: each one is served
//! or refused with a precise reason, and the ones this kernel can serve do
//! what Tetragon's do (the event appears, the operation is blocked).
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    harness::{of_kind, str_at, tetragon_policies_dir, vigil_bin, which, Agent, TestResult},
    policy::probed,
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(20);

/// What `vigil policy check --kernel` said about one file.
struct Verdict {
    file: String,
    state: String,
    attached: Vec<String>,
    refusals: Vec<String>,
    /// What a scoped policy is limited to (`pods of namespace default`).
    scope: Option<String>,
}

fn check(file: &Path) -> Verdict {
    let out = Command::new(vigil_bin())
        .args(["policy", "check", "--kernel"])
        .arg(file)
        .output()
        .expect("vigil policy check --kernel");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut verdict = Verdict {
        file: file.display().to_string(),
        state: String::new(),
        attached: Vec::new(),
        refusals: Vec::new(),
        scope: None,
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(&format!("{}: policy ", verdict.file)) {
            let state = rest.split(": ").nth(1).unwrap_or("");
            verdict.state = state.split_whitespace().next().unwrap_or("").to_owned();
        } else if let Some(scope) = line.strip_prefix("  scoped to ") {
            verdict.scope = scope.split(" (").next().map(str::to_owned);
        } else if let Some(hook) = line.strip_prefix("  ") {
            if hook.contains(": attached via ") {
                verdict.attached.push(hook.to_owned());
            } else if let Some((_, why)) = hook.split_once("refused: ") {
                verdict.refusals.push(why.to_owned());
            }
        } else if line.contains(": error: ") || line.starts_with("  ") {
            verdict.refusals.push(line.to_owned());
        }
    }
    // Offline validation errors: one line per error, after the file name.
    if verdict.state.is_empty() && !out.status.success() {
        verdict.state = "invalid".into();
        verdict.refusals.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    eprintln!(
        "compat: {}: {} | attached: {:?} | refused: {:?}",
        verdict.file, verdict.state, verdict.attached, verdict.refusals
    );
    verdict
}

/// A refusal that names what is missing (a kernel feature, a vigil feature,
/// a value), as opposed to a load that failed by surprise.
fn is_precise(why: &str) -> bool {
    [
        "kernel has no",
        // A BPF helper this kernel lacks (the verifier names it).
        "unknown func",
        // A hook kind this kernel lacks, with the probe's own finding.
        "(vigil probe:",
        "not implemented in vigil yet",
        "is not supported",
        "not supported on",
        "cannot scope",
        "not found",
        "is not an IP address or CIDR",
    ]
    .iter()
    .any(|known| why.contains(known))
}

pub fn tetragon_examples_served_or_refused_precisely() -> TestResult {
    require_agent!();
    let dir = tetragon_policies_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        skip!("Tetragon's example policies are not at {}", dir.display());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "Tetragon's examples: {files:?}");
    // file_open is served by BPF-LSM, or by fanotify permission events.
    let file_open = probed("lsm").is_ok() || probed("fanotify_perm").is_ok();
    for file in &files {
        let verdict = check(file);
        assert!(
            ["enabled", "partially_enabled", "error", "invalid"].contains(&verdict.state.as_str()),
            "{}: no verdict",
            verdict.file
        );
        for why in &verdict.refusals {
            assert!(
                is_precise(why),
                "{}: refusal does not say what is missing: {why}",
                verdict.file
            );
        }
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "lsm-file-open.yaml" && file_open {
            assert_eq!(verdict.state, "enabled", "{}", verdict.file);
        }
        if name == "file-monitoring-enforce.yaml" {
            // A TracingPolicyNamespaced without metadata.namespace: kubectl's default.
            assert_eq!(
                verdict.scope.as_deref(),
                Some("pods of namespace default"),
                "{}",
                verdict.file
            );
        }
        if name == "network-egress-cluster-enforce.yaml" {
            assert_eq!(
                verdict.state, "invalid",
                "placeholders ${{PODCIDR}} are not CIDRs"
            );
        }
    }
    Ok(())
}

/// lsm-file-open.yaml: `cat` opening /etc/passwd is reported by the
/// file_open hook (BPF-LSM, or fanotify where the kernel has no BPF-LSM),
/// with the file's path, and the open itself goes through.
pub fn tetragon_lsm_file_open_reports_cat() -> TestResult {
    require_agent!();
    if let (Err(lsm), Err(fanotify)) = (probed("lsm"), probed("fanotify_perm")) {
        skip!("kernel has no BPF-LSM ({lsm}) and no fanotify permission events ({fanotify})");
    }
    let policy = tetragon_policies_dir().join("lsm-file-open.yaml");
    if !policy.is_file() || !Path::new("/usr/bin/cat").is_file() {
        skip!("needs {} and /usr/bin/cat", policy.display());
    }
    let policy = policy.to_str().expect("utf-8 path").to_owned();
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let out = Command::new("/usr/bin/cat")
        .arg("/etc/passwd")
        .output()
        .expect("run cat");
    assert!(out.status.success(), "cat /etc/passwd: {out:?}");
    let found = |evs: &[Value]| {
        of_kind(evs, "process_lsm").into_iter().any(|b| {
            str_at(b, "/policy_name") == "lsm-file-open"
                && str_at(b, "/process/binary") == "/usr/bin/cat"
                && str_at(b, "/args/0/file_arg/path") == "/etc/passwd"
        })
    };
    agent.wait_for(WAIT, "process_lsm of cat opening /etc/passwd", found);
    let evs = agent.stop();
    let ev = of_kind(&evs, "process_lsm")
        .into_iter()
        .find(|b| str_at(b, "/policy_name") == "lsm-file-open")
        .expect("event");
    assert_eq!(str_at(ev, "/function_name"), "file_open");
    assert!(
        of_kind(&evs, "process_lsm")
            .iter()
            .all(|b| str_at(b, "/process/binary") == "/usr/bin/cat"),
        "matchBinaries lets only /usr/bin/cat through"
    );
    Ok(())
}

/// fd-install-caps.yaml: fd_install by a process holding CAP_CHOWN or
/// CAP_NET_RAW in a user namespace other than the host's is reported (file
/// path included); the same open in the host's user namespace is not.
pub fn tetragon_fd_install_caps_sees_namespaced_root() -> TestResult {
    require_agent!();
    if probed("fentry").is_err() && probed("kprobe").is_err() {
        skip!("kernel has neither fentry nor kprobes for fd_install");
    }
    let policy = tetragon_policies_dir().join("fd-install-caps.yaml");
    let (Some(unshare), true) = (which("unshare"), Path::new("/usr/bin/cat").is_file()) else {
        skip!("needs unshare and /usr/bin/cat");
    };
    if !policy.is_file() {
        skip!("no {}", policy.display());
    }
    let policy = policy.to_str().expect("utf-8 path").to_owned();
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let host = Command::new("/usr/bin/cat")
        .arg("/etc/passwd")
        .stdout(Stdio::null())
        .spawn()
        .expect("cat");
    let host_pid = host.id();
    assert!(host.wait_with_output().expect("cat").status.success());
    // unshare -U -r maps root into a new user namespace and execs cat there.
    let inner = Command::new(unshare)
        .args(["-U", "-r", "/usr/bin/cat", "/etc/passwd"])
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare -U -r cat");
    let inner_pid = inner.id();
    let out = inner.wait_with_output().expect("unshare");
    assert!(out.status.success(), "unshare -U -r cat: {out:?}");
    let by = |evs: &[Value], pid: u32| -> Vec<Value> {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .filter(|b| str_at(b, "/policy_name") == "fd-install" && b["process"]["pid"] == pid)
            .cloned()
            .collect()
    };
    let evs = agent.wait_for(WAIT, "fd_install of cat in a user namespace", |evs| {
        by(evs, inner_pid)
            .iter()
            .any(|b| str_at(b, "/args/1/file_arg/path") == "/etc/passwd")
    });
    assert!(
        by(&evs, host_pid).is_empty(),
        "isNamespaceCapability: the host's root must not match"
    );
    let ev = by(&evs, inner_pid)
        .into_iter()
        .find(|b| str_at(b, "/args/1/file_arg/path") == "/etc/passwd")
        .expect("event");
    assert_eq!(str_at(&ev, "/function_name"), "fd_install");
    Ok(())
}
