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

/// Whether the running kernel has a function of that name (kallsyms).
fn kernel_has(function: &str) -> bool {
    fs::read_to_string("/proc/kallsyms")
        .map(|syms| {
            syms.lines()
                .any(|l| l.split_whitespace().nth(2) == Some(function))
        })
        .unwrap_or(false)
}

/// bpf(2) with a 128-byte attribute block; the result or -errno.
fn bpf(cmd: i64, attr: &mut [u8; 128]) -> i64 {
    // SAFETY: the kernel reads (and may write) at most the 128 bytes given.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        r
    }
}

fn put(attr: &mut [u8], at: usize, bytes: &[u8]) {
    attr[at..at + bytes.len()].copy_from_slice(bytes);
}

const MAP_NAME: &str = "vigil_test_map";
const PROG_NAME: &str = "vigil_test_prog";

/// An array map (key 4, value 24 bytes, 7 entries); its fd.
fn create_map() -> i64 {
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &2u32.to_ne_bytes());
    put(&mut attr, 4, &4u32.to_ne_bytes());
    put(&mut attr, 8, &24u32.to_ne_bytes());
    put(&mut attr, 12, &7u32.to_ne_bytes());
    put(&mut attr, 28, MAP_NAME.as_bytes());
    bpf(0, &mut attr)
}

/// A socket filter of two instructions (r0 = 0; exit); its fd.
fn load_prog() -> i64 {
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &1u32.to_ne_bytes());
    put(&mut attr, 4, &2u32.to_ne_bytes());
    put(&mut attr, 8, &(insns.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 16, &(license.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 48, PROG_NAME.as_bytes());
    bpf(5, &mut attr)
}

/// perf_event_open of the software event PERF_COUNT_SW_DUMMY (9) on this
/// thread, disabled; its fd.
fn open_perf_event() -> i64 {
    let mut attr = [0u8; 64];
    put(&mut attr, 0, &1u32.to_ne_bytes());
    put(&mut attr, 4, &64u32.to_ne_bytes());
    put(&mut attr, 8, &9u64.to_ne_bytes());
    // The flags word: `disabled`.
    put(&mut attr, 40, &1u64.to_ne_bytes());
    // SAFETY: a 64-byte perf_event_attr (PERF_ATTR_SIZE_VER0); fd flag CLOEXEC.
    unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 8) }
}

pub fn bpf_perf_and_skb_objects_as_arguments() -> TestResult {
    require_agent!();
    if probed("fentry").is_err() && probed("kprobe").is_err() {
        skip!("kernel has neither fentry nor kprobes for kernel function hooks");
    }
    // The map hook took the creation's attributes and a new name in 6.9.
    let map_hook = if kernel_has("security_bpf_map_create") {
        "security_bpf_map_create"
    } else {
        "security_bpf_map_alloc"
    };
    let (posted_port, other_port) = receivers();
    let posted = posted_port.local_addr().expect("addr").port();
    let other = other_port.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("objects.yaml");
    fs::write(
        &policy,
        format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: bpf-perf-skb
spec:
  kprobes:
  - call: security_bpf
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: bpf_attr
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - 5
  - call: {map_hook}
    syscall: false
    args:
    - index: 0
      type: bpf_map
  - call: security_perf_event_alloc
    syscall: false
    args:
    - index: 0
      type: perf_event
  - call: ip_output
    syscall: false
    args:
    - index: 2
      type: skb
    selectors:
    - matchArgs:
      - index: 2
        operator: DPort
        values:
        - {posted}
      - index: 2
        operator: DAddr
        values:
        - 127.0.0.0/8
      - index: 2
        operator: Protocol
        values:
        - IPPROTO_UDP
"
        ),
    )
    .expect("write policy");
    let agent = Agent::start(&["--tracing-policy", policy.to_str().expect("utf-8")]);
    let me = std::process::id();
    let map = create_map();
    assert!(map >= 0, "BPF_MAP_CREATE: {map}");
    let prog = load_prog();
    assert!(prog >= 0, "BPF_PROG_LOAD: {prog}");
    let perf = open_perf_event();
    assert!(perf >= 0, "perf_event_open: {perf}");
    let sport = send_both(posted, other);
    let of = |evs: &[Value], function: &str| -> Vec<Value> {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .filter(|k| pid_of(k) == u64::from(me) && str_at(k, "/function_name") == function)
            .cloned()
            .collect()
    };
    let evs = agent.wait_for(WAIT, "bpf, perf and skb events", |evs| {
        !of(evs, "security_bpf").is_empty()
            && !of(evs, map_hook).is_empty()
            && !of(evs, "security_perf_event_alloc").is_empty()
            && !of(evs, "ip_output").is_empty()
    });
    // SAFETY: closing the fds this test opened.
    unsafe {
        libc::close(map as i32);
        libc::close(prog as i32);
        libc::close(perf as i32);
    }

    let prog_ev = of(&evs, "security_bpf")
        .into_iter()
        .find(|k| str_at(k, "/args/1/bpf_attr_arg/ProgName") == PROG_NAME)
        .unwrap_or_else(|| panic!("no BPF_PROG_LOAD event of {PROG_NAME}"));
    assert_eq!(prog_ev["args"][0]["int_arg"], 5);
    assert_eq!(
        str_at(&prog_ev, "/args/1/bpf_attr_arg/ProgType"),
        "BPF_PROG_TYPE_SOCKET_FILTER"
    );
    assert_eq!(prog_ev["args"][1]["bpf_attr_arg"]["InsnCnt"], 2);

    let map_ev = of(&evs, map_hook)
        .into_iter()
        .find(|k| str_at(k, "/args/0/bpf_map_arg/MapName") == MAP_NAME)
        .unwrap_or_else(|| panic!("no {map_hook} event of {MAP_NAME}"));
    let m = &map_ev["args"][0]["bpf_map_arg"];
    assert_eq!(m["MapType"], "BPF_MAP_TYPE_ARRAY", "{map_ev}");
    assert_eq!(m["KeySize"], 4, "{map_ev}");
    assert_eq!(m["ValueSize"], 24, "{map_ev}");
    assert_eq!(m["MaxEntries"], 7, "{map_ev}");

    let perf_ev = of(&evs, "security_perf_event_alloc")
        .into_iter()
        .find(|k| k["args"][0]["perf_event_arg"]["Config"] == "9")
        .expect("perf event of PERF_COUNT_SW_DUMMY");
    assert_eq!(
        str_at(&perf_ev, "/args/0/perf_event_arg/Type"),
        "PERF_TYPE_SOFTWARE"
    );

    check_skbs(&of(&evs, "ip_output"), posted, sport, 0);
    Ok(())
}

/// Every posted skb_arg is the datagram to the selector's port, from
/// `sport`; `link_header`: the bytes in front of the IP header at the hook.
fn check_skbs(evs: &[Value], posted: u16, sport: u16, link_header: usize) {
    assert!(
        evs.iter()
            .all(|k| k["args"][0]["skb_arg"]["dport"] == posted),
        "only the selector's port is posted: {evs:?}"
    );
    let skb = &evs[0]["args"][0]["skb_arg"];
    assert_eq!(skb["sport"], sport, "{skb}");
    assert_eq!(skb["saddr"], "127.0.0.1", "{skb}");
    assert_eq!(skb["daddr"], "127.0.0.1", "{skb}");
    assert_eq!(skb["protocol"], "IPPROTO_UDP", "{skb}");
    assert_eq!(skb["family"], "AF_INET", "{skb}");
    // ETH_P_IP; the IP and UDP headers (28 bytes) and the payload.
    assert_eq!(skb["proto"], 0x0800, "{skb}");
    assert_eq!(skb["len"], link_header + 28 + b"posted".len(), "{skb}");
}

/// Two receivers on loopback: the port a selector names and another.
fn receivers() -> (std::net::UdpSocket, std::net::UdpSocket) {
    let bind = || std::net::UdpSocket::bind("127.0.0.1:0").expect("receiver");
    (bind(), bind())
}

/// Sends to the other port first, so that its event, had it been posted,
/// would be in the file before the posted one's; the sender's port.
fn send_both(posted: u16, other: u16) -> u16 {
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender");
    sender
        .send_to(b"not posted", ("127.0.0.1", other))
        .expect("send");
    sender
        .send_to(b"posted", ("127.0.0.1", posted))
        .expect("send");
    sender.local_addr().expect("addr").port()
}

/// The same skb argument and selector on the raw tracepoint net/net_dev_queue
/// (TP_PROTO(struct sk_buff *skb)): where the kernel has no fentry or
/// kprobes (this host), but raw tracepoint attach cookies (6.10+).
pub fn skb_on_a_raw_tracepoint() -> TestResult {
    require_agent!();
    let (posted_port, other_port) = receivers();
    let posted = posted_port.local_addr().expect("addr").port();
    let other = other_port.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("skb.yaml");
    fs::write(
        &policy,
        format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: skb-raw-tp
spec:
  tracepoints:
  - subsystem: net
    event: net_dev_queue
    raw: true
    args:
    - index: 0
      type: skb
    selectors:
    - matchArgs:
      - index: 0
        operator: DPort
        values:
        - {posted}
      - index: 0
        operator: Protocol
        values:
        - IPPROTO_UDP
"
        ),
    )
    .expect("write policy");
    let agent = Agent::start(&["--tracing-policy", policy.to_str().expect("utf-8")]);
    if let Some(line) = agent
        .log()
        .iter()
        .find(|l| l.contains("skb-raw-tp") && l.contains("unknown func bpf_get_attach_cookie"))
    {
        skip!("kernel has no raw tracepoint attach cookies (Linux 6.10+): {line}");
    }
    let me = u64::from(std::process::id());
    let sport = send_both(posted, other);
    let mine = |evs: &[Value]| -> Vec<Value> {
        of_kind(evs, "process_tracepoint")
            .into_iter()
            .filter(|t| pid_of(t) == me)
            .cloned()
            .collect()
    };
    let evs = agent.wait_for(WAIT, "net_dev_queue event", |evs| !mine(evs).is_empty());
    // The loopback device's Ethernet header is in place.
    check_skbs(&mine(&evs), posted, sport, 14);
    Ok(())
}
