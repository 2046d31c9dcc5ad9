//! Network policies end to end: real connects, UDP sends and binds over
//! loopback (127.0.0.1, another 127.x address, ::1), the sockaddr and sock
//! arguments the agent reports, address and port selectors, and their
//! enforcement by cgroup sock_addr hooks.
use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    harness::{of_kind, pid_of, str_at, tracing_policy, write_policy, Agent, TestResult},
    policy::probed,
    process::prog_name,
    require_agent, skip, tester,
};

const WAIT: Duration = Duration::from_secs(20);
/// Another loopback address than 127.0.0.1 (all of 127/8 is local on Linux).
const OTHER: &str = "127.0.0.2";

/// A policy on connect(fd, sockaddr, addrlen) with `selectors` (may be empty).
fn connect_policy(name: &str, options: &str, selectors: &str) -> String {
    tracing_policy(
        name,
        &format!(
            "{options}  kprobes:
  - call: sys_connect
    syscall: true
    args:
    - index: 0
      type: fd
    - index: 1
      type: sockaddr
    - index: 2
      type: int
{selectors}"
        ),
    )
}

/// A listener on `ip` (port chosen by the kernel).
fn listen(ip: &str) -> TcpListener {
    let l = TcpListener::bind((ip, 0)).expect("listen on loopback");
    l.set_nonblocking(true).expect("nonblocking");
    l
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, Duration::from_secs(5))
}

/// connect events of this process whose sockaddr is `ip` and `port`.
fn connects_to<'a>(evs: &'a [Value], ip: &str, port: u16) -> Vec<&'a Value> {
    let me = u64::from(std::process::id());
    of_kind(evs, "process_kprobe")
        .into_iter()
        .filter(|k| {
            str_at(k, "/function_name") == "__x64_sys_connect"
                && str_at(k, "/args/1/sockaddr_arg/addr") == ip
                && k["args"][1]["sockaddr_arg"]["port"] == u64::from(port)
                && pid_of(k) == me
        })
        .collect()
}

fn has_log(agent: &Agent, parts: &[&str]) -> bool {
    agent
        .log()
        .iter()
        .any(|l| parts.iter().all(|p| l.contains(p)))
}

pub fn connect_reports_sockaddr_and_addr_selectors() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    // Posts connects to OTHER or ::1, except to the port of `skipped`.
    let (v4, other, skipped, v6) = (
        listen("127.0.0.1"),
        listen(OTHER),
        listen(OTHER),
        listen("::1"),
    );
    let skipped_port = skipped.local_addr().expect("addr").port();
    let selectors = format!(
        "    selectors:
    - matchArgs:
      - index: 1
        operator: SAddr
        values:
        - {OTHER}/32
        - ::1
      - index: 1
        operator: NotSPort
        values:
        - \"{skipped_port}\"
      - index: 1
        operator: Family
        values:
        - AF_INET
        - AF_INET6
"
    );
    let policy = write_policy(
        dir.path(),
        "watch",
        &connect_policy("watch-connects", "", &selectors),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    assert!(
        ["syscalls/sys_enter_connect", "fentry __x64_sys_connect"]
            .iter()
            .any(|via| has_log(&agent, &["policy hook loaded", via, "observe only"])),
        "an observing connect policy stays on the system call (fentry or tracepoint)"
    );
    for l in [&v4, &other, &skipped, &v6] {
        connect(l.local_addr().expect("addr")).expect("connect over loopback");
    }
    let other_port = other.local_addr().expect("addr").port();
    let v6_port = v6.local_addr().expect("addr").port();
    let evs = agent.wait_for(WAIT, "connect events to 127.0.0.2 and ::1", |evs| {
        !connects_to(evs, OTHER, other_port).is_empty()
            && !connects_to(evs, "::1", v6_port).is_empty()
    });
    let ev = connects_to(&evs, OTHER, other_port)[0];
    assert_eq!(str_at(ev, "/args/1/sockaddr_arg/family"), "AF_INET", "{ev}");
    assert_eq!(ev["args"][2]["int_arg"], 16, "sizeof(struct sockaddr_in)");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    let ev6 = connects_to(&evs, "::1", v6_port)[0];
    assert_eq!(
        str_at(ev6, "/args/1/sockaddr_arg/family"),
        "AF_INET6",
        "{ev6}"
    );
    assert_eq!(ev6["args"][2]["int_arg"], 28, "sizeof(struct sockaddr_in6)");
    let v4_port = v4.local_addr().expect("addr").port();
    assert!(
        connects_to(&evs, "127.0.0.1", v4_port).is_empty(),
        "127.0.0.1 is outside SAddr but posted"
    );
    assert!(
        connects_to(&evs, OTHER, skipped_port).is_empty(),
        "the NotSPort port posted"
    );
    agent.stop();
    Ok(())
}

/// Override on connect(2): EPERM for OTHER and ::1, a chosen errno for a
/// port of 127.0.0.1, and every other connect goes through.
pub fn override_blocks_connect_before_it_leaves() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup/connect4 ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (allowed, denied, refused_port, v6) = (
        listen("127.0.0.1"),
        listen(OTHER),
        listen("127.0.0.1"),
        listen("::1"),
    );
    let eacces_port = refused_port.local_addr().expect("addr").port();
    let selectors = format!(
        "    selectors:
    - matchArgs:
      - index: 1
        operator: SAddr
        values:
        - {OTHER}/32
        - ::1/128
      matchActions:
      - action: Override
        argError: -1
    - matchArgs:
      - index: 1
        operator: SPort
        values:
        - \"{eacces_port}\"
      matchActions:
      - action: Override
        argError: -13
"
    );
    let policy = write_policy(
        dir.path(),
        "deny",
        &connect_policy("deny-connects", "", &selectors),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    assert!(
        has_log(
            &agent,
            &[
                "policy hook loaded",
                "cgroup/connect4",
                "blocked before the operation"
            ]
        ),
        "no status line with the block guarantee"
    );
    connect(allowed.local_addr().expect("addr")).expect("127.0.0.1 is not selected");
    for l in [&denied, &v6] {
        let err = connect(l.local_addr().expect("addr")).expect_err("selected address connected");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }
    let err = connect(refused_port.local_addr().expect("addr")).expect_err("port 2 connected");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EACCES),
        "argError -13: {err}"
    );
    // Blocked before anything left: the listeners never saw a connection.
    for l in [&denied, &v6, &refused_port] {
        assert_eq!(
            l.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock),
            "a blocked connect reached its listener"
        );
    }
    let denied_port = denied.local_addr().expect("addr").port();
    let evs = agent.wait_for(WAIT, "the blocked connect's event", |evs| {
        !connects_to(evs, OTHER, denied_port).is_empty()
    });
    let ev = connects_to(&evs, OTHER, denied_port)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE", "{ev}");
    assert_eq!(str_at(ev, "/policy_name"), "deny-connects");
    assert!(!str_at(ev, "/process/exec_id").is_empty(), "{ev}");
    let allowed_port = allowed.local_addr().expect("addr").port();
    assert!(connects_to(&evs, "127.0.0.1", allowed_port).is_empty());
    agent.stop();
    Ok(())
}

/// Override on security_socket_connect: served by the cgroup connect hooks
/// (vigil has no fmod_ret), with the same block and the function's name.
pub fn security_socket_connect_override_blocks() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup/connect4 ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(
        dir.path(),
        "lsm-connect",
        &format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: deny-socket-connect
spec:
  kprobes:
  - call: security_socket_connect
    syscall: false
    args:
    - index: 1
      type: sockaddr
    - index: 2
      type: int
    selectors:
    - matchArgs:
      - index: 1
        operator: SAddr
        values:
        - {OTHER}
      matchActions:
      - action: Override
        argError: -1
"
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    assert!(has_log(
        &agent,
        &[
            "policy hook loaded",
            "cgroup/connect4",
            "blocked before the operation"
        ]
    ));
    let (allowed, denied) = (listen("127.0.0.1"), listen(OTHER));
    connect(allowed.local_addr().expect("addr")).expect("127.0.0.1 is not selected");
    let err = connect(denied.local_addr().expect("addr")).expect_err("selected address connected");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let port = denied.local_addr().expect("addr").port();
    let evs = agent.wait_for(WAIT, "the blocked security_socket_connect event", |evs| {
        of_kind(evs, "process_kprobe").iter().any(|k| {
            str_at(k, "/function_name") == "security_socket_connect"
                && k["args"][0]["sockaddr_arg"]["port"] == u64::from(port)
        })
    });
    let ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|k| k["args"][0]["sockaddr_arg"]["port"] == u64::from(port))
        .expect("event");
    assert_eq!(str_at(ev, "/args/0/sockaddr_arg/addr"), OTHER, "{ev}");
    assert_eq!(ev["args"][1]["int_arg"], 16, "{ev}");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE", "{ev}");
    agent.stop();
    Ok(())
}

fn deny_other_policy(dir: &Path, name: &str, options: &str, action: &str) -> String {
    let selectors = format!(
        "    selectors:
    - matchArgs:
      - index: 1
        operator: SAddr
        values:
        - {OTHER}
      matchActions:
      - action: {action}
"
    );
    write_policy(dir, name, &connect_policy(name, options, &selectors))
}

pub fn monitor_mode_counts_and_lets_connect() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup/connect4 ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let options = "  options:\n  - name: policy-mode\n    value: monitor\n";
    let policy = deny_other_policy(dir.path(), "watch-only", options, "Sigkill");
    let metrics = free_port();
    let agent = Agent::start(&[
        "--tracing-policy",
        &policy,
        "--metrics-server",
        &format!("127.0.0.1:{metrics}"),
    ]);
    assert!(has_log(&agent, &["policy hook loaded", "monitor mode"]));
    let l = listen(OTHER);
    connect(l.local_addr().expect("addr")).expect("monitor mode blocked the connect");
    let port = l.local_addr().expect("addr").port();
    let evs = agent.wait_for(WAIT, "the monitored connect's event", |evs| {
        !connects_to(evs, OTHER, port).is_empty()
    });
    assert_eq!(
        str_at(connects_to(&evs, OTHER, port)[0], "/action"),
        "KPROBE_ACTION_POST",
        "monitor mode does not claim the kill"
    );
    // Counted: the hook's monitored counter reaches the metrics within a second or two.
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape(metrics);
        let counted = text.lines().any(|l| {
            l.starts_with("vigil_policy_actions")
                && l.contains("watch-only")
                && l.contains("monitor")
                && !l.ends_with(" 0")
        });
        if counted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no monitored action counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    agent.stop();
    Ok(())
}

pub fn sigkill_blocks_and_kills_the_connecting_process() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup/connect4 ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = deny_other_policy(dir.path(), "kill-connects", "", "Sigkill");
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let l = listen(OTHER);
    let target = l.local_addr().expect("addr").to_string();
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .env(tester::MODE_VAR, "connect")
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the connect tester");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "tester: {status}");
    assert_eq!(
        l.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "the killed process's connect reached the listener"
    );
    let port = l.local_addr().expect("addr").port();
    let evs = agent.wait_for(WAIT, "the killed connect's event", |evs| {
        of_kind(evs, "process_kprobe").iter().any(|k| {
            str_at(k, "/args/1/sockaddr_arg/addr") == OTHER
                && k["args"][1]["sockaddr_arg"]["port"] == u64::from(port)
        })
    });
    let ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|k| k["args"][1]["sockaddr_arg"]["port"] == u64::from(port))
        .expect("event");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_SIGKILL", "{ev}");
    assert!(has_log(
        &agent,
        &[
            "policy hook loaded",
            "blocked before the operation",
            "sys_exit_connect"
        ]
    ));
    agent.stop();
    Ok(())
}

/// While the agent runs its cgroup connect programs are linked; after it
/// stops, none of their links remains (what `bpftool link` lists,
/// read with the bpf() commands themselves so that it runs in the VMs too).
pub fn cgroup_links_go_with_the_agent() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup/connect4 ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = deny_other_policy(dir.path(), "links", "", "Sigkill");
    let before = vigil_links();
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let during = vigil_links();
    agent.stop();
    for name in ["vigil_connect4", "vigil_connect6"] {
        assert!(
            during
                .iter()
                .any(|(prog, kind)| prog == name && *kind == BPF_LINK_TYPE_CGROUP),
            "{name} is not linked to a cgroup while the agent runs: {during:?}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while vigil_links().len() > before.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(vigil_links(), before, "links left after the agent stopped");
    Ok(())
}

/// tcp_connect with a sock argument (where the kernel can hook it): the
/// event's sock_arg has both ends, protocol and state; NotDAddr, DPort,
/// Protocol and State selectors keep only the selected connects.
pub fn tcp_connect_reports_sock() -> TestResult {
    require_agent!();
    if let Err(why) = function_hooks() {
        skip!("{why}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (v4, other, v6) = (listen("127.0.0.1"), listen(OTHER), listen("::1"));
    let (port, v6_port) = (
        other.local_addr().expect("addr").port(),
        v6.local_addr().expect("addr").port(),
    );
    let policy = write_policy(
        dir.path(),
        "tcp",
        &format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: tcp-connects
spec:
  kprobes:
  - call: tcp_connect
    syscall: false
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: NotDAddr
        values:
        - 127.0.0.1/32
      - index: 0
        operator: DPort
        values:
        - \"{port}\"
        - \"{v6_port}\"
      - index: 0
        operator: Protocol
        values:
        - IPPROTO_TCP
      - index: 0
        operator: State
        values:
        - TCP_SYN_SENT
"
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let local = connect(other.local_addr().expect("addr"))
        .expect("connect")
        .local_addr()
        .expect("local addr");
    connect(v4.local_addr().expect("addr")).expect("connect");
    connect(v6.local_addr().expect("addr")).expect("connect");
    let sock_to = |evs: &[Value], ip: &str, port: u16| -> Option<Value> {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .find(|k| {
                str_at(k, "/function_name") == "tcp_connect"
                    && str_at(k, "/args/0/sock_arg/daddr") == ip
                    && k["args"][0]["sock_arg"]["dport"] == u64::from(port)
            })
            .cloned()
    };
    let evs = agent.wait_for(WAIT, "tcp_connect events", |evs| {
        sock_to(evs, OTHER, port).is_some() && sock_to(evs, "::1", v6_port).is_some()
    });
    let ev = sock_to(&evs, OTHER, port).expect("event");
    let sock = &ev["args"][0]["sock_arg"];
    assert_eq!(sock["family"], "AF_INET", "{ev}");
    assert_eq!(sock["type"], "SOCK_STREAM", "{ev}");
    assert_eq!(sock["protocol"], "IPPROTO_TCP", "{ev}");
    assert_eq!(sock["state"], "TCP_SYN_SENT", "{ev}");
    assert_eq!(sock["saddr"], local.ip().to_string(), "{ev}");
    assert_eq!(sock["sport"], u64::from(local.port()), "{ev}");
    assert_eq!(pid_of(&ev), u64::from(std::process::id()));
    let ev6 = sock_to(&evs, "::1", v6_port).expect("event");
    assert_eq!(ev6["args"][0]["sock_arg"]["family"], "AF_INET6", "{ev6}");
    assert!(
        sock_to(&evs, "127.0.0.1", v4.local_addr().expect("addr").port()).is_none(),
        "127.0.0.1 is outside DAddr but posted"
    );
    agent.stop();
    Ok(())
}

/// Tetragon's tcp-connect.yaml and tcp-connect-with-selectors.yaml: served
/// where the kernel can hook tcp_connect/tcp_close/tcp_sendmsg, else refused
/// with the probe's reason.
pub fn tetragon_tcp_connect_policies() -> TestResult {
    require_agent!();
    let Some(policies) = tetragon_policies() else {
        skip!("Tetragon's example policies are not here (VIGIL_TETRAGON_POLICIES)");
    };
    for file in ["tcp-connect.yaml", "tcp-connect-with-selectors.yaml"] {
        let path = policies.join(file);
        let path = path.to_str().expect("utf-8");
        let agent = Agent::start(&["--tracing-policy", path]);
        match function_hooks() {
            Ok(()) => {
                assert!(has_log(&agent, &["policy enabled", "connect"]), "{file}");
                let l = listen("127.0.0.1");
                let mut s = connect(l.local_addr().expect("addr")).expect("connect");
                s.write_all(b"ping").expect("send");
                let port = l.local_addr().expect("addr").port();
                let (mut peer, _) = accept(&l);
                let mut buf = [0u8; 4];
                peer.read_exact(&mut buf).expect("receive");
                drop(s);
                let me = u64::from(std::process::id());
                let evs = agent.wait_for(WAIT, "tcp_connect, tcp_sendmsg, tcp_close", |evs| {
                    ["tcp_connect", "tcp_sendmsg", "tcp_close"].iter().all(|f| {
                        of_kind(evs, "process_kprobe").iter().any(|k| {
                            str_at(k, "/function_name") == *f
                                && pid_of(k) == me
                                && k["args"][0]["sock_arg"]["dport"] == u64::from(port)
                        })
                    })
                });
                let send = of_kind(&evs, "process_kprobe")
                    .into_iter()
                    .find(|k| {
                        str_at(k, "/function_name") == "tcp_sendmsg"
                            && k["args"][0]["sock_arg"]["dport"] == u64::from(port)
                    })
                    .expect("sendmsg event");
                assert_eq!(send["args"][1]["int_arg"], 4, "{send}");
                assert_eq!(send["args"][0]["sock_arg"]["daddr"], "127.0.0.1");
            }
            Err(_) => assert!(
                has_log(
                    &agent,
                    &[
                        "policy hook refused",
                        "tcp_connect",
                        "kernel has no kprobes and no fentry"
                    ]
                ),
                "{file}: tcp_connect refused with the probe's reason"
            ),
        }
        agent.stop();
    }
    Ok(())
}

/// TrackSock: a socket tracked at tcp_connect keeps naming the process that
/// connected it when its last close runs in another process (a child that
/// inherited it and outlived the parent's copy); an untracked socket closed
/// the same way names the child.
pub fn track_sock_names_the_owner() -> TestResult {
    require_agent!();
    if let Err(why) = function_hooks() {
        skip!("{why}");
    }
    let Some(sleep) = crate::harness::which("sleep") else {
        skip!("needs sleep");
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (tracked, untracked) = (listen("127.0.0.1"), listen("127.0.0.1"));
    let port = |l: &TcpListener| l.local_addr().expect("addr").port();
    let (tport, uport) = (port(&tracked), port(&untracked));
    let policy = write_policy(
        dir.path(),
        "track",
        &tracing_policy(
            "track-socks",
            &format!(
                "  kprobes:
  - call: tcp_connect
    syscall: false
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: DPort
        values:
        - \"{tport}\"
      matchActions:
      - action: TrackSock
        argSock: 0
  - call: tcp_close
    syscall: false
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: DPort
        values:
        - \"{tport}\"
        - \"{uport}\"
"
            ),
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    // Each client socket goes to a child as its stdin; the parent's copy
    // closes when the Command is dropped, so the last close is the child's.
    let mut children = Vec::new();
    for l in [&tracked, &untracked] {
        let stream = connect(l.local_addr().expect("addr")).expect("connect");
        let child = Command::new(&sleep)
            .arg("1")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(stream)))
            .spawn()
            .expect("spawn sleep");
        children.push(child);
    }
    let pids: Vec<u64> = children.iter().map(|c| u64::from(c.id())).collect();
    for mut c in children {
        assert!(c.wait().expect("wait sleep").success());
    }
    let close_of = |evs: &[Value], port: u16| -> Option<Value> {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .find(|k| {
                str_at(k, "/function_name") == "tcp_close"
                    && k["args"][0]["sock_arg"]["dport"] == u64::from(port)
            })
            .cloned()
    };
    let evs = agent.wait_for(WAIT, "tcp_close of both sockets", |evs| {
        close_of(evs, tport).is_some() && close_of(evs, uport).is_some()
    });
    let connect_ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|k| str_at(k, "/function_name") == "tcp_connect")
        .expect("tcp_connect event");
    assert_eq!(
        str_at(connect_ev, "/action"),
        "KPROBE_ACTION_TRACKSOCK",
        "{connect_ev}"
    );
    let me = u64::from(std::process::id());
    let tracked_close = close_of(&evs, tport).expect("event");
    assert_eq!(
        pid_of(&tracked_close),
        me,
        "the tracked socket's close names its owner, not the child {}: {tracked_close}",
        pids[0]
    );
    let untracked_close = close_of(&evs, uport).expect("event");
    assert_eq!(
        pid_of(&untracked_close),
        pids[1],
        "the untracked socket's close names the child that closed it: {untracked_close}"
    );
    agent.stop();
    Ok(())
}

fn accept(l: &TcpListener) -> (TcpStream, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match l.accept() {
            Ok(pair) => return pair,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn tetragon_policies() -> Option<PathBuf> {
    let dir = crate::harness::tetragon_policies_dir();
    dir.join("tcp-connect.yaml").is_file().then_some(dir)
}

/// Whether kernel functions can be hooked here (fentry or kprobe).
fn function_hooks() -> Result<(), String> {
    match (probed("fentry"), probed("kprobe")) {
        (Ok(()), _) | (_, Ok(())) => Ok(()),
        (Err(fentry), Err(kprobe)) => Err(format!(
            "kernel has neither fentry ({fentry}) nor kprobes ({kprobe})"
        )),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The metrics page of the agent's metrics server.
fn scrape(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

const BPF_LINK_TYPE_CGROUP: u32 = 3;

/// (program name, link type) of every BPF link whose program is one of
/// vigil's connect programs (other vigil agents on the machine, e.g. other
/// test runs, come and go with links of their own programs).
fn vigil_links() -> Vec<(String, u32)> {
    let mut links = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&id.to_ne_bytes());
        // SAFETY: BPF_LINK_GET_NEXT_ID reads start_id and writes next_id in attr.
        let r = unsafe { libc::syscall(libc::SYS_bpf, 31, attr.as_mut_ptr(), 128) };
        if r != 0 {
            break;
        }
        id = u32::from_ne_bytes(attr[4..8].try_into().unwrap_or_default());
        if let Some((kind, prog)) = link_info(id) {
            if let Some(name) = prog_name(prog).filter(|n| n.starts_with("vigil_connect")) {
                links.push((name, kind));
            }
        }
    }
    links.sort();
    links
}

/// (link type, program id) of link `id`.
fn link_info(id: u32) -> Option<(u32, u32)> {
    // BPF_LINK_GET_FD_BY_ID; struct bpf_link_info: type, id, prog_id.
    let info = crate::harness::bpf_obj_info(30, id)?;
    let word = |at: usize| u32::from_ne_bytes(info[at..at + 4].try_into().unwrap_or_default());
    Some((word(0), word(8)))
}

/// A policy on `call` (a system call) whose address argument is `addr_index`,
/// with an int argument 0 (the fd) and `selectors`.
fn sock_addr_policy(
    name: &str,
    call: &str,
    addr_index: u32,
    options: &str,
    selectors: &str,
) -> String {
    tracing_policy(
        name,
        &format!(
            "{options}  kprobes:
  - call: {call}
    syscall: true
    args:
    - index: 0
      type: int
    - index: {addr_index}
      type: sockaddr
{selectors}"
        ),
    )
}

/// Selectors acting with `action` on the address `ip` (matchArgs index `index`).
fn addr_selectors(index: u32, ip: &str, action: &str) -> String {
    format!(
        "    selectors:
    - matchArgs:
      - index: {index}
        operator: SAddr
        values:
        - {ip}
      matchActions:
      - action: {action}
"
    )
}

/// A UDP socket on `ip` (port chosen by the kernel) that does not block.
fn udp_listen(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).expect("bind a UDP socket on loopback");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

/// The next datagram queued on `s`, waiting a little for loopback delivery
/// of a datagram that was sent; None when nothing is queued.
fn received(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match s.recv(&mut buf) {
            Ok(n) => return Some(buf[..n].to_vec()),
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => return None,
        }
    }
}

/// Events of this process from `function` whose sockaddr (argument
/// position 1 of the event) is `ip` and `port`.
fn sock_events<'a>(evs: &'a [Value], function: &str, ip: &str, port: u16) -> Vec<&'a Value> {
    let me = u64::from(std::process::id());
    of_kind(evs, "process_kprobe")
        .into_iter()
        .filter(|k| {
            str_at(k, "/function_name") == function
                && str_at(k, "/args/1/sockaddr_arg/addr") == ip
                && k["args"][1]["sockaddr_arg"]["port"] == u64::from(port)
                && pid_of(k) == me
        })
        .collect()
}

/// Override on sendto(2): a UDP datagram to the selected address fails with
/// EPERM and never reaches the socket listening there; one to another
/// address arrives; the event has the destination. A send on a UDP socket
/// connected to the selected address carries no address, which the
/// kernel's sendmsg hooks do not see: it arrives, as the status says.
pub fn udp_sendto_override_blocks_before_the_datagram_leaves() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup sock_addr hooks ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let selectors = addr_selectors(4, OTHER, "Override\n        argError: -1");
    let policy = write_policy(
        dir.path(),
        "deny-udp",
        &sock_addr_policy("deny-udp", "sys_sendto", 4, "", &selectors),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    assert!(
        has_log(
            &agent,
            &[
                "policy hook loaded",
                "cgroup/sendmsg4",
                "blocked before the operation",
                "connected UDP socket"
            ]
        ),
        "no status line with the sendmsg hooks and their guarantee"
    );
    let (allowed, denied) = (udp_listen("127.0.0.1"), udp_listen(OTHER));
    let sender = UdpSocket::bind("127.0.0.1:0").expect("sender");
    let to_allowed = allowed.local_addr().expect("addr");
    let to_denied = denied.local_addr().expect("addr");
    sender
        .send_to(b"allowed", to_allowed)
        .expect("send to 127.0.0.1");
    let err = sender
        .send_to(b"denied", to_denied)
        .expect_err("a datagram to the selected address was sent");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    assert_eq!(received(&allowed).as_deref(), Some(&b"allowed"[..]));
    assert_eq!(received(&denied), None, "a blocked datagram arrived");

    let connected = UdpSocket::bind("127.0.0.1:0").expect("socket");
    connected.connect(to_denied).expect("connect is not hooked");
    connected
        .send(b"connected")
        .expect("send on a connected socket");
    assert_eq!(
        received(&denied).as_deref(),
        Some(&b"connected"[..]),
        "a send without an address is not seen by cgroup/sendmsg4"
    );

    let evs = agent.wait_for(WAIT, "the blocked sendto's event", |evs| {
        !sock_events(evs, "__x64_sys_sendto", OTHER, to_denied.port()).is_empty()
    });
    let ev = sock_events(&evs, "__x64_sys_sendto", OTHER, to_denied.port())[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE", "{ev}");
    assert_eq!(str_at(ev, "/args/1/sockaddr_arg/family"), "AF_INET", "{ev}");
    assert_eq!(str_at(ev, "/policy_name"), "deny-udp");
    assert!(
        sock_events(&evs, "__x64_sys_sendto", "127.0.0.1", to_allowed.port()).is_empty(),
        "the unselected send posted"
    );
    agent.stop();
    Ok(())
}

/// In monitor mode a selected UDP send goes through, is posted without the
/// block, and counted as monitored.
pub fn udp_sendto_monitor_mode_lets_through() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup sock_addr hooks ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let options = "  options:\n  - name: policy-mode\n    value: monitor\n";
    let selectors = addr_selectors(4, "::1", "Sigkill");
    let policy = write_policy(
        dir.path(),
        "watch-udp",
        &sock_addr_policy("watch-udp", "sys_sendto", 4, options, &selectors),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    assert!(has_log(
        &agent,
        &["policy hook loaded", "cgroup/sendmsg4", "monitor mode"]
    ));
    let target = udp_listen("::1");
    let to = target.local_addr().expect("addr");
    UdpSocket::bind("[::1]:0")
        .expect("sender")
        .send_to(b"watched", to)
        .expect("monitor mode blocked the send");
    assert_eq!(received(&target).as_deref(), Some(&b"watched"[..]));
    let evs = agent.wait_for(WAIT, "the monitored send's event", |evs| {
        !sock_events(evs, "__x64_sys_sendto", "::1", to.port()).is_empty()
    });
    let ev = sock_events(&evs, "__x64_sys_sendto", "::1", to.port())[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST", "{ev}");
    assert_eq!(
        str_at(ev, "/args/1/sockaddr_arg/family"),
        "AF_INET6",
        "{ev}"
    );
    agent.stop();
    Ok(())
}

/// Override on bind(2) to one port: binding it fails with EPERM (UDP and
/// TCP alike), another port binds, the event has the address; the bind
/// programs' links go when the policy is deleted over the API, and the
/// port binds again.
pub fn bind_override_blocks_and_links_go_with_the_policy() -> TestResult {
    require_agent!();
    if let Err(why) = probed("cgroup_connect4") {
        skip!("kernel has no cgroup sock_addr hooks ({why})");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let selectors = format!(
        "    selectors:
    - matchArgs:
      - index: 1
        operator: SPort
        values:
        - \"{port}\"
      matchActions:
      - action: Override
        argError: -1
"
    );
    let policy = write_policy(
        dir.path(),
        "deny-bind",
        &sock_addr_policy("deny-bind", "sys_bind", 1, "", &selectors),
    );
    let agent = Agent::start(&[]);
    let out = agent.cli(&["tracingpolicy", "add", &policy]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "add: {report}");
    assert!(report.contains("cgroup/bind4"), "{report}");
    assert!(
        crate::api::linked(&agent, "vigil_bind4"),
        "no bind link after add"
    );
    assert!(
        crate::api::linked(&agent, "vigil_bind6"),
        "no bind6 link after add"
    );
    let err = UdpSocket::bind((OTHER, port)).expect_err("UDP bind to the selected port");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let err = TcpListener::bind(("::1", port)).expect_err("TCP bind to the selected port");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let other = UdpSocket::bind((OTHER, 0)).expect("another port binds");
    let evs = agent.wait_for(WAIT, "the blocked bind's event", |evs| {
        !sock_events(evs, "__x64_sys_bind", OTHER, port).is_empty()
    });
    let ev = sock_events(&evs, "__x64_sys_bind", OTHER, port)[0];
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_OVERRIDE", "{ev}");
    let other_port = other.local_addr().expect("addr").port();
    assert!(sock_events(&evs, "__x64_sys_bind", OTHER, other_port).is_empty());

    let out = agent.cli(&["tracingpolicy", "delete", "deny-bind"]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !crate::api::linked(&agent, "vigil_bind"),
        "bind programs linked after the policy was deleted"
    );
    UdpSocket::bind((OTHER, port)).expect("the port binds after the policy was deleted");
    agent.stop();
    Ok(())
}
