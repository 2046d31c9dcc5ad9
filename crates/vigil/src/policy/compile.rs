//! One TracingPolicy against this kernel: for each hook, the configuration
//! of the generic hook that serves it (system call tracepoints; fentry,
//! kprobe, fexit, kretprobe or fmod_ret on a kernel function; BPF-LSM;
//! uprobes; classic and raw tracepoints; the cgroup connect hooks), or the
//! exact reason it cannot be served. Nothing is dropped silently: a hook with
//! any part vigil cannot honour (an argument type, a selector, an action) is
//! refused whole; the one exception, 32-bit entries of syscall lists, is named
//! in the status.
use vigil_bpf::wire::{
    vigil_arg_config, vigil_hook_config, vigil_match_arg, vigil_match_caps, vigil_match_ns,
    vigil_selector_config, VIGIL_ACTION_IMA_HASH, VIGIL_ACTION_KERNEL_STACK, VIGIL_ACTION_OVERRIDE,
    VIGIL_ACTION_POST, VIGIL_ACTION_SIGNAL, VIGIL_ACTION_TRACK_SOCK, VIGIL_ACTION_UNTRACK_SOCK,
    VIGIL_ACTION_USER_STACK, VIGIL_ARG_AT_RETURN, VIGIL_ARG_BPF_ATTR, VIGIL_ARG_BPF_MAP,
    VIGIL_ARG_CAPABILITY, VIGIL_ARG_CHAR_BUF, VIGIL_ARG_CHAR_IOVEC, VIGIL_ARG_CRED,
    VIGIL_ARG_DENTRY, VIGIL_ARG_FD, VIGIL_ARG_FILE, VIGIL_ARG_INT, VIGIL_ARG_KERNEL_CAP,
    VIGIL_ARG_LINUX_BINPRM, VIGIL_ARG_LONG, VIGIL_ARG_NEED_REVERSED, VIGIL_ARG_NONE,
    VIGIL_ARG_PATH, VIGIL_ARG_PERF_EVENT, VIGIL_ARG_SIZE, VIGIL_ARG_SKB, VIGIL_ARG_SOCK,
    VIGIL_ARG_SOCKADDR, VIGIL_ARG_SOCKADDR_KERNEL, VIGIL_ARG_STRING, VIGIL_ARG_UINT,
    VIGIL_ARG_ULONG, VIGIL_ARG_USER_NS, VIGIL_CAP_EFFECTIVE, VIGIL_CAP_INHERITABLE,
    VIGIL_CAP_PERMITTED, VIGIL_FIELD_DADDR, VIGIL_FIELD_DPORT, VIGIL_FIELD_FAMILY,
    VIGIL_FIELD_PROTOCOL, VIGIL_FIELD_SADDR, VIGIL_FIELD_SPORT, VIGIL_FIELD_STATE,
    VIGIL_HOOK_ARGS_MAX, VIGIL_HOOK_ENFORCE, VIGIL_HOOK_FILTER_FIRST, VIGIL_HOOK_NEED_BINARY,
    VIGIL_HOOK_NEED_BINARY_REVERSED, VIGIL_HOOK_NEED_PARENT_BINARY,
    VIGIL_HOOK_NEED_PARENT_BINARY_REVERSED, VIGIL_HOOK_RETURN, VIGIL_HOOK_RETURN_TRACK_SOCK,
    VIGIL_HOOK_RETURN_UNTRACK_SOCK, VIGIL_MATCH_ARGS_MAX, VIGIL_MATCH_CAPS_MAX, VIGIL_MATCH_NS_MAX,
    VIGIL_MATCH_NS_VALUES_MAX, VIGIL_MATCH_RETURN_ARG, VIGIL_MATCH_STRING_MAX,
    VIGIL_MATCH_VALUES_MAX, VIGIL_NS_CGROUP, VIGIL_NS_IPC, VIGIL_NS_MNT, VIGIL_NS_NET,
    VIGIL_NS_PID, VIGIL_NS_PID_FOR_CHILDREN, VIGIL_NS_TIME, VIGIL_NS_TIME_FOR_CHILDREN,
    VIGIL_NS_USER, VIGIL_NS_UTS, VIGIL_OP_ADDR_IN, VIGIL_OP_ADDR_NOT_IN, VIGIL_OP_INT_EQ,
    VIGIL_OP_INT_GT, VIGIL_OP_INT_IN_RANGE, VIGIL_OP_INT_LT, VIGIL_OP_INT_MASK, VIGIL_OP_INT_NEQ,
    VIGIL_OP_INT_NOT_IN_RANGE, VIGIL_OP_PID_IN, VIGIL_OP_PID_NOT_IN, VIGIL_OP_STR_EQ,
    VIGIL_OP_STR_NEQ, VIGIL_OP_STR_NOT_POSTFIX, VIGIL_OP_STR_NOT_PREFIX, VIGIL_OP_STR_POSTFIX,
    VIGIL_OP_STR_PREFIX, VIGIL_RATE_GLOBAL, VIGIL_RATE_PROCESS, VIGIL_RATE_THREAD,
};
use vigil_policy::{
    Action, ActionKind, Arg, ArgSelector, ArgType, BinaryOperator, BinarySelector,
    CapabilitiesSelector, CapabilitySet, KProbeSpec, ListSpec, ListType, LsmHookSpec, Namespace,
    NamespaceSelector, Operator, Policy, RateLimitScope, ReturnArgAction, Selector, SetOperator,
    TracepointSpec, UProbeSpec, UsdtSpec,
};

use std::{net::IpAddr, path::Path};

use super::fanotify::{self, CallKind, FanotifySpec};
use super::scope::Scope;
use super::syscalls;
use crate::probe::{Feature, KernelFeatures};

/// The per-syscall tracepoints in tracefs (mounted by `probe::detect` when missing).
const TRACEFS_SYSCALLS: &str = "/sys/kernel/tracing/events/syscalls";
/// Every tracepoint's description (`SUBSYSTEM/EVENT/format`).
const TRACEFS_EVENTS: &str = "/sys/kernel/tracing/events";

/// Selector slots per hook in the string trie's id space (see `HookPlan::match_id`).
const MATCH_SLOTS_PER_SELECTOR: u32 = 8;
/// Slot of a selector's matchBinaries, after its matchArgs slots.
const BINARY_SLOT: u32 = 7;
/// Slot of a selector's matchParentBinaries.
const PARENT_BINARY_SLOT: u32 = 6;
pub const MATCH_SLOTS_PER_HOOK: u32 = 64;

/// What an enforcement action on a syscall tracepoint really guarantees.
pub const KILL_GUARANTEE: &str = "killed after the call: the signal is sent at sys_enter, \
     the process dies before returning to user space, but the system call itself completes";

/// What an enforcement action at a system call function's entry (fentry) guarantees.
const SYSCALL_FUNCTION_KILL_GUARANTEE: &str = "killed after the call: the signal is sent at the \
     function's entry, the process dies before returning to user space, but the system call \
     itself completes (Override blocks it)";

/// What an enforcement action at a kernel function's entry really guarantees.
const FUNCTION_KILL_GUARANTEE: &str = "killed at the call: the signal is sent when the function \
     is entered, the process dies before returning to user space, but the call itself completes";

/// What an enforcement action at a uprobe really guarantees.
const UPROBE_KILL_GUARANTEE: &str = "killed before the function runs: the signal is sent from \
     the uprobe's breakpoint, and the process dies on its way back to user space, before the \
     function's first instruction";

/// What an enforcement action at a USDT probe really guarantees.
const USDT_KILL_GUARANTEE: &str = "killed at the probe: the signal is sent from the probe \
     site's breakpoint, and the process dies on its way back to user space, before the code \
     after the probe runs";

/// What an enforcement action at a tracepoint other than a system call entry guarantees.
const TRACEPOINT_KILL_GUARANTEE: &str = "killed at the tracepoint: the process dies before \
     returning to user space, but what the tracepoint reports has already happened";

/// What NotifyEnforcer gives without an enforcer program.
const ENFORCER_GUARANTEE: &str = "vigil attaches no enforcer program (fmod_ret or \
     bpf_override_return on the listed calls), so argError is not applied; argSig is sent from \
     the notifying hook";

/// A selector string for the `string_match` trie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringEntry {
    /// Slot within the hook: selector * 8 + matchArgs position, or 7 for binaries.
    pub slot: u32,
    pub value: String,
    /// Stored reversed (Postfix operators).
    pub reversed: bool,
}

/// A selector address or CIDR for the `addr_match` trie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEntry {
    /// Slot within the hook, as for strings.
    pub slot: u32,
    pub addr: IpAddr,
    /// CIDR prefix length (32 or 128 for one address).
    pub bits: u32,
}

/// The strings and addresses a hook's selectors compare with.
#[derive(Debug, Default)]
struct SelectorValues {
    strings: Vec<StringEntry>,
    addrs: Vec<AddrEntry>,
}

/// How user space renders one argument of the hook's events.
#[derive(Debug, Clone)]
pub struct ArgMeta {
    pub kind: u8,
    pub label: String,
    /// A `syscall64` argument: reported as `syscall_id`.
    pub syscall_id: bool,
}

/// What the events of a hook need to know that the kernel record does not carry.
#[derive(Debug, Clone)]
pub struct HookMeta {
    pub policy: String,
    /// `__x64_sys_openat`.
    pub function_name: String,
    pub message: String,
    pub tags: Vec<String>,
    pub args: Vec<ArgMeta>,
    pub ret: Option<ArgMeta>,
    /// Per selector: the Tetragon action name the event reports.
    pub selector_actions: Vec<&'static str>,
    pub event: EventKind,
}

/// Which event a hook's records become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `process_kprobe` (system calls and kernel functions).
    Kprobe,
    /// `process_lsm`.
    Lsm,
    /// `process_uprobe`: the probed file, and the symbol or the offset.
    Uprobe {
        path: String,
        symbol: String,
        offset: Option<u64>,
    },
    /// `process_tracepoint`.
    Tracepoint { subsystem: String, event: String },
    /// `process_usdt`: the probed file, the probe's provider and name.
    Usdt {
        path: String,
        provider: String,
        name: String,
    },
}

/// Post imaHash: the LSM hook's first argument, whose file is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImaArg {
    /// A struct linux_binprm (its file, the one being executed), else a struct file.
    pub binprm: bool,
}

/// Where a hook attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookPoint {
    /// A system call: by a BPF trampoline on its function `__x64_sys_NAME`
    /// where the kernel has them, else by its own tracepoints
    /// (`syscalls/sys_enter_NAME`, `sys_exit_NAME`), or by raw_tp
    /// sys_enter/sys_exit where it has none.
    Syscall {
        nr: u32,
        name: String,
        via: SyscallVia,
    },
    /// A kernel function (`syscall: false`), served by fentry where the
    /// kernel has trampolines, else by a kprobe; by fmod_ret when a
    /// selector overrides its result; with `multi`, by the policy's one
    /// kprobe.multi program (see `share_kprobe_multi`).
    Function {
        name: String,
        fentry: bool,
        fmod_ret: bool,
        multi: bool,
    },
    /// A BPF-LSM hook (`lsmhooks`, name without `security_`): its
    /// selectors can make the operation fail (Override). With `ima`, a
    /// selector posts imaHash: the hook's sleepable program hashes that
    /// argument's file.
    Lsm { hook: String, ima: Option<ImaArg> },
    /// A user-space function (`uprobes`): a symbol of `path`, or an offset
    /// in it; a uretprobe too with `return: true`.
    Uprobe {
        path: String,
        symbol: Option<String>,
        offset: u64,
    },
    /// A USDT probe (`usdts`): `provider:name` in the file at `path`, its
    /// arguments decoded as the probe's note describes them.
    Usdt {
        path: String,
        provider: String,
        name: String,
    },
    /// A tracepoint: classic (arguments are fields of its record, at
    /// `fields`), or raw (arguments are its TP_PROTO arguments).
    Tracepoint {
        subsystem: String,
        event: String,
        raw: bool,
        fields: Vec<TracepointArg>,
    },
    /// connect(2), UDP sends or bind(2) served by cgroup sock_addr programs
    /// on the cgroup v2 root: the selectors can make the call fail before the
    /// kernel acts on the address. `function` is the hooked call's name in
    /// events (`__x64_sys_connect`, `security_socket_bind`, ...).
    CgroupSockAddr {
        op: SockOp,
        function: String,
        args: SockAddrArgs,
    },
    /// A file open or execution served by fanotify permission events,
    /// decided in user space (no BPF program).
    Fanotify(Box<FanotifySpec>),
}

/// The socket operation a cgroup sock_addr hook checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockOp {
    /// cgroup/connect4 + connect6: connect(2), TCP and UDP alike.
    Connect,
    /// cgroup/sendmsg4 + sendmsg6: UDP sends that name a destination.
    Sendmsg,
    /// cgroup/bind4 + bind6: bind(2).
    Bind,
}

impl SockOp {
    /// The cgroup program's name without the family: `cgroup/{program}4`.
    pub fn program(self) -> &'static str {
        match self {
            SockOp::Connect => "connect",
            SockOp::Sendmsg => "sendmsg",
            SockOp::Bind => "bind",
        }
    }

    /// The system calls the operation comes from, whose exit tracepoints
    /// send the signals cgroup programs cannot send.
    pub fn syscalls(self) -> &'static [&'static str] {
        match self {
            SockOp::Connect => &["connect"],
            SockOp::Sendmsg => &["sendto", "sendmsg", "sendmmsg"],
            SockOp::Bind => &["bind"],
        }
    }
}

/// Where a cgroup sock_addr hook finds its arguments: the system call whose
/// registers carry them, and the positions of the kernel's copy of the
/// address (`None`: the call has no sockaddr argument) and of its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockAddrArgs {
    pub syscall_nr: u32,
    pub addr: Option<u32>,
    pub addrlen: u32,
}

/// The cgroup sock_addr hook serving system call or kernel function `name`,
/// if one does.
fn sock_addr_point(name: &str, function: String) -> Option<HookPoint> {
    let (op, syscall_nr, addr, addrlen) = match name {
        "connect" | "security_socket_connect" => (SockOp::Connect, 42, Some(1), 2),
        "bind" | "security_socket_bind" => (SockOp::Bind, 49, Some(1), 2),
        "sendto" => (SockOp::Sendmsg, 44, Some(4), 5),
        // Its address is inside the struct msghdr: no argument of its own.
        "sendmsg" => (SockOp::Sendmsg, 46, None, 7),
        _ => return None,
    };
    Some(HookPoint::CgroupSockAddr {
        op,
        function,
        args: SockAddrArgs {
            syscall_nr,
            addr,
            addrlen,
        },
    })
}

/// What serves a system call hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallVia {
    /// fentry on `__x64_sys_NAME` (fexit for return values).
    Fentry,
    /// fmod_ret on `__x64_sys_NAME` (fexit for return values): a selector's
    /// Override makes the call return its error without running.
    FmodRet,
    /// A kprobe on `__x64_sys_NAME` that Overrides by bpf_override_return.
    KprobeOverride,
    /// `syscalls/sys_enter_NAME` (and `sys_exit_NAME`).
    Tracepoint,
    /// raw_tp sys_enter (and sys_exit), for calls without tracepoints.
    RawTp,
}

impl SyscallVia {
    /// Served by the system call's function rather than a tracepoint.
    pub fn on_function(self) -> bool {
        matches!(
            self,
            SyscallVia::Fentry | SyscallVia::FmodRet | SyscallVia::KprobeOverride
        )
    }
}

/// Where a classic tracepoint argument lies in the tracepoint's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracepointArg {
    pub offset: u16,
    pub size: u8,
    pub signed: bool,
}

impl std::fmt::Display for HookPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookPoint::Syscall { name, .. } => write!(f, "system call {name}"),
            HookPoint::Function { name, .. } => write!(f, "kernel function {name}"),
            HookPoint::Lsm { hook, .. } => write!(f, "LSM hook {hook}"),
            HookPoint::Uprobe {
                path,
                symbol: Some(symbol),
                ..
            } => write!(f, "uprobe {path}:{symbol}"),
            HookPoint::Uprobe { path, offset, .. } => write!(f, "uprobe {path}+{offset:#x}"),
            HookPoint::Usdt {
                path,
                provider,
                name,
            } => write!(f, "usdt {path}:{provider}:{name}"),
            HookPoint::Tracepoint {
                event, raw: true, ..
            } => write!(f, "raw_tp {event}"),
            HookPoint::Tracepoint {
                subsystem, event, ..
            } => write!(f, "tracepoint {subsystem}/{event}"),
            HookPoint::CgroupSockAddr { op, .. } => write!(f, "cgroup {} hooks", op.program()),
            HookPoint::Fanotify(_) => write!(f, "fanotify permission events"),
        }
    }
}

impl HookPoint {
    /// The kind of hook, for messages (`system call hooks`, ...).
    fn kind_name(&self) -> &'static str {
        match self {
            HookPoint::Syscall { .. } => "system call",
            HookPoint::Function { .. } => "kernel function",
            HookPoint::Lsm { .. } => "LSM hook",
            HookPoint::Uprobe { .. } => "uprobe",
            HookPoint::Usdt { .. } => "USDT",
            HookPoint::Tracepoint { raw: false, .. } => "tracepoint",
            HookPoint::Tracepoint { raw: true, .. } => "raw tracepoint",
            HookPoint::CgroupSockAddr { .. } => "cgroup sock_addr",
            HookPoint::Fanotify(_) => "fanotify",
        }
    }

    /// A kernel function served by its policy's kprobe.multi program.
    pub fn is_multi(&self) -> bool {
        matches!(self, HookPoint::Function { multi: true, .. })
    }

    /// A tracepoint at the entry of system calls (before the call runs).
    fn is_syscall_entry(&self) -> bool {
        match self {
            HookPoint::Tracepoint {
                subsystem, event, ..
            } => {
                (subsystem == "raw_syscalls" && event == "sys_enter")
                    || (subsystem == "syscalls" && event.starts_with("sys_enter_"))
            }
            _ => false,
        }
    }

    /// Whether the hook's pointer arguments point to the calling process's memory.
    fn user_args(&self) -> bool {
        match self {
            HookPoint::Syscall { .. }
            | HookPoint::Uprobe { .. }
            | HookPoint::Usdt { .. }
            | HookPoint::Tracepoint { raw: false, .. } => true,
            HookPoint::CgroupSockAddr { function, .. } => function.starts_with("__x64_sys_"),
            _ => false,
        }
    }
}

/// A hook vigil can serve: where it attaches, the kernel configuration and its strings.
#[derive(Debug, Clone)]
pub struct HookPlan {
    pub point: HookPoint,
    pub config: vigil_hook_config,
    pub strings: Vec<StringEntry>,
    pub addrs: Vec<AddrEntry>,
    pub meta: HookMeta,
    /// The mechanism and the guarantee, for the status line.
    pub via: String,
    pub guarantee: String,
}

impl HookPlan {
    /// The trie id of a slot once the hook has its number.
    pub fn match_id(hook: u32, slot: u32) -> u32 {
        hook * MATCH_SLOTS_PER_HOOK + slot
    }

    /// Fills in the trie ids for hook number `hook`.
    pub fn assign(&mut self, hook: u32) {
        for (s, sel) in self.config.selectors.iter_mut().enumerate() {
            let base = s as u32 * MATCH_SLOTS_PER_SELECTOR;
            sel.binary_match_id = Self::match_id(hook, base + BINARY_SLOT);
            sel.parent_binary_match_id = Self::match_id(hook, base + PARENT_BINARY_SLOT);
            for (m, ma) in sel.match_args.iter_mut().enumerate() {
                ma.match_id = Self::match_id(hook, base + m as u32);
            }
        }
    }
}

/// One hook of a policy, and whether it can be served here.
#[derive(Debug)]
pub struct HookOutcome {
    /// `spec.kprobes[0] sys_openat`.
    pub name: String,
    pub plan: Result<HookPlan, String>,
}

/// A compiled policy: its hooks, or a reason that applies to the whole policy.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub name: String,
    pub enforce: bool,
    pub hooks: Vec<HookOutcome>,
    /// Set when nothing of the policy can be applied (e.g. workload scoping vigil cannot do).
    pub refused: Option<String>,
    /// The workloads the policy is limited to; `None`: the whole host.
    pub scope: Option<Scope>,
}

pub fn compile(policy: &Policy, features: &KernelFeatures) -> CompiledPolicy {
    let spec = &policy.spec;
    let enforce = !spec
        .options
        .iter()
        .any(|o| o.name == "policy-mode" && o.value == "monitor");
    let mut out = CompiledPolicy {
        name: policy.name().to_owned(),
        enforce,
        hooks: Vec::new(),
        refused: policy_refusal(policy),
        scope: None,
    };
    if out.refused.is_some() {
        return out;
    }
    match Scope::of_policy(policy) {
        Ok(scope) => out.scope = scope,
        Err(why) => {
            out.refused = Some(why);
            return out;
        }
    }
    for (i, kprobe) in spec.kprobes.iter().enumerate() {
        for (call, plan) in compile_kprobe_calls(policy, kprobe, enforce, features) {
            out.hooks.push(HookOutcome {
                name: format!("spec.kprobes[{i}] {call}"),
                plan,
            });
        }
    }
    share_kprobe_multi(policy, &mut out.hooks, features);
    for (i, fentry) in spec.fentries.iter().enumerate() {
        for (call, plan) in compile_kprobe_calls(policy, fentry, enforce, features) {
            // Without trampolines that is the reason, whatever else the
            // kprobe front-ends would have said.
            let plan = match no_trampolines(&call, features) {
                Some(why) => Err(why),
                None => plan.and_then(|p| by_trampoline(&call, fentry, p, features)),
            };
            out.hooks.push(HookOutcome {
                name: format!("spec.fentries[{i}] {call}"),
                plan,
            });
        }
    }
    for (i, lsm) in spec.lsm_hooks.iter().enumerate() {
        let name = format!("spec.lsmhooks[{i}] {}", lsm.hook);
        let plan = compile_lsm(policy, lsm, enforce, features);
        out.hooks.push(HookOutcome { name, plan });
    }
    for (i, uprobe) in spec.uprobes.iter().enumerate() {
        for (name, plan) in compile_uprobe(policy, uprobe, enforce, features) {
            out.hooks.push(HookOutcome {
                name: format!("spec.uprobes[{i}] {name}"),
                plan,
            });
        }
    }
    for (i, tp) in spec.tracepoints.iter().enumerate() {
        let name = format!("spec.tracepoints[{i}] {}/{}", tp.subsystem, tp.event);
        let plan = compile_tracepoint(policy, tp, enforce, features);
        out.hooks.push(HookOutcome { name, plan });
    }
    for (i, usdt) in spec.usdts.iter().enumerate() {
        let name = format!("spec.usdts[{i}] {}:{}", usdt.provider, usdt.name);
        let plan = compile_usdt(policy, usdt, enforce, features);
        out.hooks.push(HookOutcome { name, plan });
    }
    // `enforcers` attach nothing of their own here: NotifyEnforcer is served
    // by the notifying hook's signal (see actions_of), with its guarantee.
    if spec.loader {
        out.hooks.push(HookOutcome {
            name: "spec.loader".into(),
            plan: Err("loader events are not implemented in vigil yet".into()),
        });
    }
    if let Some(scope) = &out.scope {
        for hook in &mut out.hooks {
            let plan = std::mem::replace(&mut hook.plan, Err(String::new()));
            hook.plan = plan.and_then(|p| scope.apply(p));
        }
    }
    out
}

/// A policy hooking at least this many kernel functions by kprobe serves
/// them with one kprobe.multi program (docs/policies.md, "kprobe.multi").
pub const KPROBE_MULTI_MIN_FUNCTIONS: usize = 3;

/// The functions ftrace can trace, which a kprobe.multi link attaches
/// through; `None` when tracefs does not list them.
const TRACEFS_FILTER_FUNCTIONS: &str = "/sys/kernel/tracing/available_filter_functions";

/// Moves the policy's kernel-function kprobes to one kprobe.multi program
/// (kretprobe.multi for return values): one load and one verification
/// instead of one per function, where the kernel has kprobe.multi, the
/// policy does not set `disable-kprobe-multi`, and it hooks at least
/// KPROBE_MULTI_MIN_FUNCTIONS functions that way. Override stays on
/// fmod_ret, and a function ftrace cannot trace keeps its own program
/// (one such function would make the whole link fail).
fn share_kprobe_multi(policy: &Policy, hooks: &mut [HookOutcome], features: &KernelFeatures) {
    // The spellings of true that validation accepts.
    let disabled = policy.spec.options.iter().any(|o| {
        o.name == "disable-kprobe-multi"
            && ["1", "t", "T", "TRUE", "true", "True"].contains(&o.value.as_str())
    });
    let has_function = hooks
        .iter()
        .any(|h| matches!(&h.plan, Ok(p) if matches!(p.point, HookPoint::Function { .. })));
    if disabled || !has_function || !features.has(Feature::KprobeMulti) {
        return;
    }
    let Ok(listed) = std::fs::read_to_string(TRACEFS_FILTER_FUNCTIONS) else {
        return;
    };
    let traceable: std::collections::HashSet<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let shared = |h: &HookOutcome| match &h.plan {
        Ok(HookPlan {
            point:
                HookPoint::Function {
                    name,
                    fmod_ret: false,
                    ..
                },
            ..
        }) => traceable.contains(name.as_str()).then(|| name.clone()),
        _ => None,
    };
    let functions: std::collections::BTreeSet<String> = hooks.iter().filter_map(shared).collect();
    let n = functions.len();
    if n < KPROBE_MULTI_MIN_FUNCTIONS {
        return;
    }
    for hook in hooks.iter_mut() {
        if shared(&*hook).is_none() {
            continue;
        }
        let Ok(plan) = &mut hook.plan else { continue };
        let ret = plan.config.flags & VIGIL_HOOK_RETURN != 0;
        if let HookPoint::Function {
            name,
            fentry,
            multi,
            ..
        } = &mut plan.point
        {
            *fentry = false;
            *multi = true;
            let exit = if ret { " + kretprobe.multi" } else { "" };
            plan.via = format!("kprobe.multi{exit} {name} ({n} functions, one program)");
        }
    }
}

/// Why a `spec.fentries` hook cannot be served at all here: the kernel has
/// no BPF trampolines.
fn no_trampolines(call: &str, features: &KernelFeatures) -> Option<String> {
    (!features.has(Feature::Fentry)).then(|| {
        format!(
            "fentry on {call}: the kernel has no BPF trampolines (vigil probe: fentry: {}); \
             spec.fentries are served by fentry, fexit and fmod_ret only, never by kprobes",
            why_not(features, Feature::Fentry)
        )
    })
}

/// A `spec.fentries` hook: served by BPF trampolines only (fentry, fexit,
/// fmod_ret), never by the kprobes a kernel-function kprobe falls back to.
fn by_trampoline(
    call: &str,
    spec: &KProbeSpec,
    plan: HookPlan,
    features: &KernelFeatures,
) -> Result<HookPlan, String> {
    let trampoline = match &plan.point {
        HookPoint::Function { fentry, multi, .. } => *fentry && !*multi,
        HookPoint::Syscall { via, .. } => matches!(via, SyscallVia::Fentry | SyscallVia::FmodRet),
        _ => false,
    };
    if trampoline {
        return Ok(plan);
    }
    let fmod_ret = if spec.syscall {
        Feature::FmodRetSyscall
    } else {
        Feature::FmodRet
    };
    let needed = [(spec.r#return, Feature::Fexit), (overrides(spec), fmod_ret)];
    let missing: Vec<String> = needed
        .into_iter()
        .filter(|&(needed, f)| needed && !features.has(f))
        .map(|(_, f)| f)
        .map(|f| format!("{}: {}", f.label(), why_not(features, f)))
        .collect();
    let function = match &plan.point {
        HookPoint::Function { name, .. } => Some(name.clone()),
        HookPoint::Syscall { name, .. } => Some(format!("__x64_sys_{name}")),
        _ => None,
    };
    let probe = if !missing.is_empty() {
        format!(" (vigil probe: {})", missing.join("; "))
    } else if spec.args.iter().any(|a| a.return_copy) {
        " (returnCopy is served by the system call tracepoints only)".to_owned()
    } else if let Some(function) = function.filter(|f| !in_vmlinux_btf(f)) {
        format!(" (call not found: {function} is not in vmlinux BTF, which fentry attaches by)")
    } else {
        String::new()
    };
    Err(format!(
        "fentry on {call}: spec.fentries are served by fentry, fexit and fmod_ret only, and \
         here this hook would need {}{probe}",
        plan.via
    ))
}

/// Scoping vigil cannot apply: refusing is the only honest answer, since the
/// policy would otherwise act on every process of the host.
fn policy_refusal(policy: &Policy) -> Option<String> {
    policy
        .spec
        .node_selector
        .as_ref()
        .is_some_and(|s| !s.is_empty())
        .then(|| "spec.nodeSelector: node scoping is not implemented in vigil yet".into())
}

/// The system call a kprobe names: `sys_X` or `__x64_sys_X`, as Tetragon accepts.
fn syscall_of(call: &str) -> Result<(&str, u32), String> {
    let name = call
        .strip_prefix("__x64_sys_")
        .or_else(|| call.strip_prefix("sys_"))
        .ok_or_else(|| {
            if call.starts_with("__ia32_") || call.starts_with("__arm64_") {
                format!("call not found: {call} is not an x86_64 system call")
            } else {
                format!("call not found: {call} is not a system call (expected sys_NAME or __x64_sys_NAME)")
            }
        })?;
    syscalls::X86_64
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .map(|i| syscalls::X86_64[i])
        .map_err(|_| format!("call not found: no x86_64 system call named {name}"))
}

fn why_not(features: &KernelFeatures, feature: Feature) -> String {
    features
        .features
        .iter()
        .find(|f| f.feature == feature)
        .and_then(|f| f.reason.clone())
        .unwrap_or_else(|| "not probed".into())
}

/// The hooks of one kprobe, each with the name of its call: the kprobe
/// itself, or for `call: "list:NAME"` one hook per call of the list, all
/// with the kprobe's arguments, selectors and actions (a list of type
/// syscalls makes them system calls whatever `syscall` says, as Tetragon
/// does; an untyped list's calls keep the kprobe's `syscall`).
fn compile_kprobe_calls(
    policy: &Policy,
    kprobe: &KProbeSpec,
    enforce: bool,
    features: &KernelFeatures,
) -> Vec<(String, Result<HookPlan, String>)> {
    let Some(name) = kprobe.call.strip_prefix("list:") else {
        return vec![(
            kprobe.call.clone(),
            compile_kprobe(policy, kprobe, enforce, features),
        )];
    };
    let lists = &policy.spec.lists;
    let Some((position, list)) = lists.iter().enumerate().find(|(_, l)| l.name == name) else {
        let refusal = format!("call: no list named {name} in spec.lists");
        return vec![(kprobe.call.clone(), Err(refusal))];
    };
    let syscall = match list.list_type {
        Some(ListType::Syscalls) => true,
        None => kprobe.syscall,
        Some(generated) => {
            let refusal = format!(
                "spec.lists[{position}].type: {generated} lists are not implemented in vigil yet \
                 (they hook every system call, or every traceable function matching a pattern, \
                 one hook each); name the calls in a list of type syscalls"
            );
            return vec![(kprobe.call.clone(), Err(refusal))];
        }
    };
    list.values
        .iter()
        .enumerate()
        .map(|(v, call)| {
            let plan = if call.contains('/') {
                Err(format!(
                    "spec.lists[{position}].values[{v}]: \"{call}\" names another ABI; vigil hooks x86_64 system calls only"
                ))
            } else {
                let one = KProbeSpec {
                    call: call.clone(),
                    syscall,
                    ..kprobe.clone()
                };
                compile_kprobe(policy, &one, enforce, features)
            };
            (format!("{call} ({})", kprobe.call), plan)
        })
        .collect()
}

fn compile_kprobe(
    policy: &Policy,
    kprobe: &KProbeSpec,
    enforce: bool,
    features: &KernelFeatures,
) -> Result<HookPlan, String> {
    if let Some(plan) = fanotify_kprobe(policy, kprobe, enforce, features) {
        return plan;
    }
    let point = if kprobe.syscall {
        // connect(2), UDP sends and bind(2) are blocked where the kernel
        // checks the address, by the cgroup sock_addr hooks.
        let (name, _) = syscall_of(&kprobe.call)?;
        let cgroup = if blocks_or_kills(kprobe) && features.has(Feature::CgroupConnect4) {
            sock_addr_point(name, format!("__x64_sys_{name}"))
        } else {
            None
        };
        match cgroup {
            Some(point) => point,
            None => syscall_point(kprobe, features)?,
        }
    } else if let Some(point) = sock_addr_point(&kprobe.call, kprobe.call.clone()).filter(|_| {
        features.has(Feature::CgroupConnect4) && needs_cgroup_sock_addr(kprobe, features)
    }) {
        point
    } else {
        function_point(kprobe, features)?
    };
    plan_hook(policy, kprobe, point, enforce, features)
}

/// A file-open or execution hook that blocks or kills where BPF cannot stop
/// the call before it happens, or a kernel-function one the kernel cannot
/// hook at all: served by fanotify permission events. BPF stays preferred
/// where it blocks in the kernel (fmod_ret) or can hook the function, and a
/// system call hook that only reports or kills keeps its tracepoint (which
/// sees every argument; "killed after the call").
fn fanotify_kprobe(
    policy: &Policy,
    kprobe: &KProbeSpec,
    enforce: bool,
    features: &KernelFeatures,
) -> Option<Result<HookPlan, String>> {
    if kprobe.syscall && !fanotify::blocks_or_kills(&kprobe.selectors) {
        return None;
    }
    let overrides = kprobe
        .selectors
        .iter()
        .flat_map(|s| &s.match_actions)
        .any(|a| a.action == ActionKind::Override);
    let (hook, function, why_not_bpf) = if kprobe.syscall {
        let (name, _) = syscall_of(&kprobe.call).ok()?;
        // Where the system call's function can be made to fail (fmod_ret or
        // bpf_override_return), the block stays in the kernel.
        if !overrides
            || features.has(Feature::FmodRetSyscall)
            || features.has(Feature::KprobeOverride)
        {
            return None;
        }
        (
            fanotify::file_hook(name, CallKind::Syscall)?,
            format!("__x64_sys_{name}"),
            format!(
                "Override: a system call tracepoint cannot change the call's result, and the \
                 call's function cannot be made to fail (vigil probe: fmod_ret on system calls: \
                 {}; kprobe override: {})",
                why_not(features, Feature::FmodRetSyscall),
                why_not(features, Feature::KprobeOverride)
            ),
        )
    } else {
        let hook = fanotify::file_hook(&kprobe.call, CallKind::Function)?;
        let why = if overrides {
            if features.has(Feature::FmodRet) {
                return None;
            }
            format!(
                "Override needs fmod_ret (vigil probe: fmod_ret: {})",
                why_not(features, Feature::FmodRet)
            )
        } else {
            if features.has(Feature::Fentry) || features.has(Feature::Kprobe) {
                return None;
            }
            format!(
                "kernel has no kprobes and no fentry (vigil probe: kprobe: {}; fentry: {})",
                why_not(features, Feature::Kprobe),
                why_not(features, Feature::Fentry)
            )
        };
        (hook, kprobe.call.clone(), why)
    };
    Some(
        fanotify::plan(policy, kprobe, function, EventKind::Kprobe, hook, enforce).map_err(
            |why| {
                format!(
                    "kprobe on {}: {why_not_bpf}, and fanotify permission events cannot serve the hook: {why}",
                    kprobe.call
                )
            },
        ),
    )
}

/// Whether a selector of the hook makes the call fail or kills the caller:
/// then a connect(2), UDP send or bind(2) hook is served where it can
/// really block.
fn blocks_or_kills(kprobe: &KProbeSpec) -> bool {
    kprobe
        .selectors
        .iter()
        .flat_map(|s| &s.match_actions)
        .any(|a| matches!(a.action, ActionKind::Override | ActionKind::Sigkill))
}

/// Whether security_socket_connect or security_socket_bind needs the cgroup
/// hooks: for Override (vigil has no fmod_ret), or for Sigkill where the
/// kernel cannot hook the function itself.
fn needs_cgroup_sock_addr(kprobe: &KProbeSpec, features: &KernelFeatures) -> bool {
    let actions = || kprobe.selectors.iter().flat_map(|s| &s.match_actions);
    actions().any(|a| a.action == ActionKind::Override)
        || (actions().any(|a| a.action == ActionKind::Sigkill)
            && !features.has(Feature::Fentry)
            && !features.has(Feature::Kprobe))
}

/// An LSM hook: served by BPF-LSM only (the kernel's `bpf_lsm_HOOK`).
fn compile_lsm(
    policy: &Policy,
    lsm: &LsmHookSpec,
    enforce: bool,
    features: &KernelFeatures,
) -> Result<HookPlan, String> {
    let hook = &lsm.hook;
    if !features.has(Feature::Lsm) {
        let no_lsm = format!(
            "lsm hook {hook}: kernel has no BPF-LSM (vigil probe: BPF-LSM: {})",
            why_not(features, Feature::Lsm)
        );
        let file_hook = fanotify::file_hook(hook, CallKind::Lsm);
        return match file_hook {
            Some(file_hook) => fanotify::plan(
                policy,
                &lsm_as_kprobe(lsm),
                hook.clone(),
                EventKind::Lsm,
                file_hook,
                enforce,
            )
            .map_err(|why| {
                format!("{no_lsm}, and fanotify permission events cannot serve it: {why}")
            }),
            None => Err(no_lsm),
        };
    }
    if !in_vmlinux_btf(&format!("bpf_lsm_{hook}")) {
        return Err(format!(
            "call not found: no LSM hook named {hook} (bpf_lsm_{hook} is not in vmlinux BTF)"
        ));
    }
    let point = HookPoint::Lsm {
        hook: hook.clone(),
        ima: ima_arg(lsm, features)?,
    };
    plan_hook(policy, &lsm_as_kprobe(lsm), point, enforce, features)
}

/// Post imaHash: the argument to hash (the hook's first argument, a `file`
/// or a `linux_binprm`), where the kernel runs sleepable BPF-LSM programs
/// with bpf_ima_file_hash and has IMA; None without imaHash.
fn ima_arg(lsm: &LsmHookSpec, features: &KernelFeatures) -> Result<Option<ImaArg>, String> {
    let Some(path) = lsm.selectors.iter().enumerate().find_map(|(s, sel)| {
        let a = sel.match_actions.iter().position(|a| a.ima_hash)?;
        Some(format!("selectors[{s}].matchActions[{a}].imaHash"))
    }) else {
        return Ok(None);
    };
    let hook = &lsm.hook;
    if !features.has(Feature::ImaHash) {
        return Err(format!(
            "lsm hook {hook}: {path}: kernel has no IMA file hash for BPF (vigil probe: {}: {})",
            Feature::ImaHash.label(),
            why_not(features, Feature::ImaHash)
        ));
    }
    lsm.args
        .iter()
        .find(|a| {
            a.index == 0
                && a.resolve.is_empty()
                && matches!(a.arg_type, ArgType::File | ArgType::LinuxBinprm)
        })
        .map(|a| {
            Some(ImaArg {
                binprm: a.arg_type == ArgType::LinuxBinprm,
            })
        })
        .ok_or_else(|| {
            format!(
                "lsm hook {hook}: {path}: hashes the hook's first argument, which the args \
                 must give as `file` or `linux_binprm` (index 0)"
            )
        })
}

/// An LSM hook in the shape of a kernel-function kprobe, for the shared planning.
fn lsm_as_kprobe(lsm: &LsmHookSpec) -> KProbeSpec {
    KProbeSpec {
        call: lsm.hook.clone(),
        syscall: false,
        r#return: false,
        return_arg: None,
        return_arg_action: None,
        args: lsm.args.clone(),
        data: Vec::new(),
        selectors: lsm.selectors.clone(),
        message: lsm.message.clone(),
        tags: lsm.tags.clone(),
        ignore: None,
    }
}

/// One hook per symbol (or offset) of a uprobe, named `PATH SYMBOL`.
fn compile_uprobe(
    policy: &Policy,
    uprobe: &UProbeSpec,
    enforce: bool,
    features: &KernelFeatures,
) -> Vec<(String, Result<HookPlan, String>)> {
    let path = &uprobe.path;
    let targets: Vec<(String, Option<String>, u64)> = if uprobe.offsets.is_empty() {
        uprobe
            .symbols
            .iter()
            .map(|sym| (format!("{path} {sym}"), Some(sym.clone()), 0))
            .collect()
    } else {
        uprobe
            .offsets
            .iter()
            .map(|off| (format!("{path}+{off:#x}"), None, *off))
            .collect()
    };
    let refusal = uprobe_refusal(uprobe, features);
    targets
        .into_iter()
        .map(|(name, symbol, offset)| {
            let plan = match &refusal {
                Some(why) => Err(why.clone()),
                None => {
                    let spec = KProbeSpec {
                        call: symbol.clone().unwrap_or_else(|| format!("{offset:#x}")),
                        syscall: false,
                        r#return: uprobe.r#return,
                        return_arg: uprobe.return_arg.clone(),
                        return_arg_action: None,
                        args: uprobe.args.clone(),
                        data: uprobe.data.clone(),
                        selectors: uprobe.selectors.clone(),
                        message: uprobe.message.clone(),
                        tags: uprobe.tags.clone(),
                        ignore: None,
                    };
                    let point = HookPoint::Uprobe {
                        path: path.clone(),
                        symbol,
                        offset,
                    };
                    plan_hook(policy, &spec, point, enforce, features)
                }
            };
            (name, plan)
        })
        .collect()
}

/// A USDT probe: attached by libbpf at every site of `provider:name` in the
/// file (as a uprobe), with the arguments the probe's note describes;
/// `args[].index` is the position in the probe's arguments.
fn compile_usdt(
    policy: &Policy,
    usdt: &UsdtSpec,
    enforce: bool,
    features: &KernelFeatures,
) -> Result<HookPlan, String> {
    if !features.has(Feature::Uprobe) {
        return Err(format!(
            "kernel has no uprobes, which USDT probes are (vigil probe: uprobe: {})",
            why_not(features, Feature::Uprobe)
        ));
    }
    if usdt.btf_path.is_some() {
        return Err("btfPath: not implemented in vigil yet".into());
    }
    if !Path::new(&usdt.path).is_file() {
        return Err(format!("call not found: no file {}", usdt.path));
    }
    let spec = KProbeSpec {
        call: format!("{}:{}", usdt.provider, usdt.name),
        syscall: false,
        r#return: false,
        return_arg: None,
        return_arg_action: None,
        args: usdt.args.clone(),
        data: Vec::new(),
        selectors: usdt.selectors.clone(),
        message: usdt.message.clone(),
        tags: usdt.tags.clone(),
        ignore: None,
    };
    let point = HookPoint::Usdt {
        path: usdt.path.clone(),
        provider: usdt.provider.clone(),
        name: usdt.name.clone(),
    };
    plan_hook(policy, &spec, point, enforce, features)
}

/// A tracepoint hook. A classic tracepoint's arguments are renumbered to
/// their position (the program fills one slot per argument); a matchArgs `index` names an
/// argument's field index, or else a position in `args` (as Tetragon's
/// examples use it).
fn compile_tracepoint(
    policy: &Policy,
    tp: &TracepointSpec,
    enforce: bool,
    features: &KernelFeatures,
) -> Result<HookPlan, String> {
    let (subsystem, event) = (&tp.subsystem, &tp.event);
    let fields = if tp.raw {
        if !features.has(Feature::RawTp) {
            return Err(format!(
                "raw tracepoint {event}: kernel has no raw_tp (vigil probe: raw_tp: {})",
                why_not(features, Feature::RawTp)
            ));
        }
        Vec::new()
    } else {
        if !features.has(Feature::Tracepoint) {
            return Err(format!(
                "tracepoint {subsystem}/{event}: kernel has no tracepoint programs (vigil probe: tracepoint: {})",
                why_not(features, Feature::Tracepoint)
            ));
        }
        let format = tracepoint_format(subsystem, event)?;
        tp.args
            .iter()
            .enumerate()
            .map(|(i, arg)| tracepoint_field(&format, arg, &format!("args[{i}]")))
            .collect::<Result<Vec<_>, String>>()?
    };
    let mut selectors = tp.selectors.clone();
    for (s, selector) in selectors.iter_mut().enumerate() {
        for (m, match_arg) in selector.match_args.iter_mut().enumerate() {
            if !match_arg.args.is_empty() {
                continue;
            }
            let position = tp
                .args
                .iter()
                .position(|a| a.index == match_arg.index)
                .or_else(|| ((match_arg.index as usize) < tp.args.len()).then_some(match_arg.index as usize))
                .ok_or_else(|| {
                    format!(
                        "selectors[{s}].matchArgs[{m}].index: {} is neither a field index in args nor a position in args",
                        match_arg.index
                    )
                })?;
            match_arg.args = vec![position as u32];
        }
    }
    let args = tp
        .args
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            if matches!(arg.arg_type, ArgType::CharBuf | ArgType::CharIovec) {
                return Err(format!(
                    "args[{i}].type: {} on tracepoints is not implemented in vigil yet",
                    arg.arg_type
                ));
            }
            // Classic: the program fills slot i with argument i's field;
            // raw: slots are the tracepoint's own arguments.
            let index = if tp.raw { arg.index } else { i as u32 };
            Ok(Arg {
                index,
                ..arg.clone()
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let spec = KProbeSpec {
        call: format!("{subsystem}/{event}"),
        syscall: false,
        r#return: false,
        return_arg: None,
        return_arg_action: None,
        args,
        data: Vec::new(),
        selectors,
        message: tp.message.clone(),
        tags: tp.tags.clone(),
        ignore: None,
    };
    let point = HookPoint::Tracepoint {
        subsystem: subsystem.clone(),
        event: event.clone(),
        raw: tp.raw,
        fields,
    };
    plan_hook(policy, &spec, point, enforce, features)
}

/// One field of a tracepoint's record, as tracefs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TracepointField {
    /// The C declaration, e.g. `const char * filename`.
    decl: String,
    offset: u16,
    size: u8,
    signed: bool,
}

/// The fields of tracepoint `subsystem/event`, common fields first (their
/// positions are what `args[].index` counts).
fn tracepoint_format(subsystem: &str, event: &str) -> Result<Vec<TracepointField>, String> {
    let path = format!("{TRACEFS_EVENTS}/{subsystem}/{event}/format");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("call not found: no tracepoint {subsystem}/{event} ({path}: {e})"))?;
    Ok(parse_tracepoint_format(&text))
}

fn parse_tracepoint_format(text: &str) -> Vec<TracepointField> {
    text.lines()
        .filter_map(|line| {
            let mut decl = None;
            let (mut offset, mut size, mut signed) = (None, None, false);
            for part in line.trim().split(';') {
                let part = part.trim();
                if let Some(d) = part.strip_prefix("field:") {
                    decl = Some(d.trim().to_owned());
                } else if let Some(o) = part.strip_prefix("offset:") {
                    offset = o.parse().ok();
                } else if let Some(s) = part.strip_prefix("size:") {
                    size = s.parse().ok();
                } else if let Some(s) = part.strip_prefix("signed:") {
                    signed = s == "1";
                }
            }
            Some(TracepointField {
                decl: decl?,
                offset: offset?,
                size: size?,
                signed,
            })
        })
        .collect()
}

/// Where argument `arg` lies in the record, checked against its type.
fn tracepoint_field(
    format: &[TracepointField],
    arg: &Arg,
    path: &str,
) -> Result<TracepointArg, String> {
    let field = format.get(arg.index as usize).ok_or_else(|| {
        format!(
            "{path}.index: {} is out of range; the tracepoint has fields 0 to {}",
            arg.index,
            format.len().saturating_sub(1)
        )
    })?;
    let decl = &field.decl;
    if decl.starts_with("__data_loc") || decl.contains('[') || field.size > 8 {
        return Err(format!(
            "{path}: field `{decl}` ({} bytes) is not an integer or pointer; arrays and __data_loc strings are not implemented in vigil yet",
            field.size
        ));
    }
    let pointer = decl.contains('*');
    let string = matches!(arg.arg_type, ArgType::String | ArgType::Filename);
    if string && !(pointer && field.size == 8) {
        return Err(format!(
            "{path}.type: {} needs a pointer field, but field `{decl}` is not one",
            arg.arg_type
        ));
    }
    Ok(TracepointArg {
        offset: field.offset,
        size: field.size,
        signed: field.signed,
    })
}

/// Why a uprobe cannot be served here at all, if it cannot.
fn uprobe_refusal(uprobe: &UProbeSpec, features: &KernelFeatures) -> Option<String> {
    if !features.has(Feature::Uprobe) {
        return Some(format!(
            "kernel has no uprobes (vigil probe: uprobe: {})",
            why_not(features, Feature::Uprobe)
        ));
    }
    let unsupported = [
        ("addrs", !uprobe.addrs.is_empty()),
        ("refCtrOffsets", !uprobe.ref_ctr_offsets.is_empty()),
        ("btfPath", uprobe.btf_path.is_some()),
        ("binaryDigests", !uprobe.binary_digests.is_empty()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Some(format!("{field}: not implemented in vigil yet"));
    }
    if !Path::new(&uprobe.path).is_file() {
        return Some(format!("call not found: no file {}", uprobe.path));
    }
    None
}

/// The configuration of a hook at `point`: arguments, selectors, actions,
/// and the status line's mechanism and guarantee.
fn plan_hook(
    policy: &Policy,
    kprobe: &KProbeSpec,
    point: HookPoint,
    enforce: bool,
    features: &KernelFeatures,
) -> Result<HookPlan, String> {
    let syscall = match &point {
        HookPoint::Syscall { .. } => true,
        HookPoint::CgroupSockAddr { function, .. } => function.starts_with("__x64_sys_"),
        _ => false,
    };
    let uprobe = matches!(point, HookPoint::Uprobe { .. });
    let mut notes = Vec::new();
    let expanded = KProbeSpec {
        selectors: expand_lists(&policy.spec.lists, &kprobe.selectors, &mut notes)?,
        ..kprobe.clone()
    };
    let kprobe = &expanded;
    if !kprobe.data.is_empty() {
        return Err("data: not implemented in vigil yet".into());
    }
    let on_function = matches!(point, HookPoint::Function { .. } | HookPoint::Lsm { .. });

    let mut config = vigil_hook_config::default();
    let mut meta = HookMeta {
        policy: policy.name().to_owned(),
        function_name: match &point {
            HookPoint::Syscall { name, .. } => format!("__x64_sys_{name}"),
            HookPoint::Function { name, .. } => name.clone(),
            HookPoint::Lsm { hook, .. } => hook.clone(),
            HookPoint::Uprobe { .. }
            | HookPoint::Usdt { .. }
            | HookPoint::Tracepoint { .. }
            | HookPoint::Fanotify(_) => kprobe.call.clone(),
            HookPoint::CgroupSockAddr { function, .. } => function.clone(),
        },
        message: kprobe.message.clone(),
        tags: kprobe.tags.clone(),
        args: Vec::new(),
        ret: None,
        selector_actions: Vec::new(),
        event: match &point {
            HookPoint::Lsm { .. } => EventKind::Lsm,
            HookPoint::Uprobe {
                path,
                symbol,
                offset,
            } => EventKind::Uprobe {
                path: path.clone(),
                symbol: symbol.clone().unwrap_or_default(),
                offset: symbol.is_none().then_some(*offset),
            },
            HookPoint::Tracepoint {
                subsystem, event, ..
            } => EventKind::Tracepoint {
                subsystem: subsystem.clone(),
                event: event.clone(),
            },
            HookPoint::Usdt {
                path,
                provider,
                name,
            } => EventKind::Usdt {
                path: path.clone(),
                provider: provider.clone(),
                name: name.clone(),
            },
            _ => EventKind::Kprobe,
        },
    };
    config.nargs = kprobe.args.len() as u8;
    for (i, arg) in kprobe.args.iter().enumerate() {
        let path = format!("args[{i}]");
        config.args[i] = arg_config(arg, &point, &path)?;
        if let HookPoint::CgroupSockAddr { function, args, .. } = &point {
            cgroup_sock_addr_arg(&mut config.args[i], arg, syscall, function, args, &path)?;
        }
        meta.args.push(ArgMeta {
            kind: config.args[i].type_,
            label: arg.label.clone(),
            syscall_id: arg.arg_type == ArgType::Syscall64,
        });
    }
    // An event on a socket TrackSock tracked names the socket's owner.
    if let Some(sock) = kprobe.args.iter().find(|a| a.arg_type == ArgType::Sock) {
        config.sock_arg = sock.index as u8 + 1;
    }
    let copies: Vec<usize> = (0..kprobe.args.len())
        .filter(|&i| u32::from(config.args[i].flags) & VIGIL_ARG_AT_RETURN != 0)
        .collect();
    match copies.as_slice() {
        [] => {}
        [one] => {
            // The event waits for the return, which reads the argument.
            config.flags |= VIGIL_HOOK_RETURN;
            config.copy_arg = *one as u8 + 1;
        }
        [_, second, ..] => {
            return Err(format!(
                "args[{second}].returnCopy: one returnCopy argument per hook (as in Tetragon)"
            ))
        }
    }
    if kprobe.r#return {
        let ret = kprobe
            .return_arg
            .as_ref()
            .ok_or("return: true needs returnArg")?;
        let sock_action = match kprobe.return_arg_action {
            Some(ReturnArgAction::TrackSock) => VIGIL_HOOK_RETURN_TRACK_SOCK,
            Some(ReturnArgAction::UntrackSock) => VIGIL_HOOK_RETURN_UNTRACK_SOCK,
            Some(ReturnArgAction::Post) | None => 0,
        };
        if sock_action != 0 && (!on_function || ret.arg_type != ArgType::Sock) {
            return Err(format!(
                "returnArgAction: {} needs a kernel function returning a socket (returnArg type sock), \
                 not a {} hook returning {}",
                kprobe.return_arg_action.map(|a| a.to_string()).unwrap_or_default(),
                point.kind_name(),
                ret.arg_type
            ));
        }
        config.flags |= sock_action;
        let kind = match ret.arg_type {
            // A char * return (readline): the string it points to.
            ArgType::String if uprobe => VIGIL_ARG_STRING as u8,
            // The socket is tracked, not read: the event carries no return value.
            ArgType::Sock if sock_action != 0 => VIGIL_ARG_NONE as u8,
            t => int_kind(t).ok_or_else(|| {
                format!(
                    "returnArg: type {t} is not supported for {} return values (integer types{})",
                    point.kind_name(),
                    if uprobe { ", string" } else { " only" }
                )
            })?,
        };
        config.flags |= VIGIL_HOOK_RETURN;
        config.ret_type = kind;
        meta.ret = (kind != VIGIL_ARG_NONE as u8).then(|| ArgMeta {
            kind,
            label: ret.label.clone(),
            syscall_id: false,
        });
    }
    if enforce {
        config.flags |= VIGIL_HOOK_ENFORCE;
    }

    let mut values = SelectorValues::default();
    let mut signals = false;
    let mut overrides = None;
    config.nselectors = kprobe.selectors.len() as u8;
    for (s, selector) in kprobe.selectors.iter().enumerate() {
        let path = format!("selectors[{s}]");
        let (sel, action) = selector_config(
            selector,
            s as u32,
            &kprobe.args,
            &mut config,
            &mut values,
            &point,
            &path,
        )?;
        signals |= sel.actions & VIGIL_ACTION_SIGNAL != 0;
        if sel.actions & VIGIL_ACTION_OVERRIDE != 0 {
            overrides = Some(sel.override_error);
        }
        config.selectors[s] = sel;
        meta.selector_actions.push(action);
    }
    if kprobe.selectors.is_empty() {
        meta.selector_actions.push("KPROBE_ACTION_POST");
    }
    plan_filter_reads(&mut config, kprobe);
    if signals && enforce && !features.has(Feature::SendSignal) {
        return Err(format!(
            "Sigkill/Signal need bpf_send_signal (vigil probe: {})",
            why_not(features, Feature::SendSignal)
        ));
    }
    let ret = kprobe.r#return;
    let via = match &point {
        HookPoint::Syscall { name, nr, via } => match via {
            SyscallVia::Fentry if ret => format!("fentry + fexit __x64_sys_{name}"),
            SyscallVia::Fentry => format!("fentry __x64_sys_{name}"),
            SyscallVia::FmodRet if ret => format!("fmod_ret + fexit __x64_sys_{name}"),
            SyscallVia::FmodRet => format!("fmod_ret __x64_sys_{name}"),
            SyscallVia::KprobeOverride => {
                format!("kprobe __x64_sys_{name} with bpf_override_return")
            }
            SyscallVia::Tracepoint if waits_for_return(kprobe) => {
                format!("tracepoints syscalls/sys_enter_{name} + sys_exit_{name}")
            }
            SyscallVia::Tracepoint => format!("tracepoint syscalls/sys_enter_{name}"),
            SyscallVia::RawTp => format!(
                "raw_tp sys_enter{} (system call {nr} has no tracepoint of its own)",
                if waits_for_return(kprobe) {
                    " + sys_exit"
                } else {
                    ""
                }
            ),
        },
        HookPoint::Function {
            name,
            fentry,
            fmod_ret,
            ..
        } => {
            let (entry, exit) = match (fmod_ret, fentry) {
                (true, _) => ("fmod_ret", "fexit"),
                (false, true) => ("fentry", "fexit"),
                (false, false) => ("kprobe", "kretprobe"),
            };
            if kprobe.r#return {
                format!("{entry} + {exit} {name}")
            } else {
                format!("{entry} {name}")
            }
        }
        HookPoint::Lsm { hook, ima: None } => format!("lsm {hook}"),
        HookPoint::Lsm { hook, ima: Some(_) } => format!("lsm + lsm.s (IMA hash) {hook}"),
        HookPoint::Uprobe { .. } if waits_for_return(kprobe) => {
            point
                .to_string()
                .replacen("uprobe", "uprobe + uretprobe", 1)
        }
        HookPoint::Uprobe { .. }
        | HookPoint::Usdt { .. }
        | HookPoint::Tracepoint { .. }
        | HookPoint::Fanotify(_) => point.to_string(),
        HookPoint::CgroupSockAddr { op, function, .. } => {
            let what = match op {
                SockOp::Connect => "connect(2) as the kernel checks it, before any packet leaves",
                SockOp::Sendmsg => {
                    "every UDP send that names a destination, from sendto, sendmsg, sendmmsg or \
                     io_uring alike, before the datagram leaves; the fd and the other \
                     registers are those of the named system call only"
                }
                SockOp::Bind => "bind(2) as the kernel checks it, before the address is taken",
            };
            let program = op.program();
            format!(
                "cgroup/{program}4 + cgroup/{program}6 on the cgroup v2 root (for {function}: \
                 {what})"
            )
        }
    };
    let cgroup_op = match &point {
        HookPoint::CgroupSockAddr { op, .. } => Some(*op),
        _ => None,
    };
    let guarantee = match (cgroup_op, overrides, signals, enforce) {
        (Some(op), _, _, true) => cgroup_guarantee(op, overrides, signals),
        (_, Some(error), _, true) if syscall => format!(
            "blocked before the operation: {} fails with {} before the call runs",
            kprobe.call,
            errno_text(error)
        ),
        (_, Some(error), _, true) => format!(
            "blocked before the operation: {} fails with error {error} before it takes effect",
            kprobe.call
        ),
        (_, Some(_), _, false) => {
            "monitor mode: overrides and signals are counted, never applied".to_owned()
        }
        (_, None, false, _) => "observe only".to_owned(),
        (_, None, true, true) if matches!(&point, HookPoint::Syscall { via, .. } if via.on_function()) =>
        {
            format!("{}: {SYSCALL_FUNCTION_KILL_GUARANTEE}", meta.function_name)
        }
        (_, None, true, true) if syscall || point.is_syscall_entry() => KILL_GUARANTEE.to_owned(),
        (_, None, true, true) if uprobe => UPROBE_KILL_GUARANTEE.to_owned(),
        (_, None, true, true) if matches!(point, HookPoint::Usdt { .. }) => {
            USDT_KILL_GUARANTEE.to_owned()
        }
        (_, None, true, true) if matches!(point, HookPoint::Tracepoint { .. }) => {
            TRACEPOINT_KILL_GUARANTEE.to_owned()
        }
        (_, None, true, true) => format!("{}: {FUNCTION_KILL_GUARANTEE}", kprobe.call),
        (_, None, true, false) => "monitor mode: signals are counted, never sent".to_owned(),
    };
    let guarantee = if meta
        .selector_actions
        .contains(&"KPROBE_ACTION_NOTIFYENFORCER")
    {
        format!("NotifyEnforcer: {ENFORCER_GUARANTEE}; {guarantee}")
    } else {
        guarantee
    };
    let via = if notes.is_empty() {
        via
    } else {
        format!("{via} ({})", notes.join("; "))
    };
    Ok(HookPlan {
        point,
        config,
        strings: values.strings,
        addrs: values.addrs,
        meta,
        via,
        guarantee,
    })
}

/// The cgroup hooks see the system call's arguments (its registers; the
/// kernel's copy of the address in place of the caller's pointer);
/// security_socket_connect's and security_socket_bind's are (struct socket *,
/// the same address, the same length), of which the socket is not available.
fn cgroup_sock_addr_arg(
    config: &mut vigil_arg_config,
    arg: &Arg,
    syscall: bool,
    function: &str,
    args: &SockAddrArgs,
    path: &str,
) -> Result<(), String> {
    let kind = u32::from(config.type_);
    if matches!(kind, VIGIL_ARG_SOCKADDR | VIGIL_ARG_SOCKADDR_KERNEL) {
        match args.addr {
            Some(addr) if addr == arg.index => {}
            Some(addr) => {
                return Err(format!(
                    "{path}: the address is argument {addr} of {function}, not {}",
                    arg.index
                ))
            }
            None => {
                return Err(format!(
                    "{path}: {function} has no sockaddr argument (its address is inside its \
                     struct msghdr); use sys_sendto, whose argument 4 is the address"
                ))
            }
        }
        config.type_ = VIGIL_ARG_SOCKADDR_KERNEL as u8;
    } else if !syscall && arg.index == 0 {
        return Err(format!(
            "{path}: served by the cgroup sock_addr hooks (no fmod_ret or kprobes here), \
             {function} has its address (index 1) and length (index 2), not its struct socket"
        ));
    }
    Ok(())
}

/// What the cgroup sock_addr hooks guarantee for the selectors' enforcing actions.
fn cgroup_guarantee(op: SockOp, overrides: Option<i32>, signals: bool) -> String {
    let (call, before, unseen) = match op {
        SockOp::Connect => ("connect()", "before any packet leaves", ""),
        SockOp::Sendmsg => (
            "a UDP send that names a destination (sendto, sendmsg, sendmmsg)",
            "before the datagram leaves",
            "; not seen: sends without an address on a connected UDP socket (the kernel \
             checks those at connect(), which a sys_connect policy blocks), TCP and raw sockets",
        ),
        SockOp::Bind => (
            "bind()",
            "before the address is taken",
            "; not seen: ports the kernel picks implicitly (connect or send without bind)",
        ),
    };
    let program = op.program();
    let blocked = format!(
        "blocked before the operation (cgroup/{program}4, cgroup/{program}6): {call} fails"
    );
    let mut out = match overrides {
        Some(error) => format!(
            "{blocked} with {} (Override), with EPERM (Sigkill), {before}",
            errno_text(error)
        ),
        None => format!("{blocked} with EPERM {before}"),
    };
    out.push_str(unseen);
    if signals {
        let exits = op
            .syscalls()
            .iter()
            .map(|s| format!("sys_exit_{s}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "; signals are sent when the call returns (syscalls/{exits})"
        ));
    }
    out
}

/// `error -111 (Connection refused)`.
fn errno_text(error: i32) -> String {
    let text = std::io::Error::from_raw_os_error(-error).to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    format!("error {error} ({text})")
}

/// Whether the hook also runs at the return: for the return value, or to
/// read a returnCopy argument.
fn waits_for_return(kprobe: &KProbeSpec) -> bool {
    kprobe.r#return || kprobe.args.iter().any(|a| a.return_copy)
}

/// A system call hook. Its function `__x64_sys_NAME` by a BPF trampoline
/// where the kernel has them and its BTF describes the function (cheaper
/// than the tracepoints): fentry, or fmod_ret when a selector Overrides (the
/// kernel lets every system call function fail before it runs), with fexit
/// for return values; Override without fmod_ret by a kprobe with
/// bpf_override_return. Else its own tracepoints when tracefs lists them,
/// else raw_tp; there Override cannot be honoured and is refused.
fn syscall_point(kprobe: &KProbeSpec, features: &KernelFeatures) -> Result<HookPoint, String> {
    let (name, nr) = syscall_of(&kprobe.call)?;
    let function = format!("__x64_sys_{name}");
    let ret = kprobe.r#return;
    let point = |via| {
        Ok(HookPoint::Syscall {
            nr,
            name: name.to_owned(),
            via,
        })
    };
    // returnCopy arguments are taken by the tracepoint front-end only.
    let tracepoint_only = kprobe.args.iter().any(|a| a.return_copy);
    let trampoline = |entry| {
        !tracepoint_only
            && features.has(entry)
            && (!ret || features.has(Feature::Fexit))
            && in_vmlinux_btf(&function)
    };
    if overrides(kprobe) {
        if trampoline(Feature::FmodRetSyscall) {
            return point(SyscallVia::FmodRet);
        }
        if !ret && features.has(Feature::KprobeOverride) && in_kallsyms(&function) {
            return point(SyscallVia::KprobeOverride);
        }
        return Err(format!(
            "kprobe on {}: Override on a system call needs fmod_ret on {function} (vigil probe: \
             fmod_ret on system calls: {}{}) or a kprobe with bpf_override_return (vigil probe: kprobe override: {}{}); \
             a system call tracepoint cannot change the call's result (use Sigkill: {KILL_GUARANTEE})",
            kprobe.call,
            why_not(features, Feature::FmodRetSyscall),
            if ret { format!("; fexit: {}", why_not(features, Feature::Fexit)) } else { String::new() },
            why_not(features, Feature::KprobeOverride),
            if ret { "; return: true is served by fexit only" } else { "" },
        ));
    }
    if trampoline(Feature::Fentry) {
        return point(SyscallVia::Fentry);
    }
    let tracepoint = features.has(Feature::Tracepoint)
        && has_syscall_tracepoints(name, waits_for_return(kprobe));
    if !tracepoint && !features.has(Feature::RawTp) {
        return Err(format!(
            "kprobe on {}: needs fentry on {function} (vigil probe: fentry: {}), \
             the syscalls/sys_enter_{name} tracepoint (vigil probe: tracepoint: {}) \
             or raw_tp sys_enter/sys_exit (vigil probe: raw_tp: {})",
            kprobe.call,
            why_not(features, Feature::Fentry),
            why_not(features, Feature::Tracepoint),
            why_not(features, Feature::RawTp)
        ));
    }
    point(if tracepoint {
        SyscallVia::Tracepoint
    } else {
        SyscallVia::RawTp
    })
}

/// Whether any selector of the hook Overrides the call's result.
fn overrides(kprobe: &KProbeSpec) -> bool {
    kprobe
        .selectors
        .iter()
        .flat_map(|s| &s.match_actions)
        .any(|a| a.action == ActionKind::Override)
}

/// A kernel function hook: fentry (cheaper) when the kernel has trampolines
/// and its BTF describes the function, else a kprobe when kallsyms lists
/// it; with `return: true` also fexit or a kretprobe. A hook with Override
/// needs fmod_ret: the function then returns the selector's error without
/// running.
fn function_point(kprobe: &KProbeSpec, features: &KernelFeatures) -> Result<HookPoint, String> {
    let call = &kprobe.call;
    let ret = kprobe.r#return;
    if overrides(kprobe) {
        return override_point(call, ret, features);
    }
    let fentry = features.has(Feature::Fentry) && (!ret || features.has(Feature::Fexit));
    let kprobes = features.has(Feature::Kprobe) && (!ret || features.has(Feature::Kretprobe));
    if !fentry && !kprobes {
        return Err(if ret {
            format!(
                "kprobe on {call}: return: true on a kernel function needs fexit or a kretprobe \
                 (vigil probe: fexit: {}; kretprobe: {}; fentry: {}; kprobe: {})",
                why_not(features, Feature::Fexit),
                why_not(features, Feature::Kretprobe),
                why_not(features, Feature::Fentry),
                why_not(features, Feature::Kprobe)
            )
        } else {
            format!(
                "kprobe on {call}: kernel has no kprobes and no fentry (vigil probe: kprobe: {}; fentry: {})",
                why_not(features, Feature::Kprobe),
                why_not(features, Feature::Fentry)
            )
        });
    }
    if fentry && in_vmlinux_btf(call) {
        return Ok(HookPoint::Function {
            name: call.clone(),
            fentry: true,
            fmod_ret: false,
            multi: false,
        });
    }
    if kprobes && in_kallsyms(call) {
        return Ok(HookPoint::Function {
            name: call.clone(),
            fentry: false,
            fmod_ret: false,
            multi: false,
        });
    }
    let looked = match (fentry, kprobes) {
        (true, true) => "vmlinux BTF and /proc/kallsyms",
        (true, false) => "vmlinux BTF",
        _ => "/proc/kallsyms",
    };
    Err(format!(
        "call not found: no kernel function named {call} in {looked}"
    ))
}

/// A kernel function whose selectors Override: fmod_ret, which the kernel
/// allows on security_* functions and on its error injection list.
fn override_point(call: &str, ret: bool, features: &KernelFeatures) -> Result<HookPoint, String> {
    if !features.has(Feature::FmodRet) {
        return Err(format!(
            "kprobe on {call}: Override on a kernel function needs fmod_ret (vigil probe: fmod_ret: {}); \
             vigil does not use bpf_override_return (kprobe: {})",
            why_not(features, Feature::FmodRet),
            why_not(features, Feature::Kprobe)
        ));
    }
    if ret && !features.has(Feature::Fexit) {
        return Err(format!(
            "kprobe on {call}: return: true needs fexit (vigil probe: fexit: {})",
            why_not(features, Feature::Fexit)
        ));
    }
    if !in_vmlinux_btf(call) {
        return Err(format!(
            "call not found: no kernel function named {call} in vmlinux BTF"
        ));
    }
    if !call.starts_with("security_") && in_error_injection_list(call) == Some(false) {
        return Err(format!(
            "kprobe on {call}: Override needs a function the kernel allows errors to be injected \
             into (security_* or {ERROR_INJECTION_LIST}); {call} is neither"
        ));
    }
    Ok(HookPoint::Function {
        name: call.to_owned(),
        fentry: true,
        fmod_ret: true,
        multi: false,
    })
}

/// The kernel's functions open to error injection (debugfs).
const ERROR_INJECTION_LIST: &str = "/sys/kernel/debug/error_injection/list";

/// Whether the error injection list names `call`; None when it cannot be
/// read (debugfs not mounted): the kernel then decides at load.
fn in_error_injection_list(call: &str) -> Option<bool> {
    let list = std::fs::read_to_string(ERROR_INJECTION_LIST).ok()?;
    Some(
        list.lines()
            .any(|l| l.split_whitespace().next() == Some(call)),
    )
}

/// Whether the kernel's BTF describes function `name` (what fentry attaches by).
fn in_vmlinux_btf(name: &str) -> bool {
    libbpf_rs::btf::Btf::from_vmlinux().is_ok_and(|btf| {
        btf.type_by_name::<libbpf_rs::btf::types::Func>(name)
            .is_some()
    })
}

/// Whether /proc/kallsyms lists text symbol `name` (what a kprobe attaches by).
fn in_kallsyms(name: &str) -> bool {
    std::fs::read_to_string("/proc/kallsyms").is_ok_and(|syms| {
        syms.lines().any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            matches!(fields.next(), Some("t" | "T")) && fields.next() == Some(name)
        })
    })
}

/// Whether tracefs lists the system call's own tracepoints (the exit one
/// only when the hook reports return values).
fn has_syscall_tracepoints(name: &str, exit: bool) -> bool {
    let events = Path::new(TRACEFS_SYSCALLS);
    events.join(format!("sys_enter_{name}")).exists()
        && (!exit || events.join(format!("sys_exit_{name}")).exists())
}

/// How much of each string argument the selectors need (`filter_len`), and
/// whether they can run on those short reads (`VIGIL_HOOK_FILTER_FIRST`):
/// so when every argument they compare is an integer or the start of a
/// user-space string. Arguments are then read in full only for events
/// that are posted.
fn plan_filter_reads(config: &mut vigil_hook_config, kprobe: &KProbeSpec) {
    let mut filter_first = config.nselectors > 0;
    for (s, selector) in kprobe.selectors.iter().enumerate() {
        let sel = &config.selectors[s];
        for (m, match_arg) in selector.match_args.iter().enumerate() {
            let arg = &mut config.args[usize::from(sel.match_args[m].arg)];
            if int_kind_of(arg.type_) || net_kind_of(arg.type_) {
                continue;
            }
            let longest = match_arg.values.iter().map(String::len).max().unwrap_or(0);
            let need = (longest + 2).min(VIGIL_MATCH_STRING_MAX as usize + 2) as u16;
            arg.filter_len = arg.filter_len.max(need);
            if u32::from(arg.type_) != VIGIL_ARG_STRING
                || u32::from(arg.flags) & VIGIL_ARG_NEED_REVERSED != 0
            {
                filter_first = false;
            }
        }
    }
    if filter_first {
        config.flags |= VIGIL_HOOK_FILTER_FIRST;
    }
}

fn int_kind_of(kind: u8) -> bool {
    matches!(
        u32::from(kind),
        VIGIL_ARG_INT
            | VIGIL_ARG_UINT
            | VIGIL_ARG_LONG
            | VIGIL_ARG_ULONG
            | VIGIL_ARG_SIZE
            | VIGIL_ARG_CAPABILITY
            | VIGIL_ARG_KERNEL_CAP
    )
}

/// Argument types that are kernel objects, read by kernel function hooks.
fn kernel_object_kind(t: ArgType) -> Option<u32> {
    Some(match t {
        ArgType::File => VIGIL_ARG_FILE,
        ArgType::Path => VIGIL_ARG_PATH,
        ArgType::Dentry => VIGIL_ARG_DENTRY,
        ArgType::LinuxBinprm => VIGIL_ARG_LINUX_BINPRM,
        ArgType::Capability => VIGIL_ARG_CAPABILITY,
        ArgType::KernelCapT => VIGIL_ARG_KERNEL_CAP,
        ArgType::UserNamespace => VIGIL_ARG_USER_NS,
        ArgType::Cred => VIGIL_ARG_CRED,
        ArgType::Skb => VIGIL_ARG_SKB,
        ArgType::BpfAttr => VIGIL_ARG_BPF_ATTR,
        ArgType::BpfMap => VIGIL_ARG_BPF_MAP,
        ArgType::PerfEvent => VIGIL_ARG_PERF_EVENT,
        _ => return None,
    })
}

fn net_kind_of(kind: u8) -> bool {
    matches!(
        u32::from(kind),
        VIGIL_ARG_SOCKADDR | VIGIL_ARG_SOCKADDR_KERNEL | VIGIL_ARG_SOCK | VIGIL_ARG_SKB
    )
}

fn int_kind(t: ArgType) -> Option<u8> {
    Some(match t {
        // The system call number (raw_syscalls/sys_enter's id).
        ArgType::Syscall64 => VIGIL_ARG_LONG,
        ArgType::Int8 | ArgType::Int16 | ArgType::Int32 => VIGIL_ARG_INT,
        ArgType::Uint8 | ArgType::Uint16 | ArgType::Uint32 => VIGIL_ARG_UINT,
        ArgType::Int64 => VIGIL_ARG_LONG,
        ArgType::Uint64 => VIGIL_ARG_ULONG,
        ArgType::SizeT => VIGIL_ARG_SIZE,
        _ => return None,
    } as u8)
}

fn arg_config(arg: &Arg, point: &HookPoint, path: &str) -> Result<vigil_arg_config, String> {
    let user = point.user_args();
    let hook = point.kind_name();
    if arg.index >= 6 {
        return Err(format!(
            "{path}.index: {} is out of range; vigil reads arguments 0 to 5",
            arg.index
        ));
    }
    let unsupported = [
        ("resolve", !arg.resolve.is_empty()),
        ("btfType", arg.btf_type.is_some()),
        ("maxData", arg.max_data),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!("{path}.{field}: not implemented in vigil yet"));
    }
    let kind = match arg.arg_type {
        ArgType::Fd => VIGIL_ARG_FD,
        ArgType::Sockaddr if user => VIGIL_ARG_SOCKADDR,
        ArgType::Sockaddr => VIGIL_ARG_SOCKADDR_KERNEL,
        ArgType::Sock if !user => VIGIL_ARG_SOCK,
        ArgType::Sock => {
            return Err(format!(
                "{path}.type: sock is a kernel struct sock *, which {hook} hooks do not take (use sockaddr)"
            ))
        }
        t if !user => kernel_object_kind(t)
            .or_else(|| int_kind(t).map(u32::from))
            .ok_or_else(|| {
                format!("{path}.type: {t} is not supported on {hook} hooks yet (supported: integer types, fd, file, path, dentry, linux_binprm, capability, kernel_cap_t, user_namespace, cred, sock, sockaddr, skb, bpf_attr, bpf_map, perf_event)")
            })?,
        ArgType::String | ArgType::Filename => VIGIL_ARG_STRING,
        // With returnCopy the return value says how much the call filled.
        ArgType::CharBuf if arg.size_arg_index == 0 && !arg.return_copy => {
            return Err(format!(
                "{path}: char_buf without sizeArgIndex is not supported (its size would be unknown)"
            ))
        }
        ArgType::CharBuf => VIGIL_ARG_CHAR_BUF,
        ArgType::CharIovec if arg.size_arg_index == 0 => {
            return Err(format!(
                "{path}: char_iovec needs sizeArgIndex (the argument that counts the iovecs)"
            ))
        }
        ArgType::CharIovec => VIGIL_ARG_CHAR_IOVEC,
        t => int_kind(t).ok_or_else(|| {
            format!("{path}.type: {t} is not supported on {hook} hooks yet (supported: integer types, string, filename, fd, char_buf, char_iovec, sockaddr)")
        })? as u32,
    };
    let mut flags = 0;
    if arg.return_copy {
        let returns = matches!(point, HookPoint::Syscall { .. } | HookPoint::Uprobe { .. });
        if !returns || !matches!(kind, VIGIL_ARG_CHAR_BUF | VIGIL_ARG_CHAR_IOVEC) {
            return Err(format!(
                "{path}.returnCopy: vigil reads a char_buf or char_iovec argument of a system call or uprobe at the return, not a {} argument of a {hook} hook",
                arg.arg_type
            ));
        }
        flags = VIGIL_ARG_AT_RETURN as u8;
    }
    Ok(vigil_arg_config {
        type_: kind as u8,
        index: arg.index as u8,
        size_index: arg.size_arg_index as u8,
        flags,
        ..Default::default()
    })
}

/// The position in `args` that a matchArgs entry refers to.
fn arg_position(m: &ArgSelector, args: &[Arg], path: &str) -> Result<usize, String> {
    match m.args.as_slice() {
        [] => args
            .iter()
            .position(|a| a.index == m.index)
            .ok_or_else(|| format!("{path}.index: no argument with index {} in args", m.index)),
        [one] if (*one as usize) < args.len() => Ok(*one as usize),
        [one] => Err(format!("{path}.args: {one} is not a position in args")),
        _ => Err(format!(
            "{path}.args: matching several arguments at once is not implemented in vigil yet"
        )),
    }
}

fn selector_config(
    selector: &Selector,
    s: u32,
    args: &[Arg],
    hook: &mut vigil_hook_config,
    values: &mut SelectorValues,
    point: &HookPoint,
    path: &str,
) -> Result<(vigil_selector_config, &'static str), String> {
    let SelectorValues { strings, addrs } = values;
    let unsupported = [
        ("macros", !selector.macros.is_empty()),
        ("matchData", !selector.match_data.is_empty()),
        ("matchWorkloads", !selector.match_workloads.is_empty()),
        (
            "matchReturnActions",
            !selector.match_return_actions.is_empty(),
        ),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!("{path}.{field}: not implemented in vigil yet"));
    }
    let base = s * MATCH_SLOTS_PER_SELECTOR;
    let mut sel = vigil_selector_config::default();

    if selector.match_pids.len() > 1 {
        return Err(format!(
            "{path}.matchPIDs: more than one entry is not implemented in vigil yet"
        ));
    }
    if let Some(pids) = selector.match_pids.first() {
        if pids.is_namespace_pid && pids.follow_forks {
            return Err(format!(
                "{path}.matchPIDs[0]: followForks with isNamespacePID is not implemented in vigil yet"
            ));
        }
        sel.pid_in_ns = u8::from(pids.is_namespace_pid);
        sel.pid_follow_forks = u8::from(pids.follow_forks);
        sel.pid_op = match pids.operator {
            SetOperator::In => VIGIL_OP_PID_IN,
            SetOperator::NotIn => VIGIL_OP_PID_NOT_IN,
        } as u8;
        sel.npids = pids.values.len().min(sel.pids.len()) as u8;
        for (slot, pid) in sel.pids.iter_mut().zip(&pids.values) {
            *slot = *pid;
        }
    }

    if selector.match_namespaces.len() > VIGIL_MATCH_NS_MAX as usize {
        return Err(format!(
            "{path}.matchNamespaces: at most {VIGIL_MATCH_NS_MAX} entries per selector"
        ));
    }
    sel.nmatch_ns = selector.match_namespaces.len() as u8;
    for (n, ns) in selector.match_namespaces.iter().enumerate() {
        sel.match_ns[n] = ns_match(ns, &format!("{path}.matchNamespaces[{n}]"))?;
    }
    if selector.match_capabilities.len() > VIGIL_MATCH_CAPS_MAX as usize {
        return Err(format!(
            "{path}.matchCapabilities: at most {VIGIL_MATCH_CAPS_MAX} entries per selector"
        ));
    }
    sel.nmatch_caps = selector.match_capabilities.len() as u8;
    for (c, caps) in selector.match_capabilities.iter().enumerate() {
        sel.match_caps[c] = caps_match(caps);
    }

    if let Some(bins) = selector.match_binaries.first() {
        let (op, reversed) = binary_op(bins);
        sel.binary_follow_children = u8::from(bins.follow_children);
        hook.flags |= VIGIL_HOOK_NEED_BINARY;
        if reversed {
            hook.flags |= VIGIL_HOOK_NEED_BINARY_REVERSED;
        }
        sel.binary_op = op;
        push_strings(
            strings,
            base + BINARY_SLOT,
            &bins.values,
            reversed,
            &format!("{path}.matchBinaries[0]"),
        )?;
    }
    if let Some(bins) = selector.match_parent_binaries.first() {
        let bpath = format!("{path}.matchParentBinaries[0]");
        if bins.follow_children {
            return Err(format!(
                "{bpath}.followChildren: on matchParentBinaries not implemented in vigil yet"
            ));
        }
        let (op, reversed) = binary_op(bins);
        hook.flags |= VIGIL_HOOK_NEED_PARENT_BINARY;
        if reversed {
            hook.flags |= VIGIL_HOOK_NEED_PARENT_BINARY_REVERSED;
        }
        sel.parent_binary_op = op;
        push_strings(
            strings,
            base + PARENT_BINARY_SLOT,
            &bins.values,
            reversed,
            &bpath,
        )?;
    }
    for (c, change) in selector.match_namespace_changes.iter().enumerate() {
        if c > 0 {
            return Err(format!(
                "{path}.matchNamespaceChanges[{c}]: one entry per selector (list the namespaces in its values)"
            ));
        }
        sel.ns_change_not_in = u8::from(change.operator == SetOperator::NotIn);
        sel.ns_change_mask = change
            .values
            .iter()
            .fold(0u16, |mask, ns| mask | 1 << ns_kind(*ns));
    }
    for (c, change) in selector.match_capability_changes.iter().enumerate() {
        if c > 0 {
            return Err(format!(
                "{path}.matchCapabilityChanges[{c}]: one entry per selector"
            ));
        }
        sel.caps_change_on = 1;
        sel.caps_change = caps_match(change);
    }

    let nmatch = selector.match_args.len() + selector.match_return_args.len();
    if nmatch > VIGIL_MATCH_ARGS_MAX as usize {
        return Err(format!(
            "{path}: vigil compares at most {VIGIL_MATCH_ARGS_MAX} arguments and return values per selector"
        ));
    }
    sel.nmatch_args = nmatch as u8;
    let args_matches = selector
        .match_args
        .iter()
        .enumerate()
        .map(|(m, match_arg)| {
            let mpath = format!("{path}.matchArgs[{m}]");
            let position = arg_position(match_arg, args, &mpath)?;
            Ok((match_arg, mpath, position as u8, hook.args[position].type_))
        });
    // matchReturnArgs compare the return value (Tetragon's index 0 is returnArg).
    let return_matches = selector
        .match_return_args
        .iter()
        .enumerate()
        .map(|(m, match_arg)| {
            let mpath = format!("{path}.matchReturnArgs[{m}]");
            if hook.flags & VIGIL_HOOK_RETURN == 0 {
                return Err(format!("{mpath}: needs return: true"));
            }
            Ok((
                match_arg,
                mpath,
                VIGIL_MATCH_RETURN_ARG as u8,
                hook.ret_type,
            ))
        });
    let matches: Vec<_> = args_matches
        .chain(return_matches)
        .collect::<Result<_, String>>()?;
    for (m, (match_arg, mpath, arg, kind)) in matches.into_iter().enumerate() {
        let kind = u32::from(kind);
        let mut ma = vigil_match_arg {
            arg,
            ..Default::default()
        };
        if let Some(name) = unmatchable_kind(kind) {
            return Err(format!(
                "{mpath}: matching a {name} argument is not implemented in vigil yet"
            ));
        }
        if kind == VIGIL_ARG_CHAR_IOVEC {
            return Err(format!(
                "{mpath}: matching a char_iovec argument is not implemented in vigil yet"
            ));
        }
        if hook
            .args
            .get(usize::from(arg))
            .is_some_and(|a| u32::from(a.flags) & VIGIL_ARG_AT_RETURN != 0)
        {
            return Err(format!(
                "{mpath}: a returnCopy argument is read at the return, after the selectors ran; vigil cannot match it"
            ));
        }
        if matches!(
            kind,
            VIGIL_ARG_STRING
                | VIGIL_ARG_FD
                | VIGIL_ARG_FILE
                | VIGIL_ARG_CHAR_BUF
                | VIGIL_ARG_PATH
                | VIGIL_ARG_DENTRY
                | VIGIL_ARG_LINUX_BINPRM
        ) {
            let op = match match_arg.operator {
                Operator::Equal => VIGIL_OP_STR_EQ,
                Operator::NotEqual => VIGIL_OP_STR_NEQ,
                Operator::Prefix => VIGIL_OP_STR_PREFIX,
                Operator::NotPrefix => VIGIL_OP_STR_NOT_PREFIX,
                Operator::Postfix => VIGIL_OP_STR_POSTFIX,
                Operator::NotPostfix => VIGIL_OP_STR_NOT_POSTFIX,
                other => {
                    return Err(format!(
                        "{mpath}.operator: {other} on a string argument is not implemented in vigil yet"
                    ))
                }
            };
            let reversed = matches!(op, VIGIL_OP_STR_POSTFIX | VIGIL_OP_STR_NOT_POSTFIX);
            if reversed && u32::from(arg) < VIGIL_HOOK_ARGS_MAX {
                hook.args[usize::from(arg)].flags |= VIGIL_ARG_NEED_REVERSED as u8;
            }
            ma.op = op as u8;
            push_strings(
                strings,
                base + m as u32,
                &match_arg.values,
                reversed,
                &mpath,
            )?;
        } else if net_kind_of(kind as u8) {
            net_match(&mut ma, match_arg, kind, base + m as u32, addrs, &mpath)?;
        } else {
            int_match(&mut ma, match_arg, &mpath)?;
        }
        sel.match_args[m] = ma;
    }

    let (actions, signal, error, name) = actions_of(&selector.match_actions, point, path)?;
    if actions & (VIGIL_ACTION_TRACK_SOCK | VIGIL_ACTION_UNTRACK_SOCK) != 0 {
        sel.arg_sock = sock_action_arg(&selector.match_actions, args, path)?;
    }
    sel.actions = actions;
    sel.signal = signal;
    sel.override_error = error;
    if let Some((limit_ns, scope)) = rate_limit_of(&selector.match_actions, path)? {
        sel.rate_limit_ns = limit_ns;
        sel.rate_scope = scope;
    }
    Ok((sel, name))
}

/// The index of the socket argument TrackSock / UntrackSock act on, which
/// must be a declared `sock` argument.
fn sock_action_arg(actions: &[Action], args: &[Arg], path: &str) -> Result<u8, String> {
    let mut found = None;
    for (a, action) in actions.iter().enumerate() {
        if !matches!(
            action.action,
            ActionKind::TrackSock | ActionKind::UntrackSock
        ) {
            continue;
        }
        let apath = format!("{path}.matchActions[{a}].argSock");
        let index = action.arg_sock.ok_or(format!("{apath}: missing"))?;
        match args.iter().find(|arg| arg.index == index) {
            Some(arg) if arg.arg_type == ArgType::Sock => {}
            Some(arg) => {
                return Err(format!(
                    "{apath}: argument {index} is {}; {} needs a sock argument",
                    arg.arg_type, action.action
                ))
            }
            None => return Err(format!("{apath}: no declared argument has index {index}")),
        }
        if found.is_some_and(|f| f != index) {
            return Err(format!(
                "{apath}: one socket argument per selector for TrackSock / UntrackSock"
            ));
        }
        found = Some(index);
    }
    found
        .map(|i| i as u8)
        .ok_or_else(|| format!("{path}: no TrackSock or UntrackSock action"))
}

/// The namespace inode numbers of the host (`host_ns`), read once.
fn host_namespace(ns: Namespace) -> u32 {
    static HOST: std::sync::OnceLock<vigil_bpf::wire::vigil_namespaces> =
        std::sync::OnceLock::new();
    let host = HOST.get_or_init(crate::events::host_namespaces);
    match ns {
        Namespace::Uts => host.uts,
        Namespace::Ipc => host.ipc,
        Namespace::Mnt => host.mnt,
        Namespace::Pid => host.pid,
        Namespace::PidForChildren => host.pid_for_children,
        Namespace::Net => host.net,
        Namespace::Time => host.time,
        Namespace::TimeForChildren => host.time_for_children,
        Namespace::Cgroup => host.cgroup,
        Namespace::User => host.user,
    }
}

fn ns_kind(ns: Namespace) -> u8 {
    (match ns {
        Namespace::Uts => VIGIL_NS_UTS,
        Namespace::Ipc => VIGIL_NS_IPC,
        Namespace::Mnt => VIGIL_NS_MNT,
        Namespace::Pid => VIGIL_NS_PID,
        Namespace::PidForChildren => VIGIL_NS_PID_FOR_CHILDREN,
        Namespace::Net => VIGIL_NS_NET,
        Namespace::Time => VIGIL_NS_TIME,
        Namespace::TimeForChildren => VIGIL_NS_TIME_FOR_CHILDREN,
        Namespace::Cgroup => VIGIL_NS_CGROUP,
        Namespace::User => VIGIL_NS_USER,
    }) as u8
}

/// The string operator of a matchBinaries / matchParentBinaries entry, and
/// whether its keys are reversed (Postfix).
fn binary_op(bins: &BinarySelector) -> (u8, bool) {
    let op = match bins.operator {
        BinaryOperator::In => VIGIL_OP_STR_EQ,
        BinaryOperator::NotIn => VIGIL_OP_STR_NEQ,
        BinaryOperator::Prefix => VIGIL_OP_STR_PREFIX,
        BinaryOperator::NotPrefix => VIGIL_OP_STR_NOT_PREFIX,
        BinaryOperator::Postfix => VIGIL_OP_STR_POSTFIX,
        BinaryOperator::NotPostfix => VIGIL_OP_STR_NOT_POSTFIX,
    };
    let reversed = matches!(op, VIGIL_OP_STR_POSTFIX | VIGIL_OP_STR_NOT_POSTFIX);
    (op as u8, reversed)
}

fn ns_match(m: &NamespaceSelector, path: &str) -> Result<vigil_match_ns, String> {
    if m.values.len() > VIGIL_MATCH_NS_VALUES_MAX as usize {
        return Err(format!(
            "{path}.values: at most {VIGIL_MATCH_NS_VALUES_MAX} namespaces per entry"
        ));
    }
    let mut out = vigil_match_ns {
        ns: ns_kind(m.namespace),
        not_in: u8::from(m.operator == SetOperator::NotIn),
        nvalues: m.values.len() as u8,
        ..Default::default()
    };
    for (v, value) in m.values.iter().enumerate() {
        out.values[v] = if value == "host_ns" {
            match host_namespace(m.namespace) {
                0 => {
                    return Err(format!(
                        "{path}.values[{v}]: host_ns: the host's {} namespace cannot be read from /proc",
                        m.namespace
                    ))
                }
                inum => inum,
            }
        } else {
            value.trim().parse().map_err(|_| {
                format!(
                    "{path}.values[{v}]: \"{value}\" is not a namespace inode number or host_ns"
                )
            })?
        };
    }
    Ok(out)
}

fn caps_match(m: &CapabilitiesSelector) -> vigil_match_caps {
    vigil_match_caps {
        set: match m.set {
            CapabilitySet::Effective => VIGIL_CAP_EFFECTIVE,
            CapabilitySet::Inheritable => VIGIL_CAP_INHERITABLE,
            CapabilitySet::Permitted => VIGIL_CAP_PERMITTED,
        } as u8,
        not_in: u8::from(m.operator == SetOperator::NotIn),
        ns_cap: u8::from(m.is_namespace_capability),
        mask: m
            .values
            .iter()
            .fold(0u64, |mask, cap| mask | 1u64 << cap.number()),
        ..Default::default()
    }
}

/// Post's `rateLimit` (nanoseconds) and `rateLimitScope`, if set.
fn rate_limit_of(actions: &[Action], path: &str) -> Result<Option<(u64, u8)>, String> {
    let Some((a, action)) = actions
        .iter()
        .enumerate()
        .find(|(_, a)| a.action == ActionKind::Post && a.rate_limit.is_some())
    else {
        return Ok(None);
    };
    let text = action.rate_limit.as_deref().unwrap_or_default();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, 's'),
    };
    let seconds_per_unit = match unit {
        's' => 1,
        'm' => 60,
        _ => 3600,
    };
    let ns = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit * 1_000_000_000))
        .ok_or_else(|| format!("{path}.matchActions[{a}].rateLimit: \"{text}\" is out of range"))?;
    let scope = match action.rate_limit_scope {
        None | Some(RateLimitScope::Thread) => VIGIL_RATE_THREAD,
        Some(RateLimitScope::Process) => VIGIL_RATE_PROCESS,
        Some(RateLimitScope::Global) => VIGIL_RATE_GLOBAL,
    };
    Ok(Some((ns, scope as u8)))
}

fn push_strings(
    strings: &mut Vec<StringEntry>,
    slot: u32,
    values: &[String],
    reversed: bool,
    path: &str,
) -> Result<(), String> {
    for (v, value) in values.iter().enumerate() {
        if value.len() > VIGIL_MATCH_STRING_MAX as usize {
            return Err(format!(
                "{path}.values[{v}]: {} bytes; vigil compares strings of at most {VIGIL_MATCH_STRING_MAX} bytes",
                value.len()
            ));
        }
        strings.push(StringEntry {
            slot,
            value: value.clone(),
            reversed,
        });
    }
    Ok(())
}

/// Kernel objects the selectors cannot compare, by their policy name.
fn unmatchable_kind(kind: u32) -> Option<&'static str> {
    Some(match kind {
        VIGIL_ARG_USER_NS => "user_namespace",
        VIGIL_ARG_CRED => "cred",
        VIGIL_ARG_BPF_ATTR => "bpf_attr",
        VIGIL_ARG_BPF_MAP => "bpf_map",
        VIGIL_ARG_PERF_EVENT => "perf_event",
        _ => return None,
    })
}

/// A matchArgs entry on a sock, sockaddr or skb argument: addresses go to
/// the `addr_match` trie, ports, protocol, family and state are compared as
/// integers on the field the operator names.
fn net_match(
    ma: &mut vigil_match_arg,
    m: &ArgSelector,
    kind: u32,
    slot: u32,
    addrs: &mut Vec<AddrEntry>,
    path: &str,
) -> Result<(), String> {
    use vigil_policy::net::{value_of, FAMILIES, PROTOCOLS, TCP_STATES};
    let (op, field) = match m.operator {
        Operator::SAddr => (VIGIL_OP_ADDR_IN, VIGIL_FIELD_SADDR),
        Operator::NotSAddr => (VIGIL_OP_ADDR_NOT_IN, VIGIL_FIELD_SADDR),
        Operator::DAddr => (VIGIL_OP_ADDR_IN, VIGIL_FIELD_DADDR),
        Operator::NotDAddr => (VIGIL_OP_ADDR_NOT_IN, VIGIL_FIELD_DADDR),
        Operator::SPort | Operator::SPortPriv => (VIGIL_OP_INT_IN_RANGE, VIGIL_FIELD_SPORT),
        Operator::NotSPort | Operator::NotSPortPriv => {
            (VIGIL_OP_INT_NOT_IN_RANGE, VIGIL_FIELD_SPORT)
        }
        Operator::DPort | Operator::DPortPriv => (VIGIL_OP_INT_IN_RANGE, VIGIL_FIELD_DPORT),
        Operator::NotDPort | Operator::NotDPortPriv => {
            (VIGIL_OP_INT_NOT_IN_RANGE, VIGIL_FIELD_DPORT)
        }
        Operator::Protocol => (VIGIL_OP_INT_EQ, VIGIL_FIELD_PROTOCOL),
        Operator::Family => (VIGIL_OP_INT_EQ, VIGIL_FIELD_FAMILY),
        // A packet has no connection state.
        Operator::State if kind == VIGIL_ARG_SKB => {
            return Err(format!(
                "{path}.operator: State applies to sock arguments, not skb (allowed on skb: SAddr, DAddr, SPort, DPort and their Not forms, Protocol, Family)"
            ))
        }
        Operator::State => (VIGIL_OP_INT_EQ, VIGIL_FIELD_STATE),
        other => {
            return Err(format!(
                "{path}.operator: {other} on a sock, sockaddr or skb argument is not implemented in vigil yet"
            ))
        }
    };
    ma.op = op as u8;
    ma.field = field as u8;
    let mut values = Vec::new();
    for (v, text) in m.values.iter().enumerate() {
        let vpath = format!("{path}.values[{v}]");
        let named = |table| {
            value_of(table, text)
                .ok_or_else(|| format!("{vpath}: \"{text}\" is not a known name or number"))
        };
        match m.operator {
            Operator::SAddr | Operator::NotSAddr | Operator::DAddr | Operator::NotDAddr => {
                let (addr, bits) = parse_cidr(text)
                    .ok_or_else(|| format!("{vpath}: \"{text}\" is not an IP address or CIDR"))?;
                addrs.push(AddrEntry { slot, addr, bits });
            }
            Operator::Protocol => values.push(named(PROTOCOLS)?),
            Operator::Family => values.push(named(FAMILIES)?),
            Operator::State => values.push(named(TCP_STATES)?),
            _ => {
                let (lo, hi) = text.split_once(':').unwrap_or((text, text));
                values.push(parse_int(lo, &vpath)?);
                values.push(parse_int(hi, &vpath)?);
            }
        }
    }
    // The privileged ports: below 1024.
    if matches!(
        m.operator,
        Operator::SPortPriv | Operator::NotSPortPriv | Operator::DPortPriv | Operator::NotDPortPriv
    ) {
        values = vec![0, 1023];
    }
    if values.len() > VIGIL_MATCH_VALUES_MAX as usize {
        return Err(format!(
            "{path}.values: vigil compares at most {VIGIL_MATCH_VALUES_MAX} integers (ranges count twice)"
        ));
    }
    ma.nvalues = values.len() as u8;
    for (slot, v) in ma.values.iter_mut().zip(values) {
        *slot = v;
    }
    Ok(())
}

/// `10.0.0.0/8`, `fd00::/8` or one address.
fn parse_cidr(text: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u32>().ok()?),
        None => {
            let a = text.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn parse_int(text: &str, path: &str) -> Result<u64, String> {
    let t = text.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(neg) = t.strip_prefix('-') {
        neg.parse::<i64>().ok().map(|n| n.wrapping_neg() as u64)
    } else {
        t.parse::<u64>().ok()
    };
    parsed.ok_or_else(|| format!("{path}: \"{text}\" is not an integer"))
}

/// Selectors with `list:NAME` values of InMap/NotInMap replaced by the
/// list's system call numbers. 32-bit entries (`__ia32_sys_*`) cannot match
/// an x86_64 number: they are dropped and named in `notes`.
fn expand_lists(
    lists: &[ListSpec],
    selectors: &[Selector],
    notes: &mut Vec<String>,
) -> Result<Vec<Selector>, String> {
    let mut out = selectors.to_vec();
    for (s, selector) in out.iter_mut().enumerate() {
        for (m, match_arg) in selector.match_args.iter_mut().enumerate() {
            if !matches!(match_arg.operator, Operator::InMap | Operator::NotInMap) {
                continue;
            }
            let mut values = Vec::new();
            for (v, value) in match_arg.values.iter().enumerate() {
                let path = format!("selectors[{s}].matchArgs[{m}].values[{v}]");
                let Some(name) = value.strip_prefix("list:") else {
                    values.push(value.clone());
                    continue;
                };
                let list = lists
                    .iter()
                    .find(|l| l.name == name)
                    .ok_or_else(|| format!("{path}: no list named {name}"))?;
                if list.list_type != Some(ListType::Syscalls) {
                    return Err(format!(
                        "{path}: list {name} is not of type syscalls; other lists are not implemented in vigil yet"
                    ));
                }
                for call in &list.values {
                    if call.starts_with("__ia32_") {
                        notes.push(format!(
                            "list {name}: 32-bit entry {call} ignored, vigil matches x86_64 system call numbers"
                        ));
                        continue;
                    }
                    let (_, nr) =
                        syscall_of(call).map_err(|e| format!("{path}: list {name}: {e}"))?;
                    values.push(nr.to_string());
                }
            }
            match_arg.values = values;
        }
    }
    Ok(out)
}

fn int_match(ma: &mut vigil_match_arg, m: &ArgSelector, path: &str) -> Result<(), String> {
    let op = match m.operator {
        // Sets of at most VIGIL_MATCH_VALUES_MAX integers (lists expanded by expand_lists).
        Operator::Equal | Operator::InMap => VIGIL_OP_INT_EQ,
        Operator::NotEqual | Operator::NotInMap => VIGIL_OP_INT_NEQ,
        Operator::GreaterThan => VIGIL_OP_INT_GT,
        Operator::LessThan => VIGIL_OP_INT_LT,
        Operator::Mask => VIGIL_OP_INT_MASK,
        Operator::InRange => VIGIL_OP_INT_IN_RANGE,
        Operator::NotInRange => VIGIL_OP_INT_NOT_IN_RANGE,
        other => {
            return Err(format!(
                "{path}.operator: {other} on an integer argument is not implemented in vigil yet"
            ))
        }
    };
    let mut values = Vec::new();
    for (v, text) in m.values.iter().enumerate() {
        let vpath = format!("{path}.values[{v}]");
        if matches!(op, VIGIL_OP_INT_IN_RANGE | VIGIL_OP_INT_NOT_IN_RANGE) {
            let (lo, hi) = text
                .split_once(':')
                .ok_or_else(|| format!("{vpath}: \"{text}\" is not a MIN:MAX range"))?;
            values.push(parse_int(lo, &vpath)?);
            values.push(parse_int(hi, &vpath)?);
        } else {
            values.push(parse_int(text, &vpath)?);
        }
    }
    if values.len() > VIGIL_MATCH_VALUES_MAX as usize {
        return Err(format!(
            "{path}.values: vigil compares at most {VIGIL_MATCH_VALUES_MAX} integers (ranges count twice)"
        ));
    }
    ma.op = op as u8;
    ma.nvalues = values.len() as u8;
    for (slot, v) in ma.values.iter_mut().zip(values) {
        *slot = v;
    }
    Ok(())
}

/// Why hook `point` cannot post the stack `flag` names (None: it can).
/// Every BPF front-end takes both stacks from its program context; a
/// uprobe runs on a user-mode instruction, where there is no kernel stack
/// to walk; cgroup programs have no stack helpers, and fanotify no BPF.
fn no_stacks(point: &HookPoint, flag: u32) -> Option<String> {
    match point {
        HookPoint::Uprobe { .. } | HookPoint::Usdt { .. } if flag == VIGIL_ACTION_KERNEL_STACK => {
            Some(format!(
                "a {} hook runs in user mode: it has no kernel stack (userStackTrace is served)",
                point.kind_name()
            ))
        }
        HookPoint::CgroupSockAddr { .. } | HookPoint::Fanotify(_) => Some(format!(
            "not served on {} hooks (no BPF stack helper there)",
            point.kind_name()
        )),
        _ => None,
    }
}

/// Action flags, signal, Override error and the action the events report (Tetragon's name).
fn actions_of(
    actions: &[Action],
    point: &HookPoint,
    path: &str,
) -> Result<(u32, u32, i32, &'static str), String> {
    let mut flags = VIGIL_ACTION_POST;
    let mut signal = 0;
    let mut error = 0;
    let mut name = "KPROBE_ACTION_POST";
    for (a, action) in actions.iter().enumerate() {
        let apath = format!("{path}.matchActions[{a}]");
        match action.action {
            ActionKind::Post => {
                // Offline validation keeps imaHash to lsmhooks.
                if action.ima_hash {
                    if action.kernel_stack_trace || action.user_stack_trace {
                        return Err(format!(
                            "{apath}.imaHash: not served together with kernelStackTrace or \
                             userStackTrace"
                        ));
                    }
                    flags |= VIGIL_ACTION_IMA_HASH;
                }
                let stacks = [
                    ("kernelStackTrace", action.kernel_stack_trace, VIGIL_ACTION_KERNEL_STACK),
                    ("userStackTrace", action.user_stack_trace, VIGIL_ACTION_USER_STACK),
                ];
                for (field, _, flag) in stacks.iter().filter(|(_, set, _)| *set) {
                    if let Some(why) = no_stacks(point, *flag) {
                        return Err(format!("{apath}.{field}: {why}"));
                    }
                    flags |= flag;
                }
            }
            ActionKind::TrackSock | ActionKind::UntrackSock => {
                if !matches!(point, HookPoint::Function { .. } | HookPoint::Lsm { .. }) {
                    return Err(format!(
                        "{apath}: {} acts on a kernel struct sock, on kernel function hooks only, not on {} hooks",
                        action.action,
                        point.kind_name()
                    ));
                }
                if action.action == ActionKind::TrackSock {
                    flags |= VIGIL_ACTION_TRACK_SOCK;
                    name = "KPROBE_ACTION_TRACKSOCK";
                } else {
                    flags |= VIGIL_ACTION_UNTRACK_SOCK;
                    name = "KPROBE_ACTION_UNTRACKSOCK";
                }
            }
            ActionKind::NoPost => {
                flags &= !VIGIL_ACTION_POST;
                if signal == 0 {
                    name = "KPROBE_ACTION_NOPOST";
                }
            }
            ActionKind::Sigkill | ActionKind::Signal => {
                if signal != 0 {
                    return Err(format!("{apath}: one signal per selector"));
                }
                flags |= VIGIL_ACTION_SIGNAL;
                signal = if action.action == ActionKind::Sigkill {
                    name = "KPROBE_ACTION_SIGKILL";
                    libc::SIGKILL as u32
                } else {
                    name = "KPROBE_ACTION_SIGNAL";
                    action.arg_sig.unwrap_or(0)
                };
            }
            ActionKind::NotifyEnforcer => {
                let Some(sig) = action.arg_sig else {
                    return Err(format!(
                        "{apath}: NotifyEnforcer without argSig needs an enforcer program \
                         (fmod_ret or bpf_override_return), not implemented in vigil yet"
                    ));
                };
                if signal != 0 {
                    return Err(format!("{apath}: one signal per selector"));
                }
                flags |= VIGIL_ACTION_SIGNAL;
                signal = sig;
                name = "KPROBE_ACTION_NOTIFYENFORCER";
            }
            ActionKind::Override
                if matches!(
                    point,
                    HookPoint::Lsm { .. }
                        | HookPoint::CgroupSockAddr { .. }
                        | HookPoint::Function { fmod_ret: true, .. }
                        | HookPoint::Syscall {
                            via: SyscallVia::FmodRet | SyscallVia::KprobeOverride,
                            ..
                        }
                ) =>
            {
                error = match action.arg_error {
                    Some(e) if (-4095..0).contains(&e) => e,
                    other => {
                        return Err(format!(
                            "{apath}.argError: {other:?}; the operation fails with a negative errno, -4095 to -1 (e.g. -1 for EPERM)"
                        ))
                    }
                };
                flags |= VIGIL_ACTION_OVERRIDE;
                name = "KPROBE_ACTION_OVERRIDE";
            }
            ActionKind::Override
                if matches!(point, HookPoint::Uprobe { .. } | HookPoint::Usdt { .. }) =>
            {
                return Err(format!(
                    "{apath}: Override on a uprobe or USDT probe needs register writes from BPF (Linux 6.18 uprobe \
                     override), not implemented in vigil yet"
                ))
            }
            ActionKind::Override => {
                return Err(format!(
                    "{apath}: Override needs bpf_override_return, fmod_ret or BPF-LSM; \
                     on a system call tracepoint nothing can change the call's result (use Sigkill: {KILL_GUARANTEE})"
                ))
            }
            other => {
                return Err(format!(
                    "{apath}: action {other} is not implemented in vigil yet"
                ))
            }
        }
    }
    Ok((flags, signal, error, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::FeatureStatus;

    fn features(available: &[Feature]) -> KernelFeatures {
        let features = Feature::ALL
            .iter()
            .map(|&feature| FeatureStatus {
                feature,
                name: feature.label(),
                available: available.contains(&feature),
                verified: available.contains(&feature),
                observed: None,
                failed_at: None,
                reason: (!available.contains(&feature)).then(|| "load: EPERM".to_owned()),
            })
            .collect();
        KernelFeatures {
            kernel: "test".into(),
            probe_ms: 0,
            features,
        }
    }

    fn first_hook(yaml_hook: &str, available: &[Feature]) -> Result<HookPlan, String> {
        first_of("kprobes", yaml_hook, available)
    }

    fn first_of(kind: &str, yaml_hook: &str, available: &[Feature]) -> Result<HookPlan, String> {
        let text = format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n  {kind}:\n{yaml_hook}"
        );
        let policies = vigil_policy::check_str(&text).expect("valid policy");
        let mut compiled = compile(&policies[0], &features(available));
        compiled.hooks.remove(0).plan
    }

    #[test]
    fn usdt_hooks_are_served_by_the_uprobe_object() {
        let hook = "  - path: /bin/sh\n    provider: p\n    name: n\n    args:\n    - index: 1\n      type: string\n    selectors:\n    - matchActions:\n      - action: Sigkill\n";
        let plan =
            first_of("usdts", hook, &[Feature::Uprobe, Feature::SendSignal]).expect("served");
        assert_eq!(plan.via, "usdt /bin/sh:p:n");
        assert!(
            plan.guarantee.starts_with("killed at the probe"),
            "{}",
            plan.guarantee
        );
        assert!(
            matches!(&plan.meta.event, EventKind::Usdt { provider, name, .. } if provider == "p" && name == "n")
        );
        // Probe arguments live in user memory.
        assert_eq!(u32::from(plan.config.args[0].type_), VIGIL_ARG_STRING);
        let why = first_of("usdts", hook, &[]).expect_err("refused");
        assert!(why.contains("kernel has no uprobes"), "{why}");
        let missing = hook.replace("/bin/sh", "/nonexistent/usdt-target");
        let why = first_of("usdts", &missing, &[Feature::Uprobe]).expect_err("refused");
        assert!(why.contains("call not found: no file"), "{why}");
        let overriding = hook.replace("action: Sigkill", "action: Override\n        argError: -1");
        let why = first_of("usdts", &overriding, &[Feature::Uprobe]).expect_err("refused");
        assert!(why.contains("Override on a uprobe or USDT probe"), "{why}");
    }

    const FILE_OPEN: &str = "  - call: security_file_open\n    syscall: false\n    args:\n    - index: 0\n      type: file\n";

    fn deny_open(
        call: &str,
        file_index: u32,
        arg_type: &str,
        operator: &str,
        error: i32,
    ) -> String {
        format!(
            "  - call: {call}\n    args:\n    - index: {file_index}\n      type: {arg_type}\n    selectors:\n    - matchArgs:\n      - index: {file_index}\n        operator: {operator}\n        values:\n        - /etc/shadow\n      matchActions:\n      - action: Override\n        argError: {error}\n"
        )
    }

    #[test]
    fn blocking_openat_is_served_by_fanotify() {
        let plan = first_hook(
            &deny_open("sys_openat", 1, "string", "Equal", -13),
            &[Feature::Tracepoint],
        )
        .expect("served");
        let HookPoint::Fanotify(spec) = &plan.point else {
            panic!("{:?}", plan.point)
        };
        assert_eq!(spec.selectors[0].equal, ["/etc/shadow"]);
        assert_eq!(plan.meta.function_name, "__x64_sys_openat");
        assert!(
            plan.guarantee.starts_with(
                "blocked before open by fanotify permission event (decision in user space): \
                 the call fails with EPERM (fanotify cannot return the policy's argError)"
            ),
            "{}",
            plan.guarantee
        );
    }

    const MKDIRAT: &str = "  - call: sys_mkdirat\n    args:\n    - index: 1\n      type: string\n";

    fn via_of(plan: &HookPlan) -> Option<SyscallVia> {
        match plan.point {
            HookPoint::Syscall { via, .. } => Some(via),
            _ => None,
        }
    }

    #[test]
    fn syscalls_by_fentry_where_the_kernel_has_trampolines() {
        // The host running the unit tests has vmlinux BTF describing __x64_sys_mkdirat.
        let plan = first_hook(MKDIRAT, &[Feature::Fentry, Feature::Tracepoint]).expect("served");
        assert_eq!(via_of(&plan), Some(SyscallVia::Fentry));
        assert_eq!(plan.via, "fentry __x64_sys_mkdirat");
        assert_eq!(plan.meta.function_name, "__x64_sys_mkdirat");
        let plan = first_hook(MKDIRAT, &[Feature::Tracepoint]).expect("served");
        assert_eq!(via_of(&plan), Some(SyscallVia::Tracepoint));
        let ret =
            format!("{MKDIRAT}    return: true\n    returnArg:\n      index: 0\n      type: int\n");
        // Return values need fexit too; without it the tracepoints serve the whole hook.
        let plan = first_hook(&ret, &[Feature::Fentry, Feature::Tracepoint]).expect("served");
        assert_eq!(via_of(&plan), Some(SyscallVia::Tracepoint));
        let plan = first_hook(&ret, &[Feature::Fentry, Feature::Fexit]).expect("served");
        assert_eq!(plan.via, "fentry + fexit __x64_sys_mkdirat");
    }

    #[test]
    fn syscall_override_by_fmod_ret_or_kprobe_override_else_refused() {
        let hook = format!("{MKDIRAT}    selectors:\n    - matchActions:\n      - action: Override\n        argError: -1\n");
        let plan = first_hook(&hook, &[Feature::Fentry, Feature::FmodRetSyscall]).expect("served");
        assert_eq!(via_of(&plan), Some(SyscallVia::FmodRet));
        assert!(
            plan.guarantee
                .starts_with("blocked before the operation: sys_mkdirat fails with error -1 (Operation not permitted) before the call runs"),
            "{}",
            plan.guarantee
        );
        let why = first_hook(&hook, &[Feature::Fentry, Feature::Tracepoint]).expect_err("refused");
        assert!(
            why.contains("needs fmod_ret on __x64_sys_mkdirat (vigil probe: fmod_ret on system calls: load: EPERM) or a kprobe with bpf_override_return (vigil probe: kprobe override: load: EPERM)"),
            "{why}"
        );
        let plan =
            first_hook(&hook, &[Feature::Tracepoint, Feature::KprobeOverride]).expect("served");
        assert_eq!(
            plan.via,
            "kprobe __x64_sys_mkdirat with bpf_override_return"
        );
        let kill = hook.replace("action: Override\n        argError: -1", "action: Sigkill");
        let plan = first_hook(&kill, &[Feature::Fentry, Feature::SendSignal]).expect("served");
        assert!(
            plan.guarantee.contains("system call itself completes"),
            "{}",
            plan.guarantee
        );
    }

    #[test]
    fn in_kernel_blocking_stays_preferred() {
        let hook = deny_open(
            "security_file_open\n    syscall: false",
            0,
            "file",
            "Prefix",
            -1,
        );
        let plan = first_hook(&hook, &[Feature::Fentry, Feature::FmodRet]).expect("served");
        assert!(matches!(
            plan.point,
            HookPoint::Function { fmod_ret: true, .. }
        ));
        let plan = first_hook(&hook, &[Feature::Tracepoint]).expect("served");
        assert!(matches!(plan.point, HookPoint::Fanotify(_)));
        let lsm = hook.replace(
            "  - call: security_file_open\n    syscall: false",
            "  - hook: file_open",
        );
        let plan = first_of("lsmhooks", &lsm, &[Feature::Lsm]);
        // vmlinux BTF decides on this machine whether the LSM hook exists.
        assert!(plan.is_err() || matches!(plan.expect("served").point, HookPoint::Lsm { .. }));
        let plan = first_of("lsmhooks", &lsm, &[]).expect("served");
        assert!(matches!(plan.point, HookPoint::Fanotify(_)));
        assert_eq!(plan.meta.event, EventKind::Lsm);
    }

    #[test]
    fn fanotify_refuses_what_it_cannot_mark_or_evaluate() {
        let why = first_hook(
            &deny_open("sys_openat", 1, "string", "NotPrefix", -1),
            &[Feature::Tracepoint],
        )
        .expect_err("refused");
        assert!(
            why.contains("a system call tracepoint cannot change the call's result")
                && why.contains("NotPrefix would need fanotify marks on every file"),
            "{why}"
        );
        let hook = deny_open("sys_openat", 1, "string", "Equal", -1).replace(
            "      matchActions:",
            "      matchNamespaces:\n      - namespace: Pid\n        operator: In\n        values:\n        - host_ns\n      matchActions:",
        );
        let why = first_hook(&hook, &[Feature::Tracepoint]).expect_err("refused");
        assert!(
            why.contains("selectors[0].matchNamespaces: not evaluated for fanotify"),
            "{why}"
        );
    }

    #[test]
    fn return_copy_waits_for_the_return() {
        let read = "  - call: sys_read\n    args:\n    - index: 1\n      type: char_buf\n      returnCopy: true\n";
        let plan = first_hook(read, &[Feature::Tracepoint]).expect("served");
        assert_ne!(plan.config.flags & VIGIL_HOOK_RETURN, 0);
        assert_eq!((plan.config.copy_arg, plan.config.ret_type), (1, 0));
        let two = format!("{read}    - index: 2\n      type: char_buf\n      returnCopy: true\n");
        let why = first_hook(&two, &[Feature::Tracepoint]).expect_err("refused");
        assert!(why.contains("one returnCopy argument per hook"), "{why}");
        let fd = read.replace("char_buf", "fd");
        let why = first_hook(&fd, &[Feature::Tracepoint]).expect_err("refused");
        assert!(
            why.contains("returnCopy: vigil reads a char_buf or char_iovec"),
            "{why}"
        );
        let iovec = "  - call: sys_writev\n    args:\n    - index: 1\n      type: char_iovec\n";
        let why = first_hook(iovec, &[Feature::Tracepoint]).expect_err("refused");
        assert!(why.contains("char_iovec needs sizeArgIndex"), "{why}");
    }

    fn compile_text(spec: &str, available: &[Feature]) -> CompiledPolicy {
        let text = format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n{spec}"
        );
        let policies = vigil_policy::check_str(&text).expect("valid policy");
        compile(&policies[0], &features(available))
    }

    #[test]
    fn list_calls_are_one_hook_each() {
        let list =
            "  lists:\n  - name: dups\n    type: syscalls\n    values: [sys_dup, sys_dup2]\n";
        let kprobe = "  kprobes:\n  - call: list:dups\n    args:\n    - index: 0\n      type: fd\n";
        let compiled = compile_text(&format!("{list}{kprobe}"), &[Feature::Tracepoint]);
        let hooks: Vec<(&str, String)> = compiled
            .hooks
            .iter()
            .map(|h| {
                let plan = h.plan.as_ref().expect("served");
                (h.name.as_str(), plan.meta.function_name.clone())
            })
            .collect();
        assert_eq!(
            hooks,
            [
                (
                    "spec.kprobes[0] sys_dup (list:dups)",
                    "__x64_sys_dup".to_owned()
                ),
                (
                    "spec.kprobes[0] sys_dup2 (list:dups)",
                    "__x64_sys_dup2".to_owned()
                ),
            ]
        );
        // An untyped list keeps the kprobe's own `syscall`.
        let untyped = "  lists:\n  - name: fns\n    values: [security_file_open]\n";
        let compiled = compile_text(
            &format!("{untyped}  kprobes:\n  - call: list:fns\n    syscall: false\n"),
            &[Feature::Kprobe],
        );
        let plan = compiled.hooks[0].plan.as_ref().expect("served");
        assert!(
            matches!(&plan.point, HookPoint::Function { name, .. } if name == "security_file_open")
        );
        let generated = "  lists:\n  - name: all\n    type: generated_syscalls\n";
        let compiled = compile_text(
            &format!("{generated}  kprobes:\n  - call: list:all\n"),
            &[Feature::Tracepoint],
        );
        let why = compiled.hooks[0].plan.as_ref().expect_err("refused");
        assert!(
            why.starts_with("spec.lists[0].type: generated_syscalls lists are not implemented"),
            "{why}"
        );
        let abi = list.replace("sys_dup2", "i386/sys_dup");
        let compiled = compile_text(&format!("{abi}{kprobe}"), &[Feature::Tracepoint]);
        assert!(compiled.hooks[0].plan.is_ok());
        let why = compiled.hooks[1].plan.as_ref().expect_err("refused");
        assert!(
            why.contains("spec.lists[0].values[1]: \"i386/sys_dup\" names another ABI"),
            "{why}"
        );
    }

    #[test]
    fn stack_traces_on_every_bpf_hook_kind() {
        let post = "    selectors:\n    - matchActions:\n      - action: Post\n        kernelStackTrace: true\n        userStackTrace: true\n";
        let stacks = VIGIL_ACTION_KERNEL_STACK | VIGIL_ACTION_USER_STACK;
        let served = |plan: HookPlan| {
            assert_eq!(plan.config.selectors[0].actions & stacks, stacks);
        };
        let mkdir = format!("  - call: sys_mkdir\n{post}");
        served(first_hook(&mkdir, &[Feature::Tracepoint]).expect("served"));
        let plan = first_hook(&mkdir, &[Feature::Fentry]).expect("served");
        assert!(matches!(
            plan.point,
            HookPoint::Syscall {
                via: SyscallVia::Fentry,
                ..
            }
        ));
        served(plan);
        let function = format!("{FILE_OPEN}{post}");
        served(first_hook(&function, &[Feature::Fentry]).expect("served"));
        served(first_hook(&function, &[Feature::Kprobe]).expect("served"));
        let uprobe = format!("  - path: /bin/sh\n    symbols: [main]\n{post}");
        let why = first_of("uprobes", &uprobe, &[Feature::Uprobe]).expect_err("refused");
        assert!(
            why.contains("matchActions[0].kernelStackTrace: a uprobe hook runs in user mode"),
            "{why}"
        );
        let user_only = uprobe.replace("        kernelStackTrace: true\n", "");
        let plan = first_of("uprobes", &user_only, &[Feature::Uprobe]).expect("served");
        assert_eq!(
            plan.config.selectors[0].actions & stacks,
            VIGIL_ACTION_USER_STACK
        );
    }

    #[test]
    fn kernel_function_needs_fentry_or_kprobe() {
        let why = first_hook(FILE_OPEN, &[Feature::Tracepoint]).expect_err("refused");
        assert!(
            why.starts_with("kprobe on security_file_open: kernel has no kprobes and no fentry (vigil probe: kprobe: load: EPERM; fentry: load: EPERM)"),
            "{why}"
        );
    }

    #[test]
    fn kernel_function_return_is_refused_not_half_applied() {
        let hook = format!(
            "{FILE_OPEN}    return: true\n    returnArg:\n      index: 0\n      type: int\n"
        );
        let why = first_hook(&hook, &[Feature::Fentry, Feature::Kprobe]).expect_err("refused");
        assert!(
            why.contains("return: true on a kernel function needs fexit or a kretprobe (vigil probe: fexit: load: EPERM"),
            "{why}"
        );
        // Where the kernel has them, the return comes from fexit (or a kretprobe).
        for (features, via) in [
            (&[Feature::Fentry, Feature::Fexit][..], "fentry + fexit"),
            (
                &[Feature::Kprobe, Feature::Kretprobe][..],
                "kprobe + kretprobe",
            ),
        ] {
            match first_hook(&hook.replace("type: file", "type: int"), features) {
                Ok(plan) => assert!(plan.via.starts_with(via), "{}", plan.via),
                Err(why) => assert!(why.starts_with("call not found"), "{why}"),
            }
        }
    }

    const MKDIR_OVERRIDE: &str = "  - call: security_inode_mkdir\n    syscall: false\n    selectors:\n    - matchActions:\n      - action: Override\n        argError: -1\n";

    #[test]
    fn kernel_function_override_needs_fmod_ret() {
        let why =
            first_hook(MKDIR_OVERRIDE, &[Feature::Fentry, Feature::Kprobe]).expect_err("refused");
        assert!(
            why.starts_with("kprobe on security_inode_mkdir: Override on a kernel function needs fmod_ret (vigil probe: fmod_ret: load: EPERM)"),
            "{why}"
        );
        match first_hook(MKDIR_OVERRIDE, &[Feature::FmodRet]) {
            Ok(plan) => {
                assert_eq!(plan.via, "fmod_ret security_inode_mkdir");
                assert!(
                    plan.guarantee.starts_with("blocked before the operation"),
                    "{}",
                    plan.guarantee
                );
                assert_eq!(plan.config.selectors[0].override_error, -1);
            }
            Err(why) => assert!(why.starts_with("call not found"), "{why}"),
        }
    }

    /// The kernel-function hooks of a policy hooking security_path_mkdir,
    /// _rmdir and _rename through one list, with `options`.
    fn path_list_hooks(options: &str, available: &[Feature]) -> Vec<HookOutcome> {
        let text = format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n{options}  lists:\n  - name: dirs\n    values: [security_path_mkdir, security_path_rmdir, security_path_rename]\n  kprobes:\n  - call: list:dirs\n    syscall: false\n"
        );
        let policies = vigil_policy::check_str(&text).expect("valid policy");
        compile(&policies[0], &features(available)).hooks
    }

    #[test]
    fn kprobe_multi_serves_a_policy_with_many_functions_unless_disabled() {
        let available = [Feature::Fentry, Feature::Kprobe, Feature::KprobeMulti];
        let disabled = path_list_hooks(
            "  options:\n  - name: disable-kprobe-multi\n    value: \"true\"\n",
            &available,
        );
        assert_eq!(disabled.len(), 3);
        for hook in &disabled {
            if let Ok(plan) = &hook.plan {
                assert!(!plan.point.is_multi(), "{}: {}", hook.name, plan.via);
            }
        }
        // kprobe.multi needs the functions in tracefs (not readable everywhere).
        let traceable = std::fs::read_to_string(TRACEFS_FILTER_FUNCTIONS).is_ok_and(|l| {
            [
                "security_path_mkdir",
                "security_path_rmdir",
                "security_path_rename",
            ]
            .iter()
            .all(|f| {
                l.lines()
                    .any(|line| line.split_whitespace().next() == Some(f))
            })
        });
        for hook in path_list_hooks("", &available) {
            let Ok(plan) = hook.plan else { continue };
            if traceable {
                let HookPoint::Function { name, .. } = &plan.point else {
                    panic!("{}: {}", hook.name, plan.via)
                };
                assert!(plan.point.is_multi(), "{}", plan.via);
                assert_eq!(
                    plan.via,
                    format!("kprobe.multi {name} (3 functions, one program)")
                );
            } else {
                assert!(!plan.point.is_multi(), "{}", plan.via);
            }
        }
        // Without kprobe.multi: one program per function.
        for hook in path_list_hooks("", &[Feature::Fentry, Feature::Kprobe]) {
            if let Ok(plan) = hook.plan {
                assert!(!plan.point.is_multi(), "{}", plan.via);
            }
        }
    }

    #[test]
    fn fentries_need_trampolines_and_never_fall_back_to_kprobes() {
        let hook = "  - call: security_file_open\n    syscall: false\n";
        let why = first_of("fentries", hook, &[Feature::Kprobe, Feature::KprobeMulti])
            .expect_err("refused");
        assert_eq!(
            why,
            "fentry on security_file_open: the kernel has no BPF trampolines (vigil probe: \
             fentry: load: EPERM); spec.fentries are served by fentry, fexit and fmod_ret only, \
             never by kprobes"
        );
        // return: true without fexit would be a kprobe + kretprobe: refused.
        let ret = "  - call: security_file_open\n    syscall: false\n    return: true\n    returnArg:\n      index: 0\n      type: int\n";
        let available = [Feature::Fentry, Feature::Kprobe, Feature::Kretprobe];
        let why = first_of("fentries", ret, &available).expect_err("refused");
        assert!(
            why.contains(
                "would need kprobe + kretprobe security_file_open (vigil probe: fexit: load: EPERM"
            ) || why.starts_with("call not found"),
            "{why}"
        );
        match first_of("fentries", hook, &[Feature::Fentry, Feature::Kprobe]) {
            Ok(plan) => {
                assert_eq!(plan.via, "fentry security_file_open");
                assert_eq!(plan.meta.event, EventKind::Kprobe);
            }
            Err(why) => assert!(why.starts_with("call not found"), "{why}"),
        }
    }

    #[test]
    fn missing_kernel_function_is_call_not_found() {
        let hook = FILE_OPEN.replace("security_file_open", "vigil_no_such_function");
        let why = first_hook(&hook, &[Feature::Fentry, Feature::Kprobe]).expect_err("refused");
        assert!(
            why.starts_with("call not found: no kernel function named vigil_no_such_function"),
            "{why}"
        );
    }

    const LSM_DENY: &str = "  - hook: file_open\n    args:\n    - index: 0\n      type: file\n    selectors:\n    - matchActions:\n      - action: Override\n        argError: -1\n";

    #[test]
    fn lsm_hooks_need_bpf_lsm() {
        let why = first_of("lsmhooks", LSM_DENY, &[Feature::Fentry]).expect_err("refused");
        assert!(
            why.starts_with(
                "lsm hook file_open: kernel has no BPF-LSM (vigil probe: BPF-LSM: load: EPERM)"
            ),
            "{why}"
        );
    }

    #[test]
    fn lsm_override_blocks_with_its_error() {
        // The host's BTF may lack bpf_lsm_file_open (no BPF-LSM): then the refusal says so.
        match first_of("lsmhooks", LSM_DENY, &[Feature::Lsm]) {
            Ok(plan) => {
                assert_eq!(plan.via, "lsm file_open");
                assert!(
                    plan.guarantee.starts_with("blocked before the operation"),
                    "{}",
                    plan.guarantee
                );
                assert_eq!(plan.config.selectors[0].override_error, -1);
                assert_eq!(plan.meta.selector_actions, ["KPROBE_ACTION_OVERRIDE"]);
                assert_eq!(plan.meta.event, EventKind::Lsm);
            }
            Err(why) => assert!(
                why.starts_with("call not found: no LSM hook named file_open"),
                "{why}"
            ),
        }
        let positive = LSM_DENY.replace("argError: -1", "argError: 1");
        let why = first_of("lsmhooks", &positive, &[Feature::Lsm]).expect_err("refused");
        assert!(
            why.contains("negative errno") || why.starts_with("call not found"),
            "{why}"
        );
    }

    const LSM_IMA: &str = "  - hook: bprm_check_security\n    args:\n    - index: 0\n      type: linux_binprm\n    selectors:\n    - matchActions:\n      - action: Post\n        imaHash: true\n";

    #[test]
    fn ima_hash_needs_the_kernel_and_a_file_argument() {
        let why = first_of("lsmhooks", LSM_IMA, &[Feature::Lsm]).expect_err("refused");
        assert!(
            why.contains("selectors[0].matchActions[0].imaHash: kernel has no IMA file hash")
                || why.starts_with("call not found"),
            "{why}"
        );
        let served = first_of("lsmhooks", LSM_IMA, &[Feature::Lsm, Feature::ImaHash]);
        match served {
            Ok(plan) => {
                assert_eq!(
                    plan.point,
                    HookPoint::Lsm {
                        hook: "bprm_check_security".into(),
                        ima: Some(ImaArg { binprm: true }),
                    }
                );
                assert_ne!(plan.config.selectors[0].actions & VIGIL_ACTION_IMA_HASH, 0);
                assert_eq!(plan.via, "lsm + lsm.s (IMA hash) bprm_check_security");
            }
            Err(why) => assert!(why.starts_with("call not found"), "{why}"),
        }
        let later = LSM_IMA.replace("index: 0", "index: 1");
        let why =
            first_of("lsmhooks", &later, &[Feature::Lsm, Feature::ImaHash]).expect_err("refused");
        assert!(
            why.contains("hashes the hook's first argument") || why.starts_with("call not found"),
            "{why}"
        );
        let with_stack = LSM_IMA.replace(
            "imaHash: true",
            "imaHash: true\n        kernelStackTrace: true",
        );
        let why = first_of("lsmhooks", &with_stack, &[Feature::Lsm, Feature::ImaHash])
            .expect_err("refused");
        assert!(
            why.contains("imaHash: not served together with kernelStackTrace")
                || why.starts_with("call not found"),
            "{why}"
        );
    }

    #[test]
    fn file_args_only_on_kernel_functions() {
        let hook = "  - call: sys_openat\n    args:\n    - index: 0\n      type: file\n";
        let why = first_hook(hook, &[Feature::Tracepoint, Feature::RawTp]).expect_err("refused");
        assert!(
            why.contains("file is not supported on system call hooks"),
            "{why}"
        );
        let hook = FILE_OPEN.replace("type: file", "type: string");
        let why = first_hook(&hook, &[Feature::Fentry]).expect_err("refused");
        assert!(
            why.contains("not supported on kernel function hooks yet"),
            "{why}"
        );
    }

    #[test]
    fn uprobe_return_matches_follow_the_args() {
        let hook = "  - path: /bin/sh\n    symbols: [main, other]\n    return: true\n    returnArg:\n      index: 0\n      type: string\n    args:\n    - index: 0\n      type: int\n    selectors:\n    - matchArgs:\n      - index: 0\n        operator: Equal\n        values: [\"1\"]\n      matchReturnArgs:\n      - index: 0\n        operator: Prefix\n        values: [sudo]\n";
        let plan = first_of("uprobes", hook, &[Feature::Uprobe]).expect("served");
        assert_eq!(plan.via, "uprobe + uretprobe /bin/sh:main");
        let sel = &plan.config.selectors[0];
        assert_eq!(sel.nmatch_args, 2);
        assert_eq!(u32::from(sel.match_args[1].arg), VIGIL_MATCH_RETURN_ARG);
        assert_eq!(u32::from(sel.match_args[1].op), VIGIL_OP_STR_PREFIX);
        assert_eq!(u32::from(plan.config.ret_type), VIGIL_ARG_STRING);
        assert_eq!(plan.strings[0].slot, 1);
        assert!(matches!(&plan.meta.event, EventKind::Uprobe { symbol, .. } if symbol == "main"));
    }

    #[test]
    fn uprobe_refusals_name_the_reason() {
        let hook = "  - path: /no/such/binary\n    symbols: [main]\n";
        let why = first_of("uprobes", hook, &[Feature::Uprobe]).expect_err("refused");
        assert_eq!(why, "call not found: no file /no/such/binary");
        let hook = "  - path: /bin/sh\n    symbols: [main]\n";
        let why = first_of("uprobes", hook, &[]).expect_err("refused");
        assert!(why.starts_with("kernel has no uprobes"), "{why}");
        let string_return = "  - call: sys_read\n    return: true\n    returnArg:\n      index: 0\n      type: string\n";
        let why = first_hook(string_return, &[Feature::Tracepoint]).expect_err("refused");
        assert!(
            why.contains("not supported for system call return values"),
            "{why}"
        );
    }

    const SYS_ENTER_FORMAT: &str = "name: sys_enter
ID: 443
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:long id;	offset:8;	size:8;	signed:1;
	field:unsigned long args[6];	offset:16;	size:48;	signed:0;
	field:__data_loc char[] name;	offset:64;	size:4;	signed:0;
";

    #[test]
    fn tracepoint_fields_from_format() {
        let format = parse_tracepoint_format(SYS_ENTER_FORMAT);
        assert_eq!(format.len(), 7);
        let arg = |index: u32, arg_type: ArgType| Arg {
            index,
            arg_type,
            label: String::new(),
            resolve: String::new(),
            btf_type: None,
            btf_type_module: None,
            size_arg_index: 0,
            return_copy: false,
            max_data: false,
            source: None,
        };
        assert_eq!(
            tracepoint_field(&format, &arg(4, ArgType::Syscall64), "a"),
            Ok(TracepointArg {
                offset: 8,
                size: 8,
                signed: true
            })
        );
        let why = tracepoint_field(&format, &arg(5, ArgType::Uint64), "a").expect_err("array");
        assert!(why.contains("arrays and __data_loc"), "{why}");
        let why = tracepoint_field(&format, &arg(6, ArgType::String), "a").expect_err("data_loc");
        assert!(why.contains("__data_loc"), "{why}");
        let why = tracepoint_field(&format, &arg(9, ArgType::Int32), "a").expect_err("range");
        assert!(why.contains("fields 0 to 6"), "{why}");
        let why = tracepoint_field(&format, &arg(3, ArgType::String), "a").expect_err("int");
        assert!(why.contains("needs a pointer field"), "{why}");
    }

    #[test]
    fn syscall_lists_expand_to_numbers() {
        let text = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n  lists:\n  - name: dups\n    type: syscalls\n    values: [sys_dup, sys_dup2, __ia32_sys_dup]\n  kprobes:\n  - call: sys_dup\n    args:\n    - index: 0\n      type: int\n    selectors:\n    - matchArgs:\n      - index: 0\n        operator: NotInMap\n        values: [\"list:dups\", \"7\"]\n";
        let policies = vigil_policy::check_str(text).expect("valid policy");
        let mut notes = Vec::new();
        let sel = expand_lists(
            &policies[0].spec.lists,
            &policies[0].spec.kprobes[0].selectors,
            &mut notes,
        )
        .expect("expanded");
        assert_eq!(sel[0].match_args[0].values, ["32", "33", "7"]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("__ia32_sys_dup ignored"), "{notes:?}");
    }

    const CONNECT_DENY: &str = "  - call: sys_connect\n    args:\n    - index: 0\n      type: fd\n    - index: 1\n      type: sockaddr\n    selectors:\n    - matchArgs:\n      - index: 1\n        operator: SAddr\n        values:\n        - 10.0.0.0/8\n        - fd00::1\n      - index: 1\n        operator: SPortPriv\n      matchActions:\n      - action: Override\n        argError: -13\n";

    #[test]
    fn blocking_connect_is_served_by_cgroup_hooks() {
        let plan = first_hook(
            CONNECT_DENY,
            &[Feature::Tracepoint, Feature::CgroupConnect4],
        )
        .expect("served");
        assert_eq!(
            plan.point,
            HookPoint::CgroupSockAddr {
                op: SockOp::Connect,
                function: "__x64_sys_connect".into(),
                args: SockAddrArgs {
                    syscall_nr: 42,
                    addr: Some(1),
                    addrlen: 2
                }
            }
        );
        assert!(
            plan.guarantee.starts_with(
                "blocked before the operation (cgroup/connect4, cgroup/connect6): connect() fails with error -13 (Permission denied)"
            ),
            "{}",
            plan.guarantee
        );
        // The cgroup hooks hand the kernel's copy of the address to the selectors.
        assert_eq!(
            u32::from(plan.config.args[1].type_),
            VIGIL_ARG_SOCKADDR_KERNEL
        );
        let m = &plan.config.selectors[0].match_args;
        assert_eq!(
            (u32::from(m[0].op), u32::from(m[0].field)),
            (VIGIL_OP_ADDR_IN, VIGIL_FIELD_SADDR)
        );
        assert_eq!(
            plan.addrs
                .iter()
                .map(|a| (a.addr.to_string(), a.bits))
                .collect::<Vec<_>>(),
            [("10.0.0.0".to_owned(), 8), ("fd00::1".to_owned(), 128)]
        );
        assert_eq!(u32::from(m[1].field), VIGIL_FIELD_SPORT);
        assert_eq!(&m[1].values[..usize::from(m[1].nvalues)], [0, 1023]);
    }

    #[test]
    fn blocking_connect_without_cgroup_hooks_is_refused() {
        let why = first_hook(CONNECT_DENY, &[Feature::Tracepoint]).expect_err("refused");
        assert!(
            why.contains("Override on a system call needs fmod_ret on __x64_sys_connect"),
            "{why}"
        );
        let observe = CONNECT_DENY.replace(
            "      - action: Override\n        argError: -13\n",
            "      - action: Post\n",
        );
        let plan = first_hook(&observe, &[Feature::Tracepoint, Feature::CgroupConnect4])
            .expect("observed");
        assert!(matches!(plan.point, HookPoint::Syscall { .. }));
        assert_eq!(u32::from(plan.config.args[1].type_), VIGIL_ARG_SOCKADDR);
    }

    #[test]
    fn security_socket_connect_override_uses_cgroup_hooks() {
        let hook = CONNECT_DENY
            .replace(
                "call: sys_connect",
                "call: security_socket_connect\n    syscall: false",
            )
            .replace("    - index: 0\n      type: fd\n", "");
        let plan = first_hook(&hook, &[Feature::Fentry, Feature::CgroupConnect4]).expect("served");
        assert_eq!(plan.meta.function_name, "security_socket_connect");
        assert_eq!(
            u32::from(plan.config.args[0].type_),
            VIGIL_ARG_SOCKADDR_KERNEL
        );
        let with_socket = CONNECT_DENY
            .replace(
                "call: sys_connect",
                "call: security_socket_connect\n    syscall: false",
            )
            .replace("type: fd", "type: int");
        let why = first_hook(&with_socket, &[Feature::CgroupConnect4]).expect_err("refused");
        assert!(why.contains("not its struct socket"), "{why}");
    }

    #[test]
    fn blocking_udp_sends_and_binds_are_served_by_cgroup_hooks() {
        let features = [Feature::Tracepoint, Feature::CgroupConnect4];
        let sendto = CONNECT_DENY
            .replace("call: sys_connect", "call: sys_sendto")
            .replace("index: 1", "index: 4");
        let plan = first_hook(&sendto, &features).expect("served");
        assert!(
            matches!(
                plan.point,
                HookPoint::CgroupSockAddr {
                    op: SockOp::Sendmsg,
                    args: SockAddrArgs {
                        syscall_nr: 44,
                        addr: Some(4),
                        addrlen: 5
                    },
                    ..
                }
            ),
            "{:?}",
            plan.point
        );
        assert_eq!(
            u32::from(plan.config.args[1].type_),
            VIGIL_ARG_SOCKADDR_KERNEL
        );
        assert!(
            plan.via.starts_with("cgroup/sendmsg4 + cgroup/sendmsg6"),
            "{}",
            plan.via
        );
        assert!(
            plan.guarantee.contains("connected UDP socket"),
            "the guarantee names what the hook does not see: {}",
            plan.guarantee
        );
        // The address at the wrong index is refused, not read from the wrong register.
        let wrong = CONNECT_DENY.replace("call: sys_connect", "call: sys_sendto");
        let why = first_hook(&wrong, &features).expect_err("refused");
        assert!(
            why.contains("the address is argument 4 of __x64_sys_sendto"),
            "{why}"
        );
        let sendmsg = CONNECT_DENY.replace("call: sys_connect", "call: sys_sendmsg");
        let why = first_hook(&sendmsg, &features).expect_err("refused");
        assert!(why.contains("has no sockaddr argument"), "{why}");

        let bind = CONNECT_DENY.replace("call: sys_connect", "call: sys_bind");
        let plan = first_hook(&bind, &features).expect("served");
        assert!(matches!(
            plan.point,
            HookPoint::CgroupSockAddr {
                op: SockOp::Bind,
                ..
            }
        ));
        assert!(
            plan.guarantee.starts_with(
                "blocked before the operation (cgroup/bind4, cgroup/bind6): bind() fails with error -13"
            ),
            "{}",
            plan.guarantee
        );
        let security_bind = CONNECT_DENY
            .replace(
                "call: sys_connect",
                "call: security_socket_bind\n    syscall: false",
            )
            .replace("    - index: 0\n      type: fd\n", "");
        let plan = first_hook(&security_bind, &features).expect("served");
        assert_eq!(plan.meta.function_name, "security_socket_bind");
    }

    #[test]
    fn sock_args_only_on_kernel_functions() {
        let hook = "  - call: sys_connect\n    args:\n    - index: 0\n      type: sock\n";
        let why = first_hook(hook, &[Feature::Tracepoint]).expect_err("refused");
        assert!(why.contains("sock is a kernel struct sock *"), "{why}");
    }

    #[test]
    fn skb_selectors_and_kernel_objects() {
        let skb = |op: &str, value: &str| {
            format!("  - call: ip_output\n    syscall: false\n    args:\n    - index: 2\n      type: skb\n    selectors:\n    - matchArgs:\n      - index: 2\n        operator: {op}\n        values:\n        - \"{value}\"\n")
        };
        for (op, value) in [
            ("DPort", "53"),
            ("NotSAddr", "10.0.0.0/8"),
            ("Protocol", "IPPROTO_UDP"),
            ("Family", "AF_INET6"),
        ] {
            let plan = first_hook(&skb(op, value), &[Feature::Fentry]).expect("served");
            assert_eq!(u32::from(plan.config.args[0].type_), VIGIL_ARG_SKB, "{op}");
        }
        let why =
            first_hook(&skb("State", "TCP_ESTABLISHED"), &[Feature::Fentry]).expect_err("refused");
        assert!(
            why.contains("selectors[0].matchArgs[0].operator: State"),
            "{why}"
        );
        let map = "  - call: security_bpf_map_create\n    syscall: false\n    args:\n    - index: 0\n      type: bpf_map\n    selectors:\n    - matchArgs:\n      - index: 0\n        operator: Equal\n        values:\n        - \"1\"\n";
        let why = first_hook(map, &[Feature::Fentry]).expect_err("refused");
        assert!(why.contains("matching a bpf_map argument"), "{why}");
        let why = first_hook(
            "  - call: sys_bpf\n    args:\n    - index: 1\n      type: bpf_attr\n",
            &[Feature::Tracepoint],
        )
        .expect_err("refused");
        assert!(why.contains("bpf_attr is not supported"), "{why}");
    }
}
