//! Arguments that are kernel objects (struct path, dentry, linux_binprm,
//! cred, user_namespace, capability numbers), read on kernel function hooks:
//! only where the kernel has fentry or kprobes (the VM matrix).
use std::{fs, process::Command, time::Duration};

use serde_json::Value;

use crate::{
    harness::{of_kind, pid_of, str_at, Agent, TestResult},
    policy::probed,
    require_agent, skip, tester,
};

const WAIT: Duration = Duration::from_secs(20);

fn kprobe_of<'a>(evs: &'a [Value], policy: &str, pid: u32) -> Option<&'a Value> {
    of_kind(evs, "process_kprobe")
        .into_iter()
        .find(|k| str_at(k, "/policy_name") == policy && pid_of(k) == u64::from(pid))
}

pub fn kernel_objects_as_arguments() -> TestResult {
    require_agent!();
    if probed("fentry").is_err() && probed("kprobe").is_err() {
        skip!("kernel has neither fentry nor kprobes for kernel function hooks");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("own path");
    let policy = dir.path().join("objects.yaml");
    fs::write(
        &policy,
        format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: kernel-objects
spec:
  kprobes:
  - call: security_path_mkdir
    syscall: false
    args:
    - index: 0
      type: path
    - index: 1
      type: dentry
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - {dir}
  - call: security_bprm_check
    syscall: false
    args:
    - index: 0
      type: linux_binprm
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - {exe}
  - call: cap_capable
    syscall: false
    args:
    - index: 0
      type: cred
    - index: 1
      type: user_namespace
    - index: 2
      type: capability
    selectors:
    - matchArgs:
      - index: 2
        operator: Equal
        values:
        - 21
      matchBinaries:
      - operator: In
        values:
        - {exe}
",
            dir = dir.path().display(),
            exe = exe.display()
        ),
    )
    .expect("write policy");
    let agent = Agent::start(&["--tracing-policy", policy.to_str().expect("utf-8")]);
    let created = dir.path().join("made-by-test");
    let mkdir = Command::new("mkdir").arg(&created).spawn().expect("mkdir");
    let mkdir_pid = mkdir.id();
    assert!(mkdir.wait_with_output().expect("mkdir").status.success());
    // The tester asks for CAP_SYS_ADMIN (unshare of a mount namespace), from this binary.
    let mut child = Command::new(&exe)
        .env(tester::MODE_VAR, "unshare-open")
        .arg("/")
        .spawn()
        .expect("tester");
    let tester_pid = child.id();
    assert!(child.wait().expect("wait").success());
    let evs = agent.wait_for(WAIT, "mkdir, exec and capability events", |evs| {
        kprobe_of(evs, "kernel-objects", mkdir_pid).is_some()
            && of_kind(evs, "process_kprobe").iter().any(|k| {
                pid_of(k) == u64::from(tester_pid)
                    && str_at(k, "/function_name") == "security_bprm_check"
            })
            && of_kind(evs, "process_kprobe").iter().any(|k| {
                pid_of(k) == u64::from(tester_pid) && str_at(k, "/function_name") == "cap_capable"
            })
    });
    let mkdir_ev = kprobe_of(&evs, "kernel-objects", mkdir_pid).expect("mkdir event");
    assert_eq!(str_at(mkdir_ev, "/function_name"), "security_path_mkdir");
    assert_eq!(
        str_at(mkdir_ev, "/args/0/path_arg/path"),
        dir.path().to_str().expect("utf-8")
    );
    // A dentry's path starts at the root of its own file system.
    assert!(
        str_at(mkdir_ev, "/args/1/path_arg/path").ends_with("/made-by-test"),
        "{mkdir_ev}"
    );
    let exec_ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|k| {
            pid_of(k) == u64::from(tester_pid)
                && str_at(k, "/function_name") == "security_bprm_check"
        })
        .expect("bprm event");
    assert_eq!(
        str_at(exec_ev, "/args/0/linux_binprm_arg/path"),
        exe.to_str().expect("utf-8")
    );
    let cap_ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|k| {
            pid_of(k) == u64::from(tester_pid) && str_at(k, "/function_name") == "cap_capable"
        })
        .expect("capability event");
    assert_eq!(cap_ev["args"][2]["capability_arg"]["value"], 21);
    assert_eq!(
        str_at(cap_ev, "/args/2/capability_arg/name"),
        "CAP_SYS_ADMIN"
    );
    assert_eq!(cap_ev["args"][0]["process_credentials_arg"]["euid"], 0);
    assert_eq!(cap_ev["args"][1]["user_ns_arg"]["ns"]["is_host"], true);
    assert_eq!(cap_ev["args"][1]["user_ns_arg"]["level"], 0);
    Ok(())
}
