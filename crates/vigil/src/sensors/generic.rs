//! The generic hook: TracingPolicy kprobes on system calls, served by one
//! fentry or fmod_ret instance per hook on the call's function where the
//! kernel has trampolines (a kprobe with bpf_override_return for Override
//! where it has only that), else by the per-syscall tracepoints (raw_tp
//! sys_enter/sys_exit for system calls without one); on kernel functions, served by one fentry, kprobe, lsm or
//! fmod_ret instance per hook (with fexit or kretprobe for return values),
//! or, for the many kernel functions of one policy, by one kprobe.multi
//! instance (kretprobe.multi for return values) that finds each function's
//! hooks in its attach cookie;
//! uprobes and tracepoints (`uprobe.rs`, `tracepoint.rs`); connect(2), UDP
//! send and bind(2) hooks served by cgroup programs (`sock_addr.rs`). Configured entirely through maps (hook configs,
//! syscall -> hooks, selector strings and addresses) that every object
//! shares with the system call object, which shares the process sensor's
//! ring buffer, counters and process table.
//!
//! Hooks come and go while the agent runs: each gets an id from a free list,
//! its map entries and its attachments, and removing it undoes exactly
//! those, so the hooks of other policies never stop.
use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    mem::MaybeUninit,
    os::fd::AsFd,
    sync::Mutex,
};

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    KprobeMultiOpts, Link, MapCore, MapFlags, OpenObject, PrintLevel, TracepointCategory,
};
use vigil_bpf::{
    kprobe::{KprobeSkel, KprobeSkelBuilder},
    syscall::{SyscallSkel, SyscallSkelBuilder},
    wire::{
        vigil_addr_key, vigil_hook_config, vigil_scope_key, vigil_string_key, vigil_syscall_hooks,
        VIGIL_HOOKS_MAX, VIGIL_HOOKS_PER_SYSCALL, VIGIL_HOOK_LIVE, VIGIL_HOOK_RETURN,
        VIGIL_HOOK_STAT_MAX, VIGIL_MATCH_STRING_MAX, VIGIL_MULTI_ID_BITS,
    },
};

use super::{
    bytes_of,
    fanotify::{FanotifyHook, RecordSink},
    process::ProcessSensor,
    sock_addr::SockAddrHook,
    tracepoint::{ClassicTracepoint, RawTracepoints, TracepointHook},
    uprobe::{UprobeHook, UprobeHooks},
    Owned,
};
use crate::{
    policy::{AddrEntry, HookPlan, HookPoint, ImaArg, SyscallVia},
    reuse_generic_maps,
};

/// How a kernel function instance attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attach {
    Fentry,
    Kprobe,
    /// BPF-LSM: the function is `bpf_lsm_NAME`, and Override applies;
    /// with the sleepable program posting imaHash events, which hashes the
    /// file of the hook's first argument.
    Lsm(Option<ImaArg>),
    /// fmod_ret: Override makes the function return its error without running.
    FmodRet,
    /// fentry on a system call's function: arguments from the user registers.
    SyscallFentry,
    /// fmod_ret on a system call's function.
    SyscallFmodRet,
    /// A kprobe on a system call's function that Overrides by bpf_override_return.
    SyscallKprobeOverride,
}

/// One hooked system call: its hooks and the attachments serving them.
struct SyscallPoint {
    name: String,
    tracepoint: bool,
    /// Hook ids and their VIGIL_HOOK_* flags.
    hooks: Vec<(u32, u32)>,
    enter: Option<Link>,
    exit: Option<Link>,
}

impl SyscallPoint {
    fn needs_exit(&self) -> bool {
        self.hooks
            .iter()
            .any(|(_, flags)| flags & VIGIL_HOOK_RETURN != 0)
    }
}

/// The instance serving one kernel-function or LSM hook. The links are
/// declared first: they are dropped (detached) before the object.
struct FunctionInstance {
    _links: Vec<Link>,
    _skel: Owned<KprobeSkel<'static>>,
}

/// The kprobe.multi instance serving the kernel-function hooks of one
/// policy. A link cannot drop one of its functions: a removed hook's id
/// stays reserved (its configuration cleared, so the program skips it)
/// until the instance goes with its last hook.
struct MultiInstance {
    /// Every hook id its cookies name.
    ids: BTreeSet<u32>,
    /// Those not removed yet.
    live: BTreeSet<u32>,
    _links: Vec<Link>,
    _skel: Owned<KprobeSkel<'static>>,
}

/// The attach cookie of a function with hooks `ids` (see VIGIL_MULTI_ID_BITS).
fn multi_cookie(ids: &[u32]) -> u64 {
    ids.iter().enumerate().fold(0, |cookie, (i, id)| {
        cookie | (u64::from(id + 1) << (i as u32 * VIGIL_MULTI_ID_BITS))
    })
}

/// What removing a hook has to undo.
struct LiveHook {
    point: HookPoint,
    string_keys: Vec<vigil_string_key>,
    addr_keys: Vec<vigil_addr_key>,
    /// The cgroups in `hook_scope` for this hook (scoped hooks only).
    scope: BTreeSet<u64>,
}

pub struct GenericSensor {
    syscalls: BTreeMap<u32, SyscallPoint>,
    raw_enter: Option<Link>,
    raw_exit: Option<Link>,
    functions: BTreeMap<u32, FunctionInstance>,
    multi: Vec<MultiInstance>,
    /// Loaded with the first uprobe or USDT hook, dropped with the last.
    uprobes: Option<UprobeHooks>,
    tracepoints: BTreeMap<u32, ClassicTracepoint>,
    /// Loaded with the first raw tracepoint hook, dropped with the last.
    raw_tracepoints: Option<RawTracepoints>,
    sock_addrs: BTreeMap<u32, SockAddrHook>,
    fanotify: BTreeMap<u32, FanotifyHook>,
    /// Where fanotify hooks send their events (the agent's event loop).
    records: Option<RecordSink>,
    hooks: BTreeMap<u32, LiveHook>,
    /// Unused hook ids, the longest unused first, so that a late record of
    /// a removed hook is unlikely to meet a new hook under its id.
    free_ids: VecDeque<u32>,
    wakeup_bytes: u64,
    skel: Owned<SyscallSkel<'static>>,
}

fn scope_key(hook: u32, cgroup_id: u64) -> vigil_scope_key {
    vigil_scope_key {
        hook,
        cgroup_id,
        ..Default::default()
    }
}

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

/// Loads and attaches the instance serving hook `id` on kernel function
/// `name`: fentry, kprobe, lsm or fmod_ret (and fexit or kretprobe when the
/// hook reports the return value), with the system call object's maps.
fn load_function<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    name: &str,
    attach: Attach,
    (id, exit): (u32, bool),
) -> Result<(KprobeSkel<'obj>, Vec<Link>)> {
    let mut open = KprobeSkelBuilder::default()
        .open(obj)
        .context("opening the kernel function hook's BPF object")?;
    reuse_generic_maps!(&mut open.maps, &shared.maps)?;
    let ima = match attach {
        Attach::Lsm(ima) => ima,
        _ => None,
    };
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.agent_tgid = std::process::id();
        rodata.host_user_ns = crate::events::host_namespaces().user;
        rodata.vigil_config.wakeup_bytes = wakeup_bytes;
        rodata.func_hooks.count = 1;
        rodata.func_hooks.hooks[0] = id;
    }
    let progs = &mut open.progs;
    progs.vigil_fentry.set_autoload(attach == Attach::Fentry);
    progs.vigil_kprobe.set_autoload(attach == Attach::Kprobe);
    progs
        .vigil_lsm
        .set_autoload(matches!(attach, Attach::Lsm(_)));
    progs
        .vigil_lsm_ima_file
        .set_autoload(ima.is_some_and(|a| !a.binprm));
    progs
        .vigil_lsm_ima_bprm
        .set_autoload(ima.is_some_and(|a| a.binprm));
    progs.vigil_fmod_ret.set_autoload(attach == Attach::FmodRet);
    progs
        .vigil_syscall_fentry
        .set_autoload(attach == Attach::SyscallFentry);
    progs
        .vigil_syscall_fmod_ret
        .set_autoload(attach == Attach::SyscallFmodRet);
    progs
        .vigil_syscall_kprobe_override
        .set_autoload(attach == Attach::SyscallKprobeOverride);
    let fexit = exit
        && matches!(
            attach,
            Attach::Fentry | Attach::FmodRet | Attach::SyscallFentry | Attach::SyscallFmodRet
        );
    let kretprobe = exit && attach == Attach::Kprobe;
    progs.vigil_fexit.set_autoload(fexit);
    progs.vigil_kretprobe.set_autoload(kretprobe);
    progs.vigil_multi_kprobe.set_autoload(false);
    progs.vigil_multi_kretprobe.set_autoload(false);
    // libbpf finds an LSM hook's target as bpf_lsm_NAME.
    let mut targets = vec![];
    match attach {
        Attach::Fentry => targets.push(&mut progs.vigil_fentry),
        Attach::Lsm(None) => targets.push(&mut progs.vigil_lsm),
        Attach::Lsm(Some(ima)) => {
            targets.push(&mut progs.vigil_lsm);
            targets.push(if ima.binprm {
                &mut progs.vigil_lsm_ima_bprm
            } else {
                &mut progs.vigil_lsm_ima_file
            });
        }
        Attach::FmodRet => targets.push(&mut progs.vigil_fmod_ret),
        Attach::SyscallFentry => targets.push(&mut progs.vigil_syscall_fentry),
        Attach::SyscallFmodRet => targets.push(&mut progs.vigil_syscall_fmod_ret),
        Attach::Kprobe | Attach::SyscallKprobeOverride => {}
    }
    if fexit {
        targets.push(&mut progs.vigil_fexit);
    }
    for prog in targets {
        prog.set_attach_target(0, Some(name.to_owned()))
            .with_context(|| format!("setting the attach target {name}"))?;
    }
    let skel = load_logged(|| open.load())?;
    let progs = &skel.progs;
    // A hook's BPF-LSM programs run newest first: the hashing program is
    // attached before the one that evaluates the selectors, so it runs
    // right after it (defer_for_ima in generic.bpf.h).
    let ima_link = match ima {
        Some(ima) => Some(
            if ima.binprm {
                progs.vigil_lsm_ima_bprm.attach()
            } else {
                progs.vigil_lsm_ima_file.attach()
            }
            .with_context(|| format!("attaching lsm.s {name}"))?,
        ),
        None => None,
    };
    let mut links = vec![match attach {
        Attach::Fentry => progs.vigil_fentry.attach(),
        Attach::Lsm(_) => progs.vigil_lsm.attach(),
        Attach::FmodRet => progs.vigil_fmod_ret.attach(),
        Attach::Kprobe => progs.vigil_kprobe.attach_kprobe(false, name),
        Attach::SyscallFentry => progs.vigil_syscall_fentry.attach(),
        Attach::SyscallFmodRet => progs.vigil_syscall_fmod_ret.attach(),
        Attach::SyscallKprobeOverride => progs
            .vigil_syscall_kprobe_override
            .attach_kprobe(false, name),
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
    // Detached after the selectors' program (links drop in order), so no
    // event is deferred to a program that is gone.
    links.extend(ima_link);
    Ok((skel, links))
}

/// Loads the kprobe.multi instance of one policy: the program verified
/// once, attached to every function of `entries` (and the kretprobe.multi
/// program to those of `exits`, when there are any), each function's
/// hooks in its cookie; with the system call object's maps.
fn load_multi<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    shared: &SyscallSkel<'_>,
    wakeup_bytes: u64,
    entries: KprobeMultiOpts,
    exits: KprobeMultiOpts,
) -> Result<(KprobeSkel<'obj>, Vec<Link>)> {
    let mut open = KprobeSkelBuilder::default()
        .open(obj)
        .context("opening the kernel function hook's BPF object")?;
    reuse_generic_maps!(&mut open.maps, &shared.maps)?;
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.agent_tgid = std::process::id();
        rodata.host_user_ns = crate::events::host_namespaces().user;
        rodata.vigil_config.wakeup_bytes = wakeup_bytes;
    }
    let with_exits = !exits.symbols.is_empty();
    // Every other program of the object stays unloaded, whatever it is.
    for mut prog in open.open_object_mut().progs_mut() {
        prog.set_autoload(false);
    }
    let progs = &mut open.progs;
    progs.vigil_multi_kprobe.set_autoload(true);
    progs.vigil_multi_kretprobe.set_autoload(with_exits);
    let skel = load_logged(|| open.load())?;
    let functions = entries.symbols.join(", ");
    let mut links = vec![skel
        .progs
        .vigil_multi_kprobe
        .attach_kprobe_multi_with_opts(entries)
        .with_context(|| format!("attaching kprobe.multi to {functions}"))?];
    if with_exits {
        let functions = exits.symbols.join(", ");
        links.push(
            skel.progs
                .vigil_multi_kretprobe
                .attach_kprobe_multi_with_opts(exits)
                .with_context(|| format!("attaching kretprobe.multi to {functions}"))?,
        );
    }
    Ok((skel, links))
}

impl GenericSensor {
    /// Loads the system call object, which holds the maps every hook
    /// shares. Nothing is attached until a hook is added.
    pub fn load(process: &ProcessSensor, wakeup_bytes: u64) -> Result<Self> {
        let shared = &process.skel.maps;
        let skel = Owned::new(|storage| {
            let mut open = SyscallSkelBuilder::default()
                .open(storage)
                .context("opening the generic syscall sensor's BPF object")?;
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
            open.maps
                .stack_traces
                .reuse_fd(shared.stack_traces.as_fd())
                .context("sharing the stack trace map")?;
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.agent_tgid = std::process::id();
                rodata.host_user_ns = crate::events::host_namespaces().user;
                rodata.vigil_config.wakeup_bytes = wakeup_bytes;
            }
            load_logged(|| open.load())
        })?;
        Ok(GenericSensor {
            syscalls: BTreeMap::new(),
            raw_enter: None,
            raw_exit: None,
            functions: BTreeMap::new(),
            multi: Vec::new(),
            uprobes: None,
            tracepoints: BTreeMap::new(),
            raw_tracepoints: None,
            sock_addrs: BTreeMap::new(),
            fanotify: BTreeMap::new(),
            records: None,
            hooks: BTreeMap::new(),
            free_ids: (0..VIGIL_HOOKS_MAX).collect(),
            wakeup_bytes,
            skel,
        })
    }

    /// Where the events of hooks decided in user space (fanotify) go.
    pub fn set_record_sink(&mut self, sink: RecordSink) {
        self.records = Some(sink);
    }

    /// Loads one hook: an id, its configuration and selector strings, and
    /// its attachment. Returns its id and its plan with the trie ids filled
    /// in. On failure nothing of it stays.
    pub fn add_hook(&mut self, plan: &HookPlan) -> Result<(u32, HookPlan)> {
        if let HookPoint::Syscall { nr, via, .. } = &plan.point {
            // Hooks on a system call's function have an instance each.
            let shared = !via.on_function();
            if shared
                && self
                    .syscalls
                    .get(nr)
                    .is_some_and(|p| p.hooks.len() >= VIGIL_HOOKS_PER_SYSCALL as usize)
            {
                bail!(
                    "more than {VIGIL_HOOKS_PER_SYSCALL} hooks on {}",
                    plan.point
                );
            }
        }
        let (id, plan) = self.reserve(plan)?;
        match self.configure_and_attach(id, &plan) {
            Ok(()) => Ok((id, plan)),
            Err(e) => {
                if let Err(undo) = self.remove_hook(id) {
                    tracing::warn!(hook = id, error = %format!("{undo:#}"), "undoing a failed hook");
                }
                Err(e)
            }
        }
    }

    /// Loads the kprobe.multi hooks of one policy (`HookPoint::Function`
    /// with `multi`): an id and a configuration each, then one program
    /// attached to all their functions. All or nothing: on failure none of
    /// them stays.
    pub fn add_multi_hooks(&mut self, plans: &[&HookPlan]) -> Result<Vec<(u32, HookPlan)>> {
        let mut added = Vec::new();
        let result = self.configure_multi(plans, &mut added);
        if let Err(e) = result {
            for (id, _) in &added {
                if let Err(undo) = self.remove_hook(*id) {
                    tracing::warn!(hook = id, error = %format!("{undo:#}"), "undoing a failed hook");
                }
            }
            return Err(e);
        }
        Ok(added)
    }

    /// Takes a free hook id for `plan` and records the hook as live; the
    /// plan is returned with its id.
    fn reserve(&mut self, plan: &HookPlan) -> Result<(u32, HookPlan)> {
        let id = self
            .free_ids
            .pop_front()
            .with_context(|| format!("more than {VIGIL_HOOKS_MAX} hooks in all"))?;
        let mut plan = plan.clone();
        plan.assign(id);
        self.hooks.insert(
            id,
            LiveHook {
                point: plan.point.clone(),
                string_keys: Vec::new(),
                addr_keys: Vec::new(),
                scope: BTreeSet::new(),
            },
        );
        Ok((id, plan))
    }

    fn configure_multi(
        &mut self,
        plans: &[&HookPlan],
        added: &mut Vec<(u32, HookPlan)>,
    ) -> Result<()> {
        // Function -> its hooks; the functions with return hooks.
        let mut functions: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        let mut returns = BTreeSet::new();
        for plan in plans {
            let HookPoint::Function {
                name, multi: true, ..
            } = &plan.point
            else {
                bail!("{} is not served by kprobe.multi", plan.point);
            };
            let (id, plan) = self.reserve(plan)?;
            added.push((id, plan));
            let plan = &added[added.len() - 1].1;
            self.configure(id, plan)?;
            let hooks = functions.entry(name.as_str()).or_default();
            if hooks.len() >= VIGIL_HOOKS_PER_SYSCALL as usize {
                bail!("more than {VIGIL_HOOKS_PER_SYSCALL} hooks on kernel function {name}");
            }
            hooks.push(id);
            if plan.config.flags & VIGIL_HOOK_RETURN != 0 {
                returns.insert(name.as_str());
            }
        }
        let entries = KprobeMultiOpts {
            symbols: functions.keys().map(|f| (*f).to_owned()).collect(),
            cookies: functions.values().map(|ids| multi_cookie(ids)).collect(),
            ..Default::default()
        };
        let exits = KprobeMultiOpts {
            symbols: returns.iter().map(|f| (*f).to_owned()).collect(),
            cookies: returns
                .iter()
                .map(|f| multi_cookie(&functions[f]))
                .collect(),
            retprobe: true,
            ..Default::default()
        };
        let (shared, wakeup_bytes) = (&*self.skel, self.wakeup_bytes);
        let mut links = Vec::new();
        let skel = Owned::new(|storage| {
            let (skel, l) = load_multi(storage, shared, wakeup_bytes, entries, exits)?;
            links = l;
            Ok(skel)
        })?;
        let ids: BTreeSet<u32> = added.iter().map(|(id, _)| *id).collect();
        self.multi.push(MultiInstance {
            live: ids.clone(),
            ids,
            _links: links,
            _skel: skel,
        });
        Ok(())
    }

    /// Takes hook `id` out of its kprobe.multi instance; returns the ids
    /// that are free again: all of the instance's once its last hook went,
    /// none while it still runs.
    fn release_multi(&mut self, id: u32) -> Vec<u32> {
        let Some(at) = self.multi.iter().position(|m| m.ids.contains(&id)) else {
            // Its instance never loaded.
            return vec![id];
        };
        self.multi[at].live.remove(&id);
        if !self.multi[at].live.is_empty() {
            return Vec::new();
        }
        self.multi.remove(at).ids.into_iter().collect()
    }

    /// A new hook's counters, selector strings and addresses, and its
    /// configuration (last: nothing runs the hook before it is complete).
    fn configure(&mut self, id: u32, plan: &HookPlan) -> Result<()> {
        self.reset_counters(id)?;
        let maps = &self.skel.maps;
        let mut config = plan.config;
        config.flags |= VIGIL_HOOK_LIVE;
        for s in &plan.strings {
            let key = string_key(HookPlan::match_id(id, s.slot), &s.value, s.reversed);
            let len = s.value.len() as u32;
            maps.string_match
                .update(bytes_of(&key), &len.to_ne_bytes(), MapFlags::ANY)
                .with_context(|| format!("storing selector string {:?}", s.value))?;
            if let Some(live) = self.hooks.get_mut(&id) {
                live.string_keys.push(key);
            }
        }
        for a in &plan.addrs {
            let key = addr_key(HookPlan::match_id(id, a.slot), a);
            maps.addr_match
                .update(bytes_of(&key), &[1], MapFlags::ANY)
                .with_context(|| format!("storing selector address {}/{}", a.addr, a.bits))?;
            if let Some(live) = self.hooks.get_mut(&id) {
                live.addr_keys.push(key);
            }
        }
        // The configuration goes in before anything can run the hook.
        maps.hook_configs
            .update(&id.to_ne_bytes(), bytes_of(&config), MapFlags::ANY)
            .with_context(|| format!("configuring hook {id}"))
    }

    fn configure_and_attach(&mut self, id: u32, plan: &HookPlan) -> Result<()> {
        self.configure(id, plan)?;
        match &plan.point {
            HookPoint::Syscall { nr, name, via } => {
                let ret = plan.config.flags & VIGIL_HOOK_RETURN != 0;
                let attach = match via {
                    SyscallVia::Fentry => Attach::SyscallFentry,
                    SyscallVia::FmodRet => Attach::SyscallFmodRet,
                    SyscallVia::KprobeOverride => Attach::SyscallKprobeOverride,
                    SyscallVia::Tracepoint => {
                        return self.attach_syscall_hook(id, *nr, name, true, plan.config.flags)
                    }
                    SyscallVia::RawTp => {
                        return self.attach_syscall_hook(id, *nr, name, false, plan.config.flags)
                    }
                };
                self.attach_function_hook((id, ret), &format!("__x64_sys_{name}"), attach)
            }
            HookPoint::Function { multi: true, .. } => {
                bail!(
                    "{} is served by its policy's kprobe.multi program",
                    plan.point
                )
            }
            HookPoint::Function {
                name,
                fentry,
                fmod_ret,
                ..
            } => {
                let attach = match (fmod_ret, fentry) {
                    (true, _) => Attach::FmodRet,
                    (false, true) => Attach::Fentry,
                    (false, false) => Attach::Kprobe,
                };
                let exit = plan.config.flags & VIGIL_HOOK_RETURN != 0;
                self.attach_function_hook((id, exit), name, attach)
            }
            HookPoint::Lsm { hook, ima } => {
                self.attach_function_hook((id, false), hook, Attach::Lsm(*ima))
            }
            HookPoint::Uprobe {
                path,
                symbol,
                offset,
            } => {
                let hook = UprobeHook {
                    id,
                    path,
                    symbol: symbol.as_deref(),
                    offset: *offset,
                    ret: plan.config.flags & VIGIL_HOOK_RETURN != 0,
                };
                self.uprobe_object()?.attach(&hook)
            }
            HookPoint::Usdt {
                path,
                provider,
                name,
            } => self.uprobe_object()?.attach_usdt(id, path, provider, name),
            HookPoint::Tracepoint {
                subsystem,
                event,
                raw,
                fields,
            } => {
                let hook = TracepointHook {
                    id,
                    subsystem,
                    event,
                    fields,
                };
                if !*raw {
                    let tracepoint = ClassicTracepoint::load(&self.skel, self.wakeup_bytes, &hook)?;
                    self.tracepoints.insert(id, tracepoint);
                    return Ok(());
                }
                let raw = match &mut self.raw_tracepoints {
                    Some(r) => r,
                    None => self
                        .raw_tracepoints
                        .insert(RawTracepoints::load(&self.skel, self.wakeup_bytes)?),
                };
                raw.attach(&hook)
            }
            HookPoint::CgroupSockAddr { op, args, .. } => {
                let hook = SockAddrHook::load(&self.skel, self.wakeup_bytes, id, *op, *args)?;
                self.sock_addrs.insert(id, hook);
                Ok(())
            }
            HookPoint::Fanotify(spec) => {
                let sink = self
                    .records
                    .clone()
                    .context("no event sink for fanotify hooks")?;
                let kind = plan.meta.args.first().map_or(0, |a| a.kind);
                let hook = FanotifyHook::start(id, spec, kind, sink)?;
                self.fanotify.insert(id, hook);
                Ok(())
            }
        }
    }

    /// The uprobe and USDT object, loaded with the first hook that needs it.
    fn uprobe_object(&mut self) -> Result<&mut UprobeHooks> {
        let uprobes = match self.uprobes.take() {
            Some(u) => u,
            None => UprobeHooks::load(&self.skel, self.wakeup_bytes)?,
        };
        Ok(self.uprobes.insert(uprobes))
    }

    fn attach_syscall_hook(
        &mut self,
        id: u32,
        nr: u32,
        name: &str,
        tracepoint: bool,
        flags: u32,
    ) -> Result<()> {
        let point = self.syscalls.entry(nr).or_insert_with(|| SyscallPoint {
            name: name.to_owned(),
            tracepoint,
            hooks: Vec::new(),
            enter: None,
            exit: None,
        });
        point.hooks.push((id, flags));
        write_syscall_hooks(&self.skel, nr, point)?;
        let progs = &self.skel.progs;
        if point.tracepoint {
            if point.enter.is_none() {
                let enter = format!("sys_enter_{}", point.name);
                point.enter = Some(
                    progs
                        .vigil_syscall_enter
                        .attach_tracepoint(TracepointCategory::Syscalls, &enter)
                        .with_context(|| format!("attaching tracepoint syscalls/{enter}"))?,
                );
            }
            if point.needs_exit() && point.exit.is_none() {
                let exit = format!("sys_exit_{}", point.name);
                point.exit = Some(
                    progs
                        .vigil_syscall_exit
                        .attach_tracepoint(TracepointCategory::Syscalls, &exit)
                        .with_context(|| format!("attaching tracepoint syscalls/{exit}"))?,
                );
            }
            return Ok(());
        }
        self.sync_raw_tracepoints()
    }

    /// The raw tracepoints run on every system call: attached only while a
    /// hooked system call without a tracepoint of its own needs them.
    fn sync_raw_tracepoints(&mut self) -> Result<()> {
        let raw = || self.syscalls.values().filter(|p| !p.tracepoint);
        let (need_enter, need_exit) = (raw().next().is_some(), raw().any(|p| p.needs_exit()));
        let progs = &self.skel.progs;
        match (need_enter, self.raw_enter.is_some()) {
            (true, false) => {
                self.raw_enter = Some(
                    progs
                        .vigil_sys_enter
                        .attach_raw_tracepoint("sys_enter")
                        .context("attaching raw_tp/sys_enter")?,
                )
            }
            (false, true) => self.raw_enter = None,
            _ => {}
        }
        match (need_exit, self.raw_exit.is_some()) {
            (true, false) => {
                self.raw_exit = Some(
                    progs
                        .vigil_sys_exit
                        .attach_raw_tracepoint("sys_exit")
                        .context("attaching raw_tp/sys_exit")?,
                )
            }
            (false, true) => self.raw_exit = None,
            _ => {}
        }
        Ok(())
    }

    fn attach_function_hook(
        &mut self,
        (id, exit): (u32, bool),
        name: &str,
        attach: Attach,
    ) -> Result<()> {
        let (shared, wakeup_bytes) = (&*self.skel, self.wakeup_bytes);
        let mut links = Vec::new();
        let skel = Owned::new(|storage| {
            let (skel, l) = load_function(storage, shared, wakeup_bytes, name, attach, (id, exit))?;
            links = l;
            Ok(skel)
        })?;
        self.functions.insert(
            id,
            FunctionInstance {
                _links: links,
                _skel: skel,
            },
        );
        Ok(())
    }

    /// Removes hook `id`: detaches what served only it (the uprobe and raw
    /// tracepoint objects go with their last hook), takes it out of the
    /// system call's hook list, clears its configuration, selector strings
    /// and addresses and pending return events, and frees its id.
    pub fn remove_hook(&mut self, id: u32) -> Result<()> {
        let live = self
            .hooks
            .remove(&id)
            .with_context(|| format!("no hook {id}"))?;
        let mut result = Ok(());
        let mut freed = vec![id];
        match live.point {
            HookPoint::Function { multi: true, .. } => {
                freed = self.release_multi(id);
            }
            HookPoint::Syscall { via, .. } if via.on_function() => {
                self.functions.remove(&id);
            }
            HookPoint::Syscall { nr, .. } => {
                if let Some(point) = self.syscalls.get_mut(&nr) {
                    point.hooks.retain(|(h, _)| *h != id);
                    result = write_syscall_hooks(&self.skel, nr, point);
                    if !point.needs_exit() {
                        point.exit = None;
                    }
                    if point.hooks.is_empty() {
                        self.syscalls.remove(&nr);
                    }
                }
                let raw = self.sync_raw_tracepoints();
                result = result.and(raw);
            }
            HookPoint::Function { .. } | HookPoint::Lsm { .. } => {
                self.functions.remove(&id);
            }
            HookPoint::Uprobe { .. } | HookPoint::Usdt { .. } => {
                if let Some(uprobes) = &mut self.uprobes {
                    uprobes.detach(id);
                    if uprobes.is_empty() {
                        self.uprobes = None;
                    }
                }
            }
            HookPoint::Tracepoint { raw: false, .. } => {
                self.tracepoints.remove(&id);
            }
            HookPoint::Tracepoint { raw: true, .. } => {
                if let Some(raw) = &mut self.raw_tracepoints {
                    raw.detach(id);
                    if raw.is_empty() {
                        self.raw_tracepoints = None;
                    }
                }
            }
            HookPoint::CgroupSockAddr { .. } => {
                self.sock_addrs.remove(&id);
            }
            HookPoint::Fanotify(_) => {
                self.fanotify.remove(&id);
            }
        }
        let maps = &self.skel.maps;
        let cleared = vigil_hook_config::default();
        let config = maps
            .hook_configs
            .update(&id.to_ne_bytes(), bytes_of(&cleared), MapFlags::ANY)
            .with_context(|| format!("clearing hook {id}"));
        result = result.and(config);
        for key in &live.string_keys {
            // Absent when the hook failed before storing it: nothing to do.
            let _ = maps.string_match.delete(bytes_of(key));
        }
        for key in &live.addr_keys {
            let _ = maps.addr_match.delete(bytes_of(key));
        }
        for cgroup in &live.scope {
            let _ = maps.hook_scope.delete(bytes_of(&scope_key(id, *cgroup)));
        }
        result = result.and(self.clear_pending(id));
        self.free_ids.extend(freed);
        result
    }

    /// Makes scoped hook `id` apply to exactly the callers in `cgroups`.
    /// Entries go in before stale ones leave; a failed insert leaves the
    /// cgroup out (the hook does less, never more).
    pub fn set_scope(&mut self, id: u32, cgroups: &BTreeSet<u64>) -> Result<()> {
        let live = self
            .hooks
            .get_mut(&id)
            .with_context(|| format!("no hook {id}"))?;
        let map = &self.skel.maps.hook_scope;
        let mut result = Ok(());
        for cgroup in cgroups.difference(&live.scope.clone()) {
            match map.update(bytes_of(&scope_key(id, *cgroup)), &[1], MapFlags::ANY) {
                Ok(()) => {
                    live.scope.insert(*cgroup);
                }
                Err(e) => {
                    result = Err(e).with_context(|| format!("scoping hook {id} to cgroup {cgroup}"))
                }
            }
        }
        let gone: Vec<u64> = live.scope.difference(cgroups).copied().collect();
        for cgroup in gone {
            let _ = map.delete(bytes_of(&scope_key(id, cgroup)));
            live.scope.remove(&cgroup);
        }
        result
    }

    /// Drops events of hook `id` still waiting for their call's return.
    fn clear_pending(&self, id: u32) -> Result<()> {
        let pending = &self.skel.maps.pending;
        // struct pending_key: pid_tgid (u64), then the hook id (u32).
        let ours: Vec<Vec<u8>> = pending
            .keys()
            .filter(|k| {
                k.get(8..12)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_ne_bytes)
                    == Some(id)
            })
            .collect();
        for key in ours {
            // Gone already when its call returned meanwhile.
            let _ = pending.delete(&key);
        }
        Ok(())
    }

    /// Zeroes hook `id`'s counters, so that a reused id starts from nothing.
    fn reset_counters(&self, id: u32) -> Result<()> {
        let cpus = libbpf_rs::num_possible_cpus().context("counting possible CPUs")?;
        let zeros = vec![vec![0u8; 8]; cpus];
        for stat in 0..VIGIL_HOOK_STAT_MAX {
            let index = id * VIGIL_HOOK_STAT_MAX + stat;
            self.skel
                .maps
                .hook_stats
                .update_percpu(&index.to_ne_bytes(), &zeros, MapFlags::ANY)
                .with_context(|| format!("resetting counters of hook {id}"))?;
        }
        Ok(())
    }

    /// A hook's counters (`enum vigil_hook_stat`), summed over CPUs.
    pub fn hook_counters(&self, hook: u32) -> Result<[u64; VIGIL_HOOK_STAT_MAX as usize]> {
        if let Some(fanotify) = self.fanotify.get(&hook) {
            return Ok(fanotify.counters());
        }
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

/// Writes the hook list of system call `nr` (an empty list when its last hook went).
fn write_syscall_hooks(skel: &SyscallSkel<'_>, nr: u32, point: &SyscallPoint) -> Result<()> {
    let mut entry = vigil_syscall_hooks {
        count: point.hooks.len() as u32,
        raw_tp: u32::from(!point.tracepoint),
        ..Default::default()
    };
    for (slot, (id, _)) in entry.hooks.iter_mut().zip(&point.hooks) {
        *slot = *id;
    }
    skel.maps
        .syscall_hooks
        .update(&nr.to_ne_bytes(), bytes_of(&entry), MapFlags::ANY)
        .with_context(|| format!("hooking system call {nr}"))
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
    fn multi_cookies_pack_hook_ids_plus_one() {
        assert_eq!(multi_cookie(&[0]), 1);
        assert_eq!(multi_cookie(&[5, 63, 0, 7]), 0x0008_0001_0040_0006);
    }

    #[test]
    fn postfix_keys_are_reversed() {
        let k = string_key(7, "abc", true);
        assert_eq!((k.match_id, k.prefixlen), (7, 32 + 24));
        assert_eq!(&k.data[..3], b"cba");
        assert_eq!(&string_key(7, "abc", false).data[..3], b"abc");
    }
}
