//! Checks of `matchActions` / `matchReturnActions` entries and their arguments.

use crate::enums::ActionKind;
use crate::error::{Errors, FieldPath};
use crate::model::Spec;
use crate::selector::Action;

use super::{value, Hook, HookKind};

/// Highest Linux signal number (`SIGRTMAX`).
const MAX_SIGNAL: u32 = 64;

pub(super) fn check_actions(
    spec: &Spec,
    hook: &Hook<'_>,
    actions: &[Action],
    path: &FieldPath,
    errors: &mut Errors,
) {
    for (position, action) in actions.iter().enumerate() {
        check_action(spec, hook, action, &path.index(position), errors);
    }
}

fn check_action(
    spec: &Spec,
    hook: &Hook<'_>,
    action: &Action,
    path: &FieldPath,
    errors: &mut Errors,
) {
    let kind = action.action;
    let is_uprobe = hook.kind == HookKind::UProbe;
    let mut require = |present: bool, field: &str| {
        if !present {
            errors.push(&path.field(field), format!("required by action {kind}"));
        }
    };
    match kind {
        ActionKind::Override if !is_uprobe => require(action.arg_error.is_some(), "argError"),
        ActionKind::Override => {
            let redirects = [
                action.arg_new_symbol.is_some(),
                action.arg_new_addr.is_some(),
                action.arg_new_offset.is_some(),
            ];
            let has_effect = action.arg_error.is_some()
                || !action.arg_regs.is_empty()
                || redirects.contains(&true);
            if !has_effect {
                errors.push(
                    &path.field("argError"),
                    "action Override on a uprobe needs argError, argRegs, argNewSymbol, \
                     argNewAddr or argNewOffset",
                );
            }
            if redirects.iter().filter(|set| **set).count() > 1 {
                errors.push(
                    path,
                    "only one of argNewSymbol, argNewAddr and argNewOffset may be set",
                );
            }
        }
        ActionKind::Signal => require(action.arg_sig.is_some(), "argSig"),
        ActionKind::TrackSock | ActionKind::UntrackSock => {
            require(action.arg_sock.is_some(), "argSock")
        }
        ActionKind::GetUrl => require(
            action.arg_url.as_ref().is_some_and(|url| !url.is_empty()),
            "argUrl",
        ),
        ActionKind::DnsLookup => require(
            action
                .arg_fqdn
                .as_ref()
                .is_some_and(|fqdn| !fqdn.is_empty()),
            "argFqdn",
        ),
        ActionKind::Set => {
            require(action.arg_index.is_some(), "argIndex");
            require(action.arg_value.is_some(), "argValue");
        }
        ActionKind::NotifyEnforcer => {
            if spec.enforcers.is_empty() {
                errors.push(
                    &path.field("action"),
                    "NotifyEnforcer requires spec.enforcers",
                );
            }
            if action.arg_error.is_none() && action.arg_sig.is_none() {
                errors.push(path, "action NotifyEnforcer needs argError and/or argSig");
            }
        }
        ActionKind::Post
        | ActionKind::Sigkill
        | ActionKind::NoPost
        | ActionKind::CleanupEnforcerNotification => {}
    }

    if let Some(signal) = action.arg_sig {
        if !(1..=MAX_SIGNAL).contains(&signal) {
            errors.push(
                &path.field("argSig"),
                format!("{signal} is not a signal number; expected 1 to {MAX_SIGNAL}"),
            );
        }
    }
    if let Some(sock) = action.arg_sock {
        if !hook.args.iter().any(|arg| arg.index == sock) {
            errors.push(
                &path.field("argSock"),
                format!("{sock} does not refer to a declared arg index"),
            );
        }
    }

    // Register and redirect arguments only exist for uprobe Override.
    if !(is_uprobe && kind == ActionKind::Override) {
        let uprobe_only = [
            ("argRegs", !action.arg_regs.is_empty()),
            ("argNewSymbol", action.arg_new_symbol.is_some()),
            ("argNewAddr", action.arg_new_addr.is_some()),
            ("argNewOffset", action.arg_new_offset.is_some()),
            ("sopath", action.so_path.is_some()),
        ];
        for (field, set) in uprobe_only {
            if set {
                errors.push(
                    &path.field(field),
                    "only valid with action Override on uprobes",
                );
            }
        }
    }

    check_post_options(hook, action, path, errors);
}

/// Options that only `Post` understands.
fn check_post_options(hook: &Hook<'_>, action: &Action, path: &FieldPath, errors: &mut Errors) {
    let post_only = [
        ("rateLimit", action.rate_limit.is_some()),
        ("rateLimitScope", action.rate_limit_scope.is_some()),
        ("kernelStackTrace", action.kernel_stack_trace),
        ("userStackTrace", action.user_stack_trace),
        ("imaHash", action.ima_hash),
    ];
    if action.action != ActionKind::Post {
        for (field, set) in post_only {
            if set {
                errors.push(
                    &path.field(field),
                    format!("only valid with action Post, not {}", action.action),
                );
            }
        }
        return;
    }
    if let Some(rate_limit) = &action.rate_limit {
        if let Err(message) = value::check_rate_limit(rate_limit) {
            errors.push(&path.field("rateLimit"), message);
        }
    } else if action.rate_limit_scope.is_some() {
        errors.push(&path.field("rateLimitScope"), "requires rateLimit");
    }
    if action.ima_hash && hook.kind != HookKind::LsmHook {
        errors.push(
            &path.field("imaHash"),
            "IMA hashes are only collected on lsmhooks",
        );
    }
}
