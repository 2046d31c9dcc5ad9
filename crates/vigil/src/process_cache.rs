//! The user-space process cache: what each live process image looks like,
//! so that later events (exit, policy events) carry full process and parent
//! context. Bounded: an entry lives while its process runs or while a child
//! entry still refers to it as parent; beyond the configured capacity the
//! least recently used entry is evicted, and evictions and misses are counted.
use std::{collections::HashMap, num::NonZeroUsize};

use lru::LruCache;
use vigil_events::ProcessRef;

use crate::decode::ProcKey;

#[derive(Debug)]
struct Entry {
    process: ProcessRef,
    parent: Option<ProcKey>,
    /// One for the running process, one per child entry naming it as parent.
    refs: u32,
    running: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub size: usize,
    pub capacity: usize,
    pub evictions: u64,
    pub misses: u64,
}

pub struct ProcessCache {
    entries: LruCache<ProcKey, Entry>,
    /// The image each pid currently runs: an exec replaces it.
    current: HashMap<u32, ProcKey>,
    capacity: usize,
    evictions: u64,
    misses: u64,
}

impl ProcessCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        ProcessCache {
            entries: LruCache::unbounded(),
            current: HashMap::new(),
            capacity: capacity.get(),
            evictions: 0,
            misses: 0,
        }
    }

    /// Records a running process image. If the pid ran another image before
    /// (exec without fork), that image stops running but stays while referenced.
    pub fn insert(&mut self, key: ProcKey, process: ProcessRef, parent: Option<ProcKey>) {
        if let Some(e) = self.entries.get_mut(&key) {
            // The same image seen twice (start scan, then its own fork record).
            e.process = process;
            return;
        }
        if let Some(parent_entry) = parent.and_then(|p| self.entries.peek_mut(&p)) {
            parent_entry.refs += 1;
        }
        let parent = parent.filter(|p| self.entries.contains(p));
        self.entries.put(
            key,
            Entry {
                process,
                parent,
                refs: 1,
                running: true,
            },
        );
        if let Some(previous) = self.current.insert(key.pid, key) {
            if previous != key {
                self.stop_running(previous);
            }
        }
        while self.entries.len() > self.capacity {
            if let Some((evicted, _)) = self.entries.pop_lru() {
                self.evictions += 1;
                if self.current.get(&evicted.pid) == Some(&evicted) {
                    self.current.remove(&evicted.pid);
                }
            }
        }
    }

    /// The process image with this key; a miss is counted.
    pub fn get(&mut self, key: &ProcKey) -> Option<ProcessRef> {
        match self.entries.get(key) {
            Some(e) => Some(e.process.clone()),
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// The image process `pid` ran at `ktime`: its current one, or the one an
    /// exec since then replaced (the new image's parent with the same pid).
    pub fn image_at(&self, pid: u32, ktime: u64) -> Option<ProcKey> {
        let current = *self.current.get(&pid)?;
        if current.ktime <= ktime {
            return Some(current);
        }
        self.parent_of(&current).filter(|p| p.pid == pid)
    }

    /// The parent key recorded for an image.
    pub fn parent_of(&self, key: &ProcKey) -> Option<ProcKey> {
        self.entries.peek(key).and_then(|e| e.parent)
    }

    /// Up to `limit` ancestors beyond the parent of `key`, nearest first.
    pub fn ancestors(&self, key: &ProcKey, limit: usize) -> Vec<ProcessRef> {
        let mut out = Vec::new();
        let mut next = self.parent_of(key).and_then(|p| self.parent_of(&p));
        while let Some(k) = next {
            let Some(e) = self.entries.peek(&k) else {
                break;
            };
            if out.len() == limit {
                break;
            }
            out.push(e.process.clone());
            next = e.parent;
        }
        out
    }

    /// The process ended: its entry goes once nothing refers to it.
    pub fn exited(&mut self, key: ProcKey) {
        if self.current.get(&key.pid) == Some(&key) {
            self.current.remove(&key.pid);
        }
        self.stop_running(key);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            size: self.entries.len(),
            capacity: self.capacity,
            evictions: self.evictions,
            misses: self.misses,
        }
    }

    fn stop_running(&mut self, key: ProcKey) {
        let Some(e) = self.entries.peek_mut(&key) else {
            return;
        };
        if !e.running {
            return;
        }
        e.running = false;
        self.release(key);
    }

    /// Drops one reference; entries left without any go, and release their parent.
    fn release(&mut self, key: ProcKey) {
        let mut next = Some(key);
        while let Some(k) = next.take() {
            let Some(e) = self.entries.peek_mut(&k) else {
                return;
            };
            e.refs = e.refs.saturating_sub(1);
            if e.refs == 0 {
                next = self.entries.pop(&k).and_then(|e| e.parent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_events::Process;

    fn key(pid: u32, ktime: u64) -> ProcKey {
        ProcKey { pid, ktime }
    }

    fn proc(binary: &str) -> ProcessRef {
        ProcessRef::new(Process {
            binary: binary.into(),
            ..Default::default()
        })
    }

    fn cache(cap: usize) -> ProcessCache {
        ProcessCache::new(NonZeroUsize::new(cap).unwrap())
    }

    #[test]
    fn parent_outlives_its_exit_while_children_run() {
        let mut c = cache(100);
        c.insert(key(1, 1), proc("/sbin/init"), None);
        c.insert(key(10, 2), proc("/bin/sh"), Some(key(1, 1)));
        c.insert(key(11, 3), proc("/bin/cat"), Some(key(10, 2)));
        c.exited(key(10, 2));
        assert!(
            c.get(&key(10, 2)).is_some(),
            "still the parent of a running child"
        );
        c.exited(key(11, 3));
        assert_eq!(c.stats().size, 1, "child and then parent released");
        assert!(c.get(&key(1, 1)).is_some());
        assert_eq!(c.stats().misses, 0);
    }

    #[test]
    fn exec_without_fork_keeps_the_old_image_as_parent() {
        let mut c = cache(100);
        c.insert(key(5, 1), proc("/bin/bash"), None);
        c.insert(key(5, 2), proc("/usr/bin/curl"), Some(key(5, 1)));
        assert_eq!(c.get(&key(5, 1)).unwrap().binary, "/bin/bash");
        c.exited(key(5, 2));
        assert_eq!(c.stats().size, 0, "both images of pid 5 are gone");
    }

    #[test]
    fn ancestors_nearest_first() {
        let mut c = cache(100);
        c.insert(key(1, 1), proc("a"), None);
        c.insert(key(2, 2), proc("b"), Some(key(1, 1)));
        c.insert(key(3, 3), proc("c"), Some(key(2, 2)));
        c.insert(key(4, 4), proc("d"), Some(key(3, 3)));
        let names: Vec<_> = c
            .ancestors(&key(4, 4), 10)
            .iter()
            .map(|p| p.binary.clone())
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(c.ancestors(&key(4, 4), 1).len(), 1);
    }

    #[test]
    fn bounded_with_counted_evictions_and_misses() {
        let mut c = cache(3);
        for i in 0..10 {
            c.insert(key(100 + i, u64::from(i)), proc("x"), None);
        }
        let s = c.stats();
        assert_eq!((s.size, s.evictions), (3, 7));
        assert!(c.get(&key(100, 0)).is_none());
        assert_eq!(c.stats().misses, 1);
        // Exiting an evicted process is harmless.
        c.exited(key(100, 0));
    }
}
