//! The compact one-line rendering of `tetra getevents -o compact`:
//! `<emoji> <kind padded to 7> <where> <binary> <details>`, where `<where>`
//! is the node name for host processes.
use crate::{caps, ArgValue, Event, EventBody, KprobeSock, Process, ProcessKprobe};

const CAP_COLUMN: usize = 120;

pub fn render(ev: &Event) -> String {
    match &ev.body {
        EventBody::ProcessExec(e) => {
            let line = line("🚀", "process", &ev.node_name, &e.process, "");
            with_cap_sys_admin(line, &e.process)
        }
        EventBody::ProcessExit(e) => {
            let outcome = if e.signal.is_empty() {
                e.status.to_string()
            } else {
                e.signal.clone()
            };
            line("💥", "exit", &ev.node_name, &e.process, &outcome)
        }
        EventBody::ProcessKprobe(k) => kprobe(k, &ev.node_name),
        EventBody::ProcessLsm(l) => {
            let mut detail = l.function_name.clone();
            if let Some(arg) = l.args.iter().find_map(|a| match &a.value {
                ArgValue::FileArg(f) => Some(f.path.as_str()),
                ArgValue::StringArg(s) => Some(s.as_str()),
                _ => None,
            }) {
                detail.push(' ');
                detail.push_str(arg);
            }
            let mut s = format!("🔒 lsm     {} {} {detail}", ev.node_name, l.process.binary);
            if l.action == "KPROBE_ACTION_OVERRIDE" {
                s.push_str(" (blocked)");
            }
            s
        }
        EventBody::ProcessUprobe(u) => {
            let mut s = format!(
                "🕵️ uprobe  {} {} {} {}",
                ev.node_name, u.process.binary, u.path, u.symbol
            );
            if let Some(ret) = u.r#return.as_ref().and_then(|r| first_text(&r.value)) {
                s.push_str(" => ");
                s.push_str(&ret);
            }
            s
        }
        EventBody::ProcessTracepoint(t) => {
            let (emoji, kind) = if t.subsys == "raw_syscalls" {
                ("☎ ", "syscall")
            } else {
                ("⁉️", "tracepoint")
            };
            format!(
                "{emoji} {kind:<7} {} {} {}/{}",
                ev.node_name, t.process.binary, t.subsys, t.event
            )
        }
        EventBody::ProcessUsdt(u) => {
            let mut s = format!(
                "🔖 usdt    {} {} {}:{}",
                ev.node_name, u.process.binary, u.provider, u.name
            );
            for arg in u.args.iter().filter_map(|a| first_text(&a.value)) {
                s.push(' ');
                s.push_str(&arg);
            }
            s
        }
        EventBody::LostEvents(l) => format!(
            "⚠️ lost    {} {} events lost at {} ({} in all)",
            ev.node_name, l.count, l.source, l.total
        ),
    }
}

/// Emoji and kind by function (syscall prefix stripped), as `tetra getevents -o compact`.
fn kprobe(k: &ProcessKprobe, place: &str) -> String {
    let call = k
        .function_name
        .strip_prefix("__x64_sys_")
        .or_else(|| k.function_name.strip_prefix("__arm64_sys_"))
        .or_else(|| k.function_name.strip_prefix("sys_"))
        .unwrap_or(&k.function_name);
    let (emoji, kind) = match call {
        "write" => ("📝", "write"),
        "read" => ("📚", "read"),
        "openat" => ("📬️", "openat"),
        "fd_install" => ("📬", "open"),
        "close" => ("📪", "close"),
        "mount" => ("💾", "mount"),
        "pivot_root" => ("💾", "pivot_root"),
        "setuid" => ("🔑", "setuid"),
        "clock_settime" => ("⏰", "clock_settime"),
        "setns" => ("🔧", "setns"),
        "connect" | "tcp_connect" | "security_socket_connect" => ("🔌", "connect"),
        "tcp_close" => ("🧹", "close"),
        "tcp_sendmsg" => ("📤", "sendmsg"),
        "bpf_check" | "security_bpf_prog_load" => ("🐝", "bpf_load"),
        "security_bpf_map_alloc" | "security_bpf_map_create" => ("🗺", "bpf_map_create"),
        "sendto" | "sendmsg" => ("📤", "send"),
        "bind" | "security_socket_bind" => ("📌", "bind"),
        _ => ("❓", "syscall"),
    };
    if let Some(detail) = network_detail(k, kind) {
        return format!("{emoji} {kind:<7} {place} {} {detail}", k.process.binary);
    }
    let first = k.args.iter().find_map(|a| match &a.value {
        ArgValue::FileArg(f) => Some(f.path.clone()),
        ArgValue::StringArg(s) => Some(s.clone()),
        value => object_detail(value),
    });
    let detail = match (kind, first) {
        ("syscall", Some(arg)) => format!("{call} {arg}"),
        ("syscall", None) => call.to_owned(),
        (_, Some(arg)) => arg,
        (_, None) => String::new(),
    };
    let mut s = format!("{emoji} {kind:<7} {place} {}", k.process.binary);
    if !detail.is_empty() {
        s.push(' ');
        s.push_str(&detail);
    }
    s
}

/// A string, path or integer value as text.
fn first_text(v: &ArgValue) -> Option<String> {
    Some(match v {
        ArgValue::StringArg(s) | ArgValue::KernelCapTArg(s) => s.clone(),
        ArgValue::FileArg(f) | ArgValue::PathArg(f) | ArgValue::LinuxBinprmArg(f) => f.path.clone(),
        ArgValue::CapabilityArg(c) => c.name.clone(),
        ArgValue::IntArg(i) => i.to_string(),
        ArgValue::UintArg(u) => u.to_string(),
        ArgValue::LongArg(s) | ArgValue::SizeArg(s) => s.clone(),
        ArgValue::BytesArg(_)
        | ArgValue::SyscallId(_)
        | ArgValue::UserNsArg(_)
        | ArgValue::ProcessCredentialsArg(_)
        | ArgValue::SockArg(_)
        | ArgValue::SockaddrArg(_)
        | ArgValue::SkbArg(_)
        | ArgValue::BpfAttrArg(_)
        | ArgValue::BpfMapArg(_)
        | ArgValue::PerfEventArg(_) => return None,
    })
}

/// `BPF_PROG_TYPE_KPROBE probe instruction count 2`, `BPF_MAP_TYPE_HASH
/// counts key size 4 value size 8 max entries 16`, `PERF_TYPE_SOFTWARE
/// config 9` or `kprobe do_sys_openat2+0`.
fn object_detail(v: &ArgValue) -> Option<String> {
    Some(match v {
        ArgValue::BpfAttrArg(a) => format!(
            "{} {} instruction count {}",
            a.prog_type, a.prog_name, a.insn_cnt
        ),
        ArgValue::BpfMapArg(m) => format!(
            "{} {} key size {} value size {} max entries {}",
            m.map_type, m.map_name, m.key_size, m.value_size, m.max_entries
        ),
        ArgValue::PerfEventArg(p) if !p.kprobe_func.is_empty() => {
            format!("kprobe {}+{}", p.kprobe_func, p.probe_offset)
        }
        ArgValue::PerfEventArg(p) => format!("{} config {}", p.event_type, p.config),
        _ => return None,
    })
}

/// `tcp 10.0.0.1:33978 -> 104.198.14.52:443` for a sock argument (with
/// `bytes N` for sendmsg), `-> 127.0.0.1:80` for a sockaddr (`on
/// 0.0.0.0:80` for bind); `(blocked)` when the call was made to fail.
fn network_detail(k: &ProcessKprobe, kind: &str) -> Option<String> {
    let arrow = if kind == "bind" { "on" } else { "->" };
    let mut detail = k.args.iter().find_map(|a| match &a.value {
        ArgValue::SockArg(s) => Some(sock_detail(s)),
        ArgValue::SkbArg(s) => Some(format!(
            "{} {} -> {} len {}",
            short_protocol(&s.protocol),
            endpoint(&s.saddr, s.sport),
            endpoint(&s.daddr, s.dport),
            s.len
        )),
        ArgValue::SockaddrArg(a) if !a.addr.is_empty() => {
            Some(format!("{arrow} {}", endpoint(&a.addr, a.port)))
        }
        ArgValue::SockaddrArg(a) => Some(format!("{arrow} {}", a.family)),
        _ => None,
    })?;
    if kind == "sendmsg" {
        if let Some(bytes) = k.args.iter().find_map(|a| match &a.value {
            ArgValue::IntArg(n) => Some(n.to_string()),
            ArgValue::SizeArg(n) => Some(n.clone()),
            _ => None,
        }) {
            detail.push_str(&format!(" bytes {bytes}"));
        }
    }
    if k.action == "KPROBE_ACTION_OVERRIDE" {
        detail.push_str(" (blocked)");
    }
    Some(detail)
}

fn sock_detail(s: &KprobeSock) -> String {
    format!(
        "{} {} -> {}",
        short_protocol(&s.protocol),
        endpoint(&s.saddr, s.sport),
        endpoint(&s.daddr, s.dport)
    )
}

/// `tcp` for `IPPROTO_TCP`.
fn short_protocol(protocol: &str) -> String {
    protocol
        .strip_prefix("IPPROTO_")
        .unwrap_or(protocol)
        .to_lowercase()
}

/// `1.2.3.4:80`, `[::1]:80`.
fn endpoint(addr: &str, port: u32) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn line(emoji: &str, kind: &str, place: &str, p: &Process, detail: &str) -> String {
    let mut s = format!("{emoji} {kind:<7} {place} {}", p.binary);
    for part in [p.arguments.as_str(), detail] {
        if !part.is_empty() {
            s.push(' ');
            s.push_str(part);
        }
    }
    s
}

/// Flags a process that runs with CAP_SYS_ADMIN effective, aligned on one column.
fn with_cap_sys_admin(mut line: String, p: &Process) -> String {
    let effective = p
        .cap
        .as_ref()
        .or(p.process_credentials.as_ref().and_then(|c| c.caps.as_ref()))
        .map(|c| c.effective.as_slice())
        .unwrap_or_default();
    if effective.contains(&caps::name(caps::CAP_SYS_ADMIN).unwrap_or_default()) {
        let width = line.chars().count();
        line.push_str(&" ".repeat(CAP_COLUMN.saturating_sub(width).max(1)));
        line.push_str("🛑 CAP_SYS_ADMIN");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Capabilities, ProcessExec, ProcessExit};

    fn process(binary: &str, args: &str) -> Process {
        Process {
            binary: binary.into(),
            arguments: args.into(),
            ..Default::default()
        }
    }

    fn event(body: EventBody) -> Event {
        Event {
            body,
            node_name: "node1".into(),
            time: String::new(),
        }
    }

    #[test]
    fn exec_and_exit_lines() {
        let exec = event(EventBody::ProcessExec(ProcessExec {
            process: process("/usr/bin/curl", "https://ebpf.io").into(),
            ..Default::default()
        }));
        assert_eq!(
            render(&exec),
            "🚀 process node1 /usr/bin/curl https://ebpf.io"
        );

        let exit = event(EventBody::ProcessExit(ProcessExit {
            process: process("/usr/bin/curl", "https://ebpf.io").into(),
            status: 60,
            ..Default::default()
        }));
        assert_eq!(
            render(&exit),
            "💥 exit    node1 /usr/bin/curl https://ebpf.io 60"
        );

        let killed = event(EventBody::ProcessExit(ProcessExit {
            process: process("/bin/cat", "").into(),
            signal: "SIGKILL".into(),
            ..Default::default()
        }));
        assert_eq!(render(&killed), "💥 exit    node1 /bin/cat SIGKILL");
    }

    #[test]
    fn lsm_lines() {
        use crate::{KprobeArgument, KprobeFile, ProcessLsm};
        let ev = event(EventBody::ProcessLsm(ProcessLsm {
            process: process("/bin/cat", "/etc/shadow").into(),
            function_name: "file_open".into(),
            args: vec![KprobeArgument {
                value: ArgValue::FileArg(KprobeFile {
                    path: "/etc/shadow".into(),
                }),
                label: String::new(),
            }],
            action: "KPROBE_ACTION_OVERRIDE",
            ..Default::default()
        }));
        assert_eq!(
            render(&ev),
            "🔒 lsm     node1 /bin/cat file_open /etc/shadow (blocked)"
        );
    }

    #[test]
    fn uprobe_and_tracepoint_lines() {
        use crate::{KprobeArgument, ProcessTracepoint, ProcessUprobe};
        let uprobe = event(EventBody::ProcessUprobe(ProcessUprobe {
            process: process("/usr/bin/bash", "").into(),
            path: "/bin/bash".into(),
            symbol: "readline".into(),
            r#return: Some(KprobeArgument {
                value: ArgValue::StringArg("sudo ls".into()),
                label: String::new(),
            }),
            ..Default::default()
        }));
        assert_eq!(
            render(&uprobe),
            "🕵️ uprobe  node1 /usr/bin/bash /bin/bash readline => sudo ls"
        );
        let tp = |subsys: &str, event_name: &str| {
            event(EventBody::ProcessTracepoint(ProcessTracepoint {
                process: process("/usr/bin/bash", "").into(),
                subsys: subsys.into(),
                event: event_name.into(),
                ..Default::default()
            }))
        };
        assert_eq!(
            render(&tp("raw_syscalls", "sys_enter")),
            "☎  syscall node1 /usr/bin/bash raw_syscalls/sys_enter"
        );
        assert_eq!(
            render(&tp("sched", "sched_switch")),
            "⁉️ tracepoint node1 /usr/bin/bash sched/sched_switch"
        );
        let usdt = event(EventBody::ProcessUsdt(crate::ProcessUsdt {
            process: process("/usr/bin/python3", "").into(),
            path: "/usr/bin/python3".into(),
            provider: "python".into(),
            name: "function__entry".into(),
            args: vec![
                KprobeArgument {
                    value: ArgValue::StringArg("app.py".into()),
                    label: String::new(),
                },
                KprobeArgument {
                    value: ArgValue::IntArg(12),
                    label: String::new(),
                },
            ],
            ..Default::default()
        }));
        assert_eq!(
            render(&usdt),
            "🔖 usdt    node1 /usr/bin/python3 python:function__entry app.py 12"
        );
    }

    #[test]
    fn kprobe_lines() {
        use crate::{KprobeArgument, KprobeFile};
        let open = |function: &str, value: ArgValue| {
            event(EventBody::ProcessKprobe(ProcessKprobe {
                process: process("/bin/cat", "/etc/shadow").into(),
                function_name: function.into(),
                args: vec![KprobeArgument {
                    value,
                    label: String::new(),
                }],
                ..Default::default()
            }))
        };
        assert_eq!(
            render(&open(
                "__x64_sys_openat",
                ArgValue::StringArg("/etc/shadow".into())
            )),
            "📬️ openat  node1 /bin/cat /etc/shadow"
        );
        assert_eq!(
            render(&open(
                "__x64_sys_read",
                ArgValue::FileArg(KprobeFile {
                    path: "/etc/shadow".into()
                })
            )),
            "📚 read    node1 /bin/cat /etc/shadow"
        );
        assert_eq!(
            render(&open("__x64_sys_unlinkat", ArgValue::IntArg(3))),
            "❓ syscall node1 /bin/cat unlinkat"
        );
    }

    #[test]
    fn network_lines() {
        use crate::{KprobeArgument, KprobeSockaddr};
        let arg = |value| KprobeArgument {
            value,
            label: String::new(),
        };
        let sock = KprobeSock {
            family: "AF_INET".into(),
            protocol: "IPPROTO_TCP".into(),
            saddr: "10.32.0.19".into(),
            daddr: "104.198.14.52".into(),
            sport: 33978,
            dport: 443,
            ..Default::default()
        };
        let ev = |function: &str, args, action| {
            event(EventBody::ProcessKprobe(ProcessKprobe {
                process: process("/usr/bin/curl", "").into(),
                function_name: function.into(),
                args,
                action,
                ..Default::default()
            }))
        };
        assert_eq!(
            render(&ev(
                "tcp_connect",
                vec![arg(ArgValue::SockArg(sock.clone()))],
                "KPROBE_ACTION_POST"
            )),
            "🔌 connect node1 /usr/bin/curl tcp 10.32.0.19:33978 -> 104.198.14.52:443"
        );
        assert_eq!(
            render(&ev(
                "tcp_sendmsg",
                vec![arg(ArgValue::SockArg(sock)), arg(ArgValue::IntArg(73))],
                "KPROBE_ACTION_POST"
            )),
            "📤 sendmsg node1 /usr/bin/curl tcp 10.32.0.19:33978 -> 104.198.14.52:443 bytes 73"
        );
        let to = KprobeSockaddr {
            family: "AF_INET6".into(),
            addr: "::1".into(),
            port: 80,
        };
        assert_eq!(
            render(&ev(
                "__x64_sys_connect",
                vec![arg(ArgValue::IntArg(3)), arg(ArgValue::SockaddrArg(to))],
                "KPROBE_ACTION_OVERRIDE"
            )),
            "🔌 connect node1 /usr/bin/curl -> [::1]:80 (blocked)"
        );
        let dns = KprobeSockaddr {
            family: "AF_INET".into(),
            addr: "10.0.0.53".into(),
            port: 53,
        };
        assert_eq!(
            render(&ev(
                "__x64_sys_sendto",
                vec![
                    arg(ArgValue::IntArg(3)),
                    arg(ArgValue::SockaddrArg(dns.clone()))
                ],
                "KPROBE_ACTION_OVERRIDE"
            )),
            "📤 send    node1 /usr/bin/curl -> 10.0.0.53:53 (blocked)"
        );
        assert_eq!(
            render(&ev(
                "security_socket_bind",
                vec![arg(ArgValue::SockaddrArg(dns))],
                "KPROBE_ACTION_POST"
            )),
            "📌 bind    node1 /usr/bin/curl on 10.0.0.53:53"
        );
    }

    #[test]
    fn cap_sys_admin_is_flagged() {
        let mut p = process("/nginx", "-g daemon off;");
        p.cap = Some(Capabilities {
            effective: vec!["CAP_SYS_ADMIN"],
            ..Default::default()
        });
        let line = render(&event(EventBody::ProcessExec(ProcessExec {
            process: p.into(),
            ..Default::default()
        })));
        assert!(line.starts_with("🚀 process node1 /nginx -g daemon off;"));
        assert!(line.ends_with(" 🛑 CAP_SYS_ADMIN"));
        assert_eq!(
            line.chars().count(),
            CAP_COLUMN + "🛑 CAP_SYS_ADMIN".chars().count()
        );
    }
}
