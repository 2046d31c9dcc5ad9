//! Post kernelStackTrace / userStackTrace on every kind of hook that takes
//! stacks: system calls, classic and raw tracepoints, uprobes and kernel
//! functions. The `stack` tester makes its mkdir(2) from a function of its
//! own with a `syscall` instruction, so the innermost user frame is that
//! function whatever the build's frame pointers; the testers stay alive
//! until the test has the event, so that their mappings can be read for the
//! symbols.
use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    harness::{of_kind, own_exe, pid_of, str_at, tracing_policy, write_policy, Agent, TestResult},
    policy::{probed, setup},
    require_agent, skip,
    tester::{MARKER_VAR, MODE_VAR, STACK_FUNCTION},
};

const WAIT: Duration = Duration::from_secs(30);

/// The function the `uprobe-wait` tester calls (hooked by the uprobe test).
const UPROBE_FUNCTION: &str = "vigil_uprobe_target";

fn symbols(ev: &Value, field: &str) -> Vec<String> {
    ev[field]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .map(|f| f["symbol"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs tester `mode` (marker path `marker`) under an agent with `policy`,
/// and returns the tester's first event of `kind`, with every event the
/// agent wrote. The tester waits on stdin until the event is out.
fn stacked_event(policy: &str, mode: &str, marker: &Path, kind: &str) -> (Value, Vec<Value>) {
    let agent = Agent::start(&["--tracing-policy", policy]);
    let mut child = Command::new(own_exe())
        .env(MODE_VAR, mode)
        .env(MARKER_VAR, marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tester");
    let pid = u64::from(child.id());
    let evs = agent.wait_for(WAIT, &format!("the tester's {kind} event"), |evs| {
        of_kind(evs, kind).iter().any(|e| pid_of(e) == pid)
    });
    // The event is out, so its stacks were symbolized: the tester may go.
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"done\n");
    drop(stdin);
    assert!(child.wait().expect("wait tester").success());
    let ev = of_kind(&evs, kind)
        .into_iter()
        .find(|e| pid_of(e) == pid)
        .expect("event")
        .clone();
    (ev, agent.stop())
}

/// The innermost user frame is `function` of the tester's executable.
fn assert_user_frame(ev: &Value, function: &str) {
    let user = symbols(ev, "user_stack_trace");
    assert_eq!(
        user.first().map(String::as_str),
        Some(function),
        "the innermost user frame is the tester's function: {ev}"
    );
    let frame = &ev["user_stack_trace"][0];
    assert!(
        frame["module"]
            .as_str()
            .is_some_and(|m| own_exe().ends_with(m.rsplit('/').next().unwrap_or(m))),
        "the frame's module is the tester's executable: {frame}"
    );
}

/// The kernel stack names `function` and holds kernel-space addresses.
fn assert_kernel_frame(ev: &Value, function: &str) {
    let kernel = symbols(ev, "kernel_stack_trace");
    assert!(
        kernel.iter().any(|s| s == function),
        "the kernel stack passes through {function}: {kernel:?}"
    );
    assert!(
        ev["kernel_stack_trace"][0]["address"]
            .as_str()
            .and_then(|a| a.parse::<u64>().ok())
            .is_some_and(|a| a >= 0xffff_8000_0000_0000),
        "kernel addresses are kernel-space addresses: {ev}"
    );
}

/// A kernel stack the event lacks must be counted as lost.
fn kernel_stack_or_lost(ev: &Value, evs: &[Value], function: &str) {
    if symbols(ev, "kernel_stack_trace").is_empty() {
        assert!(
            of_kind(evs, "lost_events")
                .iter()
                .any(|l| l["kind"] == "stack_trace"),
            "a kernel stack neither reported nor counted as lost: {ev}"
        );
        return;
    }
    assert_kernel_frame(ev, function);
}

/// The Post action of a hook's only selector, with both stacks.
const POST_STACKS: &str = "      matchActions:
      - action: Post
        kernelStackTrace: true
        userStackTrace: true
";

pub fn kernel_and_user_stack_of_a_system_call() -> TestResult {
    require_agent!();
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let marker = watched.join("stack-dir");
    let policy = write_policy(
        s.dir.path(),
        "stacks",
        &tracing_policy(
            "stacks",
            &format!(
                "  kprobes:
  - call: sys_mkdir
    syscall: true
    args:
    - index: 0
      type: string
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values: [{dir}/]
{POST_STACKS}",
                dir = watched.display()
            ),
        ),
    );
    let (ev, evs) = stacked_event(&policy, "stack", &marker, "process_kprobe");
    // Debian's 6.1 gives no kernel stack at the system call tracepoints:
    // there the stack must be counted as lost.
    assert_mkdir_stacks(&ev, &evs, &marker);
    Ok(())
}

/// A classic tracepoint (sys_enter_mkdir: 4 common fields, __syscall_nr,
/// pathname at index 5): the kernel stack is the system call entry's.
pub fn kernel_and_user_stack_of_a_tracepoint() -> TestResult {
    require_agent!();
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let marker = watched.join("tp-stack-dir");
    let policy = write_policy(
        s.dir.path(),
        "tp-stacks",
        &tracing_policy(
            "tp-stacks",
            &format!(
                "  tracepoints:
  - subsystem: syscalls
    event: sys_enter_mkdir
    args:
    - index: 5
      type: string
    selectors:
    - matchArgs:
      - index: 5
        operator: Prefix
        values: [{dir}/]
{POST_STACKS}",
                dir = watched.display()
            ),
        ),
    );
    let (ev, evs) = stacked_event(&policy, "stack", &marker, "process_tracepoint");
    assert_mkdir_stacks(&ev, &evs, &marker);
    Ok(())
}

/// The tester's mkdir of `marker`: its path as the first argument, the
/// tester's function on the user stack, the system call entry on the
/// kernel stack (or that stack counted as lost).
fn assert_mkdir_stacks(ev: &Value, evs: &[Value], marker: &Path) {
    assert_eq!(
        str_at(ev, "/args/0/string_arg"),
        marker.to_str().expect("utf-8")
    );
    assert_user_frame(ev, STACK_FUNCTION);
    kernel_stack_or_lost(ev, evs, "do_syscall_64");
}

/// A raw tracepoint (raw_syscalls/sys_enter: regs, id) for the tester's
/// mkdir(2): its own front-end, the same stacks.
pub fn kernel_and_user_stack_of_a_raw_tracepoint() -> TestResult {
    require_agent!();
    let s = setup();
    let marker = s.dir.path().join("raw-stack-dir");
    let policy = write_policy(
        s.dir.path(),
        "raw-stacks",
        &tracing_policy(
            "raw-stacks",
            &format!(
                "  tracepoints:
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
        values: [\"{mkdir}\"]
      matchBinaries:
      - operator: In
        values: [{exe}]
{POST_STACKS}",
                mkdir = libc::SYS_mkdir,
                exe = own_exe().display()
            ),
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let cookies_missing = agent
        .log()
        .into_iter()
        .find(|l| l.contains("raw-stacks") && l.contains("unknown func bpf_get_attach_cookie"));
    agent.stop();
    if let Some(line) = cookies_missing {
        skip!("kernel has no raw tracepoint attach cookies (Linux 6.10+): {line}");
    }
    let (ev, evs) = stacked_event(&policy, "stack", &marker, "process_tracepoint");
    assert_user_frame(&ev, STACK_FUNCTION);
    kernel_stack_or_lost(&ev, &evs, "do_syscall_64");
    Ok(())
}

/// userStackTrace on a uprobe of this binary's function: the innermost
/// frame is the hooked function itself (the uprobe fires on its first
/// instruction).
pub fn user_stack_of_a_uprobe() -> TestResult {
    require_agent!();
    if let Err(why) = probed("uprobe") {
        skip!("kernel has no uprobes: {why}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(
        dir.path(),
        "uprobe-stacks",
        &tracing_policy(
            "uprobe-stacks",
            &format!(
                "  uprobes:
  - path: {exe}
    symbols:
    - {UPROBE_FUNCTION}
    selectors:
    - matchActions:
      - action: Post
        userStackTrace: true
",
                exe = own_exe().display()
            ),
        ),
    );
    let (ev, _) = stacked_event(
        &policy,
        "uprobe-wait",
        &dir.path().join("unused"),
        "process_uprobe",
    );
    assert_user_frame(&ev, UPROBE_FUNCTION);
    assert!(
        ev.get("kernel_stack_trace")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        "no kernel stack was asked for: {ev}"
    );
    Ok(())
}

/// kernelStackTrace on a kernel function (vfs_mkdir, by fentry or kprobe):
/// its caller do_mkdirat is on the stack, under the system call entry.
pub fn kernel_stack_of_a_kernel_function() -> TestResult {
    require_agent!();
    let (fentry, kprobe) = (probed("fentry"), probed("kprobe"));
    if let (Err(fentry), Err(kprobe)) = (&fentry, &kprobe) {
        skip!("kernel has neither fentry ({fentry}) nor kprobes ({kprobe})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(
        dir.path(),
        "function-stacks",
        &tracing_policy(
            "function-stacks",
            &format!(
                "  kprobes:
  - call: vfs_mkdir
    syscall: false
    selectors:
    - matchBinaries:
      - operator: In
        values: [{exe}]
      matchActions:
      - action: Post
        kernelStackTrace: true
",
                exe = own_exe().display()
            ),
        ),
    );
    let (ev, _) = stacked_event(
        &policy,
        "stack",
        &dir.path().join("fn-stack-dir"),
        "process_kprobe",
    );
    assert_eq!(str_at(&ev, "/function_name"), "vfs_mkdir");
    assert_kernel_frame(&ev, "do_mkdirat");
    assert_kernel_frame(&ev, "do_syscall_64");
    Ok(())
}
