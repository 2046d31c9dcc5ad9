//! Policies scoped to Kubernetes workloads, on a node faked with real
//! cgroups: cgroup v2 directories in the kubepods layout and the
//! config.json files containerd keeps for each container, in a state
//! directory given by `--cri-state-dir`. Programs run inside those cgroups.
use std::{
    fs,
    os::unix::process::{CommandExt, ExitStatusExt},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    harness::{of_kind, own_exe, pid_of, str_at, tetragon_policy, write_policy, Agent, TestResult},
    policy::probed,
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

/// A node faked in the cgroup v2 tree: a kubepods slice for the test's pod
/// containers, and containerd's state directory (in `dir`) naming them.
struct Node {
    cgroups: Cgroups,
    kubepods: PathBuf,
    state: PathBuf,
}

impl Node {
    /// `None` where no cgroup v2 hierarchy is mounted.
    fn new(dir: &Path) -> Option<Node> {
        let root = cgroup2_root()?;
        let mut cgroups = Cgroups { dirs: Vec::new() };
        let kubepods =
            cgroups.make(root.join(format!("kubepods-vigil{}.slice", std::process::id())));
        Some(Node {
            cgroups,
            kubepods,
            state: dir.join("k8s.io"),
        })
    }

    /// A container named `name` of pod `pod` in `namespace` (`n` makes its
    /// ids unique): its cgroup and its containerd bundle config. Returns the
    /// cgroup and the container id.
    fn container(&mut self, namespace: &str, pod: &str, name: &str, n: u8) -> (PathBuf, String) {
        let uid = format!("{n:08x}_0000_4000_8000_{:012x}", u64::from(n));
        let id = format!("{:064x}", 0xc0_ffee_u64 * 1000 + u64::from(n));
        let pod_dir = self.cgroups.make(
            self.kubepods
                .join(format!("kubepods-besteffort-pod{uid}.slice")),
        );
        let dir = self
            .cgroups
            .make(pod_dir.join(format!("cri-containerd-{id}.scope")));
        let bundle = self.state.join(&id);
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

    /// The agent's flag for this node's runtime state.
    fn state_dir(&self) -> &str {
        self.state.to_str().expect("utf-8 path")
    }
}

/// Runs this test binary as tester `mode` with `args` (and `marker` as its
/// marker path), inside cgroup `cgroup` (`None`: the test's own): the child
/// joins it before exec, as a container's first process does. Returns its
/// pid and exit status once it has exited.
fn tester_in(
    cgroup: Option<&Path>,
    mode: &str,
    marker: Option<&Path>,
    args: &[&str],
) -> (u32, ExitStatus) {
    let mut cmd = Command::new(own_exe());
    cmd.env(crate::tester::MODE_VAR, mode)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(marker) = marker {
        cmd.env(crate::tester::MARKER_VAR, marker);
    }
    if let Some(cgroup) = cgroup {
        let procs =
            std::ffi::CString::new(cgroup.join("cgroup.procs").as_os_str().as_encoded_bytes())
                .expect("cgroup path");
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
    }
    let mut child = cmd.spawn().expect("spawn tester");
    let pid = child.id();
    (pid, child.wait().expect("wait tester"))
}

/// Runs the mkdirat tester (making `marker`) inside cgroup `cgroup`.
fn mkdirat_in(cgroup: &Path, marker: &Path) -> (u32, ExitStatus) {
    tester_in(Some(cgroup), "mkdirat", Some(marker), &[])
}

/// The process_kprobe events of `pid`, once its exit is exported.
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
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut node) = Node::new(dir.path()) else {
        skip!("no cgroup v2 hierarchy mounted");
    };
    let watched = dir.path().join("watched");
    fs::create_dir(&watched).expect("mkdir watched");
    let (shop, shop_id) = node.container("shop", "cart-1", "app", 1);
    let (other, _) = node.container("other", "web-1", "app", 2);

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
        node.state_dir(),
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
    let (late, _) = node.container("shop", "cart-2", "app", 3);
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
    node.cgroups.remove(&late);
    let unrelated = node.cgroups.make(node.kubepods.join("unrelated"));
    mkdirat_in(&unrelated, &watched.join("unrelated"));
    wait_scope(&agent, "scoped-mkdirat", 1, "the removed container");
    agent.stop();
    Ok(())
}

/// The pod object of a process_kprobe event: `namespace` and pod `name`,
/// container `app`.
fn assert_pod(ev: &Value, namespace: &str, name: &str) {
    let pod = &ev["process"]["pod"];
    assert_eq!(pod["namespace"], namespace, "{ev}");
    assert_eq!(pod["name"], name, "{ev}");
    assert_eq!(pod["container"]["name"], "app", "{ev}");
}

/// Why this kernel cannot run kernel-function hooks that report return
/// values (fentry+fexit, or kprobe+kretprobe), if it cannot.
fn no_return_hooks() -> Option<String> {
    match (
        probed("fentry"),
        probed("fexit"),
        probed("kprobe"),
        probed("kretprobe"),
    ) {
        (Ok(()), Ok(()), _, _) | (_, _, Ok(()), Ok(())) => None,
        (fentry, fexit, kprobe, kretprobe) => {
            let why = |r: Result<(), String>| r.err().unwrap_or_else(|| "available".into());
            Some(format!(
                "kernel has neither fentry+fexit ({}; {}) nor kprobe+kretprobe ({}; {})",
                why(fentry),
                why(fexit),
                why(kprobe),
                why(kretprobe)
            ))
        }
    }
}

/// A file the test makes and removes again (also when it fails).
struct TestFile(PathBuf);

impl TestFile {
    fn new(path: PathBuf) -> TestFile {
        fs::write(&path, "vigil test\n")
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TestFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Tetragon's file-monitoring-enforce.yaml, unchanged: a
/// TracingPolicyNamespaced without metadata.namespace, so for pods of
/// namespace `default`. In a `default` pod, reading /etc/shadow or a
/// `.bashrc`, writing a file under /etc, mapping it shared and writable and
/// truncating it each get the process killed (SIGKILL at the kernel
/// function, which still returns), with one process_kprobe event naming the
/// function, the file, the access, the return value and the pod; the same
/// operations in a pod of another namespace and on the host succeed and
/// post nothing.
pub fn tetragon_file_monitoring_enforce_in_default_pods() -> TestResult {
    require_agent!();
    if let Some(why) = no_return_hooks() {
        skip!("{why}");
    }
    let fixture = tetragon_policy("file-monitoring-enforce.yaml");
    if !fixture.is_file() {
        skip!("no {}", fixture.display());
    }
    if !Path::new("/etc/shadow").is_file() {
        skip!("needs /etc/shadow");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut node) = Node::new(dir.path()) else {
        skip!("no cgroup v2 hierarchy mounted");
    };
    let (default, default_id) = node.container("default", "shell-1", "app", 1);
    let (other, _) = node.container("other", "shell-2", "app", 2);
    // What the selectors watch, made by the test where the machine has none:
    // a shell config file (Postfix) and a file under /etc (writes, shared
    // writable maps and truncation are watched there).
    let bashrc = TestFile::new(dir.path().join(".bashrc"));
    let etc = TestFile::new(PathBuf::from(format!(
        "/etc/vigil-pods-{}",
        std::process::id()
    )));
    let agent = Agent::start(&[
        "--tracing-policy",
        fixture.to_str().expect("utf-8 path"),
        "--cri-state-dir",
        node.state_dir(),
    ]);
    let status = policy_status(&agent, "file-monitoring-filtered");
    assert_eq!(status["state"], "enabled", "{status}");
    assert_eq!(status["scope"], "pods of namespace default", "{status}");
    assert_eq!(status["scope_cgroups"], 1, "{status}");

    // (operation, file, function, its second argument: the access mask or
    // the mapping's protection)
    let ops = [
        ("read", "/etc/shadow", "security_file_permission", 4),
        ("read", bashrc.path(), "security_file_permission", 4),
        ("write", etc.path(), "security_file_permission", 2),
        (
            "mmap-write",
            etc.path(),
            "security_mmap_file",
            libc::PROT_READ | libc::PROT_WRITE,
        ),
        ("truncate", etc.path(), "security_path_truncate", 0),
    ];
    let mut killed = Vec::new();
    for (op, file, function, access) in ops {
        let what = format!("{op} {file} in the default pod");
        let (pid, status) = tester_in(Some(&default), "file", None, &[op, file]);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}: {status}");
        killed.push(pid);
        let evs = hook_events(&agent, pid);
        assert_eq!(evs.len(), 1, "{what}: {evs:?}");
        let ev = &evs[0];
        assert_eq!(
            str_at(ev, "/policy_name"),
            "file-monitoring-filtered",
            "{ev}"
        );
        assert_eq!(str_at(ev, "/function_name"), function, "{ev}");
        assert_eq!(
            str_at(ev, "/action"),
            "KPROBE_ACTION_SIGKILL",
            "{what}: {ev}"
        );
        assert_eq!(ev["return"]["int_arg"], 0, "{what}: {ev}");
        assert_pod(ev, "default", "shell-1");
        assert_eq!(
            ev["process"]["pod"]["container"]["id"],
            format!("containerd://{default_id}"),
            "{ev}"
        );
        match function {
            "security_file_permission" => {
                assert_eq!(str_at(ev, "/args/0/file_arg/path"), file, "{ev}");
                assert_eq!(ev["args"][1]["int_arg"], access, "{what}: {ev}");
            }
            "security_mmap_file" => {
                assert_eq!(str_at(ev, "/args/0/file_arg/path"), file, "{ev}");
                assert_eq!(ev["args"][1]["uint_arg"], access, "{ev}");
                assert_eq!(ev["args"][2]["uint_arg"], libc::MAP_SHARED, "{ev}");
            }
            _ => assert_eq!(str_at(ev, "/args/0/path_arg/path"), file, "{ev}"),
        }
    }
    for (where_, cgroup) in [
        ("another namespace's pod", Some(&other)),
        ("the host", None),
    ] {
        for (op, file, _, _) in ops {
            let (pid, status) = tester_in(cgroup.map(PathBuf::as_path), "file", None, &[op, file]);
            assert!(status.success(), "{op} {file} in {where_}: {status}");
            assert_eq!(
                hook_events(&agent, pid),
                Vec::<Value>::new(),
                "{op} {file} in {where_}"
            );
        }
    }
    let evs = agent.stop();
    let strays: Vec<_> = of_kind(&evs, "process_kprobe")
        .into_iter()
        .filter(|e| !killed.iter().any(|&pid| pid_of(e) == u64::from(pid)))
        .collect();
    assert!(
        strays.is_empty(),
        "events outside the default pod: {strays:?}"
    );
    Ok(())
}

/// Cluster ranges for network-egress-cluster-enforce.yaml's placeholders.
const POD_CIDR: &str = "10.0.0.0/8";
const SERVICE_CIDR: &str = "10.96.0.0/12";
/// An address of SERVICE_CIDR that the VM test adds to its loopback device.
const SERVICE_IP: &str = "10.96.0.10";
/// A loopback address outside 127.0.0.1 and both ranges.
const OUTSIDE_IP: &str = "127.0.0.2";

/// Removes an address added to `lo` (the VM tests only).
struct LoopbackAddress(&'static str);

impl LoopbackAddress {
    fn add(ip: &'static str) -> LoopbackAddress {
        let status = Command::new("ip")
            .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .status()
            .expect("ip addr add");
        assert!(status.success(), "ip addr add {ip}/32 dev lo: {status}");
        LoopbackAddress(ip)
    }
}

impl Drop for LoopbackAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{}/32", self.0), "dev", "lo"])
            .status();
    }
}

/// Tetragon's network-egress-cluster-enforce.yaml with its placeholders
/// filled as `envsubst` would (PODCIDR, SERVICECIDR): in a `default` pod,
/// a TCP connect to 127.0.0.1 (and, in the VMs, to an address of the
/// service range) goes through and posts nothing; one to an address
/// outside gets the process killed at tcp_connect, with a process_kprobe
/// event whose sock argument names the destination; the same connect from
/// another namespace's pod or from the host goes through.
pub fn tetragon_network_egress_enforce_in_default_pods() -> TestResult {
    require_agent!();
    if let (Err(fentry), Err(kprobe)) = (probed("fentry"), probed("kprobe")) {
        skip!("kernel has neither fentry ({fentry}) nor kprobes ({kprobe})");
    }
    let fixture = tetragon_policy("network-egress-cluster-enforce.yaml");
    let Ok(text) = fs::read_to_string(&fixture) else {
        skip!("no {}", fixture.display());
    };
    let text = text
        .replace("${PODCIDR}", POD_CIDR)
        .replace("${SERVICECIDR}", SERVICE_CIDR);
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(dir.path(), "egress", &text);
    let Some(mut node) = Node::new(dir.path()) else {
        skip!("no cgroup v2 hierarchy mounted");
    };
    let (default, _) = node.container("default", "client-1", "app", 1);
    let (other, _) = node.container("other", "client-2", "app", 2);
    // Changing a host's addresses is not the test's business: the service
    // range is exercised in the VMs only.
    let service = std::env::var_os("VIGIL_IN_VM").map(|_| LoopbackAddress::add(SERVICE_IP));
    let listen = |ip: &str| {
        std::net::TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("listen on {ip}: {e}"))
    };
    let address = |l: &std::net::TcpListener| l.local_addr().expect("listener address");
    let (local, outside) = (listen("127.0.0.1"), listen(OUTSIDE_IP));
    let in_cluster = service.as_ref().map(|s| listen(s.0));

    let agent = Agent::start(&[
        "--tracing-policy",
        &policy,
        "--cri-state-dir",
        node.state_dir(),
    ]);
    let name = "enforce-network-activity-outside-cluster-cidr-range";
    let status = policy_status(&agent, name);
    assert_eq!(status["state"], "enabled", "{status}");
    assert_eq!(status["scope"], "pods of namespace default", "{status}");

    let mut allowed = vec![(
        "127.0.0.1 from the default pod",
        Some(&default),
        address(&local),
    )];
    if let Some(l) = &in_cluster {
        allowed.push((
            "the service range from the default pod",
            Some(&default),
            address(l),
        ));
    }
    allowed.push(("another namespace's pod", Some(&other), address(&outside)));
    allowed.push(("the host", None, address(&outside)));
    for (what, cgroup, addr) in allowed {
        let (pid, status) = tester_in(
            cgroup.map(PathBuf::as_path),
            "connect",
            None,
            &[&addr.to_string()],
        );
        assert!(status.success(), "connect to {addr} ({what}): {status}");
        assert_eq!(
            hook_events(&agent, pid),
            Vec::<Value>::new(),
            "connect to {addr} ({what})"
        );
    }
    let outside = address(&outside);
    let (pid, status) = tester_in(Some(&default), "connect", None, &[&outside.to_string()]);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "connect to {outside}: {status}"
    );
    let evs = hook_events(&agent, pid);
    assert_eq!(evs.len(), 1, "{evs:?}");
    let ev = &evs[0];
    assert_eq!(str_at(ev, "/policy_name"), name, "{ev}");
    assert_eq!(str_at(ev, "/function_name"), "tcp_connect", "{ev}");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_SIGKILL", "{ev}");
    let sock = &ev["args"][0]["sock_arg"];
    assert_eq!(sock["daddr"], OUTSIDE_IP, "{ev}");
    assert_eq!(sock["dport"], outside.port(), "{ev}");
    assert_pod(ev, "default", "client-1");
    let evs = agent.stop();
    assert_eq!(
        of_kind(&evs, "process_kprobe").len(),
        1,
        "only the killed connect posts"
    );
    Ok(())
}
