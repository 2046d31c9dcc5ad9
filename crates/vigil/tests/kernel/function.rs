//! Kernel function hooks beyond the entry: return values (fexit or
//! kretprobe) and Override by fmod_ret. The host has neither trampolines
//! nor kprobes: there these tests check the refusals; the VM kernels run
//! the hooks.
use std::time::Duration;

use serde_json::Value;

use crate::{
    harness::{of_kind, own_exe, pid_of, run_tester, str_at, write_policy, Agent, TestResult},
    policy::probed,
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(30);

fn kprobes_of<'a>(evs: &'a [Value], pid: u32, function: &str) -> Vec<&'a Value> {
    of_kind(evs, "process_kprobe")
        .into_iter()
        .filter(|k| pid_of(k) == u64::from(pid) && str_at(k, "/function_name") == function)
        .collect()
}

/// cap_capable(cred, ns, cap, opts) with its return value, for the tester's chown.
pub fn return_value_by_fexit_or_kretprobe() -> TestResult {
    require_agent!();
    let exit = match (
        probed("fentry"),
        probed("fexit"),
        probed("kprobe"),
        probed("kretprobe"),
    ) {
        (Ok(()), Ok(()), _, _) => "fexit",
        (_, _, Ok(()), Ok(())) => "kretprobe",
        (fentry, fexit, kprobe, kretprobe) => {
            let why = |r: Result<(), String>| r.err().unwrap_or_else(|| "available".into());
            skip!(
                "kernel has neither fentry+fexit ({}; {}) nor kprobe+kretprobe ({}; {})",
                why(fentry),
                why(fexit),
                why(kprobe),
                why(kretprobe)
            )
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: cap-return
spec:
  kprobes:
  - call: cap_capable
    syscall: false
    return: true
    args:
    - index: 2
      type: int
    returnArg:
      index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 2
        operator: Equal
        values:
        - \"0\"
      matchBinaries:
      - operator: In
        values:
        - {}
      matchReturnArgs:
      - index: 0
        operator: Equal
        values:
        - \"0\"
",
        own_exe().display()
    );
    let file = write_policy(dir.path(), "function", &policy);
    let agent = Agent::start(&["--tracing-policy", &file]);
    let (pid, status) = run_tester("chown", &dir.path().join("owned"));
    assert!(status.success(), "chown as root: {status}");
    let evs = agent.wait_for(WAIT, "cap_capable event with its return", |evs| {
        !kprobes_of(evs, pid, "cap_capable").is_empty()
    });
    let ev = kprobes_of(&evs, pid, "cap_capable")[0];
    assert_eq!(ev["args"][0]["int_arg"], 0, "CAP_CHOWN: {ev}");
    assert_eq!(ev["return"]["int_arg"], 0, "granted: {ev}");
    assert!(
        agent
            .log()
            .iter()
            .any(|l| l.contains("policy hook loaded") && l.contains(&format!("{exit} cap_capable"))),
        "the status names {exit}"
    );
    agent.stop();
    Ok(())
}

/// The shape of Tetragon's override-security.yaml (security_inode_mkdir,
/// Override argError -1), limited to the tester: mkdir fails with EPERM
/// where fmod_ret exists; elsewhere the hook is refused with the reason.
pub fn override_security_inode_mkdir() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    if let Err(why) = probed("fmod_ret") {
        let example = &crate::harness::tetragon_policy("override-security.yaml");
        if !example.exists() {
            skip!("no fmod_ret ({why}) and no {}", example.display());
        }
        let agent = Agent::start(&["--tracing-policy", example.to_str().expect("utf-8")]);
        let target = dir.path().join("made");
        let (_, status) = run_tester("mkdir", &target);
        assert!(
            status.success() && target.exists(),
            "nothing was overridden"
        );
        let log = agent.log();
        let refusal = log
            .iter()
            .find(|l| l.contains("policy hook refused") && l.contains("security_inode_mkdir"))
            .expect("the hook is refused");
        assert!(
            refusal
                .contains("Override on a kernel function needs fmod_ret (vigil probe: fmod_ret: "),
            "{refusal}"
        );
        agent.stop();
        return Ok(());
    }
    let policy = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: mkdir-override
spec:
  kprobes:
  - call: security_inode_mkdir
    syscall: false
    selectors:
    - matchBinaries:
      - operator: In
        values:
        - {}
      matchActions:
      - action: Override
        argError: -1
",
        own_exe().display()
    );
    let file = write_policy(dir.path(), "function", &policy);
    let agent = Agent::start(&["--tracing-policy", &file]);
    let target = dir.path().join("blocked");
    let (pid, status) = run_tester("mkdir", &target);
    assert_eq!(status.code(), Some(libc::EPERM), "{status}");
    assert!(!target.exists(), "the directory was made");
    let evs = agent.wait_for(WAIT, "override event", |evs| {
        !kprobes_of(evs, pid, "security_inode_mkdir").is_empty()
    });
    assert_eq!(
        str_at(kprobes_of(&evs, pid, "security_inode_mkdir")[0], "/action"),
        "KPROBE_ACTION_OVERRIDE"
    );
    assert!(agent
        .log()
        .iter()
        .any(|l| l.contains("fmod_ret security_inode_mkdir")
            && l.contains("blocked before the operation")));
    agent.stop();
    // Without the agent the same mkdir works again: nothing stayed attached.
    let (_, status) = run_tester("mkdir", &target);
    assert!(status.success(), "{status}");
    Ok(())
}
