//! TracingPolicy tracepoints. Classic ones: one instance of
//! `bpf/generic/tracepoint.bpf.c` per hook, with the hook and its argument
//! fields in read-only data (6.1 has no tracepoint attach cookies, and the
//! record's common_type is overwritten for BPF). Raw ones (`raw: true`): one
//! object (`bpf/generic/raw_tracepoint.bpf.c`), loaded with the first raw
//! hook and dropped with the last, attached once per hook with the hook's
//! id as the attach cookie. Maps are shared with the system call object.
use std::{collections::BTreeMap, os::fd::AsFd};

use anyhow::{Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, RawTracepointOpts, TracepointCategory,
};
use vigil_bpf::{
    raw_tracepoint::{RawTracepointSkel, RawTracepointSkelBuilder},
    syscall::SyscallSkel,
    tracepoint::{types::vigil_tp_field, TracepointSkel, TracepointSkelBuilder},
    wire::VIGIL_TP_FIELD_SIGNED,
};

use super::{generic::load_logged, Owned};
use crate::{policy::TracepointArg, reuse_generic_maps};

/// One tracepoint hook.
pub struct TracepointHook<'a> {
    pub id: u32,
    pub subsystem: &'a str,
    pub event: &'a str,
    pub fields: &'a [TracepointArg],
}

/// The classic tracepoint instance serving one hook. The link is declared
/// first: it is dropped (detached) before the object.
pub struct ClassicTracepoint {
    _link: Link,
    _skel: Owned<TracepointSkel<'static>>,
}

impl ClassicTracepoint {
    /// Loads an instance for `hook` (its id and fields in read-only data)
    /// with the system call object's maps, and attaches it.
    pub fn load(
        shared: &SyscallSkel<'_>,
        wakeup_bytes: u64,
        hook: &TracepointHook<'_>,
    ) -> Result<Self> {
        let skel = Owned::new(|storage| {
            let mut open = TracepointSkelBuilder::default()
                .open(storage)
                .context("opening the tracepoint hook's BPF object")?;
            reuse_generic_maps!(&mut open.maps, &shared.maps)?;
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.agent_tgid = std::process::id();
                rodata.host_user_ns = crate::events::host_namespaces().user;
                rodata.vigil_config.wakeup_bytes = wakeup_bytes;
                rodata.tp_hooks.count = 1;
                rodata.tp_hooks.hooks[0] = hook.id;
                for (field, f) in rodata.tp_fields[0].fields.iter_mut().zip(hook.fields) {
                    *field = vigil_tp_field {
                        offset: f.offset,
                        size: f.size,
                        flags: if f.signed {
                            VIGIL_TP_FIELD_SIGNED as u8
                        } else {
                            0
                        },
                    };
                }
            }
            load_logged(|| open.load())
        })?;
        let (subsystem, event) = (hook.subsystem, hook.event);
        let link = skel
            .progs
            .vigil_tracepoint
            .attach_tracepoint(TracepointCategory::Custom(subsystem.to_owned()), event)
            .with_context(|| format!("attaching tracepoint {subsystem}/{event}"))?;
        Ok(ClassicTracepoint {
            _link: link,
            _skel: skel,
        })
    }
}

/// The raw tracepoint object and each hook's link. The links are declared
/// first: they are dropped (detached) before the object.
pub struct RawTracepoints {
    links: BTreeMap<u32, Link>,
    skel: Owned<RawTracepointSkel<'static>>,
}

impl RawTracepoints {
    /// Loads the raw tracepoint object with the system call object's maps.
    pub fn load(shared: &SyscallSkel<'_>, wakeup_bytes: u64) -> Result<Self> {
        let skel = Owned::new(|storage| {
            let mut open = RawTracepointSkelBuilder::default()
                .open(storage)
                .context("opening the raw tracepoint hook's BPF object")?;
            reuse_generic_maps!(&mut open.maps, &shared.maps)?;
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.agent_tgid = std::process::id();
                rodata.host_user_ns = crate::events::host_namespaces().user;
                rodata.vigil_config.wakeup_bytes = wakeup_bytes;
            }
            load_logged(|| open.load()).context(
                "raw tracepoint hooks need attach cookies in raw_tp programs (Linux 6.10+)",
            )
        })?;
        Ok(RawTracepoints {
            links: BTreeMap::new(),
            skel,
        })
    }

    /// Attaches the program for one hook, with its id as the cookie.
    pub fn attach(&mut self, hook: &TracepointHook<'_>) -> Result<()> {
        let opts = RawTracepointOpts {
            cookie: u64::from(hook.id),
            ..Default::default()
        };
        let link = self
            .skel
            .progs
            .vigil_raw_tracepoint
            .attach_raw_tracepoint_with_opts(hook.event, opts)
            .with_context(|| format!("attaching raw_tp {}", hook.event))?;
        self.links.insert(hook.id, link);
        Ok(())
    }

    /// Detaches hook `id`.
    pub fn detach(&mut self, id: u32) {
        self.links.remove(&id);
    }

    /// No hook is attached.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}
