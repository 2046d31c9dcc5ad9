//! Selectors on who calls rather than what is called: matchNamespaces,
//! matchCapabilities, and Post's rateLimit, evaluated in BPF on a system call
//! hook (served on every kernel of the matrix).
use std::{fs, path::Path, process::Command, time::Duration};

use serde_json::Value;

use crate::{
    harness::{of_kind, pid_of, str_at, tracing_policy, which, Agent, TestResult},
    policy::{setup, Setup},
    require_agent, skip, tester,
};

const WAIT: Duration = Duration::from_secs(20);

/// A policy on openat of the watched dir's files with the given extra
/// selector fields (YAML, indented as selector fields).
fn policy(s: &Setup, name: &str, extra: &str) -> String {
    let text = tracing_policy(
        name,
        &format!(
            "  kprobes:
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
        ),
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

/// Starts the agent with policy `name` (the watched-dir selector plus
/// `extra`), runs `unmatched` then `matched` (each opens the watched file and
/// returns its pid), and checks that only `matched` was reported.
fn only_matched_reported(
    name: &str,
    extra: &str,
    unmatched: impl FnOnce(&str) -> u32,
    matched: impl FnOnce(&str) -> u32,
    why: &str,
) {
    let s = setup();
    let policy = policy(&s, name, extra);
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8");
    let other = unmatched(file);
    let pid = matched(file);
    let evs = agent.wait_for(WAIT, &format!("the open of {name}"), |evs| {
        !opens_by(evs, name, pid).is_empty()
    });
    assert!(opens_by(&evs, name, other).is_empty(), "{why}");
    assert_eq!(
        str_at(opens_by(&evs, name, pid)[0], "/args/1/string_arg"),
        file
    );
}

/// `unshare -m` running the tester's open in a new mount namespace (its exec
/// happens there: same pid).
fn open_in_new_mount_ns(unshare: &Path, file: &str) -> u32 {
    let mut child = Command::new(unshare)
        .arg("-m")
        .arg(std::env::current_exe().expect("own path"))
        .args([file, "1"])
        .env(tester::MODE_VAR, "open")
        .spawn()
        .expect("unshare -m");
    let pid = child.id();
    assert!(child.wait().expect("wait").success(), "unshare -m tester");
    pid
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn namespaces_tell_host_from_new_mount_ns() -> TestResult {
    require_agent!();
    let Some(unshare) = which("unshare") else {
        skip!("no unshare in PATH");
    };
    if ns_link("self", "mnt") != ns_link("2", "mnt") {
        skip!("the tests do not run in the host's mount namespace");
    }
    only_matched_reported(
        "outside-host-mnt",
        "      matchNamespaces:
      - namespace: Mnt
        operator: NotIn
        values:
        - host_ns
",
        |file| tester_run("open", &[file, "1"]),
        |file| open_in_new_mount_ns(&unshare, file),
        "an open in the host mount namespace matched Mnt NotIn host_ns",
    );
    Ok(())
}

pub fn capabilities_select_effective_set() -> TestResult {
    require_agent!();
    if !is_root() {
        skip!("needs root's capabilities");
    }
    only_matched_reported(
        "without-sys-admin",
        "      matchCapabilities:
      - type: Effective
        operator: NotIn
        values:
        - CAP_SYS_ADMIN
",
        |file| tester_run("open", &[file, "1"]),
        |file| tester_run("open-without-caps", &[file]),
        "an open with CAP_SYS_ADMIN effective matched NotIn CAP_SYS_ADMIN",
    );
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
    agent.wait_for(WAIT, "one event per process and path", |evs| {
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

pub fn parent_binaries_select_the_parent() -> TestResult {
    require_agent!();
    let (Some(sh), Some(cat)) = (which("sh"), which("cat")) else {
        skip!("needs sh and cat in PATH");
    };
    // sh is often a symlink: accept the path as run and as resolved.
    let sh_paths = [
        sh.display().to_string(),
        fs::canonicalize(&sh)
            .expect("resolve sh")
            .display()
            .to_string(),
    ];
    let s = setup();
    let policy = policy(
        &s,
        "opened-under-sh",
        &format!(
            "      matchParentBinaries:
      - operator: In
        values:
        - {}
        - {}
",
            sh_paths[0], sh_paths[1]
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8");
    let direct = Command::new(&cat).arg(file).output().expect("cat");
    assert!(direct.status.success());
    // `; true` keeps sh from exec'ing cat in its own place.
    let mut under_sh = Command::new(&sh)
        .args(["-c", &format!("{} {file}; true", cat.display())])
        .spawn()
        .expect("sh -c cat");
    let sh_pid = under_sh.id();
    assert!(under_sh.wait().expect("wait").success());
    let by_child_of_sh = |evs: &[Value]| -> Vec<Value> {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .filter(|k| {
                str_at(k, "/policy_name") == "opened-under-sh"
                    && k["parent"]["pid"] == sh_pid
                    && str_at(k, "/args/1/string_arg") == file
            })
            .cloned()
            .collect()
    };
    let evs = agent.wait_for(WAIT, "cat's open under sh", |evs| {
        !by_child_of_sh(evs).is_empty()
    });
    let all: Vec<&Value> = of_kind(&evs, "process_kprobe")
        .into_iter()
        .filter(|k| str_at(k, "/policy_name") == "opened-under-sh")
        .collect();
    assert!(
        all.iter()
            .all(|k| sh_paths.iter().any(|p| p == str_at(k, "/parent/binary"))),
        "only processes whose parent is sh match: {all:?}"
    );
    Ok(())
}

pub fn namespace_changes_after_exec() -> TestResult {
    require_agent!();
    let Some(unshare) = which("unshare") else {
        skip!("no unshare in PATH");
    };
    only_matched_reported(
        "mnt-changed",
        "      matchNamespaceChanges:
      - operator: In
        values:
        - Mnt
",
        // Exec'd inside the new namespace: nothing changed since its exec.
        |file| open_in_new_mount_ns(&unshare, file),
        |file| tester_run("unshare-open", &[file]),
        "a process started in its namespace did not change it",
    );
    Ok(())
}

pub fn capability_changes_after_exec() -> TestResult {
    require_agent!();
    if !is_root() {
        skip!("needs root's capabilities");
    }
    only_matched_reported(
        "sys-admin-changed",
        "      matchCapabilityChanges:
      - type: Effective
        operator: In
        values:
        - CAP_SYS_ADMIN
",
        |file| tester_run("open", &[file, "1"]),
        |file| tester_run("open-without-caps", &[file]),
        "capabilities unchanged since exec matched",
    );
    Ok(())
}

pub fn pids_follow_forks_and_namespace_pids() -> TestResult {
    require_agent!();
    let (Some(sh), Some(cat), Some(unshare)) = (which("sh"), which("cat"), which("unshare")) else {
        skip!("needs sh, cat and unshare in PATH");
    };
    let s = setup();
    let file = s.file.to_str().expect("utf-8").to_owned();
    // A shell that waits for a line on stdin, then runs cat as its child.
    let mut shell = Command::new(&sh)
        .args(["-c", &format!("read go; {} {file}; true", cat.display())])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    let shell_pid = shell.id();
    let forks = policy(
        &s,
        "under-shell",
        &format!(
            "      matchPIDs:
      - operator: In
        followForks: true
        values:
        - {shell_pid}
"
        ),
    );
    let ns_one = policy(
        &s,
        "pid-one-of-its-ns",
        "      matchPIDs:
      - operator: In
        isNamespacePID: true
        values:
        - 1
",
    );
    let agent = Agent::start(&["--tracing-policy", &forks, "--tracing-policy", &ns_one]);
    {
        use std::io::Write;
        let mut stdin = shell.stdin.take().expect("stdin");
        writeln!(stdin, "go").expect("release the shell");
    }
    assert!(shell.wait().expect("wait").success());
    let outsider = tester_run("open", &[&file, "1"]);
    let mut in_new_pid_ns = Command::new(unshare)
        .args(["-p", "-f"])
        .arg(std::env::current_exe().expect("own path"))
        .args([&file, "1"])
        .env(tester::MODE_VAR, "open")
        .spawn()
        .expect("unshare -p -f");
    assert!(in_new_pid_ns.wait().expect("wait").success());
    let evs = agent.wait_for(WAIT, "cat under the shell and pid 1 of a new ns", |evs| {
        let kprobes = of_kind(evs, "process_kprobe");
        kprobes
            .iter()
            .any(|k| str_at(k, "/policy_name") == "under-shell" && k["parent"]["pid"] == shell_pid)
            && kprobes
                .iter()
                .any(|k| str_at(k, "/policy_name") == "pid-one-of-its-ns")
    });
    assert!(
        opens_by(&evs, "under-shell", outsider).is_empty()
            && opens_by(&evs, "pid-one-of-its-ns", outsider).is_empty(),
        "a process outside the shell's tree, with its own pid, matched"
    );
    Ok(())
}
