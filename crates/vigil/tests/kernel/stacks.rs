//! Post kernelStackTrace / userStackTrace on a system call hook: the
//! tester makes its mkdir(2) from a function of its own with a `syscall`
//! instruction, so the innermost user frame is that function whatever the
//! build's frame pointers; it stays alive until the test has the event, so
//! that its mappings can be read for the symbols.
use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    harness::{of_kind, own_exe, pid_of, str_at, write_policy, Agent, TestResult},
    policy::setup,
    require_agent,
    tester::{MARKER_VAR, MODE_VAR, STACK_FUNCTION},
};

const WAIT: Duration = Duration::from_secs(30);

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

pub fn kernel_and_user_stack_of_a_system_call() -> TestResult {
    require_agent!();
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let marker = watched.join("stack-dir");
    let policy = write_policy(
        s.dir.path(),
        "stacks",
        &format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: stacks
spec:
  kprobes:
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
      matchActions:
      - action: Post
        kernelStackTrace: true
        userStackTrace: true
",
            dir = watched.display()
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let mut child = Command::new(own_exe())
        .env(MODE_VAR, "stack")
        .env(MARKER_VAR, &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tester");
    let pid = child.id();
    let evs = agent.wait_for(WAIT, "the tester's mkdir event", |evs| {
        of_kind(evs, "process_kprobe")
            .iter()
            .any(|k| pid_of(k) == u64::from(pid))
    });
    // The event is out, so its stacks were symbolized: the tester may go.
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"done\n");
    drop(stdin);
    assert!(child.wait().expect("wait tester").success());

    let ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|k| pid_of(k) == u64::from(pid))
        .expect("event");
    assert_eq!(
        str_at(ev, "/args/0/string_arg"),
        marker.to_str().expect("utf-8")
    );
    let user = symbols(ev, "user_stack_trace");
    assert_eq!(
        user.first().map(String::as_str),
        Some(STACK_FUNCTION),
        "the innermost user frame is the tester's function: {ev}"
    );
    let frame = &ev["user_stack_trace"][0];
    assert!(
        frame["module"]
            .as_str()
            .is_some_and(|m| own_exe().ends_with(m.rsplit('/').next().unwrap_or(m))),
        "the frame's module is the tester's executable: {frame}"
    );
    let kernel = symbols(ev, "kernel_stack_trace");
    let evs = agent.stop();
    if kernel.is_empty() {
        // Debian's 6.1 gives no kernel stack at the system call
        // tracepoints: then the stack must be counted as lost.
        assert!(
            of_kind(&evs, "lost_events")
                .iter()
                .any(|l| l["kind"] == "stack_trace"),
            "a kernel stack neither reported nor counted as lost: {ev}"
        );
        return Ok(());
    }
    assert!(
        kernel.iter().any(|s| s == "do_syscall_64"),
        "the kernel stack passes through the system call entry: {kernel:?}"
    );
    assert!(
        ev["kernel_stack_trace"][0]["address"]
            .as_str()
            .and_then(|a| a.parse::<u64>().ok())
            .is_some_and(|a| a >= 0xffff_8000_0000_0000),
        "kernel addresses are kernel-space addresses: {ev}"
    );
    Ok(())
}
