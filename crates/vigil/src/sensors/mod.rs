//! Loading and attaching vigil's BPF programs, one module per sensor.
pub mod connect;
pub mod generic;
pub mod process;
pub mod tracepoint;
pub mod uprobe;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

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
