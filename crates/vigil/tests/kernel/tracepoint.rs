//! TracingPolicy tracepoints end to end: classic tracepoints with arguments
//! read from the record's fields, raw tracepoints, and Tetragon's
//! kill-syscalls-enforcer shape (raw_syscalls/sys_enter, syscall64, lists,
//! NotifyEnforcer) on the real kernel.
use std::{
    fs,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    harness::{
        of_kind, own_exe, pid_of, run_tester, str_at, which, write_policy, Agent, TestResult,
    },
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(20);
/// mkdir(2) on x86_64.
const SYS_MKDIR: u64 = 83;

/// Runs the `mkdir` tester on `dir`.
fn mkdir(dir: &Path) -> (u32, ExitStatus) {
    run_tester("mkdir", dir)
}

fn tracepoints_of(evs: &[Value], pid: u32) -> Vec<&Value> {
    of_kind(evs, "process_tracepoint")
        .into_iter()
        .filter(|t| pid_of(t) == u64::from(pid))
        .collect()
}

pub fn classic_fields_by_format_index() -> TestResult {
    require_agent!();
    let Some(cat) = which("cat") else {
        skip!("no cat in PATH")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let watched = dir.path().join("watched");
    fs::write(&watched, "x").expect("write");
    let other = dir.path().join("other");
    fs::write(&other, "y").expect("write");
    // sys_enter_openat's fields: 5 common ones, then __syscall_nr (4), dfd,
    // filename (6), flags (7), mode.
    let policy = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: tp-openat
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    args:
    - index: 6
      type: string
    - index: 7
      type: int32
    selectors:
    - matchArgs:
      - index: 6
        operator: Equal
        values:
        - {}
",
        watched.display()
    );
    let file = write_policy(dir.path(), "tracepoint", &policy);
    let agent = Agent::start(&["--tracing-policy", &file]);
    let run = |path: &Path| {
        let mut child = Command::new(&cat)
            .arg(path)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn cat");
        let pid = child.id();
        child.wait().expect("wait cat");
        pid
    };
    let other_pid = run(&other);
    let pid = run(&watched);
    let evs = agent.wait_for(WAIT, "tracepoint event of the watched open", |evs| {
        !tracepoints_of(evs, pid).is_empty()
    });
    let ev = tracepoints_of(&evs, pid)[0];
    assert_eq!(str_at(ev, "/subsys"), "syscalls");
    assert_eq!(str_at(ev, "/event"), "sys_enter_openat");
    assert_eq!(str_at(ev, "/policy_name"), "tp-openat");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    assert_eq!(
        ev["args"][0]["string_arg"],
        watched.to_str().expect("utf-8"),
        "{ev}"
    );
    assert_eq!(ev["args"][1]["int_arg"], libc::O_RDONLY, "{ev}");
    assert!(
        tracepoints_of(&evs, other_pid).is_empty(),
        "other file matched"
    );
    agent.stop();
    Ok(())
}

pub fn raw_tracepoint_args() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    // raw_syscalls/sys_enter: TP_PROTO(struct pt_regs *regs, long id).
    let policy = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: tp-raw
spec:
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    raw: true
    args:
    - index: 1
      type: int64
    selectors:
    - matchArgs:
      - index: 1
        operator: Equal
        values:
        - \"{SYS_MKDIR}\"
      matchBinaries:
      - operator: In
        values:
        - {}
",
        own_exe().display()
    );
    let file = write_policy(dir.path(), "tracepoint", &policy);
    let agent = Agent::start(&["--tracing-policy", &file]);
    if let Some(line) = agent
        .log()
        .iter()
        .find(|l| l.contains("tp-raw") && l.contains("unknown func bpf_get_attach_cookie"))
    {
        skip!("kernel has no raw tracepoint attach cookies (Linux 6.10+): {line}");
    }
    let (pid, status) = mkdir(&dir.path().join("made"));
    assert!(status.success(), "{status}");
    let evs = agent.wait_for(WAIT, "raw tracepoint event of mkdir", |evs| {
        !tracepoints_of(evs, pid).is_empty()
    });
    let ev = tracepoints_of(&evs, pid)[0];
    assert_eq!(str_at(ev, "/subsys"), "raw_syscalls");
    assert_eq!(str_at(ev, "/event"), "sys_enter");
    assert_eq!(ev["args"][0]["long_arg"], SYS_MKDIR.to_string(), "{ev}");
    agent.stop();
    Ok(())
}

/// The kill-syscalls-enforcer shape on the test binary's own mkdir: the
/// process is killed at sys_enter; whether mkdir still ran is the truth the
/// hook's status states.
pub fn notify_enforcer_kills_at_sys_enter() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: kill-mkdir
spec:
  lists:
  - name: mkdirs
    type: syscalls
    values:
    - sys_mkdir
    - __ia32_sys_mkdir
  enforcers:
  - calls:
    - list:mkdirs
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args:
    - index: 4
      type: syscall64
    selectors:
    - matchArgs:
      - index: 0
        operator: InMap
        values:
        - list:mkdirs
      matchBinaries:
      - operator: In
        values:
        - {}
      matchActions:
      - action: NotifyEnforcer
        argError: -1
        argSig: 9
",
        own_exe().display()
    );
    let file = write_policy(dir.path(), "tracepoint", &policy);
    let agent = Agent::start(&["--tracing-policy", &file]);
    let target = dir.path().join("made");
    let (pid, status) = mkdir(&target);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    // The signal is only delivered on the way back to user space: the
    // system call has run by then.
    assert!(
        target.exists(),
        "mkdir did not run: the kill-at-sys_enter guarantee in the status is wrong"
    );
    let evs = agent.wait_for(WAIT, "NotifyEnforcer event", |evs| {
        !tracepoints_of(evs, pid).is_empty()
    });
    let ev = tracepoints_of(&evs, pid)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_NOTIFYENFORCER");
    assert_eq!(ev["args"][0]["syscall_id"]["id"], SYS_MKDIR, "{ev}");
    assert_eq!(ev["args"][0]["syscall_id"]["abi"], "x64", "{ev}");
    let log = agent.log();
    let status_line = log
        .iter()
        .find(|l| l.contains("kill-mkdir") && l.contains("guarantee"))
        .expect("hook status line");
    assert!(
        status_line.contains("argError is not applied")
            && status_line.contains("the system call itself completes")
            && status_line.contains("__ia32_sys_mkdir ignored"),
        "{status_line}"
    );
    agent.stop();
    Ok(())
}

/// Tetragon's kill-syscalls-enforcer.yaml, with its binary pointed at a
/// copy of bash (so that no other bash on the machine is killed).
pub fn tetragon_kill_syscalls_enforcer() -> TestResult {
    require_agent!();
    let example = &crate::harness::tetragon_policy("kill-syscalls-enforcer.yaml");
    if !example.exists() {
        skip!("no {}", example.display());
    }
    let Some(bash) = which("bash") else {
        skip!("no bash in PATH")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("bash");
    fs::copy(&bash, &copy).expect("copy bash");
    let text = fs::read_to_string(example).expect("read example");
    assert!(text.contains("\"/usr/bin/bash\""), "the example changed");
    let text = text.replace("\"/usr/bin/bash\"", &format!("\"{}\"", copy.display()));
    let file = write_policy(dir.path(), "tracepoint", &text);
    let agent = Agent::start(&["--tracing-policy", &file]);
    // The redirection makes bash dup2 stdout.
    let child = Command::new(&copy)
        .args([
            "--norc",
            "--noprofile",
            "-c",
            "echo hi >/dev/null; echo survived",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn bash copy");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait bash");
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{:?}", out.status);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
    let evs = agent.wait_for(WAIT, "NotifyEnforcer event of dup2", |evs| {
        !tracepoints_of(evs, pid).is_empty()
    });
    let ev = tracepoints_of(&evs, pid)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_NOTIFYENFORCER");
    assert_eq!(ev["args"][0]["syscall_id"]["id"], libc::SYS_dup2, "{ev}");
    agent.stop();
    Ok(())
}
