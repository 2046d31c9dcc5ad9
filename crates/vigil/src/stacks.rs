//! Stack traces of policy events (Post `kernelStackTrace` /
//! `userStackTrace`). The kernel stores each stack once in the fixed-size
//! stack-trace map `stack_traces` and puts its id in the event; here an id
//! becomes its addresses, its slot is freed for later stacks, and the
//! addresses become symbols with blazesym: kernel ones from /proc/kallsyms,
//! user ones from the process's mappings and ELF symbols (so while the
//! process still runs).
use std::collections::HashMap;

use blazesym::symbolize::{
    source::{Kernel, Process, Source},
    Input, Symbolized, Symbolizer,
};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use vigil_events::StackTraceEntry;

use crate::agent::monotonic_ns;

pub struct StackResolver {
    map: MapHandle,
    symbolizer: Symbolizer,
    /// The stacks this resolver freed, by id, with the time (CLOCK_MONOTONIC,
    /// the clock of the events) they were freed: an event recorded before
    /// that time and naming the id saw this stack in the slot (several
    /// events with one stack share one slot).
    freed: HashMap<u32, (u64, Vec<u64>)>,
}

impl StackResolver {
    pub fn new(map: MapHandle) -> Self {
        StackResolver {
            map,
            symbolizer: Symbolizer::new(),
            freed: HashMap::new(),
        }
    }

    /// The addresses of stack `id` as an event recorded at `ktime` saw
    /// them; None when the slot no longer holds them.
    fn take(&mut self, id: u32, ktime: u64) -> Option<Vec<u64>> {
        if let Some((freed_at, addrs)) = self.freed.get(&id) {
            if ktime < *freed_at {
                return Some(addrs.clone());
            }
        }
        let key = id.to_ne_bytes();
        let value = self.map.lookup(&key, MapFlags::ANY).ok().flatten()?;
        let addrs: Vec<u64> = value
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
            .take_while(|&a| a != 0)
            .collect();
        let freed_at = monotonic_ns();
        // Gone already only if another reader freed it: nothing to undo.
        let _ = self.map.delete(&key);
        self.freed.insert(id, (freed_at, addrs.clone()));
        Some(addrs)
    }

    /// Kernel stack `id`, symbolized with /proc/kallsyms.
    pub fn kernel(&mut self, id: u32, ktime: u64) -> Option<Vec<StackTraceEntry>> {
        let addrs = self.take(id, ktime)?;
        let src = Source::Kernel(Kernel {
            // kallsyms names every function; vmlinux may not be installed.
            vmlinux: blazesym::MaybeDefault::None,
            ..Kernel::default()
        });
        Some(self.symbolize(&src, &addrs))
    }

    /// User stack `id` of process `pid`, symbolized through its mappings.
    pub fn user(&mut self, id: u32, ktime: u64, pid: u32) -> Option<Vec<StackTraceEntry>> {
        let addrs = self.take(id, ktime)?;
        let src = Source::Process(Process::new(pid.into()));
        Some(self.symbolize(&src, &addrs))
    }

    /// One entry per address; an address blazesym cannot name (the process
    /// has exited, a stripped binary) keeps only its address.
    fn symbolize(&self, src: &Source, addrs: &[u64]) -> Vec<StackTraceEntry> {
        let symbols = self
            .symbolizer
            .symbolize(src, Input::AbsAddr(addrs))
            .unwrap_or_default();
        addrs
            .iter()
            .enumerate()
            .map(|(i, &address)| match symbols.get(i) {
                Some(Symbolized::Sym(sym)) => StackTraceEntry {
                    address,
                    offset: sym.offset as u64,
                    symbol: sym.name.to_string(),
                    module: sym
                        .module
                        .as_ref()
                        .map(|m| m.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                },
                _ => StackTraceEntry {
                    address,
                    ..Default::default()
                },
            })
            .collect()
    }
}
