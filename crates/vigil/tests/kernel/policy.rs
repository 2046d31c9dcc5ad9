//! TracingPolicy hooks end to end: a policy file, the real agent, real
//! programs opening real files, and the events (or refusals) that result.
use std::{
    fs,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    harness::{
        of_kind, pid_of, str_at, tracing_policy, vigil_bin, which, write_policy, Agent, TestResult,
    },
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(20);

/// A policy on openat(dirfd, pathname, flags) with one selector.
pub fn openat_policy(name: &str, selector: &str, options: &str) -> String {
    tracing_policy(
        name,
        &format!(
            "{options}  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 0
      type: int
    - index: 1
      type: string
    - index: 2
      type: int
    selectors:
{selector}"
        ),
    )
}

pub fn prefix_selector(prefix: &Path) -> String {
    format!(
        "    - matchArgs:
      - index: 1
        operator: Prefix
        values:
        - {}/
",
        prefix.display()
    )
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
}

/// A temp dir holding `file` and the policies written for the test.
pub fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("watched").join("file");
    fs::create_dir(file.parent().expect("parent")).expect("mkdir");
    fs::write(&file, "x").expect("write file");
    Setup { dir, file }
}

fn run(program: &Path, args: &[&str]) -> (u32, ExitStatus) {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    (pid, child.wait().expect("wait"))
}

fn tool(name: &str) -> Result<PathBuf, String> {
    which(name).ok_or_else(|| format!("no {name} in PATH"))
}

/// kprobe events whose string argument 1 (the path) is `path`.
fn opens_of<'a>(evs: &'a [Value], path: &str) -> Vec<&'a Value> {
    of_kind(evs, "process_kprobe")
        .into_iter()
        .filter(|k| str_at(k, "/args/1/string_arg") == path)
        .collect()
}

pub fn openat_prefix_posts_matching_paths() -> TestResult {
    require_agent!();
    let cat = match tool("cat") {
        Ok(c) => c,
        Err(why) => skip!("{why}"),
    };
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let policy = write_policy(
        s.dir.path(),
        "open",
        &openat_policy("watch-dir", &prefix_selector(watched), ""),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let outside = s.dir.path().join("outside");
    fs::write(&outside, "y").expect("write");
    let outside = outside.to_str().expect("utf-8").to_owned();
    let file = s.file.to_str().expect("utf-8").to_owned();
    run(&cat, &[&outside]);
    let (pid, status) = run(&cat, &[&file]);
    assert!(status.success());

    let evs = agent.wait_for(WAIT, "openat event of the watched file", |evs| {
        opens_of(evs, &file)
            .iter()
            .any(|k| pid_of(k) == u64::from(pid))
    });
    let ev = opens_of(&evs, &file)
        .into_iter()
        .find(|k| pid_of(k) == u64::from(pid))
        .expect("event");
    assert_eq!(str_at(ev, "/function_name"), "__x64_sys_openat");
    assert_eq!(str_at(ev, "/policy_name"), "watch-dir");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    assert_eq!(str_at(ev, "/process/binary"), cat.to_str().expect("utf-8"));
    assert_eq!(str_at(ev, "/process/arguments"), file);
    assert!(!str_at(ev, "/parent/exec_id").is_empty(), "{ev}");
    assert_eq!(ev["args"][0]["int_arg"], -100, "AT_FDCWD");
    assert!(
        opens_of(&evs, &outside).is_empty(),
        "a path outside the prefix posted an event"
    );
    assert!(agent
        .log()
        .iter()
        .any(|l| l.contains("policy enabled") && l.contains("watch-dir")));
    agent.stop();
    Ok(())
}

pub fn match_binaries_restricts_to_binary() -> TestResult {
    require_agent!();
    let (cat, head) = match (tool("cat"), tool("head")) {
        (Ok(c), Ok(h)) => (c, h),
        (Err(why), _) | (_, Err(why)) => skip!("{why}"),
    };
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let selector = format!(
        "{}      matchBinaries:
      - operator: In
        values:
        - {}
",
        prefix_selector(watched),
        cat.display()
    );
    let policy = write_policy(
        s.dir.path(),
        "bin",
        &openat_policy("cat-only", &selector, ""),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8").to_owned();
    let (head_pid, _) = run(&head, &["-c1", &file]);
    let (cat_pid, _) = run(&cat, &[&file]);
    let evs = agent.wait_for(WAIT, "openat event of cat", |evs| {
        opens_of(evs, &file)
            .iter()
            .any(|k| pid_of(k) == u64::from(cat_pid))
    });
    assert!(
        !opens_of(&evs, &file)
            .iter()
            .any(|k| pid_of(k) == u64::from(head_pid)),
        "head is not in matchBinaries but posted an event"
    );
    agent.stop();
    Ok(())
}

/// matchBinaries followChildren: a launcher (a copy of bash under a name no
/// ancestor of the test has) matches, and so do its child and grandchild;
/// the same cat started by the test itself does not.
pub fn match_binaries_follow_children() -> TestResult {
    require_agent!();
    let (bash, cat) = match (tool("bash"), tool("cat")) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(why), _) | (_, Err(why)) => skip!("{why}"),
    };
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let launcher = s.dir.path().join("launcher");
    fs::copy(&bash, &launcher).expect("copy bash");
    let [direct, child, grandchild] =
        ["direct", "child", "grandchild"].map(|name| watched.join(name));
    for f in [&direct, &child, &grandchild] {
        fs::write(f, "x").expect("write file");
    }
    let selector = format!(
        "{}      matchBinaries:
      - operator: In
        followChildren: true
        values:
        - {}
",
        prefix_selector(watched),
        launcher.display()
    );
    let policy = write_policy(
        s.dir.path(),
        "children",
        &openat_policy("launcher-tree", &selector, ""),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let (_, status) = run(&cat, &[&path(&direct)]);
    assert!(status.success());
    let script = format!(
        "{cat} {child}; sh -c '{cat} {grandchild}; true'; true",
        cat = cat.display(),
        child = child.display(),
        grandchild = grandchild.display()
    );
    let (_, status) = run(&launcher, &["-c", &script]);
    assert!(status.success());
    let evs = agent.wait_for(WAIT, "the launcher's child and grandchild", |evs| {
        !opens_of(evs, &path(&child)).is_empty() && !opens_of(evs, &path(&grandchild)).is_empty()
    });
    let child_ev = opens_of(&evs, &path(&child))[0];
    assert_eq!(str_at(child_ev, "/parent/binary"), path(&launcher));
    let grandchild_ev = opens_of(&evs, &path(&grandchild))[0];
    assert_ne!(
        str_at(grandchild_ev, "/parent/binary"),
        path(&launcher),
        "the grandchild's parent is the inner sh"
    );
    // One ring buffer: the direct cat's event would have come before these.
    assert!(
        opens_of(&evs, &path(&direct)).is_empty(),
        "a cat outside the launcher's tree posted an event"
    );
    agent.stop();
    Ok(())
}

fn sigkill_policy(dir: &Path, watched: &Path, options: &str) -> String {
    let selector = format!(
        "{}      matchActions:
      - action: Sigkill
",
        prefix_selector(watched)
    );
    write_policy(
        dir,
        "kill",
        &openat_policy("kill-openers", &selector, options),
    )
}

pub fn sigkill_kills_the_opener() -> TestResult {
    require_agent!();
    let cat = match tool("cat") {
        Ok(c) => c,
        Err(why) => skip!("{why}"),
    };
    let s = setup();
    let policy = sigkill_policy(s.dir.path(), s.file.parent().expect("parent"), "");
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8").to_owned();
    let (pid, status) = run(&cat, &[&file]);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "cat: {status}");

    let evs = agent.wait_for(WAIT, "kprobe and exit events of the killed cat", |evs| {
        opens_of(evs, &file)
            .iter()
            .any(|k| pid_of(k) == u64::from(pid))
            && of_kind(evs, "process_exit")
                .iter()
                .any(|x| pid_of(x) == u64::from(pid))
    });
    let ev = opens_of(&evs, &file)
        .into_iter()
        .find(|k| pid_of(k) == u64::from(pid))
        .expect("event");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_SIGKILL");
    let exit = of_kind(&evs, "process_exit")
        .into_iter()
        .find(|x| pid_of(x) == u64::from(pid))
        .expect("exit");
    assert_eq!(str_at(exit, "/signal"), "SIGKILL");
    // The status line states the real guarantee: killed after the call, not blocked.
    assert!(
        agent
            .log()
            .iter()
            .any(|l| l.contains("policy hook loaded") && l.contains("killed after the call")),
        "no status line with the kill guarantee"
    );
    agent.stop();
    Ok(())
}

pub fn monitor_mode_does_not_kill() -> TestResult {
    require_agent!();
    let cat = match tool("cat") {
        Ok(c) => c,
        Err(why) => skip!("{why}"),
    };
    let s = setup();
    let options = "  options:\n  - name: policy-mode\n    value: monitor\n";
    let policy = sigkill_policy(s.dir.path(), s.file.parent().expect("parent"), options);
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8").to_owned();
    let (pid, status) = run(&cat, &[&file]);
    assert!(status.success(), "monitor mode killed cat: {status}");
    let evs = agent.wait_for(WAIT, "openat event in monitor mode", |evs| {
        opens_of(evs, &file)
            .iter()
            .any(|k| pid_of(k) == u64::from(pid))
    });
    let ev = opens_of(&evs, &file)
        .into_iter()
        .find(|k| pid_of(k) == u64::from(pid))
        .expect("event");
    // Only posted: the signal was counted, not sent, and the event does not claim it.
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    assert!(agent
        .log()
        .iter()
        .any(|l| l.contains("signals are counted, never sent")));
    agent.stop();
    Ok(())
}

pub fn bad_policy_refused_good_policy_kept() -> TestResult {
    require_agent!();
    let cat = match tool("cat") {
        Ok(c) => c,
        Err(why) => skip!("{why}"),
    };
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let policies = s.dir.path().join("policies");
    fs::create_dir(&policies).expect("mkdir");
    write_policy(
        &policies,
        "good",
        &openat_policy("good", &prefix_selector(watched), ""),
    );
    let bad_operator = openat_policy("bad", &prefix_selector(watched), "")
        .replace("operator: Prefix", "operator: StartsWith");
    write_policy(&policies, "bad", &bad_operator);
    let no_such_call = openat_policy("nocall", &prefix_selector(watched), "")
        .replace("sys_openat", "sys_no_such_call");
    write_policy(&policies, "nocall", &no_such_call);
    let dir = policies.to_str().expect("utf-8");
    let agent = Agent::start(&["--tracing-policy-dir", dir]);
    let log = agent.log();
    assert!(
        log.iter().any(|l| l.contains("policy refused")
            && l.contains("bad.yaml")
            && l.contains("matchArgs[0].operator")),
        "the invalid policy's refusal names the field"
    );
    assert!(
        log.iter().any(|l| l.contains("policy hook refused")
            && l.contains("call not found: no x86_64 system call named no_such_call")),
        "the unknown call is refused with its reason"
    );
    let file = s.file.to_str().expect("utf-8").to_owned();
    let (pid, _) = run(&cat, &[&file]);
    agent.wait_for(WAIT, "the good policy's event", |evs| {
        opens_of(evs, &file)
            .iter()
            .any(|k| pid_of(k) == u64::from(pid) && str_at(k, "/policy_name") == "good")
    });
    agent.stop();
    Ok(())
}

/// What `vigil probe` says about `feature` here: available, or why not.
pub fn probed(feature: &str) -> Result<(), String> {
    let out = Command::new(vigil_bin())
        .args(["probe", "--output", "json"])
        .output()
        .expect("vigil probe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("probe JSON");
    let f = v["features"]
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["feature"].as_str() == Some(feature))
        .expect("feature in the probe's report");
    if f["available"].as_bool() == Some(true) {
        Ok(())
    } else {
        Err(f["reason"].as_str().unwrap_or("no reason").to_owned())
    }
}

/// The mechanism vigil attaches kernel function hooks with here (fentry is
/// preferred), or the probe's reasons for having neither.
fn function_hook_mechanism() -> Result<&'static str, String> {
    match (probed("fentry"), probed("kprobe")) {
        (Ok(()), _) => Ok("fentry"),
        (_, Ok(())) => Ok("kprobe"),
        (Err(fentry), Err(kprobe)) => Err(format!(
            "kernel has neither fentry ({fentry}) nor kprobes ({kprobe})"
        )),
    }
}

/// A policy on security_file_open(struct file *) with one path selector.
fn file_open_policy(name: &str, operator: &str, value: &str) -> String {
    tracing_policy(
        name,
        &format!(
            "  kprobes:
  - call: security_file_open
    syscall: false
    args:
    - index: 0
      type: file
    selectors:
    - matchArgs:
      - index: 0
        operator: {operator}
        values:
        - {value}
"
        ),
    )
}

/// A kernel-function hook that neither BPF nor fanotify can serve here
/// (fanotify cannot mark by Postfix) is refused with every reason.
pub fn non_syscall_kprobe_refused_with_reason() -> TestResult {
    require_agent!();
    let s = setup();
    let policy = write_policy(
        s.dir.path(),
        "lsm",
        &file_open_policy("file-open", "Postfix", "/secret.txt"),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let log = agent.log();
    match function_hook_mechanism() {
        Ok(mechanism) => {
            let via = format!("{mechanism} security_file_open");
            assert!(
                log.iter()
                    .any(|l| l.contains("policy hook loaded") && l.contains(&via)),
                "expected the hook loaded via {via:?}"
            );
            assert!(log
                .iter()
                .any(|l| l.contains("policy enabled") && l.contains("file-open")));
        }
        Err(_) => {
            let expected = [
                "kprobe on security_file_open: kernel has no kprobes and no fentry (vigil probe: kprobe: ",
                "fanotify permission events cannot serve the hook",
                "Postfix",
            ];
            assert!(
                log.iter()
                    .any(|l| l.contains("policy hook refused")
                        && expected.iter().all(|e| l.contains(e))),
                "expected a refusal containing {expected:?}"
            );
            assert!(log
                .iter()
                .any(|l| l.contains("policy refused") && l.contains("file-open")));
        }
    }
    agent.stop();
    Ok(())
}

/// process_kprobe events of security_file_open whose file is `path`.
fn file_opens_of<'a>(evs: &'a [Value], path: &str) -> Vec<&'a Value> {
    of_kind(evs, "process_kprobe")
        .into_iter()
        .filter(|k| {
            str_at(k, "/function_name") == "security_file_open"
                && str_at(k, "/args/0/file_arg/path") == path
        })
        .collect()
}

/// security_file_open with a Prefix selector reports the files opened under
/// it, by fentry or kprobe, or by fanotify where the kernel has neither.
pub fn file_open_hook_posts_file_path() -> TestResult {
    require_agent!();
    let mechanism = match (function_hook_mechanism(), probed("fanotify_perm")) {
        (Ok(m), _) => m,
        (Err(_), Ok(())) => "fanotify FAN_OPEN_PERM",
        (Err(why), Err(fanotify)) => skip!("{why}; no fanotify permission events ({fanotify})"),
    };
    let cat = match tool("cat") {
        Ok(c) => c,
        Err(why) => skip!("{why}"),
    };
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let policy = write_policy(
        s.dir.path(),
        "fileopen",
        &file_open_policy(
            "watch-file-open",
            "Prefix",
            &format!("{}/", watched.display()),
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let outside = s.dir.path().join("outside");
    fs::write(&outside, "y").expect("write");
    let outside = outside.to_str().expect("utf-8").to_owned();
    let file = s.file.to_str().expect("utf-8").to_owned();
    run(&cat, &[&outside]);
    let (pid, status) = run(&cat, &[&file]);
    assert!(status.success());

    let evs = agent.wait_for(
        WAIT,
        "security_file_open event of the watched file",
        |evs| {
            file_opens_of(evs, &file)
                .iter()
                .any(|k| pid_of(k) == u64::from(pid))
        },
    );
    let ev = file_opens_of(&evs, &file)
        .into_iter()
        .find(|k| pid_of(k) == u64::from(pid))
        .expect("event");
    assert_eq!(str_at(ev, "/policy_name"), "watch-file-open");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    assert_eq!(str_at(ev, "/process/binary"), cat.to_str().expect("utf-8"));
    assert!(!str_at(ev, "/parent/exec_id").is_empty(), "{ev}");
    assert!(
        file_opens_of(&evs, &outside).is_empty(),
        "a path outside the prefix posted an event"
    );
    let via = if mechanism.starts_with("fanotify") {
        mechanism.to_owned()
    } else {
        format!("{mechanism} security_file_open")
    };
    assert!(
        agent
            .log()
            .iter()
            .any(|l| l.contains("policy hook loaded") && l.contains(&via)),
        "the status line names the mechanism {via:?}"
    );
    agent.stop();
    Ok(())
}

pub fn write_fd_buffer_and_return_value() -> TestResult {
    require_agent!();
    let sh = PathBuf::from("/bin/sh");
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let policy = write_policy(
        s.dir.path(),
        "write",
        &format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: watch-writes
spec:
  kprobes:
  - call: sys_write
    syscall: true
    return: true
    returnArg:
      index: 0
      type: int
    args:
    - index: 0
      type: fd
    - index: 1
      type: char_buf
      sizeArgIndex: 3
    - index: 2
      type: size_t
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values:
        - {}/
",
            watched.display()
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let file = s.file.to_str().expect("utf-8").to_owned();
    let (pid, status) = run(&sh, &["-c", &format!("echo hello > {file}")]);
    assert!(status.success());
    let evs = agent.wait_for(WAIT, "write event with its return value", |evs| {
        of_kind(evs, "process_kprobe")
            .iter()
            .any(|k| str_at(k, "/args/0/file_arg/path") == file)
    });
    let ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|k| str_at(k, "/args/0/file_arg/path") == file)
        .expect("event");
    assert_eq!(str_at(ev, "/function_name"), "__x64_sys_write");
    // echo is a shell builtin: the shell itself writes.
    assert_eq!(pid_of(ev), u64::from(pid));
    assert_eq!(
        str_at(ev, "/args/1/bytes_arg"),
        "aGVsbG8K",
        "base64 of hello\\n"
    );
    assert_eq!(str_at(ev, "/args/2/size_arg"), "6");
    assert_eq!(ev["return"]["int_arg"], 6);
    agent.stop();
    Ok(())
}

pub fn lsm_override_blocks_open() -> TestResult {
    require_agent!();
    if let Err(why) = probed("lsm") {
        skip!("kernel has no BPF-LSM ({why})");
    }
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let policy = write_policy(
        s.dir.path(),
        "deny",
        &format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: deny-open
spec:
  lsmhooks:
  - hook: file_open
    args:
    - index: 0
      type: file
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values:
        - {}/
      matchActions:
      - action: Override
        argError: -1
",
            watched.display()
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let outside = s.dir.path().join("outside");
    fs::write(&outside, "y").expect("write");
    assert!(
        fs::File::open(&outside).is_ok(),
        "a file outside the prefix was blocked"
    );
    let err = fs::File::open(&s.file).expect_err("open of the watched file was not blocked");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

    let file = s.file.to_str().expect("utf-8").to_owned();
    let pid = u64::from(std::process::id());
    let lsm_of = |evs: &[Value]| -> Option<Value> {
        of_kind(evs, "process_lsm")
            .into_iter()
            .find(|k| str_at(k, "/args/0/file_arg/path") == file && pid_of(k) == pid)
            .cloned()
    };
    let evs = agent.wait_for(WAIT, "process_lsm event of the blocked open", |evs| {
        lsm_of(evs).is_some()
    });
    let ev = lsm_of(&evs).expect("event");
    assert_eq!(str_at(&ev, "/function_name"), "file_open");
    assert_eq!(str_at(&ev, "/policy_name"), "deny-open");
    assert_eq!(str_at(&ev, "/action"), "KPROBE_ACTION_OVERRIDE");
    assert!(
        agent.log().iter().any(|l| l.contains("policy hook loaded")
            && l.contains("lsm file_open")
            && l.contains("blocked before the operation")),
        "no status line with the block guarantee"
    );
    agent.stop();
    Ok(())
}
