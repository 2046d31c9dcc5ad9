//! Tetragon's example policies, unchanged, on this kernel: each one is served
//! or refused with a precise reason, and the ones this kernel can serve do
//! what Tetragon's do (the event appears, the operation is blocked).
use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
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
    let ima_hash = probed("ima_hash").is_ok();
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
        if name == "lsm-bprm-check.yaml" && ima_hash {
            assert_eq!(verdict.state, "enabled", "imaHash: {}", verdict.file);
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

/// lsm-bprm-check.yaml: /usr/bin/bash executing a file whose path ends in
/// `contrib/tester-progs/nop` is refused with EPERM (Override argError -1)
/// and posts a process_lsm event carrying the file's IMA hash (imaHash);
/// the same file run by another binary runs and posts nothing.
pub fn tetragon_lsm_bprm_check_blocks_and_hashes() -> TestResult {
    require_agent!();
    if let Err(why) = probed("lsm") {
        skip!("kernel has no BPF-LSM (vigil probe: {why})");
    }
    if let Err(why) = probed("ima_hash") {
        skip!("kernel cannot hash files for imaHash (vigil probe: {why})");
    }
    let policy = tetragon_policies_dir().join("lsm-bprm-check.yaml");
    let bash = Path::new("/usr/bin/bash");
    let Some(sh) = which("sh") else {
        skip!("needs sh");
    };
    if !policy.is_file() || !bash.is_file() {
        skip!("needs {} and /usr/bin/bash", policy.display());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let progs = dir.path().join("contrib/tester-progs");
    fs::create_dir_all(&progs).expect("tester-progs dir");
    let nop = progs.join("nop");
    fs::write(&nop, "#!/bin/sh\necho nop-ran\n").expect("write nop");
    fs::set_permissions(&nop, fs::Permissions::from_mode(0o755)).expect("chmod nop");
    let nop_path = nop.to_str().expect("utf-8 path").to_owned();
    let policy = policy.to_str().expect("utf-8 path").to_owned();
    let agent = Agent::start(&["--tracing-policy", &policy]);
    // argv[0] `sh`: in the guests /usr/bin/bash is busybox, which has no bash applet.
    let blocked = Command::new(bash)
        .arg0("sh")
        .args(["-c", &nop_path])
        .output()
        .expect("run /usr/bin/bash");
    let stderr = String::from_utf8_lossy(&blocked.stderr);
    assert!(
        !blocked.status.success() && stderr.contains("Operation not permitted"),
        "bash executing nop must fail with EPERM: {blocked:?}"
    );
    assert!(!String::from_utf8_lossy(&blocked.stdout).contains("nop-ran"));
    let posted = |b: &&Value| str_at(b, "/policy_name") == "lsm";
    agent.wait_for(WAIT, "process_lsm of bash executing nop", |evs| {
        of_kind(evs, "process_lsm").iter().any(posted)
    });
    let ran = Command::new(&sh)
        .args(["-c", &nop_path])
        .output()
        .expect("run sh");
    assert!(
        ran.status.success() && String::from_utf8_lossy(&ran.stdout).contains("nop-ran"),
        "sh is not in matchBinaries: nop runs: {ran:?}"
    );
    let evs = agent.stop();
    let lsm: Vec<&Value> = of_kind(&evs, "process_lsm")
        .into_iter()
        .filter(posted)
        .collect();
    assert_eq!(lsm.len(), 1, "only bash's exec of nop is posted: {lsm:?}");
    let ev = lsm[0];
    assert_eq!(str_at(ev, "/function_name"), "bprm_check_security");
    assert_eq!(str_at(ev, "/process/binary"), "/usr/bin/bash");
    assert_eq!(str_at(ev, "/args/0/linux_binprm_arg/path"), nop_path);
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE");
    let (algo, digest) = str_at(ev, "/ima_hash")
        .split_once(':')
        .unwrap_or_else(|| panic!("ima_hash is <algorithm>:<hex>: {ev}"));
    let tool = format!("{algo}sum");
    let Some(sum) = which(&tool) else {
        panic!("no {tool} to check the {algo} hash {digest}");
    };
    let out = Command::new(sum)
        .arg(&nop)
        .output()
        .expect("run the sum tool");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        digest,
        text.split_whitespace().next().unwrap_or(""),
        "IMA's {algo} of nop"
    );
    Ok(())
}

/// creds-capability-usage.yaml: the capability checks of a shell in a new
/// pid namespace (raising its file limit needs CAP_SYS_RESOURCE) are posted
/// by cap_capable with the user namespace, the capability and the return
/// value, each (thread, namespace, capability) at most once a minute
/// (rateLimit); the same shell in the host's pid namespace posts nothing.
pub fn tetragon_creds_capability_usage_in_pid_namespace() -> TestResult {
    require_agent!();
    if probed("fentry").is_err() && probed("kprobe").is_err() {
        skip!("kernel has neither fentry nor kprobes for cap_capable");
    }
    let policy = tetragon_policies_dir().join("creds-capability-usage.yaml");
    let (Some(unshare), Some(sh)) = (which("unshare"), which("sh")) else {
        skip!("needs unshare and sh");
    };
    if !policy.is_file() {
        skip!("no {}", policy.display());
    }
    // Each raise of the hard limit is one CAP_SYS_RESOURCE check, both in
    // the shell's own thread.
    const LIMITS: &str = "ulimit -n 500 && ulimit -n 600 && ulimit -n 500 && ulimit -n 600";
    let policy = policy.to_str().expect("utf-8 path").to_owned();
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let host = Command::new(&sh).args(["-c", LIMITS]).spawn().expect("sh");
    let host_pid = host.id();
    let out = host.wait_with_output().expect("sh");
    assert!(out.status.success(), "sh raising its limit: {out:?}");
    let inner = Command::new(unshare)
        .args(["-p", "-f"])
        .arg(&sh)
        .args(["-c", LIMITS])
        .spawn()
        .expect("unshare -p -f sh");
    let unshare_pid = inner.id();
    let out = inner.wait_with_output().expect("unshare");
    assert!(out.status.success(), "unshare -p -f sh: {out:?}");
    let policy_events = |evs: &[Value]| -> Vec<Value> {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .filter(|b| str_at(b, "/policy_name") == "creds-capability-checks")
            .cloned()
            .collect()
    };
    let resource = |b: &Value| b["args"][1]["capability_arg"]["value"] == 24;
    let in_new_ns = |b: &Value| b["parent"]["pid"] == unshare_pid;
    agent.wait_for(
        WAIT,
        "cap_capable CAP_SYS_RESOURCE in the new pid namespace",
        |evs| {
            policy_events(evs)
                .iter()
                .any(|b| in_new_ns(b) && resource(b))
        },
    );
    let evs = policy_events(&agent.stop());
    assert!(
        evs.iter().all(|b| b["process"]["pid"] != host_pid),
        "the host's pid namespace is NotIn: {evs:?}"
    );
    let inner: Vec<&Value> = evs.iter().filter(|b| in_new_ns(b)).collect();
    let checks: Vec<&&Value> = inner.iter().filter(|b| resource(b)).collect();
    assert_eq!(
        checks.len(),
        1,
        "two CAP_SYS_RESOURCE checks by one thread within a minute: rateLimit posts one: {checks:?}"
    );
    let ev = checks[0];
    assert_eq!(str_at(ev, "/function_name"), "cap_capable");
    assert_eq!(
        str_at(ev, "/args/1/capability_arg/name"),
        "CAP_SYS_RESOURCE"
    );
    assert_eq!(ev["args"][0]["user_ns_arg"]["ns"]["is_host"], true, "{ev}");
    assert_eq!(ev["return"]["int_arg"], 0, "granted: {ev}");
    let mut keys: Vec<String> = inner
        .iter()
        .map(|b| {
            format!(
                "{} {} {}",
                b["process"]["tid"], b["args"][0]["user_ns_arg"], b["args"][1]["capability_arg"]
            )
        })
        .collect();
    let posted = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        posted,
        "rateLimit: one event per thread, namespace and capability: {inner:?}"
    );
    Ok(())
}
