//! Kprobes whose call is a list (`call: "list:NAME"`): one hook per listed
//! call, each with its own status line and events named by its function.
use std::{process::Command, time::Duration};

use crate::{
    harness::{
        of_kind, own_exe, pid_of, run_tester, str_at, tracing_policy, vigil_bin, write_policy,
        Agent, TestResult,
    },
    require_agent,
};

const WAIT: Duration = Duration::from_secs(30);

/// A list of two system calls, mkdir(2) and mkdirat(2), hooked by one
/// kprobe; the testers make one call each and both are reported.
pub fn kprobe_on_a_list_of_system_calls() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(
        dir.path(),
        "mkdirs",
        &tracing_policy(
            "mkdirs",
            &format!(
                "  lists:
  - name: mkdirs
    type: syscalls
    values: [sys_mkdir, sys_mkdirat]
  kprobes:
  - call: list:mkdirs
    syscall: true
    selectors:
    - matchBinaries:
      - operator: In
        values: [{}]
",
                own_exe().display()
            ),
        ),
    );
    let check = Command::new(vigil_bin())
        .args(["policy", "check", "--kernel", &policy])
        .output()
        .expect("vigil policy check --kernel");
    let report = String::from_utf8_lossy(&check.stdout);
    for call in ["sys_mkdir", "sys_mkdirat"] {
        let name = format!("spec.kprobes[0] {call} (list:mkdirs)");
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!("{name}: attached via"))),
            "one status line for {call}: {report}"
        );
    }

    let agent = Agent::start(&["--tracing-policy", &policy]);
    let (mkdir_pid, status) = run_tester("mkdir", &dir.path().join("by-mkdir"));
    assert!(status.success(), "mkdir: {status}");
    let (mkdirat_pid, status) = run_tester("mkdirat", &dir.path().join("by-mkdirat"));
    assert!(status.success(), "mkdirat: {status}");
    let calls = [
        (mkdir_pid, "__x64_sys_mkdir"),
        (mkdirat_pid, "__x64_sys_mkdirat"),
    ];
    let reported = |evs: &[serde_json::Value], (pid, function): (u32, &str)| {
        of_kind(evs, "process_kprobe")
            .iter()
            .any(|k| pid_of(k) == u64::from(pid) && str_at(k, "/function_name") == function)
    };
    let evs = agent.wait_for(WAIT, "the mkdir and mkdirat events", |evs| {
        calls.iter().all(|&call| reported(evs, call))
    });
    for (pid, function) in calls {
        let other = of_kind(&evs, "process_kprobe")
            .into_iter()
            .filter(|k| pid_of(k) == u64::from(pid))
            .find(|k| str_at(k, "/function_name") != function);
        assert!(other.is_none(), "pid {pid} made only {function}: {other:?}");
    }
    agent.stop();
    Ok(())
}

/// A kprobe naming a list the spec does not define is refused offline by
/// `vigil policy check`, with the field path.
pub fn unknown_list_refused_with_field_path() -> TestResult {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(
        dir.path(),
        "no-list",
        &tracing_policy(
            "no-list",
            "  lists:
  - name: dups
    type: syscalls
    values: [sys_dup]
  kprobes:
  - call: list:nope
    syscall: true
",
        ),
    );
    let check = Command::new(vigil_bin())
        .args(["policy", "check", &policy])
        .output()
        .expect("vigil policy check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!check.status.success(), "refused: {text}");
    assert!(
        text.contains(
            "spec.kprobes[0].call: \"list:nope\" refers to an undefined list; defined lists: dups"
        ),
        "{text}"
    );
    Ok(())
}
