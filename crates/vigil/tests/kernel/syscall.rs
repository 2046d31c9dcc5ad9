//! System call hooks by their mechanism: fentry/fexit (fmod_ret for
//! Override) on `__x64_sys_NAME` where the kernel has trampolines (the VM
//! kernels), the system call tracepoints elsewhere (the host), where
//! Override is refused with the reason.
use std::{path::Path, process::ExitStatus, time::Duration};

use serde_json::Value;

use crate::{
    harness::{of_kind, own_exe, pid_of, run_tester, str_at, write_policy, Agent, TestResult},
    policy::probed,
    require_agent,
};

const WAIT: Duration = Duration::from_secs(30);

/// Runs the mkdirat tester on `target`.
fn mkdirat(target: &Path) -> (u32, ExitStatus) {
    run_tester("mkdirat", target)
}

fn mkdirat_events(evs: &[Value], pid: u32) -> Vec<&Value> {
    of_kind(evs, "process_kprobe")
        .into_iter()
        .filter(|k| {
            pid_of(k) == u64::from(pid) && str_at(k, "/function_name") == "__x64_sys_mkdirat"
        })
        .collect()
}

/// The status line of the agent's one loaded hook.
fn loaded_hook_line(agent: &Agent) -> String {
    agent
        .log()
        .into_iter()
        .find(|l| l.contains("policy hook loaded"))
        .expect("a hook loaded")
}

/// `sys_mkdirat` with its return value, posted only when it is -EEXIST
/// (matchReturnArgs): by fentry + fexit where the kernel has them, else by
/// the tracepoints. The tester's first mkdirat succeeds and is not posted;
/// the second fails with EEXIST and is, with its path and return value.
pub fn return_args_by_fexit_or_tracepoint() -> TestResult {
    require_agent!();
    let via = match (probed("fentry"), probed("fexit")) {
        (Ok(()), Ok(())) => "fentry + fexit __x64_sys_mkdirat",
        _ => "tracepoints syscalls/sys_enter_mkdirat + sys_exit_mkdirat",
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: mkdirat-return
spec:
  kprobes:
  - call: sys_mkdirat
    return: true
    args:
    - index: 1
      type: string
    returnArg:
      index: 0
      type: int
    selectors:
    - matchBinaries:
      - operator: In
        values:
        - {}
      matchReturnArgs:
      - index: 0
        operator: Equal
        values:
        - \"-17\"
",
        own_exe().display()
    );
    let file = write_policy(dir.path(), "mkdirat", &policy);
    let agent = Agent::start(&["--tracing-policy", &file]);
    let status = loaded_hook_line(&agent);
    assert!(status.contains(via), "mechanism {via:?}: {status}");
    let target = dir.path().join("twice");
    let (made, status) = mkdirat(&target);
    assert!(status.success(), "first mkdirat: {status}");
    let (exists, status) = mkdirat(&target);
    assert_eq!(
        status.code(),
        Some(libc::EEXIST),
        "second mkdirat: {status}"
    );
    let evs = agent.wait_for(WAIT, "the EEXIST mkdirat", |evs| {
        !mkdirat_events(evs, exists).is_empty()
    });
    let ev = mkdirat_events(&evs, exists)[0];
    assert_eq!(
        ev["args"][0]["string_arg"].as_str(),
        target.to_str(),
        "path: {ev}"
    );
    assert_eq!(ev["return"]["int_arg"], -libc::EEXIST, "return: {ev}");
    let evs = agent.stop();
    assert!(
        mkdirat_events(&evs, made).is_empty(),
        "the successful mkdirat does not match matchReturnArgs"
    );
    Ok(())
}

/// Tetragon's Override on a system call (argError -1), for the tester's
/// mkdirat of paths ending in "blocked": by fmod_ret on __x64_sys_mkdirat
/// (or a kprobe with bpf_override_return) the call fails with EPERM before
/// it runs, so the directory does not exist; another path is made. Where
/// the kernel has neither, the hook is refused with the probe's reasons and
/// nothing is blocked.
pub fn override_mkdirat_blocks_before_the_call() -> TestResult {
    require_agent!();
    let via = match (probed("fmod_ret_syscall"), probed("kprobe_override")) {
        (Ok(()), _) => Some("fmod_ret __x64_sys_mkdirat"),
        (_, Ok(())) => Some("kprobe __x64_sys_mkdirat with bpf_override_return"),
        _ => None,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: mkdirat-override
spec:
  kprobes:
  - call: sys_mkdirat
    args:
    - index: 1
      type: string
    selectors:
    - matchBinaries:
      - operator: In
        values:
        - {}
      matchArgs:
      - index: 1
        operator: Postfix
        values:
        - blocked
      matchActions:
      - action: Override
        argError: -1
",
        own_exe().display()
    );
    let file = write_policy(dir.path(), "override", &policy);
    let agent = Agent::start(&["--tracing-policy", &file]);
    let blocked = dir.path().join("blocked");
    let allowed = dir.path().join("allowed");
    let Some(via) = via else {
        let refusal = agent
            .log()
            .into_iter()
            .find(|l| l.contains("policy hook refused") && l.contains("sys_mkdirat"))
            .expect("the hook is refused");
        assert!(
            refusal.contains("Override on a system call needs fmod_ret on __x64_sys_mkdirat (vigil probe: fmod_ret on system calls: ")
                && refusal.contains("kprobe override: "),
            "{refusal}"
        );
        let (_, status) = mkdirat(&blocked);
        assert!(status.success() && blocked.is_dir(), "nothing is blocked");
        agent.stop();
        return Ok(());
    };
    let status = loaded_hook_line(&agent);
    assert!(
        status.contains(via) && status.contains("blocked before the operation"),
        "{status}"
    );
    let (pid, status) = mkdirat(&blocked);
    assert_eq!(status.code(), Some(libc::EPERM), "{status}");
    assert!(!blocked.exists(), "the directory was made: the call ran");
    let (other, status) = mkdirat(&allowed);
    assert!(status.success(), "a non-matching mkdirat: {status}");
    assert!(
        allowed.is_dir(),
        "the non-matching mkdirat made its directory"
    );
    let evs = agent.wait_for(WAIT, "the override event", |evs| {
        !mkdirat_events(evs, pid).is_empty()
    });
    let ev = mkdirat_events(&evs, pid)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE", "{ev}");
    assert_eq!(ev["args"][0]["string_arg"].as_str(), blocked.to_str());
    let evs = agent.stop();
    assert!(
        mkdirat_events(&evs, other).is_empty(),
        "the non-matching mkdirat posts nothing"
    );
    // Without the agent the blocked path is made: nothing stayed attached.
    let (_, status) = mkdirat(&blocked);
    assert!(status.success() && blocked.is_dir(), "{status}");
    Ok(())
}
