//! Policy-wide checks: metadata, workload selectors, lists, enforcers, options.

use std::collections::BTreeSet;

use crate::enums::{LabelOperator, ListType};
use crate::error::{Errors, FieldPath};
use crate::model::{LabelSelector, Policy, Spec};

use super::{check_list_reference, check_max_len, value};

pub(super) fn check_policy(policy: &Policy, errors: &mut Errors) {
    check_name(
        &policy.metadata.name,
        &FieldPath::root("metadata").field("name"),
        errors,
    );
    let spec_path = FieldPath::root("spec");
    let spec = &policy.spec;

    if let Some(selector) = &spec.host_selector {
        let path = spec_path.field("hostSelector");
        if policy.is_namespaced() {
            errors.push(&path, "TracingPolicyNamespaced must not set hostSelector");
        } else if !selector.is_empty() {
            errors.push(&path, "only null or {} (all hosts) is supported");
        }
    }
    if let Some(selector) = &spec.pod_selector {
        check_label_selector(selector, &spec_path.field("podSelector"), errors);
    }
    if let Some(selector) = &spec.container_selector {
        let path = spec_path.field("containerSelector");
        check_label_selector(selector, &path, errors);
        check_container_keys(selector, &path, errors);
    }
    if let Some(selector) = &spec.node_selector {
        check_label_selector(selector, &spec_path.field("nodeSelector"), errors);
    }
    check_lists(spec, &spec_path.field("lists"), errors);
    check_enforcers(spec, &spec_path.field("enforcers"), errors);
    check_options(spec, &spec_path.field("options"), errors);
}

/// Kubernetes object names are DNS-1123 subdomains.
fn check_name(name: &str, path: &FieldPath, errors: &mut Errors) {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let alnum_ends = name
        .bytes()
        .next()
        .zip(name.bytes().last())
        .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 253 || !valid_chars || !alnum_ends {
        errors.push(
            path,
            format!(
                "\"{name}\" is not a valid name; use at most 253 lower-case letters, digits, \
                 '-' or '.', starting and ending with a letter or digit"
            ),
        );
    }
}

pub(super) fn check_label_selector(
    selector: &LabelSelector,
    path: &FieldPath,
    errors: &mut Errors,
) {
    for (position, requirement) in selector.match_expressions.iter().enumerate() {
        let path = path.field("matchExpressions").index(position);
        let needs_values = matches!(
            requirement.operator,
            LabelOperator::In | LabelOperator::NotIn
        );
        if needs_values && requirement.values.is_empty() {
            errors.push(
                &path.field("values"),
                format!("operator {} needs at least one value", requirement.operator),
            );
        } else if !needs_values && !requirement.values.is_empty() {
            errors.push(
                &path.field("values"),
                format!("operator {} takes no values", requirement.operator),
            );
        }
    }
}

/// Containers are matched on the fields `name` and `repo` only.
fn check_container_keys(selector: &LabelSelector, path: &FieldPath, errors: &mut Errors) {
    const KEYS: [&str; 2] = ["name", "repo"];
    for key in selector.match_labels.keys() {
        if !KEYS.contains(&key.as_str()) {
            errors.push(
                &path.field("matchLabels").field(key),
                format!("unknown container field \"{key}\"; allowed: name, repo"),
            );
        }
    }
    for (position, requirement) in selector.match_expressions.iter().enumerate() {
        if !KEYS.contains(&requirement.key.as_str()) {
            errors.push(
                &path.field("matchExpressions").index(position).field("key"),
                format!(
                    "unknown container field \"{}\"; allowed: name, repo",
                    requirement.key
                ),
            );
        }
    }
}

fn check_lists(spec: &Spec, path: &FieldPath, errors: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (position, list) in spec.lists.iter().enumerate() {
        let path = path.index(position);
        if list.name.is_empty() {
            errors.push(&path.field("name"), "must not be empty");
        } else if !seen.insert(list.name.as_str()) {
            errors.push(
                &path.field("name"),
                format!("duplicate list name \"{}\"", list.name),
            );
        }
        let generated = matches!(
            list.list_type,
            Some(ListType::GeneratedSyscalls | ListType::GeneratedFtrace)
        );
        if list.pattern.is_some() && !generated {
            errors.push(
                &path.field("pattern"),
                "pattern is only used by lists of type generated_syscalls or generated_ftrace",
            );
        }
        if !generated && list.values.is_empty() {
            errors.push(
                &path.field("values"),
                "a list that is not generated needs values",
            );
        }
    }
}

fn check_enforcers(spec: &Spec, path: &FieldPath, errors: &mut Errors) {
    check_max_len(&spec.enforcers, 1, path, errors);
    for (position, enforcer) in spec.enforcers.iter().enumerate() {
        let path = path.index(position).field("calls");
        if enforcer.calls.is_empty() {
            errors.push(&path, "needs at least one call");
        }
        for (call_position, call) in enforcer.calls.iter().enumerate() {
            check_list_reference(spec, &path.index(call_position), call, errors);
        }
    }
}

/// Checks an option value; the error describes what is expected.
type ValueCheck = fn(&str) -> Result<(), String>;

/// Known option names and the check for their value.
const OPTIONS: [(&str, ValueCheck); 4] = [
    ("disable-kprobe-multi", value::check_bool),
    ("disable-uprobe-multi", value::check_bool),
    ("override-method", |text| {
        one_of(text, &["fmod-ret", "override-return"])
    }),
    ("policy-mode", |text| one_of(text, &["enforce", "monitor"])),
];

fn one_of(text: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&text) {
        Ok(())
    } else {
        Err(format!(
            "unknown value \"{text}\"; allowed: {}",
            allowed.join(", ")
        ))
    }
}

fn check_options(spec: &Spec, path: &FieldPath, errors: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (position, option) in spec.options.iter().enumerate() {
        let path = path.index(position);
        match OPTIONS.iter().find(|(name, _)| *name == option.name) {
            None => {
                let names: Vec<&str> = OPTIONS.iter().map(|(name, _)| *name).collect();
                errors.push(
                    &path.field("name"),
                    format!(
                        "unknown option \"{}\"; allowed: {}",
                        option.name,
                        names.join(", ")
                    ),
                );
            }
            Some((_, check)) => {
                if let Err(message) = check(&option.value) {
                    errors.push(&path.field("value"), message);
                }
                if !seen.insert(option.name.as_str()) {
                    errors.push(
                        &path.field("name"),
                        format!("option \"{}\" is set more than once", option.name),
                    );
                }
            }
        }
    }
}
