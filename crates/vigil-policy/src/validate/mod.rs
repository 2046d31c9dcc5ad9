//! Semantic checks of a parsed policy: CRD limits, cross references and
//! operator/argument compatibility. All problems are collected.

mod action;
mod hook;
mod operator;
mod selector;
mod spec;
pub(crate) mod value;

use crate::error::{Errors, FieldPath, PolicyError};
use crate::model::{Arg, Policy, Spec};
use crate::selector::Selector;

/// Returns every problem found in `policy`; empty when it is valid.
pub(crate) fn validate(policy: &Policy) -> Vec<PolicyError> {
    let mut errors = Errors::default();
    spec::check_policy(policy, &mut errors);
    let spec = &policy.spec;
    for hook in hook::hooks(spec) {
        hook::check_hook(spec, &hook, &mut errors);
        selector::check_selectors(spec, &hook, &mut errors);
    }
    // A macro used by several selectors may report the same problem each time.
    let mut unique: Vec<PolicyError> = Vec::with_capacity(errors.0.len());
    for error in errors.0 {
        if !unique.contains(&error) {
            unique.push(error);
        }
    }
    unique
}

/// The kind of hook a spec entry attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HookKind {
    KProbe,
    Fentry,
    Tracepoint,
    UProbe,
    Usdt,
    LsmHook,
}

/// What the selectors of one hook can refer to.
pub(super) struct Hook<'a> {
    pub(super) kind: HookKind,
    /// Position in the spec list of its kind (`spec.kprobes[position]`).
    pub(super) position: usize,
    pub(super) path: FieldPath,
    pub(super) args: &'a [Arg],
    pub(super) data: &'a [Arg],
    /// Set when the hook has `return: true`.
    pub(super) returns: bool,
    pub(super) return_arg: Option<&'a Arg>,
    pub(super) selectors: &'a [Selector],
}

/// Name of a `list:NAME` reference, if `text` is one.
pub(super) fn list_reference(text: &str) -> Option<&str> {
    text.strip_prefix("list:")
}

/// Reports a `list:NAME` reference to a list the spec does not define.
pub(super) fn check_list_reference(spec: &Spec, path: &FieldPath, text: &str, errors: &mut Errors) {
    if let Some(name) = list_reference(text) {
        if !spec.lists.iter().any(|list| list.name == name) {
            let defined: Vec<&str> = spec.lists.iter().map(|list| list.name.as_str()).collect();
            let defined = if defined.is_empty() {
                "no lists are defined in spec.lists".to_owned()
            } else {
                format!("defined lists: {}", defined.join(", "))
            };
            errors.push(
                path,
                format!("\"{text}\" refers to an undefined list; {defined}"),
            );
        }
    }
}

/// Reports a list longer than `max` entries.
pub(super) fn check_max_len<T>(items: &[T], max: usize, path: &FieldPath, errors: &mut Errors) {
    if items.len() > max {
        errors.push(
            path,
            format!("has {} entries; at most {max} allowed", items.len()),
        );
    }
}
