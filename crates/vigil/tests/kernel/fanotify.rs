//! Blocking file opens and executions with fanotify permission events, where
//! BPF cannot stop them (system call hooks everywhere; kernel functions and
//! LSM hooks on kernels without fmod_ret or BPF-LSM, like the development
//! host): the call fails with EPERM, the event names the action, monitor
//! mode only counts, and removing the policy lifts the block.
use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    harness::{of_kind, pid_of, str_at, tracing_policy, which, write_policy, Agent, TestResult},
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(20);
const STATUS: &str = "blocked before open by fanotify permission event";

fn policy(name: &str, options: &str, hook: &str) -> String {
    tracing_policy(name, &format!("{options}{hook}"))
}

/// sys_openat(dirfd, pathname, flags) whose selectors Override: never
/// blockable from a system call tracepoint, so fanotify serves it on every kernel.
fn openat_hook(selectors: &str) -> String {
    format!(
        "  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 0
      type: int
    - index: 1
      type: string
    selectors:
{selectors}"
    )
}

fn selector(operator: &str, value: &Path, extra: &str, action: &str) -> String {
    format!(
        "    - matchArgs:
      - index: 1
        operator: {operator}
        values:
        - {}
{extra}      matchActions:
      - action: {action}
",
        value.display()
    )
}

const MONITOR: &str = "  options:\n  - name: policy-mode\n    value: monitor\n";

/// A temp dir with `secret` (named by Equal), `tree/sub/file` (under a
/// Prefix) and `other` (named by nothing).
struct Files {
    dir: tempfile::TempDir,
    secret: PathBuf,
    tree: PathBuf,
    deep: PathBuf,
    other: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    let tree = dir.path().join("tree");
    let deep = tree.join("sub").join("file");
    let other = dir.path().join("other");
    fs::create_dir_all(deep.parent().expect("parent")).expect("mkdir");
    for f in [&secret, &deep, &other] {
        fs::write(f, "x").expect("write");
    }
    Files {
        dir,
        secret,
        tree,
        deep,
        other,
    }
}

fn deny_policy(f: &Files, name: &str, options: &str) -> String {
    let tree = format!("{}/", f.tree.display());
    let selectors = selector("Equal", &f.secret, "", "Override\n        argError: -1")
        + &selector(
            "Prefix",
            Path::new(&tree),
            "",
            "Override\n        argError: -1",
        );
    write_policy(
        f.dir.path(),
        name,
        &policy(name, options, &openat_hook(&selectors)),
    )
}

fn open_errno(path: &Path) -> Option<i32> {
    fs::File::open(path).err().and_then(|e| e.raw_os_error())
}

/// The process_kprobe / process_lsm events of `policy` for `path` by `pid`
/// (any process when `pid` is 0).
fn file_events<'a>(evs: &'a [Value], policy: &str, path: &Path, pid: u32) -> Vec<&'a Value> {
    let path = path.to_str().unwrap_or_default();
    let mut out = of_kind(evs, "process_kprobe");
    out.extend(of_kind(evs, "process_lsm"));
    out.retain(|e| {
        str_at(e, "/policy_name") == policy
            && (pid == 0 || pid_of(e) == u64::from(pid))
            && e["args"].as_array().is_some_and(|args| {
                args.iter().any(|a| {
                    a.as_object().is_some_and(|o| {
                        o.values()
                            .any(|v| v == path || v["path"].as_str() == Some(path))
                    })
                })
            })
    });
    out
}

fn list_policy(agent: &Agent, name: &str) -> Value {
    let out = agent.cli(&["tracingpolicy", "list", "-o", "json"]);
    assert!(out.status.success(), "tracingpolicy list failed");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["policies"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

pub fn override_blocks_equal_and_prefix() -> TestResult {
    require_agent!();
    let Some(cat) = which("cat") else {
        skip!("no cat on PATH")
    };
    let f = files();
    let file = deny_policy(&f, "fan-deny", "");
    let agent = Agent::start(&["--tracing-policy", &file]);
    assert!(
        agent
            .log()
            .iter()
            .any(|l| l.contains("policy hook loaded") && l.contains(STATUS)),
        "no status line saying fanotify blocks before open"
    );

    assert_eq!(
        open_errno(&f.secret),
        Some(libc::EPERM),
        "Equal not blocked"
    );
    assert_eq!(open_errno(&f.deep), Some(libc::EPERM), "Prefix not blocked");
    assert_eq!(open_errno(&f.other), None, "an unnamed file was blocked");
    let out = Command::new(&cat).arg(&f.secret).output().expect("run cat");
    assert!(!out.status.success(), "cat read the secret");
    assert!(out.stdout.is_empty(), "cat printed the secret");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "cat: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A directory moved under the prefix after the policy is marked too
    // (inotify; one made there would be too, but then nothing could create
    // a file in it, since that is an open).
    let outside = f.dir.path().join("fresh");
    fs::create_dir(&outside).expect("mkdir");
    fs::write(outside.join("file"), "y").expect("write");
    let fresh = f.tree.join("fresh").join("file");
    fs::rename(&outside, f.tree.join("fresh")).expect("rename");
    let start = Instant::now();
    while open_errno(&fresh) != Some(libc::EPERM) {
        assert!(start.elapsed() < WAIT, "a new directory was never marked");
        std::thread::sleep(Duration::from_millis(20));
    }

    let me = std::process::id();
    let evs = agent.wait_for(WAIT, "events of the denied opens", |evs| {
        !file_events(evs, "fan-deny", &f.secret, me).is_empty()
            && !file_events(evs, "fan-deny", &f.deep, me).is_empty()
    });
    for path in [&f.secret, &f.deep] {
        let ev = file_events(&evs, "fan-deny", path, me)[0];
        assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE");
        assert_eq!(str_at(ev, "/function_name"), "__x64_sys_openat");
        assert_eq!(
            str_at(ev, "/process/binary"),
            crate::harness::own_exe().to_str().unwrap_or_default()
        );
    }
    assert!(
        file_events(&evs, "fan-deny", &f.other, me).is_empty(),
        "an unnamed file posted an event"
    );
    let listed = list_policy(&agent, "fan-deny");
    assert!(
        listed["actions_enforced"].as_u64() >= Some(3),
        "counters: {listed}"
    );
    agent.stop();
    assert_eq!(open_errno(&f.secret), None, "the block outlived the agent");
    Ok(())
}

pub fn monitor_mode_allows_and_counts() -> TestResult {
    require_agent!();
    let f = files();
    let file = deny_policy(&f, "fan-monitor", MONITOR);
    let agent = Agent::start(&["--tracing-policy", &file]);
    assert_eq!(open_errno(&f.secret), None, "monitor mode blocked");
    let me = std::process::id();
    let evs = agent.wait_for(WAIT, "the monitored open's event", |evs| {
        !file_events(evs, "fan-monitor", &f.secret, me).is_empty()
    });
    let ev = file_events(&evs, "fan-monitor", &f.secret, me)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    let listed = list_policy(&agent, "fan-monitor");
    assert!(
        listed["actions_monitored"].as_u64() >= Some(1)
            && listed["actions_enforced"].as_u64() == Some(0),
        "counters: {listed}"
    );
    agent.stop();
    Ok(())
}

/// lsmhooks file_open (fanotify where the kernel has no BPF-LSM): every
/// binary but the allowed one is denied.
pub fn match_binaries_not_in_lets_allowed_binary_read() -> TestResult {
    require_agent!();
    let Some(cat) = which("cat") else {
        skip!("no cat on PATH")
    };
    // In-kernel selectors compare the path as executed, fanotify's the
    // resolved one (/proc/PID/exe): they differ where cat is a symbolic link
    // (busybox), so the exception names both.
    let resolved = fs::canonicalize(&cat).expect("cat's path");
    let f = files();
    let name = "fan-binaries";
    let hook = format!(
        "  lsmhooks:
  - hook: file_open
    args:
    - index: 0
      type: file
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - {}
      matchBinaries:
      - operator: NotIn
        values:
        - {}
        - {}
      matchActions:
      - action: Override
        argError: -1
",
        f.secret.display(),
        cat.display(),
        resolved.display()
    );
    let file = write_policy(f.dir.path(), name, &policy(name, "", &hook));
    let agent = Agent::start(&["--tracing-policy", &file]);
    let out = Command::new(&cat).arg(&f.secret).output().expect("run cat");
    assert!(out.status.success(), "the allowed binary was denied");
    assert_eq!(out.stdout, b"x");
    // Any other binary (this test's own) is denied.
    assert_eq!(open_errno(&f.secret), Some(libc::EPERM));
    let me = std::process::id();
    let evs = agent.wait_for(WAIT, "the denied open's event", |evs| {
        !file_events(evs, name, &f.secret, me).is_empty()
    });
    let ev = file_events(&evs, name, &f.secret, me)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE");
    agent.stop();
    Ok(())
}

pub fn sigkill_denies_and_kills() -> TestResult {
    require_agent!();
    let Some(cat) = which("cat") else {
        skip!("no cat on PATH")
    };
    let f = files();
    let name = "fan-kill";
    let hook = openat_hook(&selector(
        "Equal",
        &f.secret,
        "",
        "Sigkill\n      - action: Override\n        argError: -1",
    ));
    let file = write_policy(f.dir.path(), name, &policy(name, "", &hook));
    let agent = Agent::start(&["--tracing-policy", &file]);
    let child = Command::new(&cat)
        .arg(&f.secret)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cat");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait cat");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "cat: {}",
        out.status
    );
    assert!(out.stdout.is_empty(), "cat printed the secret");
    let evs = agent.wait_for(WAIT, "the killed open's event", |evs| {
        !file_events(evs, name, &f.secret, pid).is_empty()
    });
    let ev = file_events(&evs, name, &f.secret, pid)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_SIGKILL");
    // The process is known (not a cache miss): the path it was run by.
    let binary = str_at(ev, "/process/binary");
    assert!(
        Path::new(binary) == cat || Path::new(binary) == fs::canonicalize(&cat).expect("path"),
        "binary {binary}"
    );
    agent.stop();
    Ok(())
}

pub fn exec_override_blocks_execution() -> TestResult {
    require_agent!();
    let Some(touch) = which("touch") else {
        skip!("no touch on PATH")
    };
    let f = files();
    let copy = f.dir.path().join("my-touch");
    fs::copy(&touch, &copy).expect("copy touch");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod");
    let name = "fan-exec";
    let hook = format!(
        "  kprobes:
  - call: sys_execve
    syscall: true
    args:
    - index: 0
      type: string
    selectors:
{}",
        selector("Equal", &copy, "", "Override\n        argError: -1")
            .replace("index: 1", "index: 0")
    );
    let file = write_policy(f.dir.path(), name, &policy(name, "", &hook));
    let agent = Agent::start(&["--tracing-policy", &file]);
    assert!(
        agent
            .log()
            .iter()
            .any(|l| l.contains("policy hook loaded") && l.contains("blocked before execution")),
        "no status line saying fanotify blocks before execution"
    );
    let marker = f.dir.path().join("ran");
    let err = Command::new(&copy)
        .arg(&marker)
        .status()
        .expect_err("the copied binary ran");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    assert!(!marker.exists(), "the blocked binary created its file");
    // Reading the binary is no execution: allowed.
    assert_eq!(open_errno(&copy), None);
    let status = Command::new(&touch)
        .arg(&marker)
        .status()
        .expect("run touch");
    assert!(
        status.success() && marker.exists(),
        "the original touch was blocked"
    );
    // The caller is the child forked to run it: our own binary, our child.
    let me = u64::from(std::process::id());
    let evs = agent.wait_for(WAIT, "the denied execution's event", |evs| {
        file_events(evs, name, &copy, 0)
            .iter()
            .any(|e| e["parent"]["pid"].as_u64() == Some(me))
    });
    let ev = file_events(&evs, name, &copy, 0)
        .into_iter()
        .find(|e| e["parent"]["pid"].as_u64() == Some(me))
        .expect("event");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE");
    assert_eq!(str_at(ev, "/function_name"), "__x64_sys_execve");
    assert_eq!(
        str_at(ev, "/process/binary"),
        crate::harness::own_exe().to_str().unwrap_or_default()
    );
    agent.stop();
    Ok(())
}

pub fn delete_lifts_the_block() -> TestResult {
    require_agent!();
    let f = files();
    let file = deny_policy(&f, "fan-runtime", "");
    let agent = Agent::start(&[]);
    assert_eq!(open_errno(&f.secret), None);
    let out = agent.cli(&["tracingpolicy", "add", &file]);
    assert!(
        out.status.success(),
        "add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        open_errno(&f.secret),
        Some(libc::EPERM),
        "not blocked after add"
    );
    let out = agent.cli(&["tracingpolicy", "delete", "fan-runtime"]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(open_errno(&f.secret), None, "still blocked after delete");
    agent.stop();
    Ok(())
}

/// A policy fanotify cannot honour exactly is refused with the reason.
pub fn unmarkable_selector_is_refused() -> TestResult {
    require_agent!();
    let f = files();
    let name = "fan-refused";
    let hook = openat_hook(&selector(
        "Postfix",
        Path::new("/secret"),
        "",
        "Override\n        argError: -1",
    ));
    let file = write_policy(f.dir.path(), name, &policy(name, "", &hook));
    let agent = Agent::start(&[]);
    let out = agent.cli(&["tracingpolicy", "add", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a Postfix-only block was accepted");
    assert!(
        stderr.contains("Postfix would need fanotify marks on every file"),
        "{stderr}"
    );
    assert_eq!(open_errno(&f.secret), None);
    agent.stop();
    Ok(())
}
