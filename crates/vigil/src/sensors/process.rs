//! The base process sensor: exec, fork and exit on BTF tracepoints (present
//! on every kernel with BTF, including those without kprobes or trampolines),
//! plus the start-time scan of existing processes through a task iterator.
use std::{io::Read, mem::MaybeUninit};

use anyhow::{Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Iter, Link, MapCore, OpenObject,
};
use vigil_bpf::{
    process::{ProcessSkel, ProcessSkelBuilder},
    wire::VIGIL_STAT_MAX,
};

#[derive(Debug, Clone)]
pub struct ProcessSensorConfig {
    /// Ring buffer bytes (rounded up to a power of two, at least one page).
    pub ring_buffer_bytes: u32,
    /// Capacity of the in-kernel process table.
    pub process_table_entries: u32,
    /// Backlog at which the kernel wakes the reader early.
    pub wakeup_bytes: u64,
}

pub struct ProcessSensor<'obj> {
    pub skel: ProcessSkel<'obj>,
    _links: Vec<Link>,
}

impl<'obj> ProcessSensor<'obj> {
    pub fn load(obj: &'obj mut MaybeUninit<OpenObject>, cfg: &ProcessSensorConfig) -> Result<Self> {
        let mut open = ProcessSkelBuilder::default()
            .open(obj)
            .context("opening the process sensor's BPF object")?;
        let ring = cfg.ring_buffer_bytes.max(4096).next_power_of_two();
        open.maps
            .events
            .set_max_entries(ring)
            .context("sizing the ring buffer")?;
        open.maps
            .procs
            .set_max_entries(cfg.process_table_entries.max(1))
            .context("sizing the process table")?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.vigil_config.wakeup_bytes = cfg.wakeup_bytes.min(u64::from(ring) / 2);
        }
        let skel = open
            .load()
            .context("loading the process sensor (BPF verifier)")?;
        let mut links = Vec::new();
        for (name, prog) in [
            ("tp_btf/sched_process_exec", &skel.progs.vigil_exec),
            ("tp_btf/sched_process_fork", &skel.progs.vigil_fork),
            ("tp_btf/sched_process_exit", &skel.progs.vigil_exit),
        ] {
            links.push(prog.attach().with_context(|| format!("attaching {name}"))?);
        }
        Ok(ProcessSensor {
            skel,
            _links: links,
        })
    }

    /// Records of every process alive now, as the kernel's task iterator sees them.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let link = self
            .skel
            .progs
            .vigil_snapshot
            .attach()
            .context("attaching the task iterator")?;
        let mut iter = Iter::new(&link).context("creating the task iterator")?;
        let mut out = Vec::new();
        iter.read_to_end(&mut out)
            .context("reading the task iterator")?;
        Ok(out)
    }

    /// The kernel side's counters (`enum vigil_stat`), summed over CPUs.
    pub fn counters(&self) -> Result<[u64; VIGIL_STAT_MAX as usize]> {
        let mut out = [0u64; VIGIL_STAT_MAX as usize];
        for (idx, slot) in out.iter_mut().enumerate() {
            *slot = super::percpu_sum(&self.skel.maps.stats, idx as u32)?;
        }
        Ok(out)
    }

    /// Entries in use in the in-kernel process table.
    pub fn process_table_len(&self) -> usize {
        self.skel.maps.procs.keys().count()
    }
}
