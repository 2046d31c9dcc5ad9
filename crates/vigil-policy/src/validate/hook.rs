//! Checks of each hook (kprobe, fentry, tracepoint, uprobe, usdt, LSM hook)
//! and of its argument specs.

use crate::error::{Errors, FieldPath};
use crate::model::{Arg, KProbeSpec, Spec};

use super::{check_list_reference, check_max_len, value, Hook, HookKind};

/// Tetragon reads at most 5 arguments per hook (`MAX_POSSIBLE_ARGS`).
const MAX_ARGS: usize = 5;
/// `MaxSelectors` in Tetragon's selector compiler.
const MAX_SELECTORS: usize = 5;
const MAX_MESSAGE_CHARS: usize = 256;
const MAX_TAGS: usize = 16;

/// Every hook of the spec, with the path it is reported under.
pub(super) fn hooks(spec: &Spec) -> Vec<Hook<'_>> {
    let root = FieldPath::root("spec");
    let mut hooks = Vec::new();
    let kprobe_like = [
        ("kprobes", HookKind::KProbe, &spec.kprobes),
        ("fentries", HookKind::Fentry, &spec.fentries),
    ];
    for (field, kind, probes) in kprobe_like {
        for (position, probe) in probes.iter().enumerate() {
            hooks.push(Hook {
                kind,
                position,
                path: root.field(field).index(position),
                args: &probe.args,
                data: &probe.data,
                returns: probe.r#return,
                return_arg: probe.return_arg.as_ref(),
                selectors: &probe.selectors,
            });
        }
    }
    for (position, tracepoint) in spec.tracepoints.iter().enumerate() {
        hooks.push(Hook {
            kind: HookKind::Tracepoint,
            position,
            path: root.field("tracepoints").index(position),
            args: &tracepoint.args,
            data: &[],
            returns: false,
            return_arg: None,
            selectors: &tracepoint.selectors,
        });
    }
    for (position, uprobe) in spec.uprobes.iter().enumerate() {
        hooks.push(Hook {
            kind: HookKind::UProbe,
            position,
            path: root.field("uprobes").index(position),
            args: &uprobe.args,
            data: &uprobe.data,
            returns: uprobe.r#return,
            return_arg: uprobe.return_arg.as_ref(),
            selectors: &uprobe.selectors,
        });
    }
    for (position, usdt) in spec.usdts.iter().enumerate() {
        hooks.push(Hook {
            kind: HookKind::Usdt,
            position,
            path: root.field("usdts").index(position),
            args: &usdt.args,
            data: &[],
            returns: false,
            return_arg: None,
            selectors: &usdt.selectors,
        });
    }
    for (position, lsm) in spec.lsm_hooks.iter().enumerate() {
        hooks.push(Hook {
            kind: HookKind::LsmHook,
            position,
            path: root.field("lsmhooks").index(position),
            args: &lsm.args,
            data: &[],
            returns: false,
            return_arg: None,
            selectors: &lsm.selectors,
        });
    }
    hooks
}

pub(super) fn check_hook(spec: &Spec, hook: &Hook<'_>, errors: &mut Errors) {
    let path = &hook.path;
    check_max_len(hook.args, MAX_ARGS, &path.field("args"), errors);
    check_max_len(hook.data, MAX_ARGS, &path.field("data"), errors);
    check_max_len(
        hook.selectors,
        MAX_SELECTORS,
        &path.field("selectors"),
        errors,
    );
    for (position, arg) in hook.args.iter().enumerate() {
        check_arg(arg, &path.field("args").index(position), errors);
    }
    for (position, arg) in hook.data.iter().enumerate() {
        check_arg(arg, &path.field("data").index(position), errors);
    }
    if hook.returns && hook.return_arg.is_none() {
        errors.push(&path.field("returnArg"), "required when return is true");
    }
    if let Some(arg) = hook.return_arg {
        check_arg(arg, &path.field("returnArg"), errors);
    }

    let position = hook.position;
    match hook.kind {
        HookKind::KProbe => check_kprobe(spec, &spec.kprobes[position], path, errors),
        HookKind::Fentry => check_kprobe(spec, &spec.fentries[position], path, errors),
        HookKind::Tracepoint => {
            let tracepoint = &spec.tracepoints[position];
            require_non_empty(&tracepoint.subsystem, &path.field("subsystem"), errors);
            require_non_empty(&tracepoint.event, &path.field("event"), errors);
            check_message_and_tags(&tracepoint.message, &tracepoint.tags, path, errors);
        }
        HookKind::UProbe => check_uprobe(spec, position, path, errors),
        HookKind::Usdt => {
            let usdt = &spec.usdts[position];
            require_non_empty(&usdt.path, &path.field("path"), errors);
            require_non_empty(&usdt.provider, &path.field("provider"), errors);
            require_non_empty(&usdt.name, &path.field("name"), errors);
            check_message_and_tags(&usdt.message, &usdt.tags, path, errors);
        }
        HookKind::LsmHook => {
            let lsm = &spec.lsm_hooks[position];
            require_non_empty(&lsm.hook, &path.field("hook"), errors);
            if let Some(short) = lsm.hook.strip_prefix("security_") {
                errors.push(
                    &path.field("hook"),
                    format!(
                        "LSM hook names omit the security_ prefix; write \"{short}\" instead of \"{}\"",
                        lsm.hook
                    ),
                );
            }
            check_message_and_tags(&lsm.message, &lsm.tags, path, errors);
        }
    }
}

fn check_kprobe(spec: &Spec, probe: &KProbeSpec, path: &FieldPath, errors: &mut Errors) {
    require_non_empty(&probe.call, &path.field("call"), errors);
    check_list_reference(spec, &path.field("call"), &probe.call, errors);
    check_message_and_tags(&probe.message, &probe.tags, path, errors);
}

fn check_uprobe(spec: &Spec, position: usize, path: &FieldPath, errors: &mut Errors) {
    let uprobe = &spec.uprobes[position];
    require_non_empty(&uprobe.path, &path.field("path"), errors);
    check_message_and_tags(&uprobe.message, &uprobe.tags, path, errors);

    let targets = [
        ("symbols", uprobe.symbols.len()),
        ("offsets", uprobe.offsets.len()),
        ("addrs", uprobe.addrs.len()),
    ];
    let set: Vec<&str> = targets
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(name, _)| *name)
        .collect();
    match set.as_slice() {
        [] => errors.push(path, "one of symbols, offsets or addrs is required"),
        [_] => {}
        _ => errors.push(
            &path.field(set[1]),
            format!(
                "only one of symbols, offsets or addrs may be set; found {}",
                set.join(" and ")
            ),
        ),
    }
    if !uprobe.ref_ctr_offsets.is_empty() {
        let targets_count = uprobe.symbols.len().max(uprobe.offsets.len());
        if uprobe.ref_ctr_offsets.len() != targets_count {
            errors.push(
                &path.field("refCtrOffsets"),
                format!(
                    "has {} entries; it needs one per symbol or offset ({targets_count})",
                    uprobe.ref_ctr_offsets.len()
                ),
            );
        }
    }
    for (digest_position, digest) in uprobe.binary_digests.iter().enumerate() {
        if let Err(message) = value::check_binary_digest(digest) {
            errors.push(&path.field("binaryDigests").index(digest_position), message);
        }
    }
    if uprobe.resolve_path_in_container && spec.pod_selector.is_none() {
        errors.push(
            &path.field("resolvePathInContainer"),
            "requires spec.podSelector",
        );
    }
}

fn check_arg(arg: &Arg, path: &FieldPath, errors: &mut Errors) {
    // sizeArgIndex counts function arguments from 1; 0 means "not set".
    if arg.size_arg_index > MAX_ARGS as u32 {
        errors.push(
            &path.field("sizeArgIndex"),
            format!(
                "{} is out of range; it is the 1-based position of the size argument and must \
                 be between 1 and {MAX_ARGS}",
                arg.size_arg_index
            ),
        );
    } else if arg.size_arg_index == arg.index + 1 {
        errors.push(
            &path.field("sizeArgIndex"),
            format!(
                "{} points at this argument itself (index {}); it must name the size argument",
                arg.size_arg_index, arg.index
            ),
        );
    }
}

fn check_message_and_tags(message: &str, tags: &[String], path: &FieldPath, errors: &mut Errors) {
    let chars = message.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        errors.push(
            &path.field("message"),
            format!("is {chars} characters long; at most {MAX_MESSAGE_CHARS} allowed"),
        );
    }
    check_max_len(tags, MAX_TAGS, &path.field("tags"), errors);
}

fn require_non_empty(text: &str, path: &FieldPath, errors: &mut Errors) {
    if text.is_empty() {
        errors.push(path, "must not be empty");
    }
}
