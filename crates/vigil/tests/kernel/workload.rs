//! Policies scoped to Kubernetes workloads, on a node faked with real
//! cgroups: cgroup v2 directories in the kubepods layout and the
//! config.json files containerd keeps for each container, in a state
//! directory given by `--cri-state-dir`. Programs run inside those cgroups.
use std::{
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    harness::{of_kind, own_exe, pid_of, write_policy, Agent, TestResult},
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(20);

/// The cgroup v2 hierarchy's mount point (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid host).
fn cgroup2_root() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (fields, fstype) = line.split_once(" - ")?;
        let mut fields = fields.split_whitespace();
        let root = fields.nth(3)?;
        let dir = fields.next()?;
        (fstype.starts_with("cgroup2 ") && root == "/").then(|| PathBuf::from(dir))
    })
}

/// Cgroup directories made for the test, removed (deepest first) when dropped.
struct Cgroups {
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    fn make(&mut self, dir: PathBuf) -> PathBuf {
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.dirs.push(dir.clone());
        dir
    }

    fn remove(&mut self, dir: &Path) {
        fs::remove_dir(dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", dir.display()));
        self.dirs.retain(|d| d != dir);
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// One faked pod container: its cgroup and its containerd bundle config.
/// Returns the cgroup and the container id.
fn container(
    cgroups: &mut Cgroups,
    kubepods: &Path,
    state: &Path,
    (namespace, pod, name): (&str, &str, &str),
    n: u8,
) -> (PathBuf, String) {
    let uid = format!("{n:08x}_0000_4000_8000_{:012x}", u64::from(n));
    let id = format!("{:064x}", 0xc0_ffee_u64 * 1000 + u64::from(n));
    let pod_dir = cgroups.make(kubepods.join(format!("kubepods-besteffort-pod{uid}.slice")));
    let dir = cgroups.make(pod_dir.join(format!("cri-containerd-{id}.scope")));
    let bundle = state.join(&id);
    fs::create_dir_all(&bundle).expect("bundle dir");
    let config = serde_json::json!({
        "ociVersion": "1.1.0",
        "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-namespace": namespace,
            "io.kubernetes.cri.sandbox-name": pod,
            "io.kubernetes.cri.container-name": name,
        }
    });
    fs::write(bundle.join("config.json"), config.to_string()).expect("config.json");
    (dir, id)
}

/// Runs the mkdirat tester (making `marker`) inside cgroup `cgroup`: the
/// child joins it before exec, as a container's first process does.
fn mkdirat_in(cgroup: &Path, marker: &Path) -> (u32, ExitStatus) {
    let procs = std::ffi::CString::new(cgroup.join("cgroup.procs").as_os_str().as_encoded_bytes())
        .expect("cgroup path");
    let mut cmd = Command::new(own_exe());
    cmd.env(crate::tester::MODE_VAR, "mkdirat")
        .env(crate::tester::MARKER_VAR, marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: open, write and close only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if n != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn tester in its cgroup");
    let pid = child.id();
    (pid, child.wait().expect("wait tester"))
}

/// Events of `pid`'s mkdirat hook, once its exit is exported.
fn hook_events(agent: &Agent, pid: u32) -> Vec<Value> {
    let evs = agent.wait_for(WAIT, "the tester's exit", |evs| {
        of_kind(evs, "process_exit")
            .iter()
            .any(|e| pid_of(e) == u64::from(pid))
    });
    of_kind(&evs, "process_kprobe")
        .into_iter()
        .filter(|e| pid_of(e) == u64::from(pid))
        .cloned()
        .collect()
}

/// The policy's status as `vigil tracingpolicy list -o json` reports it.
fn policy_status(agent: &Agent, name: &str) -> Value {
    let out = agent.cli(&["tracingpolicy", "list", "-o", "json"]);
    assert!(out.status.success(), "tracingpolicy list failed");
    let list: Value = serde_json::from_slice(&out.stdout).expect("list JSON");
    list["policies"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("policy {name} not listed: {list}"))
}

/// Waits until the policy's scope matches `want` cgroups.
fn wait_scope(agent: &Agent, name: &str, want: u64, what: &str) {
    let start = Instant::now();
    loop {
        let status = policy_status(agent, name);
        if status["scope_cgroups"] == want {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{what}: scope still {status} after {WAIT:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A TracingPolicyNamespaced for namespace `shop` reports mkdirat from the
/// container of a `shop` pod only (not from a pod of another namespace, not
/// from the host); a container started after the policy is covered once the
/// agent has seen its first exec; a removed container cgroup leaves the scope.
pub fn namespaced_policy_sees_only_its_namespace() -> TestResult {
    require_agent!();
    let Some(root) = cgroup2_root() else {
        skip!("no cgroup v2 hierarchy mounted");
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let watched = dir.path().join("watched");
    fs::create_dir(&watched).expect("mkdir watched");
    let state = dir.path().join("k8s.io");
    let mut cgroups = Cgroups { dirs: Vec::new() };
    let kubepods = cgroups.make(root.join(format!("kubepods-vigil{}.slice", std::process::id())));
    let (shop, shop_id) = container(
        &mut cgroups,
        &kubepods,
        &state,
        ("shop", "cart-1", "app"),
        1,
    );
    let (other, _) = container(
        &mut cgroups,
        &kubepods,
        &state,
        ("other", "web-1", "app"),
        2,
    );

    let policy = write_policy(
        dir.path(),
        "scoped",
        &format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: scoped-mkdirat
  namespace: shop
spec:
  kprobes:
  - call: sys_mkdirat
    syscall: true
    args:
    - index: 1
      type: string
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values:
        - {}/
",
            watched.display()
        ),
    );
    // A long periodic rescan: the new container below is found through its exec.
    let agent = Agent::start(&[
        "--tracing-policy",
        &policy,
        "--cri-state-dir",
        state.to_str().expect("utf-8 path"),
        "--workload-rescan-interval-ms",
        "600000",
    ]);
    let status = policy_status(&agent, "scoped-mkdirat");
    if status["state"] != "enabled" {
        skip!("sys_mkdirat cannot be hooked here: {status}");
    }
    assert_eq!(status["scope"], "pods of namespace shop", "{status}");
    assert_eq!(status["scope_cgroups"], 1, "{status}");

    let (in_shop, s1) = mkdirat_in(&shop, &watched.join("shop"));
    let (in_other, s2) = mkdirat_in(&other, &watched.join("other"));
    let host = Command::new(own_exe())
        .env(crate::tester::MODE_VAR, "mkdirat")
        .env(crate::tester::MARKER_VAR, watched.join("host"))
        .status()
        .expect("host tester");
    assert!(s1.success() && s2.success() && host.success());
    let from_shop = hook_events(&agent, in_shop);
    assert_eq!(from_shop.len(), 1, "mkdirat in the shop pod");
    // The pod as Tetragon reports it, from the runtime state.
    let pod = &from_shop[0]["process"]["pod"];
    assert_eq!(pod["namespace"], "shop", "{pod}");
    assert_eq!(pod["name"], "cart-1", "{pod}");
    assert_eq!(pod["container"]["name"], "app", "{pod}");
    assert_eq!(
        pod["container"]["id"],
        format!("containerd://{shop_id}"),
        "{pod}"
    );
    assert_eq!(
        hook_events(&agent, in_other).len(),
        0,
        "mkdirat in another namespace"
    );
    let all = agent.events();
    let from_host = of_kind(&all, "process_kprobe")
        .into_iter()
        .filter(|e| {
            let (a, b) = (u64::from(in_shop), u64::from(in_other));
            pid_of(e) != a && pid_of(e) != b
        })
        .count();
    assert_eq!(from_host, 0, "mkdirat on the host");

    // A container started after the policy: its first exec makes the agent
    // scan; events before that are the documented race, so only the
    // process after the scope grew is asserted on.
    let (late, _) = container(
        &mut cgroups,
        &kubepods,
        &state,
        ("shop", "cart-2", "app"),
        3,
    );
    mkdirat_in(&late, &watched.join("late-first"));
    wait_scope(&agent, "scoped-mkdirat", 2, "the new shop container");
    let (in_late, s3) = mkdirat_in(&late, &watched.join("late"));
    assert!(s3.success());
    assert_eq!(
        hook_events(&agent, in_late).len(),
        1,
        "mkdirat in the new shop container"
    );

    // Its cgroup goes: the next scan (here triggered by an exec in a cgroup
    // the agent has not seen) takes it out of the scope.
    cgroups.remove(&late);
    let unrelated = cgroups.make(kubepods.join("unrelated"));
    mkdirat_in(&unrelated, &watched.join("unrelated"));
    wait_scope(&agent, "scoped-mkdirat", 1, "the removed container");
    agent.stop();
    Ok(())
}
