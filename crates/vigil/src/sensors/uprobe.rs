//! TracingPolicy uprobes: one object (`bpf/generic/uprobe.bpf.c`) serves
//! every hooked symbol. Its programs are attached once per hook, with the
//! hook's number as the attach cookie, and share the system call object's
//! maps (hook configurations, selector strings, pending returns, ring buffer).
use std::{mem::MaybeUninit, os::fd::AsFd};

use anyhow::{Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    ErrorKind, Link, OpenObject, UprobeOpts,
};
use vigil_bpf::{
    syscall::SyscallSkel,
    uprobe::{UprobeSkel, UprobeSkelBuilder},
};

use super::generic::{load_logged, FailedHooks};

/// One uprobe hook: where it attaches and whether it reports the return.
pub struct UprobeHook<'a> {
    pub id: u32,
    pub path: &'a str,
    pub symbol: Option<&'a str>,
    pub offset: u64,
    pub ret: bool,
}

/// Points `$open`'s maps at the system call object's `$shared` maps.
#[macro_export]
macro_rules! reuse_generic_maps {
    ($open:expr, $shared:expr) => {{
        let (maps, to) = ($open, $shared);
        let reuse = [
            (&mut maps.events, to.events.as_fd()),
            (&mut maps.stats, to.stats.as_fd()),
            (&mut maps.procs, to.procs.as_fd()),
            (&mut maps.proc_entry_scratch, to.proc_entry_scratch.as_fd()),
            (&mut maps.path_scratch, to.path_scratch.as_fd()),
            (&mut maps.generic_scratch, to.generic_scratch.as_fd()),
            (&mut maps.hook_configs, to.hook_configs.as_fd()),
            (&mut maps.string_match, to.string_match.as_fd()),
            (&mut maps.hook_stats, to.hook_stats.as_fd()),
            (&mut maps.pending, to.pending.as_fd()),
        ];
        reuse.into_iter().try_for_each(|(map, fd)| {
            map.reuse_fd(fd)
                .with_context(|| format!("sharing map {}", map.name().to_string_lossy()))
        })
    }};
}

/// Loads the uprobe object and attaches every hook; a hook that cannot
/// attach (no such symbol, ...) is returned with its reason.
pub fn load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    hooks: &[UprobeHook<'_>],
) -> Result<(UprobeSkel<'obj>, Vec<Link>, FailedHooks)> {
    let mut open = UprobeSkelBuilder::default()
        .open(obj)
        .context("opening the uprobe hook's BPF object")?;
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
            Ok(mut attached) => links.append(&mut attached),
            Err(why) => failed.push((hook.id, why)),
        }
    }
    Ok((skel, links, failed))
}

/// The uprobe (and uretprobe) of one hook, or why it cannot attach.
fn attach(skel: &UprobeSkel<'_>, hook: &UprobeHook<'_>) -> Result<Vec<Link>, String> {
    let place = match hook.symbol {
        Some(symbol) => format!("{}:{symbol}", hook.path),
        None => format!("{}+{:#x}", hook.path, hook.offset),
    };
    let one = |retprobe: bool| {
        let prog = if retprobe {
            &skel.progs.vigil_uretprobe
        } else {
            &skel.progs.vigil_uprobe
        };
        let opts = UprobeOpts {
            cookie: u64::from(hook.id),
            retprobe,
            func_name: hook.symbol.map(str::to_owned),
            ..Default::default()
        };
        // With a symbol, libbpf resolves it in the ELF's symbol tables; the offset is then 0.
        let offset = if hook.symbol.is_some() {
            0
        } else {
            hook.offset
        };
        prog.attach_uprobe_with_opts(-1, hook.path, offset as usize, opts)
            .map_err(|e| match (e.kind(), hook.symbol) {
                (ErrorKind::NotFound, Some(symbol)) => format!(
                    "call not found: no function {symbol} in {} ({e})",
                    hook.path
                ),
                _ => format!("attaching uprobe {place}: {e}"),
            })
    };
    let mut links = vec![one(false)?];
    if hook.ret {
        links.push(one(true)?);
    }
    Ok(links)
}
