//! File opens and program executions that a policy blocks (Override) or
//! kills (Sigkill) where the kernel gives BPF no way to stop them before they
//! happen (no BPF-LSM, no fmod_ret, or a system call tracepoint): served by
//! fanotify permission events, decided in user space. Only the files and
//! directories that the selectors' path values name are marked, so every
//! other open on the system never reaches vigil.
use vigil_bpf::wire::{
    vigil_hook_config, VIGIL_ARG_FILE, VIGIL_ARG_LINUX_BINPRM, VIGIL_ARG_PATH, VIGIL_ARG_STRING,
};
use vigil_policy::{
    ActionKind, ArgType, BinaryOperator, KProbeSpec, Operator, Policy, Selector, SetOperator,
};

use super::compile::{ArgMeta, EventKind, HookMeta, HookPlan, HookPoint};

/// Which permission event a hook needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// FAN_OPEN_PERM: every open of a marked file (executions open too).
    Open,
    /// FAN_OPEN_EXEC_PERM: opens of a marked file for execution.
    Exec,
}

/// What a matching selector does to the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// FAN_DENY: the call fails with EPERM.
    Deny,
    /// SIGKILL to the caller, then FAN_DENY.
    Kill,
}

/// How a selector compares the caller's binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryMatch {
    pub operator: BinaryOperator,
    pub values: Vec<String>,
}

impl BinaryMatch {
    pub fn matches(&self, binary: &str) -> bool {
        let v = &self.values;
        match self.operator {
            BinaryOperator::In => v.iter().any(|b| b == binary),
            BinaryOperator::NotIn => !v.iter().any(|b| b == binary),
            BinaryOperator::Prefix => v.iter().any(|b| binary.starts_with(b.as_str())),
            BinaryOperator::NotPrefix => !v.iter().any(|b| binary.starts_with(b.as_str())),
            BinaryOperator::Postfix => v.iter().any(|b| binary.ends_with(b.as_str())),
            BinaryOperator::NotPostfix => !v.iter().any(|b| binary.ends_with(b.as_str())),
        }
    }
}

/// One selector, evaluated in user space for each permission event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSelector {
    /// Full paths (Equal): each file's inode is marked.
    pub equal: Vec<String>,
    /// Path prefixes (Prefix): the directories under each are marked.
    pub prefix: Vec<String>,
    pub binaries: Option<BinaryMatch>,
    /// matchPIDs: (In, pids) or (NotIn, pids), compared with the caller's tgid.
    pub pids: Option<(bool, Vec<u32>)>,
    pub verdict: Verdict,
    pub post: bool,
}

impl FileSelector {
    pub fn matches_path(&self, path: &str) -> bool {
        self.equal.iter().any(|p| p == path)
            || self.prefix.iter().any(|p| path.starts_with(p.as_str()))
    }

    pub fn matches_pid(&self, pid: u32) -> bool {
        match &self.pids {
            Some((true, pids)) => pids.contains(&pid),
            Some((false, pids)) => !pids.contains(&pid),
            None => true,
        }
    }
}

/// A hook served by fanotify: what to mark and how to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanotifySpec {
    pub access: FileAccess,
    /// Monitor mode when false: decisions are counted, every access allowed.
    pub enforce: bool,
    pub selectors: Vec<FileSelector>,
}

/// The hooks fanotify can stand in for: the access and the index of the
/// argument that holds the file (system call names without `sys_`, LSM hook
/// names without `security_`).
pub fn file_hook(call: &str, kind: CallKind) -> Option<(FileAccess, u32)> {
    match (kind, call) {
        (CallKind::Syscall, "openat" | "openat2") => Some((FileAccess::Open, 1)),
        (CallKind::Syscall, "open" | "creat") => Some((FileAccess::Open, 0)),
        (CallKind::Syscall, "execve") => Some((FileAccess::Exec, 0)),
        (CallKind::Syscall, "execveat") => Some((FileAccess::Exec, 1)),
        (CallKind::Function, "security_file_open") | (CallKind::Lsm, "file_open") => {
            Some((FileAccess::Open, 0))
        }
        (CallKind::Function, "security_bprm_check") | (CallKind::Lsm, "bprm_check_security") => {
            Some((FileAccess::Exec, 0))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Syscall,
    Function,
    Lsm,
}

/// Whether a selector blocks or kills: only then does fanotify serve a
/// system call hook, whose tracepoint sees every argument of the call.
pub fn blocks_or_kills(selectors: &[Selector]) -> bool {
    selectors
        .iter()
        .flat_map(|s| &s.match_actions)
        .any(|a| matches!(a.action, ActionKind::Override | ActionKind::Sigkill))
}

/// The plan of a hook served by fanotify, or why fanotify cannot serve it.
pub fn plan(
    policy: &Policy,
    kprobe: &KProbeSpec,
    function: String,
    event: EventKind,
    (access, file_index): (FileAccess, u32),
    enforce: bool,
) -> Result<HookPlan, String> {
    if kprobe.r#return {
        return Err(
            "return: true: fanotify decides before the call, its return value is not seen".into(),
        );
    }
    if !kprobe.data.is_empty() {
        return Err("data: not served by fanotify".into());
    }
    let file_pos = kprobe
        .args
        .iter()
        .position(|a| a.index == file_index)
        .ok_or_else(|| format!("args: declare argument {file_index} (the file) to match on it"))?;
    let file_arg = &kprobe.args[file_pos];
    let kind = match file_arg.arg_type {
        ArgType::String | ArgType::Filename => VIGIL_ARG_STRING,
        ArgType::File => VIGIL_ARG_FILE,
        ArgType::Path => VIGIL_ARG_PATH,
        ArgType::LinuxBinprm => VIGIL_ARG_LINUX_BINPRM,
        other => {
            return Err(format!(
                "args[{file_pos}]: type {other} is not a file name, file or linux_binprm"
            ))
        }
    };
    let mut selectors = Vec::new();
    let mut actions = Vec::new();
    let mut overrides = Vec::new();
    for (s, selector) in kprobe.selectors.iter().enumerate() {
        let (sel, name, error) = file_selector(selector, file_index, &format!("selectors[{s}]"))?;
        selectors.push(sel);
        actions.push(name);
        overrides.extend(error);
    }
    if selectors.is_empty() {
        return Err("no selectors: fanotify would have to mark every file".into());
    }
    let event_name = match access {
        FileAccess::Open => "FAN_OPEN_PERM",
        FileAccess::Exec => "FAN_OPEN_EXEC_PERM",
    };
    let via = format!(
        "fanotify {event_name} permission events on the files and directories the selectors name \
         (decision in user space)"
    );
    let guarantee = guarantee(access, enforce, &selectors, &overrides);
    let meta = HookMeta {
        policy: policy.name().to_owned(),
        function_name: function,
        message: kprobe.message.clone(),
        tags: kprobe.tags.clone(),
        // The permission event names the file; the call's other arguments are not seen.
        args: vec![ArgMeta {
            kind: kind as u8,
            label: file_arg.label.clone(),
            syscall_id: false,
        }],
        ret: None,
        selector_actions: actions,
        event,
    };
    Ok(HookPlan {
        point: HookPoint::Fanotify(Box::new(FanotifySpec {
            access,
            enforce,
            selectors,
        })),
        config: vigil_hook_config::default(),
        strings: Vec::new(),
        addrs: Vec::new(),
        meta,
        via,
        guarantee,
    })
}

fn guarantee(
    access: FileAccess,
    enforce: bool,
    selectors: &[FileSelector],
    overrides: &[i32],
) -> String {
    let blocks = selectors.iter().any(|s| s.verdict != Verdict::Allow);
    if !enforce {
        return "monitor mode: denials and kills are counted, every access is allowed".into();
    }
    if !blocks {
        return "observe only; each access to a marked file waits for vigil's answer (about 10-20 µs), \
                other files cost nothing"
            .into();
    }
    let call = match access {
        FileAccess::Open => "open",
        FileAccess::Exec => "execution",
    };
    let mut out = format!(
        "blocked before {call} by fanotify permission event (decision in user space): the call \
         fails with EPERM"
    );
    if overrides.iter().any(|&e| e != -libc::EPERM) {
        out.push_str(" (fanotify cannot return the policy's argError)");
    }
    if selectors.iter().any(|s| s.verdict == Verdict::Kill) {
        out.push_str("; Sigkill: denied, and the caller is killed before it returns to user space");
    }
    out.push_str(
        "; files and directories that appear under the marks later are marked when vigil sees \
         them (inotify), an access before that is not blocked; if vigil cannot decide within \
         100 ms the access is allowed and counted",
    );
    out
}

/// One selector: its path values (which also say what to mark), binaries,
/// pids and verdict; the action name events report, and the Override error.
fn file_selector(
    selector: &Selector,
    file_index: u32,
    path: &str,
) -> Result<(FileSelector, &'static str, Option<i32>), String> {
    let unsupported = [
        ("macros", !selector.macros.is_empty()),
        ("matchData", !selector.match_data.is_empty()),
        ("matchReturnArgs", !selector.match_return_args.is_empty()),
        (
            "matchParentBinaries",
            !selector.match_parent_binaries.is_empty(),
        ),
        ("matchNamespaces", !selector.match_namespaces.is_empty()),
        (
            "matchNamespaceChanges",
            !selector.match_namespace_changes.is_empty(),
        ),
        ("matchCapabilities", !selector.match_capabilities.is_empty()),
        (
            "matchCapabilityChanges",
            !selector.match_capability_changes.is_empty(),
        ),
        ("matchWorkloads", !selector.match_workloads.is_empty()),
        (
            "matchReturnActions",
            !selector.match_return_actions.is_empty(),
        ),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{path}.{field}: not evaluated for fanotify permission events (they give the file and \
             the caller's pid only)"
        ));
    }
    let [match_arg] = selector.match_args.as_slice() else {
        return Err(format!(
            "{path}.matchArgs: fanotify needs exactly one Equal or Prefix on argument \
             {file_index} (the file) per selector, to mark only what it names"
        ));
    };
    if match_arg.index != file_index {
        return Err(format!(
            "{path}.matchArgs[0].index: {}; fanotify sees the file (argument {file_index}), not \
             the call's other arguments",
            match_arg.index
        ));
    }
    let mut sel = FileSelector {
        equal: Vec::new(),
        prefix: Vec::new(),
        binaries: None,
        pids: None,
        verdict: Verdict::Allow,
        post: true,
    };
    match match_arg.operator {
        Operator::Equal => sel.equal = match_arg.values.clone(),
        Operator::Prefix => sel.prefix = match_arg.values.clone(),
        other => {
            return Err(format!(
                "{path}.matchArgs[0].operator: {other} would need fanotify marks on every file; \
                 only Equal and Prefix name what to mark"
            ))
        }
    }
    for value in &match_arg.values {
        if !value.starts_with('/') {
            return Err(format!(
                "{path}.matchArgs[0].values: {value:?} is not an absolute path; fanotify marks \
                 files and directories by absolute path"
            ));
        }
    }
    if let Some(bins) = selector.match_binaries.first() {
        if bins.follow_children {
            return Err(format!(
                "{path}.matchBinaries[0].followChildren: not implemented in vigil yet"
            ));
        }
        sel.binaries = Some(BinaryMatch {
            operator: bins.operator,
            values: bins.values.clone(),
        });
    }
    if selector.match_pids.len() > 1 {
        return Err(format!(
            "{path}.matchPIDs: more than one entry is not implemented in vigil yet"
        ));
    }
    if let Some(pids) = selector.match_pids.first() {
        if pids.follow_forks || pids.is_namespace_pid {
            return Err(format!(
                "{path}.matchPIDs[0]: followForks and isNamespacePID are not evaluated for \
                 fanotify permission events (they give the caller's pid only)"
            ));
        }
        sel.pids = Some((pids.operator == SetOperator::In, pids.values.clone()));
    }
    let mut name = "KPROBE_ACTION_POST";
    let mut error = None;
    for (a, action) in selector.match_actions.iter().enumerate() {
        let apath = format!("{path}.matchActions[{a}]");
        match action.action {
            ActionKind::Post => {
                let extras = [
                    ("kernelStackTrace", action.kernel_stack_trace),
                    ("userStackTrace", action.user_stack_trace),
                    ("imaHash", action.ima_hash),
                    ("rateLimit", action.rate_limit.is_some()),
                ];
                if let Some((field, _)) = extras.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "{apath}.{field}: not implemented for fanotify permission events"
                    ));
                }
            }
            ActionKind::NoPost => {
                sel.post = false;
                if sel.verdict == Verdict::Allow {
                    name = "KPROBE_ACTION_NOPOST";
                }
            }
            ActionKind::Override => {
                let e = match action.arg_error {
                    Some(e) if (-4095..0).contains(&e) => e,
                    other => {
                        return Err(format!(
                            "{apath}.argError: {other:?}; the operation fails with a negative \
                             errno, -4095 to -1 (e.g. -1 for EPERM)"
                        ))
                    }
                };
                error = Some(e);
                if sel.verdict == Verdict::Allow {
                    sel.verdict = Verdict::Deny;
                    name = "KPROBE_ACTION_OVERRIDE";
                }
            }
            ActionKind::Sigkill => {
                sel.verdict = Verdict::Kill;
                name = "KPROBE_ACTION_SIGKILL";
            }
            other => {
                return Err(format!(
                    "{apath}: action {other} is not implemented for fanotify permission events"
                ))
            }
        }
    }
    Ok((sel, name, error))
}
