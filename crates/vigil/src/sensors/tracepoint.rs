//! TracingPolicy tracepoints: one object (`bpf/generic/tracepoint.bpf.c`)
//! serves them all. Its programs are attached once per hook, with the
//! hook's number as the attach cookie; a classic tracepoint's argument
//! fields go to `tp_fields`. Maps are shared with the system call object.
use std::{mem::MaybeUninit, os::fd::AsFd};

use anyhow::{Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, MapCore, MapFlags, OpenObject, RawTracepointOpts, TracepointCategory, TracepointOpts,
};
use vigil_bpf::{
    syscall::SyscallSkel,
    tracepoint::{TracepointSkel, TracepointSkelBuilder},
    wire::{vigil_tp_field, vigil_tp_fields, VIGIL_TP_FIELD_INT, VIGIL_TP_FIELD_SIGNED},
};

use super::{
    bytes_of,
    generic::{load_logged, FailedHooks},
};
use crate::{policy::TracepointArg, reuse_generic_maps};

/// One tracepoint hook.
pub struct TracepointHook<'a> {
    pub id: u32,
    pub subsystem: &'a str,
    pub event: &'a str,
    pub raw: bool,
    pub fields: &'a [TracepointArg],
}

/// Loads the tracepoint object and attaches every hook; a hook that cannot
/// attach is returned with its reason.
pub fn load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    hooks: &[TracepointHook<'_>],
) -> Result<(TracepointSkel<'obj>, Vec<Link>, FailedHooks)> {
    let mut open = TracepointSkelBuilder::default()
        .open(obj)
        .context("opening the tracepoint hook's BPF object")?;
    reuse_generic_maps!(&mut open.maps, &shared.maps)?;
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.agent_tgid = std::process::id();
        rodata.vigil_config.wakeup_bytes = wakeup_bytes;
    }
    let skel = load_logged(|| open.load())?;
    let mut links = Vec::new();
    let mut failed = Vec::new();
    for hook in hooks {
        match attach(&skel, hook) {
            Ok(link) => links.push(link),
            Err(why) => failed.push((hook.id, why)),
        }
    }
    Ok((skel, links, failed))
}

fn attach(skel: &TracepointSkel<'_>, hook: &TracepointHook<'_>) -> Result<Link, String> {
    let cookie = u64::from(hook.id);
    if hook.raw {
        // Raw tracepoint cookies need Linux 6.10 or newer: older kernels refuse the attach.
        return skel
            .progs
            .vigil_raw_tracepoint
            .attach_raw_tracepoint_with_opts(
                hook.event,
                RawTracepointOpts {
                    cookie,
                    ..Default::default()
                },
            )
            .map_err(|e| format!("attaching raw_tp {}: {e}", hook.event));
    }
    let mut fields = vigil_tp_fields::default();
    for (slot, f) in fields.fields.iter_mut().zip(hook.fields) {
        let signed = if f.signed { VIGIL_TP_FIELD_SIGNED } else { 0 };
        *slot = vigil_tp_field {
            offset: f.offset,
            size: f.size,
            kind: (VIGIL_TP_FIELD_INT | signed) as u8,
        };
    }
    skel.maps
        .tp_fields
        .update(&hook.id.to_ne_bytes(), bytes_of(&fields), MapFlags::ANY)
        .map_err(|e| format!("configuring tracepoint fields: {e}"))?;
    skel.progs
        .vigil_tracepoint
        .attach_tracepoint_with_opts(
            TracepointCategory::Custom(hook.subsystem.to_owned()),
            hook.event,
            TracepointOpts {
                cookie,
                ..Default::default()
            },
        )
        .map_err(|e| {
            format!(
                "attaching tracepoint {}/{}: {e}",
                hook.subsystem, hook.event
            )
        })
}
