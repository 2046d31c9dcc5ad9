//! The generic hook: TracingPolicy kprobes on system calls, served by the
//! per-syscall tracepoints (raw_tp sys_enter/sys_exit for system calls
//! without one), and on kernel functions, served by one fentry, kprobe or
//! fmod_ret instance per hooked function (with fexit or kretprobe for
//! return values); uprobes and tracepoints are loaded by their own modules
//! with the same maps. Configured entirely through maps (hook
//! configs, syscall -> hooks, selector strings) that every instance shares
//! with the system call object, which shares the process sensor's ring
//! buffer, counters and process table.
use std::{collections::BTreeMap, mem::MaybeUninit, os::fd::AsFd, sync::Mutex};

use anyhow::{anyhow, Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, MapCore, MapFlags, OpenObject, PrintLevel, TracepointCategory,
};
use vigil_bpf::{
    kprobe::{KprobeSkel, KprobeSkelBuilder},
    raw_tracepoint::RawTracepointSkel,
    syscall::{SyscallSkel, SyscallSkelBuilder},
    tracepoint::TracepointSkel,
    uprobe::UprobeSkel,
    wire::{
        vigil_addr_key, vigil_string_key, vigil_syscall_hooks, VIGIL_HOOKS_MAX, VIGIL_HOOK_RETURN,
        VIGIL_HOOK_STAT_MAX, VIGIL_MATCH_STRING_MAX,
    },
};

use super::{
    bytes_of,
    connect::ConnectHooks,
    process::ProcessSensor,
    tracepoint::{self, TracepointHook},
    uprobe::{self, UprobeHook},
};
use crate::policy::{AddrEntry, HookPlan, HookPoint};

/// The hooks on one system call, and how it is served.
struct SyscallHooks {
    name: String,
    tracepoint: bool,
    ids: Vec<u32>,
    /// Some hook reports the return value.
    exit: bool,
}

/// How a kernel function instance attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Attach {
    Fentry,
    Kprobe,
    /// BPF-LSM: the function is `bpf_lsm_NAME`, and Override applies.
    Lsm,
    /// fmod_ret: Override makes the function return its error without running.
    FmodRet,
}

/// The hooks on one kernel function (or LSM hook).
struct FunctionHooks {
    ids: Vec<u32>,
    /// Some hook reports the return value: fexit or kretprobe too.
    exit: bool,
}

/// Storage for the BPF objects: the system call object and one per hooked
/// kernel function (at most one per hook).
pub struct GenericObjects {
    syscall: MaybeUninit<OpenObject>,
    functions: Vec<MaybeUninit<OpenObject>>,
    uprobe: MaybeUninit<OpenObject>,
    tracepoints: Vec<MaybeUninit<OpenObject>>,
    raw_tracepoint: MaybeUninit<OpenObject>,
    connect: MaybeUninit<OpenObject>,
}

impl Default for GenericObjects {
    fn default() -> Self {
        GenericObjects {
            syscall: MaybeUninit::uninit(),
            functions: (0..VIGIL_HOOKS_MAX)
                .map(|_| MaybeUninit::uninit())
                .collect(),
            uprobe: MaybeUninit::uninit(),
            tracepoints: (0..VIGIL_HOOKS_MAX)
                .map(|_| MaybeUninit::uninit())
                .collect(),
            raw_tracepoint: MaybeUninit::uninit(),
            connect: MaybeUninit::uninit(),
        }
    }
}

pub struct GenericSensor<'obj> {
    skel: SyscallSkel<'obj>,
    _functions: Vec<KprobeSkel<'obj>>,
    _uprobe: Option<UprobeSkel<'obj>>,
    _tracepoints: Vec<TracepointSkel<'obj>>,
    _raw_tracepoint: Option<RawTracepointSkel<'obj>>,
    _connect: Option<ConnectHooks<'obj>>,
    _links: Vec<Link>,
}

/// Hooks that could not be attached, with the reason (the others still run).
pub type FailedHooks = Vec<(u32, String)>;

/// The trie key of a selector string (reversed for Postfix operators).
fn string_key(match_id: u32, value: &str, reversed: bool) -> vigil_string_key {
    let mut key = vigil_string_key {
        match_id,
        ..Default::default()
    };
    let bytes = value.as_bytes();
    let n = bytes.len().min(VIGIL_MATCH_STRING_MAX as usize);
    if reversed {
        for (dst, src) in key.data.iter_mut().zip(bytes.iter().rev()) {
            *dst = *src;
        }
    } else {
        key.data[..n].copy_from_slice(&bytes[..n]);
    }
    key.prefixlen = 32 + 8 * n as u32;
    key
}

/// The trie key of a selector address or CIDR.
fn addr_key(match_id: u32, entry: &AddrEntry) -> vigil_addr_key {
    let mut key = vigil_addr_key {
        match_id,
        ..Default::default()
    };
    match entry.addr {
        std::net::IpAddr::V4(a) => {
            key.family = libc::AF_INET as u32;
            key.addr[..4].copy_from_slice(&a.octets());
        }
        std::net::IpAddr::V6(a) => {
            key.family = libc::AF_INET6 as u32;
            key.addr.copy_from_slice(&a.octets());
        }
    }
    key.prefixlen = 64 + entry.bits;
    key
}

/// libbpf's messages while the object loads, to find the verifier's verdict.
static LOAD_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn keep_libbpf_message(_level: PrintLevel, msg: String) {
    tracing::debug!("libbpf: {}", msg.trim_end());
    if let Ok(mut log) = LOAD_LOG.lock() {
        log.push(msg);
    }
}

/// The verifier's key line (the one right before its `processed N insns`
/// summary), with the source line it was checking when it gave up.
fn verifier_key_line(messages: &[String]) -> Option<String> {
    let lines: Vec<&str> = messages
        .iter()
        .flat_map(|m| m.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let summary = lines.iter().position(|l| l.starts_with("processed "))?;
    let key = lines.get(summary.checked_sub(1)?)?;
    let source = lines[..summary]
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("; "));
    Some(match source {
        Some(src) => format!("{key} (at: {src})"),
        None => (*key).to_owned(),
    })
}

/// Loads an object with libbpf's messages kept, so that a verifier refusal
/// is reported by its key line.
pub(super) fn load_logged<T>(load: impl FnOnce() -> libbpf_rs::Result<T>) -> Result<T> {
    if let Ok(mut log) = LOAD_LOG.lock() {
        log.clear();
    }
    let previous = libbpf_rs::set_print(Some((PrintLevel::Warn, keep_libbpf_message)));
    let loaded = load();
    libbpf_rs::set_print(previous);
    loaded.map_err(|e| {
        let key = LOAD_LOG.lock().ok().and_then(|log| verifier_key_line(&log));
        match key {
            Some(line) => anyhow!("BPF verifier refused the program: {line} ({e})"),
            None => anyhow!("loading the BPF object failed: {e}"),
        }
    })
}

/// Loads and attaches the instance for kernel function `name`: fentry,
/// kprobe, lsm or fmod_ret (and fexit or kretprobe for return values), with
/// the system call object's maps and the function's hooks.
fn load_function<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    (name, attach): &(String, Attach),
    hooked: &FunctionHooks,
) -> Result<(KprobeSkel<'obj>, Vec<Link>)> {
    let mut open = KprobeSkelBuilder::default()
        .open(obj)
        .context("opening the kernel function hook's BPF object")?;
    let (maps, to) = (&mut open.maps, &shared.maps);
    // Per-CPU scratch maps are shared too: hook programs do not nest on a CPU
    // (their helpers call no hooked function), and copies would cost their
    // size times the CPU count per function.
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
        (&mut maps.hook_stats, to.hook_stats.as_fd()),
        (&mut maps.pending, to.pending.as_fd()),
    ];
    for (map, fd) in reuse {
        map.reuse_fd(fd)
            .with_context(|| format!("sharing map {}", map.name().to_string_lossy()))?;
    }
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.agent_tgid = std::process::id();
        rodata.host_user_ns = crate::events::host_namespaces().user;
        rodata.vigil_config.wakeup_bytes = wakeup_bytes;
        rodata.func_hooks.count = hooked.ids.len() as u32;
        for (slot, id) in rodata.func_hooks.hooks.iter_mut().zip(&hooked.ids) {
            *slot = *id;
        }
    }
    let progs = &mut open.progs;
    progs.vigil_fentry.set_autoload(*attach == Attach::Fentry);
    progs.vigil_kprobe.set_autoload(*attach == Attach::Kprobe);
    progs.vigil_lsm.set_autoload(*attach == Attach::Lsm);
    progs
        .vigil_fmod_ret
        .set_autoload(*attach == Attach::FmodRet);
    let fexit = hooked.exit && matches!(attach, Attach::Fentry | Attach::FmodRet);
    let kretprobe = hooked.exit && *attach == Attach::Kprobe;
    progs.vigil_fexit.set_autoload(fexit);
    progs.vigil_kretprobe.set_autoload(kretprobe);
    // libbpf finds an LSM hook's target as bpf_lsm_NAME.
    let mut targets = vec![];
    match attach {
        Attach::Fentry => targets.push(&mut progs.vigil_fentry),
        Attach::Lsm => targets.push(&mut progs.vigil_lsm),
        Attach::FmodRet => targets.push(&mut progs.vigil_fmod_ret),
        Attach::Kprobe => {}
    }
    if fexit {
        targets.push(&mut progs.vigil_fexit);
    }
    for prog in targets {
        prog.set_attach_target(0, Some(name.clone()))
            .with_context(|| format!("setting the attach target {name}"))?;
    }
    let skel = load_logged(|| open.load())?;
    let progs = &skel.progs;
    let mut links = vec![match attach {
        Attach::Fentry => progs.vigil_fentry.attach(),
        Attach::Lsm => progs.vigil_lsm.attach(),
        Attach::FmodRet => progs.vigil_fmod_ret.attach(),
        Attach::Kprobe => progs.vigil_kprobe.attach_kprobe(false, name),
    }
    .with_context(|| format!("attaching {attach:?} {name}"))?];
    if fexit {
        links.push(
            progs
                .vigil_fexit
                .attach()
                .with_context(|| format!("attaching fexit {name}"))?,
        );
    }
    if kretprobe {
        links.push(
            progs
                .vigil_kretprobe
                .attach_kprobe(true, name)
                .with_context(|| format!("attaching kretprobe {name}"))?,
        );
    }
    Ok((skel, links))
}

impl<'obj> GenericSensor<'obj> {
    /// Loads the system call object and one instance per hooked kernel
    /// function. A function that cannot be hooked refuses only its hooks
    /// (returned); anything else fails the whole sensor.
    pub fn load(
        objs: &'obj mut GenericObjects,
        process: &ProcessSensor,
        wakeup_bytes: u64,
        hooks: &[(u32, HookPlan)],
    ) -> Result<(Self, FailedHooks)> {
        let mut open = SyscallSkelBuilder::default()
            .open(&mut objs.syscall)
            .context("opening the generic syscall sensor's BPF object")?;
        let shared = &process.skel.maps;
        open.maps
            .events
            .reuse_fd(shared.events.as_fd())
            .context("sharing the ring buffer")?;
        open.maps
            .procs
            .reuse_fd(shared.procs.as_fd())
            .context("sharing the process table")?;
        open.maps
            .stats
            .reuse_fd(shared.stats.as_fd())
            .context("sharing the kernel counters")?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.agent_tgid = std::process::id();
            rodata.host_user_ns = crate::events::host_namespaces().user;
            rodata.vigil_config.wakeup_bytes = wakeup_bytes;
        }
        let skel = load_logged(|| open.load())?;

        let mut by_syscall: BTreeMap<u32, SyscallHooks> = BTreeMap::new();
        let mut by_function: BTreeMap<(String, Attach), FunctionHooks> = BTreeMap::new();
        let mut uprobes = Vec::new();
        let mut tracepoints = Vec::new();
        let mut raw_tracepoints = Vec::new();
        let mut connect_ids = Vec::new();
        for (id, plan) in hooks {
            skel.maps
                .hook_configs
                .update(&id.to_ne_bytes(), bytes_of(&plan.config), MapFlags::ANY)
                .with_context(|| format!("configuring hook {id}"))?;
            for s in &plan.strings {
                let key = string_key(HookPlan::match_id(*id, s.slot), &s.value, s.reversed);
                let len = s.value.len() as u32;
                skel.maps
                    .string_match
                    .update(bytes_of(&key), &len.to_ne_bytes(), MapFlags::ANY)
                    .with_context(|| format!("storing selector string {:?}", s.value))?;
            }
            for a in &plan.addrs {
                let key = addr_key(HookPlan::match_id(*id, a.slot), a);
                skel.maps
                    .addr_match
                    .update(bytes_of(&key), &[1], MapFlags::ANY)
                    .with_context(|| format!("storing selector address {}/{}", a.addr, a.bits))?;
            }
            let (nr, name, tracepoint) = match &plan.point {
                HookPoint::Syscall {
                    nr,
                    name,
                    tracepoint,
                } => (nr, name, tracepoint),
                HookPoint::Function {
                    name,
                    fentry,
                    fmod_ret,
                } => {
                    let attach = match (fmod_ret, fentry) {
                        (true, _) => Attach::FmodRet,
                        (false, true) => Attach::Fentry,
                        (false, false) => Attach::Kprobe,
                    };
                    let hooked = by_function
                        .entry((name.clone(), attach))
                        .or_insert_with(|| FunctionHooks {
                            ids: Vec::new(),
                            exit: false,
                        });
                    hooked.ids.push(*id);
                    hooked.exit |= plan.config.flags & VIGIL_HOOK_RETURN != 0;
                    continue;
                }
                HookPoint::Uprobe {
                    path,
                    symbol,
                    offset,
                } => {
                    uprobes.push(UprobeHook {
                        id: *id,
                        path,
                        symbol: symbol.as_deref(),
                        offset: *offset,
                        ret: plan.config.flags & VIGIL_HOOK_RETURN != 0,
                    });
                    continue;
                }
                HookPoint::Tracepoint {
                    subsystem,
                    event,
                    raw,
                    fields,
                } => {
                    let hook = TracepointHook {
                        id: *id,
                        subsystem,
                        event,
                        fields,
                    };
                    if *raw {
                        raw_tracepoints.push(hook);
                    } else {
                        tracepoints.push(hook);
                    }
                    continue;
                }
                HookPoint::Lsm { hook } => {
                    by_function
                        .entry((hook.clone(), Attach::Lsm))
                        .or_insert_with(|| FunctionHooks {
                            ids: Vec::new(),
                            exit: false,
                        })
                        .ids
                        .push(*id);
                    continue;
                }
                HookPoint::CgroupConnect { .. } => {
                    connect_ids.push(*id);
                    continue;
                }
            };
            let entry = by_syscall.entry(*nr).or_insert_with(|| SyscallHooks {
                name: name.clone(),
                tracepoint: *tracepoint,
                ids: Vec::new(),
                exit: false,
            });
            entry.ids.push(*id);
            entry.exit |= plan.config.flags & VIGIL_HOOK_RETURN != 0;
        }
        let mut links = Vec::new();
        let (mut raw_enter, mut raw_exit) = (false, false);
        for (nr, hooked) in &by_syscall {
            let mut entry = vigil_syscall_hooks {
                count: hooked.ids.len() as u32,
                raw_tp: u32::from(!hooked.tracepoint),
                ..Default::default()
            };
            for (slot, id) in entry.hooks.iter_mut().zip(&hooked.ids) {
                *slot = *id;
            }
            skel.maps
                .syscall_hooks
                .update(&nr.to_ne_bytes(), bytes_of(&entry), MapFlags::ANY)
                .with_context(|| format!("hooking system call {nr}"))?;
            if !hooked.tracepoint {
                raw_enter = true;
                raw_exit |= hooked.exit;
                continue;
            }
            let enter = format!("sys_enter_{}", hooked.name);
            links.push(
                skel.progs
                    .vigil_syscall_enter
                    .attach_tracepoint(TracepointCategory::Syscalls, &enter)
                    .with_context(|| format!("attaching tracepoint syscalls/{enter}"))?,
            );
            if hooked.exit {
                let exit = format!("sys_exit_{}", hooked.name);
                links.push(
                    skel.progs
                        .vigil_syscall_exit
                        .attach_tracepoint(TracepointCategory::Syscalls, &exit)
                        .with_context(|| format!("attaching tracepoint syscalls/{exit}"))?,
                );
            }
        }
        // The raw tracepoints run on every system call: attached only for
        // hooked system calls that have no tracepoint of their own.
        if raw_enter {
            links.push(
                skel.progs
                    .vigil_sys_enter
                    .attach_raw_tracepoint("sys_enter")
                    .context("attaching raw_tp/sys_enter")?,
            );
        }
        if raw_exit {
            links.push(
                skel.progs
                    .vigil_sys_exit
                    .attach_raw_tracepoint("sys_exit")
                    .context("attaching raw_tp/sys_exit")?,
            );
        }
        let mut functions = Vec::new();
        let mut failed = Vec::new();
        let mut slots = objs.functions.iter_mut();
        for (function, hooked) in &by_function {
            let loaded = slots
                .next()
                .context("more hooked kernel functions than hooks")
                .and_then(|obj| load_function(obj, &skel, wakeup_bytes, function, hooked));
            match loaded {
                Ok((function, mut attached)) => {
                    functions.push(function);
                    links.append(&mut attached);
                }
                Err(e) => failed.extend(hooked.ids.iter().map(|id| (*id, format!("{e:#}")))),
            }
        }
        let mut uprobe = None;
        if !uprobes.is_empty() {
            match uprobe::load(&mut objs.uprobe, &skel, wakeup_bytes, &uprobes) {
                Ok((loaded, mut attached, mut refused)) => {
                    uprobe = Some(loaded);
                    links.append(&mut attached);
                    failed.append(&mut refused);
                }
                Err(e) => failed.extend(uprobes.iter().map(|h| (h.id, format!("{e:#}")))),
            }
        }
        let (tracepoint_skels, mut attached, mut refused) =
            tracepoint::load_classic(&mut objs.tracepoints, &skel, wakeup_bytes, &tracepoints);
        links.append(&mut attached);
        failed.append(&mut refused);
        let mut raw_tracepoint = None;
        if !raw_tracepoints.is_empty() {
            let loaded = tracepoint::load_raw(
                &mut objs.raw_tracepoint,
                &skel,
                wakeup_bytes,
                &raw_tracepoints,
            );
            match loaded {
                Ok((loaded, mut attached, mut refused)) => {
                    raw_tracepoint = Some(loaded);
                    links.append(&mut attached);
                    failed.append(&mut refused);
                }
                Err(e) => failed.extend(raw_tracepoints.iter().map(|h| (h.id, format!("{e:#}")))),
            }
        }
        let connect = if connect_ids.is_empty() {
            None
        } else {
            match ConnectHooks::load(&mut objs.connect, &skel, wakeup_bytes, &connect_ids) {
                Ok(c) => Some(c),
                Err(e) => {
                    failed.extend(connect_ids.iter().map(|id| (*id, format!("{e:#}"))));
                    None
                }
            }
        };
        Ok((
            GenericSensor {
                skel,
                _functions: functions,
                _uprobe: uprobe,
                _tracepoints: tracepoint_skels,
                _raw_tracepoint: raw_tracepoint,
                _connect: connect,
                _links: links,
            },
            failed,
        ))
    }

    /// A hook's counters (`enum vigil_hook_stat`), summed over CPUs.
    pub fn hook_counters(&self, hook: u32) -> Result<[u64; VIGIL_HOOK_STAT_MAX as usize]> {
        let mut out = [0u64; VIGIL_HOOK_STAT_MAX as usize];
        for (stat, slot) in out.iter_mut().enumerate() {
            *slot = super::percpu_sum(
                &self.skel.maps.hook_stats,
                hook * VIGIL_HOOK_STAT_MAX + stat as u32,
            )?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_key_line_is_the_error() {
        let log = [
            "libbpf: prog 'x': BPF program load failed: -EACCES\n".to_owned(),
            "; x = y[i]; @ a.bpf.c:7\n10: (71) r9 = *(u8 *)(r9 +0)\ninvalid access to map value, value_size=360 off=4199 size=1\n\
             R9 max value is outside of the allowed memory range\nprocessed 12483 insns (limit 1000000)\n"
                .to_owned(),
        ];
        assert_eq!(
            verifier_key_line(&log).as_deref(),
            Some("R9 max value is outside of the allowed memory range (at: x = y[i]; @ a.bpf.c:7)")
        );
        assert_eq!(verifier_key_line(&["no summary".to_owned()]), None);
    }

    #[test]
    fn postfix_keys_are_reversed() {
        let k = string_key(7, "abc", true);
        assert_eq!((k.match_id, k.prefixlen), (7, 32 + 24));
        assert_eq!(&k.data[..3], b"cba");
        assert_eq!(&string_key(7, "abc", false).data[..3], b"abc");
    }
}
