//! TracingPolicy tracepoints. Classic ones: one instance of
//! `bpf/generic/tracepoint.bpf.c` per hooked tracepoint, with its hooks and
//! their argument fields in read-only data. Raw ones (`raw: true`): one object
//! (`bpf/generic/raw_tracepoint.bpf.c`) attached once per hook with the
//! hook's number as the attach cookie. Maps are shared with the system call
//! object.
use std::{collections::BTreeMap, mem::MaybeUninit, os::fd::AsFd};

use anyhow::{Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, OpenObject, RawTracepointOpts, TracepointCategory,
};
use vigil_bpf::{
    raw_tracepoint::{RawTracepointSkel, RawTracepointSkelBuilder},
    syscall::SyscallSkel,
    tracepoint::{types::vigil_tp_field, TracepointSkel, TracepointSkelBuilder},
    wire::{VIGIL_HOOKS_PER_SYSCALL, VIGIL_TP_FIELD_SIGNED},
};

use super::generic::{load_logged, FailedHooks};
use crate::{policy::TracepointArg, reuse_generic_maps};

/// One tracepoint hook.
pub struct TracepointHook<'a> {
    pub id: u32,
    pub subsystem: &'a str,
    pub event: &'a str,
    pub fields: &'a [TracepointArg],
}

/// Loads one classic tracepoint instance per hooked tracepoint (its hooks
/// and their argument fields in read-only data) and attaches it; hooks that
/// cannot be served are returned with the reason.
pub fn load_classic<'obj>(
    objs: &'obj mut [MaybeUninit<OpenObject>],
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    hooks: &[TracepointHook<'_>],
) -> (Vec<TracepointSkel<'obj>>, Vec<Link>, FailedHooks) {
    let mut by_tracepoint: BTreeMap<(&str, &str), Vec<&TracepointHook<'_>>> = BTreeMap::new();
    for hook in hooks {
        by_tracepoint
            .entry((hook.subsystem, hook.event))
            .or_default()
            .push(hook);
    }
    let (mut skels, mut links, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    let mut slots = objs.iter_mut();
    for ((subsystem, event), hooked) in by_tracepoint {
        let loaded = slots
            .next()
            .context("more hooked tracepoints than hooks")
            .and_then(|obj| load_one(obj, shared, wakeup_bytes, subsystem, event, &hooked));
        match loaded {
            Ok((skel, link)) => {
                skels.push(skel);
                links.push(link);
            }
            Err(e) => failed.extend(hooked.iter().map(|h| (h.id, format!("{e:#}")))),
        }
    }
    (skels, links, failed)
}

fn load_one<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    subsystem: &str,
    event: &str,
    hooks: &[&TracepointHook<'_>],
) -> Result<(TracepointSkel<'obj>, Link)> {
    if hooks.len() > VIGIL_HOOKS_PER_SYSCALL as usize {
        anyhow::bail!(
            "more than {VIGIL_HOOKS_PER_SYSCALL} hooks on tracepoint {subsystem}/{event}"
        );
    }
    let mut open = TracepointSkelBuilder::default()
        .open(obj)
        .context("opening the tracepoint hook's BPF object")?;
    reuse_generic_maps!(&mut open.maps, &shared.maps)?;
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.agent_tgid = std::process::id();
        rodata.vigil_config.wakeup_bytes = wakeup_bytes;
        rodata.tp_hooks.count = hooks.len() as u32;
        for (i, hook) in hooks.iter().enumerate() {
            rodata.tp_hooks.hooks[i] = hook.id;
            for (field, f) in rodata.tp_fields[i].fields.iter_mut().zip(hook.fields) {
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
    }
    let skel = load_logged(|| open.load())?;
    let link = skel
        .progs
        .vigil_tracepoint
        .attach_tracepoint(TracepointCategory::Custom(subsystem.to_owned()), event)
        .with_context(|| format!("attaching tracepoint {subsystem}/{event}"))?;
    Ok((skel, link))
}

/// Loads the raw tracepoint object and attaches it once per hook, with the
/// hook's number as the attach cookie.
pub fn load_raw<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    hooks: &[TracepointHook<'_>],
) -> Result<(RawTracepointSkel<'obj>, Vec<Link>, FailedHooks)> {
    let mut open = RawTracepointSkelBuilder::default()
        .open(obj)
        .context("opening the raw tracepoint hook's BPF object")?;
    reuse_generic_maps!(&mut open.maps, &shared.maps)?;
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.agent_tgid = std::process::id();
        rodata.vigil_config.wakeup_bytes = wakeup_bytes;
    }
    let skel = load_logged(|| open.load())
        .context("raw tracepoint hooks need attach cookies in raw_tp programs (Linux 6.10+)")?;
    let mut links = Vec::new();
    let mut failed = Vec::new();
    for hook in hooks {
        let opts = RawTracepointOpts {
            cookie: u64::from(hook.id),
            ..Default::default()
        };
        match skel
            .progs
            .vigil_raw_tracepoint
            .attach_raw_tracepoint_with_opts(hook.event, opts)
        {
            Ok(link) => links.push(link),
            Err(e) => failed.push((hook.id, format!("attaching raw_tp {}: {e}", hook.event))),
        }
    }
    Ok((skel, links, failed))
}
