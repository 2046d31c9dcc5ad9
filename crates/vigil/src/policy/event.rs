//! `process_kprobe` events from kernel records of policy hooks.
use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::OnceLock,
};

use vigil_bpf::wire::{
    vigil_arg_bpf_attr, vigil_arg_bpf_map, vigil_arg_cred, vigil_arg_perf_event, vigil_arg_skb,
    vigil_arg_user_ns, vigil_ima_hash, vigil_sock_arg, vigil_sockaddr_arg, VIGIL_ARG_BPF_ATTR,
    VIGIL_ARG_BPF_MAP, VIGIL_ARG_CAPABILITY, VIGIL_ARG_CHAR_BUF, VIGIL_ARG_CHAR_IOVEC,
    VIGIL_ARG_CRED, VIGIL_ARG_DENTRY, VIGIL_ARG_FD, VIGIL_ARG_FILE, VIGIL_ARG_INT,
    VIGIL_ARG_KERNEL_CAP, VIGIL_ARG_LINUX_BINPRM, VIGIL_ARG_LONG, VIGIL_ARG_PATH,
    VIGIL_ARG_PERF_EVENT, VIGIL_ARG_SIZE, VIGIL_ARG_SKB, VIGIL_ARG_SOCK, VIGIL_ARG_SOCKADDR,
    VIGIL_ARG_SOCKADDR_KERNEL, VIGIL_ARG_STRING, VIGIL_ARG_UINT, VIGIL_ARG_ULONG,
    VIGIL_ARG_USER_NS, VIGIL_KPROBE_MONITORED, VIGIL_KPROBE_SIGNAL_FAILED,
};
use vigil_events::{
    caps, ArgValue, EventBody, KprobeArgument, KprobeBpfAttr, KprobeBpfMap, KprobeCapability,
    KprobeFile, KprobePerfEvent, KprobeSkb, KprobeSock, KprobeSockaddr, Namespace, ProcessKprobe,
    ProcessLsm, ProcessRef, ProcessTracepoint, ProcessUprobe, ProcessUsdt, SyscallId,
    UserNamespace,
};
use vigil_policy::net::{name_of, FAMILIES, PROTOCOLS, SOCK_TYPES, TCP_STATES};

use super::compile::{ArgMeta, EventKind, HookMeta};
use crate::decode::{read, KprobeRecord};

/// The event of a policy hook: `process_lsm`, `process_uprobe`,
/// `process_usdt` or `process_tracepoint` by the hook's kind, else
/// `process_kprobe`.
pub fn hook_event(
    rec: &KprobeRecord,
    meta: &HookMeta,
    process: ProcessRef,
    parent: Option<ProcessRef>,
    ancestors: Vec<ProcessRef>,
) -> EventBody {
    let k = kprobe_event(rec, meta, process, parent, ancestors);
    match &meta.event {
        EventKind::Kprobe => EventBody::ProcessKprobe(k),
        EventKind::Lsm => EventBody::ProcessLsm(ProcessLsm {
            process: k.process,
            parent: k.parent,
            function_name: k.function_name,
            policy_name: k.policy_name,
            message: k.message,
            args: k.args,
            action: k.action,
            tags: k.tags,
            ancestors: k.ancestors,
            kernel_stack_trace: Vec::new(),
            user_stack_trace: Vec::new(),
            ima_hash: rec.ima_hash.as_ref().map(ima_hash).unwrap_or_default(),
        }),
        EventKind::Uprobe {
            path,
            symbol,
            offset,
        } => EventBody::ProcessUprobe(ProcessUprobe {
            process: k.process,
            parent: k.parent,
            path: path.clone(),
            symbol: symbol.clone(),
            policy_name: k.policy_name,
            message: k.message,
            args: k.args,
            tags: k.tags,
            ancestors: k.ancestors,
            kernel_stack_trace: Vec::new(),
            user_stack_trace: Vec::new(),
            offset: offset.map(|o| o.to_string()),
            action: k.action,
            r#return: k.r#return,
        }),
        EventKind::Usdt {
            path,
            provider,
            name,
        } => EventBody::ProcessUsdt(ProcessUsdt {
            process: k.process,
            parent: k.parent,
            path: path.clone(),
            provider: provider.clone(),
            name: name.clone(),
            policy_name: k.policy_name,
            action: k.action,
            args: k.args,
            message: k.message,
            tags: k.tags,
            ancestors: k.ancestors,
            kernel_stack_trace: Vec::new(),
            user_stack_trace: Vec::new(),
        }),
        EventKind::Tracepoint { subsystem, event } => {
            EventBody::ProcessTracepoint(ProcessTracepoint {
                process: k.process,
                parent: k.parent,
                subsys: subsystem.clone(),
                event: event.clone(),
                args: k.args,
                policy_name: k.policy_name,
                action: k.action,
                message: k.message,
                tags: k.tags,
                ancestors: k.ancestors,
                kernel_stack_trace: Vec::new(),
                user_stack_trace: Vec::new(),
            })
        }
    }
}

/// Post imaHash as Tetragon reports it, `"<algorithm>:<hex digest>"`;
/// empty when the kernel could not hash the file (bpf_ima_file_hash failed)
/// or used an algorithm without a known digest size.
fn ima_hash(hash: &vigil_ima_hash) -> String {
    // The kernel's enum hash_algo (include/uapi/linux/hash_info.h): name and digest size.
    const ALGOS: [(&str, usize); 8] = [
        ("md4", 16),
        ("md5", 16),
        ("sha1", 20),
        ("rmd160", 20),
        ("sha256", 32),
        ("sha384", 48),
        ("sha512", 64),
        ("sha224", 28),
    ];
    let Some((name, len)) = usize::try_from(hash.algo).ok().and_then(|a| ALGOS.get(a)) else {
        return String::new();
    };
    let hex: String = hash.digest[..*len]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{name}:{hex}")
}

fn kprobe_event(
    rec: &KprobeRecord,
    meta: &HookMeta,
    process: ProcessRef,
    parent: Option<ProcessRef>,
    ancestors: Vec<ProcessRef>,
) -> ProcessKprobe {
    let args = rec
        .args
        .iter()
        .zip(&meta.args)
        .filter_map(|(raw, m)| {
            argument(
                &ArgMeta {
                    kind: raw.kind,
                    ..m.clone()
                },
                &raw.bytes,
            )
        })
        .collect();
    let r#return = match (&meta.ret, rec.ret) {
        // A string return's bytes follow the arguments in the record.
        (Some(m), Some(_)) if u32::from(m.kind) == VIGIL_ARG_STRING => argument(m, &rec.ret_data),
        (Some(m), Some(ret)) => argument(m, &ret.to_le_bytes()),
        _ => None,
    };
    // A signal not sent (monitor mode, or the helper failed) is not reported as done.
    let action = if rec.flags & (VIGIL_KPROBE_MONITORED | VIGIL_KPROBE_SIGNAL_FAILED) != 0 {
        "KPROBE_ACTION_POST"
    } else {
        meta.selector_actions
            .get(rec.selector as usize)
            .copied()
            .unwrap_or("KPROBE_ACTION_POST")
    };
    ProcessKprobe {
        process,
        parent,
        function_name: meta.function_name.clone(),
        args,
        r#return,
        action,
        policy_name: meta.policy.clone(),
        message: meta.message.clone(),
        tags: meta.tags.clone(),
        ancestors,
        kernel_stack_trace: Vec::new(),
        user_stack_trace: Vec::new(),
    }
}

fn integer(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

/// A constant's name (`AF_INET`), or its number when it has none.
fn named(table: &[(&'static str, u32)], value: u32) -> String {
    name_of(table, value)
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string())
}

/// An IPv4 or IPv6 address in its usual text form; empty for other families.
fn address(family: u16, addr: &[u8; 16]) -> String {
    match i32::from(family) {
        libc::AF_INET => Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
        libc::AF_INET6 => Ipv6Addr::from(*addr).to_string(),
        _ => String::new(),
    }
}

fn argument(meta: &ArgMeta, bytes: &[u8]) -> Option<KprobeArgument> {
    let text = || String::from_utf8_lossy(bytes).into_owned();
    let value = match u32::from(meta.kind) {
        _ if meta.syscall_id => ArgValue::SyscallId(SyscallId {
            id: integer(bytes) as u32,
            abi: "x64",
        }),
        VIGIL_ARG_INT => ArgValue::IntArg(integer(bytes) as i32),
        VIGIL_ARG_UINT => ArgValue::UintArg(integer(bytes) as u32),
        VIGIL_ARG_LONG => ArgValue::LongArg((integer(bytes) as i64).to_string()),
        VIGIL_ARG_ULONG | VIGIL_ARG_SIZE => ArgValue::SizeArg(integer(bytes).to_string()),
        VIGIL_ARG_STRING => ArgValue::StringArg(text()),
        VIGIL_ARG_FD | VIGIL_ARG_FILE => ArgValue::FileArg(KprobeFile { path: text() }),
        VIGIL_ARG_CHAR_BUF | VIGIL_ARG_CHAR_IOVEC => ArgValue::bytes(bytes),
        VIGIL_ARG_PATH | VIGIL_ARG_DENTRY => ArgValue::PathArg(KprobeFile { path: text() }),
        VIGIL_ARG_LINUX_BINPRM => ArgValue::LinuxBinprmArg(KprobeFile { path: text() }),
        VIGIL_ARG_CAPABILITY => {
            let value = integer(bytes) as u32;
            ArgValue::CapabilityArg(KprobeCapability {
                value: value as i32,
                name: caps::name(value).unwrap_or_default().to_owned(),
            })
        }
        VIGIL_ARG_KERNEL_CAP => ArgValue::KernelCapTArg(caps::names(integer(bytes)).join(" ")),
        VIGIL_ARG_USER_NS => ArgValue::UserNsArg(user_ns(read(bytes).ok()?)),
        VIGIL_ARG_CRED => {
            let cred: vigil_arg_cred = read(bytes).ok()?;
            ArgValue::ProcessCredentialsArg(crate::events::credentials(
                &cred.creds,
                user_ns(cred.user_ns),
            ))
        }
        VIGIL_ARG_SOCKADDR | VIGIL_ARG_SOCKADDR_KERNEL => {
            let a: vigil_sockaddr_arg = read(bytes).ok()?;
            ArgValue::SockaddrArg(KprobeSockaddr {
                family: named(FAMILIES, a.family.into()),
                addr: address(a.family, &a.addr),
                port: a.port.into(),
            })
        }
        VIGIL_ARG_SOCK => {
            let k: vigil_sock_arg = read(bytes).ok()?;
            ArgValue::SockArg(KprobeSock {
                family: named(FAMILIES, k.family.into()),
                sock_type: named(SOCK_TYPES, k.sock_type.into()),
                protocol: named(PROTOCOLS, k.protocol.into()),
                mark: k.mark,
                priority: k.priority,
                saddr: address(k.family, &k.saddr),
                daddr: address(k.family, &k.daddr),
                sport: k.sport.into(),
                dport: k.dport.into(),
                state: if k.state == 0 {
                    String::new()
                } else {
                    named(TCP_STATES, k.state.into())
                },
            })
        }
        VIGIL_ARG_SKB => {
            let k: vigil_arg_skb = read(bytes).ok()?;
            ArgValue::SkbArg(KprobeSkb {
                hash: k.hash,
                len: k.len,
                priority: k.priority,
                mark: k.mark,
                saddr: address(k.family, &k.saddr),
                daddr: address(k.family, &k.daddr),
                sport: k.sport.into(),
                dport: k.dport.into(),
                proto: k.proto.into(),
                protocol: if k.family == 0 {
                    String::new()
                } else {
                    named(PROTOCOLS, k.protocol.into())
                },
                family: if k.family == 0 {
                    String::new()
                } else {
                    named(FAMILIES, k.family.into())
                },
            })
        }
        VIGIL_ARG_BPF_ATTR => {
            let a: vigil_arg_bpf_attr = read(bytes).ok()?;
            ArgValue::BpfAttrArg(KprobeBpfAttr {
                prog_type: named(PROG_TYPES, a.prog_type),
                insn_cnt: a.insn_cnt,
                prog_name: c_text(&a.prog_name),
            })
        }
        VIGIL_ARG_BPF_MAP => {
            let m: vigil_arg_bpf_map = read(bytes).ok()?;
            ArgValue::BpfMapArg(KprobeBpfMap {
                map_type: named(MAP_TYPES, m.map_type),
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                map_name: c_text(&m.map_name),
            })
        }
        VIGIL_ARG_PERF_EVENT => {
            let p: vigil_arg_perf_event = read(bytes).ok()?;
            ArgValue::PerfEventArg(KprobePerfEvent {
                kprobe_func: c_text(&p.kprobe_func),
                event_type: named(PERF_TYPES, p.perf_type),
                config: p.config,
                probe_offset: p.probe_offset,
            })
        }
        _ => return None,
    };
    Some(KprobeArgument {
        value,
        label: meta.label.clone(),
    })
}

/// A NUL-terminated (or full) kernel char array as text.
fn c_text(chars: &[std::os::raw::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `enum bpf_prog_type` (include/uapi/linux/bpf.h).
const PROG_TYPES: &[(&str, u32)] = &[
    ("BPF_PROG_TYPE_UNSPEC", 0),
    ("BPF_PROG_TYPE_SOCKET_FILTER", 1),
    ("BPF_PROG_TYPE_KPROBE", 2),
    ("BPF_PROG_TYPE_SCHED_CLS", 3),
    ("BPF_PROG_TYPE_SCHED_ACT", 4),
    ("BPF_PROG_TYPE_TRACEPOINT", 5),
    ("BPF_PROG_TYPE_XDP", 6),
    ("BPF_PROG_TYPE_PERF_EVENT", 7),
    ("BPF_PROG_TYPE_CGROUP_SKB", 8),
    ("BPF_PROG_TYPE_CGROUP_SOCK", 9),
    ("BPF_PROG_TYPE_LWT_IN", 10),
    ("BPF_PROG_TYPE_LWT_OUT", 11),
    ("BPF_PROG_TYPE_LWT_XMIT", 12),
    ("BPF_PROG_TYPE_SOCK_OPS", 13),
    ("BPF_PROG_TYPE_SK_SKB", 14),
    ("BPF_PROG_TYPE_CGROUP_DEVICE", 15),
    ("BPF_PROG_TYPE_SK_MSG", 16),
    ("BPF_PROG_TYPE_RAW_TRACEPOINT", 17),
    ("BPF_PROG_TYPE_CGROUP_SOCK_ADDR", 18),
    ("BPF_PROG_TYPE_LWT_SEG6LOCAL", 19),
    ("BPF_PROG_TYPE_LIRC_MODE2", 20),
    ("BPF_PROG_TYPE_SK_REUSEPORT", 21),
    ("BPF_PROG_TYPE_FLOW_DISSECTOR", 22),
    ("BPF_PROG_TYPE_CGROUP_SYSCTL", 23),
    ("BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE", 24),
    ("BPF_PROG_TYPE_CGROUP_SOCKOPT", 25),
    ("BPF_PROG_TYPE_TRACING", 26),
    ("BPF_PROG_TYPE_STRUCT_OPS", 27),
    ("BPF_PROG_TYPE_EXT", 28),
    ("BPF_PROG_TYPE_LSM", 29),
    ("BPF_PROG_TYPE_SK_LOOKUP", 30),
    ("BPF_PROG_TYPE_SYSCALL", 31),
    ("BPF_PROG_TYPE_NETFILTER", 32),
];

/// `enum bpf_map_type` (include/uapi/linux/bpf.h).
const MAP_TYPES: &[(&str, u32)] = &[
    ("BPF_MAP_TYPE_UNSPEC", 0),
    ("BPF_MAP_TYPE_HASH", 1),
    ("BPF_MAP_TYPE_ARRAY", 2),
    ("BPF_MAP_TYPE_PROG_ARRAY", 3),
    ("BPF_MAP_TYPE_PERF_EVENT_ARRAY", 4),
    ("BPF_MAP_TYPE_PERCPU_HASH", 5),
    ("BPF_MAP_TYPE_PERCPU_ARRAY", 6),
    ("BPF_MAP_TYPE_STACK_TRACE", 7),
    ("BPF_MAP_TYPE_CGROUP_ARRAY", 8),
    ("BPF_MAP_TYPE_LRU_HASH", 9),
    ("BPF_MAP_TYPE_LRU_PERCPU_HASH", 10),
    ("BPF_MAP_TYPE_LPM_TRIE", 11),
    ("BPF_MAP_TYPE_ARRAY_OF_MAPS", 12),
    ("BPF_MAP_TYPE_HASH_OF_MAPS", 13),
    ("BPF_MAP_TYPE_DEVMAP", 14),
    ("BPF_MAP_TYPE_SOCKMAP", 15),
    ("BPF_MAP_TYPE_CPUMAP", 16),
    ("BPF_MAP_TYPE_XSKMAP", 17),
    ("BPF_MAP_TYPE_SOCKHASH", 18),
    ("BPF_MAP_TYPE_CGROUP_STORAGE", 19),
    ("BPF_MAP_TYPE_REUSEPORT_SOCKARRAY", 20),
    ("BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE", 21),
    ("BPF_MAP_TYPE_QUEUE", 22),
    ("BPF_MAP_TYPE_STACK", 23),
    ("BPF_MAP_TYPE_SK_STORAGE", 24),
    ("BPF_MAP_TYPE_DEVMAP_HASH", 25),
    ("BPF_MAP_TYPE_STRUCT_OPS", 26),
    ("BPF_MAP_TYPE_RINGBUF", 27),
    ("BPF_MAP_TYPE_INODE_STORAGE", 28),
    ("BPF_MAP_TYPE_TASK_STORAGE", 29),
    ("BPF_MAP_TYPE_BLOOM_FILTER", 30),
    ("BPF_MAP_TYPE_USER_RINGBUF", 31),
    ("BPF_MAP_TYPE_CGRP_STORAGE", 32),
    ("BPF_MAP_TYPE_ARENA", 33),
];

/// `enum perf_type_id` (include/uapi/linux/perf_event.h); PMUs registered
/// at run time (kprobe, uprobe, ...) have numbers of their own.
const PERF_TYPES: &[(&str, u32)] = &[
    ("PERF_TYPE_HARDWARE", 0),
    ("PERF_TYPE_SOFTWARE", 1),
    ("PERF_TYPE_TRACEPOINT", 2),
    ("PERF_TYPE_HW_CACHE", 3),
    ("PERF_TYPE_RAW", 4),
    ("PERF_TYPE_BREAKPOINT", 5),
];

fn user_ns(ns: vigil_arg_user_ns) -> UserNamespace {
    static HOST_USER_NS: OnceLock<u32> = OnceLock::new();
    let host = *HOST_USER_NS.get_or_init(|| crate::events::host_namespaces().user);
    UserNamespace {
        level: Some(ns.level),
        uid: Some(ns.uid),
        gid: Some(ns.gid),
        ns: Namespace {
            inum: ns.inum,
            is_host: ns.inum != 0 && ns.inum == host,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RawArg;

    fn meta() -> HookMeta {
        HookMeta {
            policy: "p".into(),
            function_name: "__x64_sys_write".into(),
            message: String::new(),
            tags: vec![],
            args: vec![
                ArgMeta {
                    kind: VIGIL_ARG_FD as u8,
                    label: String::new(),
                    syscall_id: false,
                },
                ArgMeta {
                    kind: VIGIL_ARG_CHAR_BUF as u8,
                    label: String::new(),
                    syscall_id: false,
                },
                ArgMeta {
                    kind: VIGIL_ARG_SIZE as u8,
                    label: String::new(),
                    syscall_id: false,
                },
            ],
            ret: Some(ArgMeta {
                kind: VIGIL_ARG_INT as u8,
                label: String::new(),
                syscall_id: false,
            }),
            selector_actions: vec!["KPROBE_ACTION_SIGKILL"],
            event: EventKind::Kprobe,
        }
    }

    #[test]
    fn ima_hash_is_algorithm_and_hex() {
        let mut hash = vigil_ima_hash {
            algo: 4,
            ..Default::default()
        };
        hash.digest[..3].copy_from_slice(&[0x9f, 0x86, 0x0d]);
        let text = ima_hash(&hash);
        assert!(text.starts_with("sha256:9f860d00"), "{text}");
        assert_eq!(text.len(), "sha256:".len() + 64);
        hash.algo = 2;
        assert_eq!(ima_hash(&hash).len(), "sha1:".len() + 40);
        hash.algo = -95;
        assert_eq!(ima_hash(&hash), "");
    }

    #[test]
    fn typed_args_return_and_honest_action() {
        let raw = |kind: u32, bytes: &[u8]| RawArg {
            kind: kind as u8,
            bytes: bytes.to_vec(),
        };
        let mut rec = KprobeRecord {
            ktime: 0,
            key: crate::decode::ProcKey { pid: 1, ktime: 1 },
            tid: 1,
            hook: 0,
            flags: 0,
            selector: 0,
            ret: Some(-9),
            ret_data: Vec::new(),
            ima_hash: None,
            kernel_stack: None,
            user_stack: None,
            args: vec![
                raw(VIGIL_ARG_FD, b"/tmp/x"),
                raw(VIGIL_ARG_CHAR_BUF, b"hi"),
                raw(VIGIL_ARG_SIZE, &2u64.to_le_bytes()),
            ],
        };
        let ev = kprobe_event(
            &rec,
            &meta(),
            vigil_events::Process::default().into(),
            None,
            vec![],
        );
        assert_eq!(
            ev.args[0].value,
            ArgValue::FileArg(KprobeFile {
                path: "/tmp/x".into()
            })
        );
        assert_eq!(ev.args[1].value, ArgValue::BytesArg("aGk=".into()));
        assert_eq!(ev.args[2].value, ArgValue::SizeArg("2".into()));
        assert_eq!(ev.r#return.unwrap().value, ArgValue::IntArg(-9));
        assert_eq!(ev.action, "KPROBE_ACTION_SIGKILL");
        rec.flags = VIGIL_KPROBE_MONITORED;
        let ev = kprobe_event(
            &rec,
            &meta(),
            vigil_events::Process::default().into(),
            None,
            vec![],
        );
        assert_eq!(ev.action, "KPROBE_ACTION_POST");
    }

    #[test]
    fn sock_and_sockaddr_args_use_tetragon_names() {
        let mut k = vigil_sock_arg {
            family: libc::AF_INET as u16,
            sock_type: libc::SOCK_STREAM as u16,
            protocol: libc::IPPROTO_TCP as u16,
            state: 2,
            sport: 40000,
            dport: 4242,
            ..Default::default()
        };
        k.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        k.daddr[..4].copy_from_slice(&[127, 0, 0, 2]);
        let bytes = crate::sensors::bytes_of(&k);
        let meta = |kind: u32, label: &str| ArgMeta {
            kind: kind as u8,
            label: label.to_owned(),
            syscall_id: false,
        };
        let arg = argument(&meta(VIGIL_ARG_SOCK, ""), bytes).expect("sock arg");
        assert_eq!(
            serde_json::to_value(&arg).unwrap(),
            serde_json::json!({"sock_arg": {"family": "AF_INET", "type": "SOCK_STREAM",
                "protocol": "IPPROTO_TCP", "saddr": "127.0.0.1", "daddr": "127.0.0.2",
                "sport": 40000, "dport": 4242, "state": "TCP_SYN_SENT"}})
        );
        let mut a = vigil_sockaddr_arg {
            family: libc::AF_INET6 as u16,
            port: 443,
            ..Default::default()
        };
        a.addr[15] = 1;
        let arg = argument(
            &meta(VIGIL_ARG_SOCKADDR, "dst"),
            crate::sensors::bytes_of(&a),
        )
        .expect("sockaddr arg");
        assert_eq!(
            serde_json::to_value(&arg).unwrap(),
            serde_json::json!({"sockaddr_arg": {"family": "AF_INET6", "addr": "::1", "port": 443},
                "label": "dst"})
        );
        assert!(argument(&meta(VIGIL_ARG_SOCK, ""), &bytes[..10]).is_none());
    }

    #[test]
    fn skb_bpf_and_perf_args_use_tetragon_names() {
        let meta = |kind: u32| ArgMeta {
            kind: kind as u8,
            label: String::new(),
            syscall_id: false,
        };
        let json = |kind: u32, bytes: &[u8]| {
            serde_json::to_value(argument(&meta(kind), bytes).expect("argument")).unwrap()
        };
        let mut skb = vigil_arg_skb {
            len: 33,
            family: libc::AF_INET as u16,
            protocol: libc::IPPROTO_UDP as u16,
            proto: 0x0800,
            sport: 40000,
            dport: 53,
            ..Default::default()
        };
        skb.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        skb.daddr[..4].copy_from_slice(&[127, 0, 0, 53]);
        assert_eq!(
            json(VIGIL_ARG_SKB, crate::sensors::bytes_of(&skb)),
            serde_json::json!({"skb_arg": {"len": 33, "saddr": "127.0.0.1",
                "daddr": "127.0.0.53", "sport": 40000, "dport": 53, "proto": 2048,
                "protocol": "IPPROTO_UDP", "family": "AF_INET"}})
        );
        let mut attr = vigil_arg_bpf_attr {
            prog_type: 1,
            insn_cnt: 2,
            ..Default::default()
        };
        attr.prog_name[..3].copy_from_slice(&[b'a' as _, b'b' as _, b'c' as _]);
        assert_eq!(
            json(VIGIL_ARG_BPF_ATTR, crate::sensors::bytes_of(&attr)),
            serde_json::json!({"bpf_attr_arg": {"ProgType": "BPF_PROG_TYPE_SOCKET_FILTER",
                "InsnCnt": 2, "ProgName": "abc"}})
        );
        let map = vigil_arg_bpf_map {
            map_type: 2,
            key_size: 4,
            value_size: 8,
            max_entries: 3,
            ..Default::default()
        };
        assert_eq!(
            json(VIGIL_ARG_BPF_MAP, crate::sensors::bytes_of(&map)),
            serde_json::json!({"bpf_map_arg": {"MapType": "BPF_MAP_TYPE_ARRAY",
                "KeySize": 4, "ValueSize": 8, "MaxEntries": 3}})
        );
        let perf = vigil_arg_perf_event {
            perf_type: 1,
            config: 9,
            ..Default::default()
        };
        assert_eq!(
            json(VIGIL_ARG_PERF_EVENT, crate::sensors::bytes_of(&perf)),
            serde_json::json!({"perf_event_arg": {"Type": "PERF_TYPE_SOFTWARE", "Config": "9"}})
        );
    }
}
