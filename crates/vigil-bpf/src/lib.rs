//! The kernel side of vigil: BPF skeletons, one module per sensor, and the
//! wire format shared with the BPF programs (`bpf/include/intf.h`).

/// Structs and constants of `intf.h`, as bindgen sees them.
#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/intf.rs"));
}

/// The base process sensor: exec, fork, exit and the start-time scan.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod process {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}

/// The generic system call hook that TracingPolicy kprobes on system calls compile to.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod syscall {
    include!(concat!(env!("OUT_DIR"), "/syscall.skel.rs"));
}

/// The generic hook on kernel functions (fentry or kprobe), one instance per hooked function.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod kprobe {
    include!(concat!(env!("OUT_DIR"), "/kprobe.skel.rs"));
}

/// The generic hook on user-space functions (uprobes), one object for all of them.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod uprobe {
    include!(concat!(env!("OUT_DIR"), "/uprobe.skel.rs"));
}

/// The generic hook on classic tracepoints, one object for all of them.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod tracepoint {
    include!(concat!(env!("OUT_DIR"), "/tracepoint.skel.rs"));
}

/// The cgroup sock_addr front-end: connect(2), UDP send and bind(2) hooks
/// that block on kernels without BPF-LSM.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod sock_addr {
    include!(concat!(env!("OUT_DIR"), "/sock_addr.skel.rs"));
}

/// The generic hook on raw tracepoints, one object for all of them.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod raw_tracepoint {
    include!(concat!(env!("OUT_DIR"), "/raw_tracepoint.skel.rs"));
}

/// `vigil probe`: one trivial program per hook kind, loaded one at a time.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod features {
    include!(concat!(env!("OUT_DIR"), "/features.skel.rs"));
}

/// The wire structs as the BPF object lays them out (clang, BPF target, from
/// the object's BTF) must match what user space reads (bindgen, host target).
#[cfg(test)]
mod layout {
    use std::mem::{offset_of, size_of};

    use super::{process::types as bpf, wire};

    macro_rules! same_layout {
        ($t:ident { $($f:ident),+ $(,)? }) => {{
            assert_eq!(size_of::<wire::$t>(), size_of::<bpf::$t>(), "size of {}", stringify!($t));
            $(assert_eq!(
                offset_of!(wire::$t, $f),
                offset_of!(bpf::$t, $f),
                "offset of {}.{}", stringify!($t), stringify!($f)
            );)+
        }};
    }

    #[test]
    fn wire_structs_agree() {
        same_layout!(vigil_msg_header { kind, size, ktime });
        same_layout!(vigil_proc_key { pid, ktime });
        same_layout!(vigil_creds {
            uid,
            gid,
            euid,
            egid,
            suid,
            sgid,
            fsuid,
            fsgid,
            securebits,
            cap_permitted,
            cap_effective,
            cap_inheritable,
        });
        same_layout!(vigil_namespaces {
            uts,
            ipc,
            mnt,
            pid,
            pid_for_children,
            net,
            time,
            time_for_children,
            cgroup,
            user,
        });
        same_layout!(vigil_msg_exec {
            hdr,
            key,
            parent,
            tid,
            auid,
            flags,
            priv_flags,
            file_uid,
            file_gid,
            file_ino,
            file_nlink,
            cgroup_id,
            creds,
            ns,
            filename_len,
            cwd_len,
            cgroup_len,
            cgroup_parent_len,
            unlinked_path_len,
            args_len,
        });
        same_layout!(vigil_msg_clone {
            hdr,
            key,
            parent,
            tid,
            flags
        });
        same_layout!(vigil_msg_exit {
            hdr,
            key,
            tid,
            exit_code,
            flags
        });
        same_layout!(vigil_process_config { wakeup_bytes });
    }

    #[test]
    fn generic_wire_structs_agree() {
        use super::syscall::types as bpf;
        same_layout!(vigil_msg_kprobe {
            hdr,
            key,
            tid,
            hook,
            action,
            flags,
            ret,
            selector,
            signal,
            args
        });
        same_layout!(vigil_hook_config {
            flags,
            nargs,
            nselectors,
            ret_type,
            args,
            selectors
        });
        same_layout!(vigil_scope_key { hook, cgroup_id });
        same_layout!(vigil_syscall_hooks {
            count,
            hooks,
            raw_tp
        });
        same_layout!(vigil_string_key {
            prefixlen,
            match_id,
            data
        });
        same_layout!(vigil_addr_key {
            prefixlen,
            match_id,
            family,
            addr
        });
        same_layout!(vigil_sockaddr_arg { family, port, addr });
        same_layout!(vigil_sock_arg {
            family,
            sock_type,
            protocol,
            state,
            sport,
            dport,
            mark,
            priority,
            saddr,
            daddr
        });
        same_layout!(vigil_arg_skb {
            hash,
            len,
            priority,
            mark,
            family,
            protocol,
            proto,
            sport,
            dport,
            saddr,
            daddr
        });
        same_layout!(vigil_arg_bpf_attr {
            prog_type,
            insn_cnt,
            prog_name
        });
        same_layout!(vigil_arg_bpf_map {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_name
        });
        same_layout!(vigil_arg_perf_event {
            perf_type,
            config,
            probe_offset,
            kprobe_func
        });
    }

    #[test]
    fn tracepoint_wire_structs_agree() {
        use super::tracepoint::types as bpf;
        same_layout!(vigil_tp_field {
            offset,
            size,
            flags
        });
        same_layout!(vigil_tp_fields { fields });
    }
}
