//! TracingPolicy tracepoints: one object (`bpf/generic/tracepoint.bpf.c`)
//! serves them all. It is loaded with the first tracepoint hook; its
//! programs are attached once per hook, with the hook's id as the attach
//! cookie; a classic tracepoint's argument fields go to `tp_fields`. Maps
//! are shared with the system call object.
use std::{collections::BTreeMap, os::fd::AsFd};

use anyhow::{Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, MapCore, MapFlags, RawTracepointOpts, TracepointCategory, TracepointOpts,
};
use vigil_bpf::{
    syscall::SyscallSkel,
    tracepoint::{TracepointSkel, TracepointSkelBuilder},
    wire::{vigil_tp_field, vigil_tp_fields, VIGIL_TP_FIELD_INT, VIGIL_TP_FIELD_SIGNED},
};

use super::{bytes_of, generic::load_logged, Owned};
use crate::{policy::TracepointArg, reuse_generic_maps};

/// One tracepoint hook.
pub struct TracepointHook<'a> {
    pub id: u32,
    pub subsystem: &'a str,
    pub event: &'a str,
    pub raw: bool,
    pub fields: &'a [TracepointArg],
}

/// The tracepoint object and each hook's link. The links are declared
/// first: they are dropped (detached) before the object.
pub struct TracepointHooks {
    links: BTreeMap<u32, Link>,
    skel: Owned<TracepointSkel<'static>>,
}

impl TracepointHooks {
    /// Loads the tracepoint object with the system call object's maps.
    pub fn load(shared: &SyscallSkel<'_>, wakeup_bytes: u64) -> Result<Self> {
        let skel = Owned::new(|storage| {
            let mut open = TracepointSkelBuilder::default()
                .open(storage)
                .context("opening the tracepoint hook's BPF object")?;
            reuse_generic_maps!(&mut open.maps, &shared.maps)?;
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.agent_tgid = std::process::id();
                rodata.host_user_ns = crate::events::host_namespaces().user;
                rodata.vigil_config.wakeup_bytes = wakeup_bytes;
            }
            load_logged(|| open.load())
        })?;
        Ok(TracepointHooks {
            links: BTreeMap::new(),
            skel,
        })
    }

    /// Attaches one hook (a classic tracepoint's fields written first).
    pub fn attach(&mut self, hook: &TracepointHook<'_>) -> Result<()> {
        let cookie = u64::from(hook.id);
        let link = if hook.raw {
            // Raw tracepoint cookies need Linux 6.10 or newer: older kernels refuse the attach.
            self.skel
                .progs
                .vigil_raw_tracepoint
                .attach_raw_tracepoint_with_opts(
                    hook.event,
                    RawTracepointOpts {
                        cookie,
                        ..Default::default()
                    },
                )
                .with_context(|| format!("attaching raw_tp {}", hook.event))?
        } else {
            let mut fields = vigil_tp_fields::default();
            for (slot, f) in fields.fields.iter_mut().zip(hook.fields) {
                let signed = if f.signed { VIGIL_TP_FIELD_SIGNED } else { 0 };
                *slot = vigil_tp_field {
                    offset: f.offset,
                    size: f.size,
                    kind: (VIGIL_TP_FIELD_INT | signed) as u8,
                };
            }
            self.write_fields(hook.id, &fields)
                .context("configuring tracepoint fields")?;
            self.skel
                .progs
                .vigil_tracepoint
                .attach_tracepoint_with_opts(
                    TracepointCategory::Custom(hook.subsystem.to_owned()),
                    hook.event,
                    TracepointOpts {
                        cookie,
                        ..Default::default()
                    },
                )
                .with_context(|| {
                    format!("attaching tracepoint {}/{}", hook.subsystem, hook.event)
                })?
        };
        self.links.insert(hook.id, link);
        Ok(())
    }

    /// Detaches hook `id` and clears its fields.
    pub fn detach(&mut self, id: u32) -> Result<()> {
        self.links.remove(&id);
        self.write_fields(id, &vigil_tp_fields::default())
            .with_context(|| format!("clearing the tracepoint fields of hook {id}"))
    }

    fn write_fields(&self, id: u32, fields: &vigil_tp_fields) -> libbpf_rs::Result<()> {
        self.skel
            .maps
            .tp_fields
            .update(&id.to_ne_bytes(), bytes_of(fields), MapFlags::ANY)
    }

    /// No hook is attached.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}
