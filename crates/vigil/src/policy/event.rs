//! `process_kprobe` events from kernel records of policy hooks.
use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::OnceLock,
};

use vigil_bpf::wire::{
    vigil_arg_cred, vigil_arg_user_ns, vigil_sock_arg, vigil_sockaddr_arg, VIGIL_ARG_CAPABILITY,
    VIGIL_ARG_CHAR_BUF, VIGIL_ARG_CHAR_IOVEC, VIGIL_ARG_CRED, VIGIL_ARG_DENTRY, VIGIL_ARG_FD,
    VIGIL_ARG_FILE, VIGIL_ARG_INT, VIGIL_ARG_KERNEL_CAP, VIGIL_ARG_LINUX_BINPRM, VIGIL_ARG_LONG,
    VIGIL_ARG_PATH, VIGIL_ARG_SIZE, VIGIL_ARG_SOCK, VIGIL_ARG_SOCKADDR, VIGIL_ARG_SOCKADDR_KERNEL,
    VIGIL_ARG_STRING, VIGIL_ARG_UINT, VIGIL_ARG_ULONG, VIGIL_ARG_USER_NS, VIGIL_KPROBE_MONITORED,
    VIGIL_KPROBE_SIGNAL_FAILED,
};
use vigil_events::{
    caps, ArgValue, EventBody, KprobeArgument, KprobeCapability, KprobeFile, KprobeSock,
    KprobeSockaddr, Namespace, ProcessKprobe, ProcessLsm, ProcessRef, ProcessTracepoint,
    ProcessUprobe, ProcessUsdt, SyscallId, UserNamespace,
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
        _ => return None,
    };
    Some(KprobeArgument {
        value,
        label: meta.label.clone(),
    })
}

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
}
