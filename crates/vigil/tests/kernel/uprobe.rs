//! TracingPolicy uprobes end to end: this test binary's own exported
//! functions (tester mode `uprobe`) and /bin/bash, probed by the real agent.
use std::{
    fs,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    harness::{of_kind, own_exe, pid_of, str_at, tracing_policy, write_policy, Agent, TestResult},
    require_agent, skip,
    tester::{MARKER_VAR, MODE_VAR, NUMBER_VAR, UPROBE_NAME, UPROBE_STRING},
};

const WAIT: Duration = Duration::from_secs(20);

/// Runs the `uprobe` tester with `n` (and a marker file when given).
fn call_targets(n: i64, marker: Option<&Path>) -> (u32, ExitStatus) {
    let mut cmd = Command::new(own_exe());
    cmd.env(MODE_VAR, "uprobe")
        .env(NUMBER_VAR, n.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(marker) = marker {
        cmd.env(MARKER_VAR, marker);
    }
    let mut child = cmd.spawn().expect("spawn tester");
    let pid = child.id();
    (pid, child.wait().expect("wait tester"))
}

fn uprobes_of(evs: &[Value], pid: u32) -> Vec<&Value> {
    of_kind(evs, "process_uprobe")
        .into_iter()
        .filter(|u| pid_of(u) == u64::from(pid))
        .collect()
}

fn policy(name: &str, hook: &str) -> String {
    tracing_policy(
        name,
        &format!(
            "  uprobes:
  - path: {}
{hook}",
            own_exe().display()
        ),
    )
}

pub fn args_and_return_value_with_selector() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = format!(
        "    symbols:
    - vigil_uprobe_target
    return: true
    returnArg:
      index: 0
      type: int64
    args:
    - index: 0
      type: int64
    - index: 1
      type: string
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - \"42\"
      matchBinaries:
      - operator: In
        values:
        - {}
",
        own_exe().display()
    );
    let file = write_policy(dir.path(), "uprobe", &policy("uprobe-args", &hook));
    let agent = Agent::start(&["--tracing-policy", &file]);
    let (other, _) = call_targets(7, None);
    let (pid, status) = call_targets(42, None);
    assert_eq!(status.code(), Some(84 & 0x7f), "the call ran and returned");
    let evs = agent.wait_for(WAIT, "uprobe event with the return value", |evs| {
        !uprobes_of(evs, pid).is_empty()
    });
    let ev = uprobes_of(&evs, pid)[0];
    assert_eq!(str_at(ev, "/path"), own_exe().to_str().expect("utf-8"));
    assert_eq!(str_at(ev, "/symbol"), "vigil_uprobe_target");
    assert_eq!(str_at(ev, "/policy_name"), "uprobe-args");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    assert_eq!(ev["args"][0]["long_arg"], "42", "{ev}");
    assert_eq!(ev["args"][1]["string_arg"], UPROBE_STRING, "{ev}");
    assert_eq!(ev["return"]["long_arg"], "84", "{ev}");
    assert!(!str_at(ev, "/parent/exec_id").is_empty(), "{ev}");
    assert!(
        uprobes_of(&evs, other).is_empty(),
        "a call with 7 matched Equal 42"
    );
    assert!(agent
        .log()
        .iter()
        .any(|l| l.contains("uprobe + uretprobe") && l.contains("vigil_uprobe_target")));
    agent.stop();
    Ok(())
}

pub fn string_return_filtered_by_match_return_args() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = "    symbols:
    - vigil_uprobe_name
    return: true
    returnArg:
      index: 0
      type: string
    selectors:
    - matchReturnArgs:
      - index: 0
        operator: Prefix
        values:
        - sudo
";
    let file = write_policy(dir.path(), "uprobe", &policy("uprobe-return", hook));
    let agent = Agent::start(&["--tracing-policy", &file]);
    // Even numbers make vigil_uprobe_name return "other", odd ones the sudo line.
    let (other, _) = call_targets(2, None);
    let (pid, _) = call_targets(3, None);
    let evs = agent.wait_for(WAIT, "uprobe event of the sudo return", |evs| {
        !uprobes_of(evs, pid).is_empty()
    });
    let ev = uprobes_of(&evs, pid)[0];
    assert_eq!(ev["return"]["string_arg"], UPROBE_NAME, "{ev}");
    assert_eq!(str_at(ev, "/symbol"), "vigil_uprobe_name");
    assert!(
        uprobes_of(&evs, other).is_empty(),
        "a return of \"other\" matched Prefix sudo"
    );
    agent.stop();
    Ok(())
}

pub fn sigkill_before_the_function_runs() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = "    symbols:
    - vigil_uprobe_target
    args:
    - index: 0
      type: int64
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - \"13\"
      matchActions:
      - action: Sigkill
";
    let file = write_policy(dir.path(), "uprobe", &policy("uprobe-kill", hook));
    let agent = Agent::start(&["--tracing-policy", &file]);
    let spared = dir.path().join("spared");
    let killed = dir.path().join("killed");
    let (_, status) = call_targets(12, Some(&spared));
    assert!(status.code().is_some(), "12 does not match: {status}");
    assert!(spared.exists(), "the unmatched call ran");
    let (pid, status) = call_targets(13, Some(&killed));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(!killed.exists(), "the function ran before the kill");
    let evs = agent.wait_for(WAIT, "uprobe Sigkill event", |evs| {
        !uprobes_of(evs, pid).is_empty()
    });
    assert_eq!(
        str_at(uprobes_of(&evs, pid)[0], "/action"),
        "KPROBE_ACTION_SIGKILL"
    );
    assert!(agent
        .log()
        .iter()
        .any(|l| l.contains("killed before the function runs")));
    agent.stop();
    Ok(())
}

/// Tetragon's own example policy: bash's `main` and `readline`.
pub fn tetragon_uprobe_policy_on_bash() -> TestResult {
    require_agent!();
    let example = &crate::harness::tetragon_policy("uprobe.yaml");
    if !example.exists() {
        skip!("no {}", example.display());
    }
    if !Path::new("/bin/bash").exists() {
        skip!("no /bin/bash");
    }
    let agent = Agent::start(&["--tracing-policy", example.to_str().expect("utf-8")]);
    let mut child = Command::new("/bin/bash")
        .args(["--norc", "--noprofile", "-c", "exit 0"])
        .spawn()
        .expect("spawn bash");
    let pid = child.id();
    child.wait().expect("wait bash");
    let evs = agent.wait_for(WAIT, "uprobe event of bash main", |evs| {
        uprobes_of(evs, pid)
            .iter()
            .any(|u| str_at(u, "/symbol") == "main")
    });
    let ev = uprobes_of(&evs, pid)[0];
    assert_eq!(str_at(ev, "/path"), "/bin/bash");
    assert_eq!(str_at(ev, "/policy_name"), "uprobe");
    agent.stop();
    Ok(())
}

/// Tetragon's uprobe-with-selectors.yaml: bash's readline return value,
/// with lines typed into an interactive bash on a pseudo-terminal.
pub fn tetragon_readline_return_prefix() -> TestResult {
    require_agent!();
    let example = &crate::harness::tetragon_policy("uprobe-with-selectors.yaml");
    if !example.exists() {
        skip!("no {}", example.display());
    }
    if !Path::new("/bin/bash").exists() {
        skip!("no /bin/bash");
    }
    let agent = Agent::start(&["--tracing-policy", example.to_str().expect("utf-8")]);
    let (mut master, slave) = match pty() {
        Ok(pair) => pair,
        Err(e) => skip!("no pseudo-terminal: {e}"),
    };
    let mut child = Command::new("/bin/bash")
        .args(["--norc", "--noprofile", "-i"])
        .stdin(slave.try_clone().expect("dup pty"))
        .stdout(slave.try_clone().expect("dup pty"))
        .stderr(slave)
        .spawn()
        .expect("spawn bash");
    let pid = child.id();
    // Drains what bash echoes, so that it never blocks on a full terminal.
    let mut reader = master.try_clone().expect("dup pty master");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while matches!(std::io::Read::read(&mut reader, &mut buf), Ok(n) if n > 0) {}
    });
    std::io::Write::write_all(&mut master, b"sudo-vigil-test\nexit\n").expect("type into bash");
    child.wait().expect("wait bash");
    let evs = agent.wait_for(WAIT, "readline return event", |evs| {
        !uprobes_of(evs, pid).is_empty()
    });
    let lines: Vec<&str> = uprobes_of(&evs, pid)
        .iter()
        .map(|u| u["return"]["string_arg"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        lines,
        ["sudo-vigil-test"],
        "only the line starting with sudo"
    );
    agent.stop();
    Ok(())
}

/// A pseudo-terminal: (master, slave).
fn pty() -> std::io::Result<(fs::File, fs::File)> {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two fds we then own; null name, termios and winsize are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened by openpty and are owned by nothing else.
    Ok(unsafe { (fs::File::from_raw_fd(master), fs::File::from_raw_fd(slave)) })
}
