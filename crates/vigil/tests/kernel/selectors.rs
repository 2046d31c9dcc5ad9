//! Selectors on who calls rather than what is called: matchNamespaces,
//! matchCapabilities, and Post's rateLimit, evaluated in BPF on a system call
//! hook (served on every kernel of the matrix).
use std::{fs, path::PathBuf, process::Command, time::Duration};

use serde_json::Value;

use crate::{
    harness::{of_kind, pid_of, str_at, which, Agent, TestResult},
    require_agent, skip, tester,
};

const WAIT: Duration = Duration::from_secs(20);

/// A watched file in a temp dir, and a policy on openat of that dir's files
/// with the given extra selector fields (YAML, indented as selector fields).
struct Setup {
    dir: tempfile::TempDir,
    file: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("watched").join("file");
    fs::create_dir(file.parent().expect("parent")).expect("mkdir");
    fs::write(&file, "x").expect("write file");
    Setup { dir, file }
}

fn policy(s: &Setup, name: &str, extra: &str) -> String {
    let text = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: {name}
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 0
      type: int
    - index: 1
      type: string
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values:
        - {}/
{extra}",
        s.file.parent().expect("parent").display()
    );
    let path = s.dir.path().join(format!("{name}.yaml"));
    fs::write(&path, text).expect("write policy");
    path.to_str().expect("utf-8").to_owned()
}

/// This test binary in a tester mode (see tester.rs).
fn tester_run(mode: &str, args: &[&str]) -> u32 {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(tester::MODE_VAR, mode)
        .args(args)
        .spawn()
        .expect("spawn tester");
    let pid = child.id();
    let status = child.wait().expect("wait tester");
    assert!(status.success(), "tester {mode}: {status}");
    pid
}

fn opens_by<'a>(evs: &'a [Value], policy: &str, pid: u32) -> Vec<&'a Value> {
    of_kind(evs, "process_kprobe")
        .into_iter()
        .filter(|k| str_at(k, "/policy_name") == policy && pid_of(k) == u64::from(pid))
        .collect()
}

fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|l| l.display().to_string())
        .unwrap_or_default()
}

pub fn namespaces_tell_host_from_new_mount_ns() -> TestResult {
    require_agent!();
    let Some(unshare) = which("unshare") else {
        skip!("no unshare in PATH");
    };
    if ns_link("self", "mnt") != ns_link("2", "mnt") {
        skip!("the tests do not run in the host's mount namespace");
    }
    let s = setup();
    let policy = policy(
        &s,
        "outside-host-mnt",
        "      matchNamespaces:
      - namespace: Mnt
        operator: NotIn
        values:
        - host_ns
",
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8");
    let exe = std::env::current_exe().expect("own path");
    let host_pid = tester_run("open", &[file, "1"]);
    let mut child = Command::new(unshare)
        .arg("-m")
        .arg(&exe)
        .args([file, "1"])
        .env(tester::MODE_VAR, "open")
        .spawn()
        .expect("unshare -m");
    // unshare execs the tester in place: same pid.
    let inner_pid = child.id();
    assert!(child.wait().expect("wait").success(), "unshare -m tester");
    let evs = agent.wait_for(WAIT, "the open from a new mount namespace", |evs| {
        !opens_by(evs, "outside-host-mnt", inner_pid).is_empty()
    });
    assert!(
        opens_by(&evs, "outside-host-mnt", host_pid).is_empty(),
        "an open in the host mount namespace matched Mnt NotIn host_ns"
    );
    Ok(())
}

pub fn capabilities_select_effective_set() -> TestResult {
    require_agent!();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip!("needs root's capabilities");
    }
    let s = setup();
    let policy = policy(
        &s,
        "without-sys-admin",
        "      matchCapabilities:
      - type: Effective
        operator: NotIn
        values:
        - CAP_SYS_ADMIN
",
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8");
    let privileged = tester_run("open", &[file, "1"]);
    let unprivileged = tester_run("open-without-caps", &[file]);
    let evs = agent.wait_for(WAIT, "the open without CAP_SYS_ADMIN", |evs| {
        !opens_by(evs, "without-sys-admin", unprivileged).is_empty()
    });
    assert!(
        opens_by(&evs, "without-sys-admin", privileged).is_empty(),
        "an open with CAP_SYS_ADMIN effective matched NotIn CAP_SYS_ADMIN"
    );
    let ev = opens_by(&evs, "without-sys-admin", unprivileged)[0];
    assert_eq!(str_at(ev, "/args/1/string_arg"), file);
    Ok(())
}

pub fn rate_limit_posts_once_per_key_and_interval() -> TestResult {
    require_agent!();
    let s = setup();
    let per_thread = policy(
        &s,
        "limited-per-thread",
        "      matchActions:
      - action: Post
        rateLimit: 1m
",
    );
    let global = policy(
        &s,
        "limited-globally",
        "      matchActions:
      - action: Post
        rateLimit: 1m
        rateLimitScope: global
",
    );
    let agent = Agent::start(&["--tracing-policy", &per_thread, "--tracing-policy", &global]);
    let file = s.file.to_str().expect("utf-8");
    let other = s.file.with_file_name("other");
    fs::write(&other, "y").expect("write");
    let other = other.to_str().expect("utf-8");
    let first = tester_run("open", &[file, "5"]);
    let second = tester_run("open", &[file, "5"]);
    let third = tester_run("open", &[other, "3"]);
    let evs = agent.wait_for(WAIT, "one event per process and path", |evs| {
        [first, second, third]
            .iter()
            .all(|pid| !opens_by(evs, "limited-per-thread", *pid).is_empty())
    });
    // Let anything late arrive before counting.
    std::thread::sleep(Duration::from_millis(500));
    let evs = agent.stop();
    for pid in [first, second, third] {
        assert_eq!(
            opens_by(&evs, "limited-per-thread", pid).len(),
            1,
            "thread scope: one event per thread and arguments in a minute"
        );
    }
    let mut global_paths: Vec<&str> = of_kind(&evs, "process_kprobe")
        .into_iter()
        .filter(|k| str_at(k, "/policy_name") == "limited-globally")
        .map(|k| str_at(k, "/args/1/string_arg"))
        .collect();
    global_paths.sort_unstable();
    let mut expected = vec![file, other];
    expected.sort_unstable();
    assert_eq!(
        global_paths, expected,
        "global scope: one event per arguments, whoever opens"
    );
    Ok(())
}
