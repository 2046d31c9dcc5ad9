//! Loading and attaching vigil's BPF programs, one module per sensor.
pub mod fanotify;
pub mod generic;
pub mod process;
pub mod sock_addr;
pub mod tracepoint;
pub mod uprobe;

use std::mem::{ManuallyDrop, MaybeUninit};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

/// A skeleton together with the heap storage its object lives in, so that
/// skeletons can be made and dropped one by one while the agent runs.
pub(crate) struct Owned<S> {
    skel: ManuallyDrop<S>,
    storage: *mut MaybeUninit<OpenObject>,
}

impl<S> Owned<S> {
    /// Runs `open_and_load` on fresh storage; the storage is freed on failure.
    pub(crate) fn new(
        open_and_load: impl FnOnce(&'static mut MaybeUninit<OpenObject>) -> Result<S>,
    ) -> Result<Self> {
        let storage = Box::into_raw(Box::new(MaybeUninit::uninit()));
        // SAFETY: the storage stays allocated until `Owned` drops it, after
        // the skeleton (the only borrower); on failure the skeleton is
        // already gone when it is freed.
        match open_and_load(unsafe { &mut *storage }) {
            Ok(skel) => Ok(Owned {
                skel: ManuallyDrop::new(skel),
                storage,
            }),
            Err(e) => {
                // SAFETY: allocated above with Box, no borrow remains.
                drop(unsafe { Box::from_raw(storage) });
                Err(e)
            }
        }
    }
}

impl<S> std::ops::Deref for Owned<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.skel
    }
}

impl<S> Drop for Owned<S> {
    fn drop(&mut self) {
        // SAFETY: the skeleton is dropped once, here, before the storage it
        // borrows; the storage came from Box::into_raw in `new`.
        unsafe {
            ManuallyDrop::drop(&mut self.skel);
            drop(Box::from_raw(self.storage));
        }
    }
}

/// Points `$open`'s maps at the system call object's `$shared` maps: every
/// generic hook object sees the same hook configurations, selector tries,
/// counters, pending returns and rate-limit state. Per-CPU scratch maps are
/// shared too: hook programs do not nest on a CPU (their helpers call no
/// hooked function), and copies would cost their size times the CPU count
/// per object.
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
            (&mut maps.addr_match, to.addr_match.as_fd()),
            (&mut maps.rate_limits, to.rate_limits.as_fd()),
            (&mut maps.hook_stats, to.hook_stats.as_fd()),
            (&mut maps.hook_scope, to.hook_scope.as_fd()),
            (&mut maps.pending, to.pending.as_fd()),
            (&mut maps.stack_traces, to.stack_traces.as_fd()),
            (&mut maps.tracked_socks, to.tracked_socks.as_fd()),
        ];
        reuse.into_iter().try_for_each(|(map, fd)| {
            map.reuse_fd(fd)
                .with_context(|| format!("sharing map {}", map.name().to_string_lossy()))
        })
    }};
}

/// Bytes of a plain wire struct, for map updates.
pub(crate) fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is a plain-old-data wire struct (integers and arrays only),
    // fully initialized (built from Default), read as bytes for its size.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// A per-CPU u64 counter summed over CPUs (0 when the slot was never written).
pub fn percpu_sum(map: &dyn MapCore, index: u32) -> Result<u64> {
    let per_cpu = map
        .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
        .with_context(|| {
            format!(
                "reading counter {index} of map {}",
                map.name().to_string_lossy()
            )
        })?
        .unwrap_or_default();
    Ok(per_cpu
        .iter()
        .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_ne_bytes)
        .sum())
}
