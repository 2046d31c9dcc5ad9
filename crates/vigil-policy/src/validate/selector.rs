//! Checks of a hook's selectors, with `selectorsMacros` merged in.

use crate::enums::{BinaryOperator, Operator};
use crate::error::{Errors, FieldPath};
use crate::model::{Arg, Spec};
use crate::selector::{ArgSelector, Selector};

use super::operator::{self, ArgClass};
use super::spec::check_label_selector;
use super::{action, check_list_reference, check_max_len, Hook, HookKind};

const MAX_MATCH_ARGS: usize = 5;
const MAX_PID_VALUES: usize = 4;
const MAX_NAMESPACE_VALUES: usize = 4;

/// Where one filter list of a selector comes from: the selector itself or a macro.
struct Source<'a> {
    path: FieldPath,
    selector: &'a Selector,
}

/// Tells whether a selector sets a given field.
type IsSet = fn(&Selector) -> bool;

/// Selector fields that a macro may provide.
const FIELDS: [(&str, IsSet); 14] = [
    ("matchPIDs", |s| !s.match_pids.is_empty()),
    ("matchArgs", |s| !s.match_args.is_empty()),
    ("matchData", |s| !s.match_data.is_empty()),
    ("matchReturnArgs", |s| !s.match_return_args.is_empty()),
    ("matchBinaries", |s| !s.match_binaries.is_empty()),
    ("matchParentBinaries", |s| {
        !s.match_parent_binaries.is_empty()
    }),
    ("matchNamespaces", |s| !s.match_namespaces.is_empty()),
    ("matchNamespaceChanges", |s| {
        !s.match_namespace_changes.is_empty()
    }),
    ("matchCapabilities", |s| !s.match_capabilities.is_empty()),
    ("matchCapabilityChanges", |s| {
        !s.match_capability_changes.is_empty()
    }),
    ("matchWorkloads", |s| !s.match_workloads.is_empty()),
    ("matchActions", |s| !s.match_actions.is_empty()),
    ("matchReturnActions", |s| !s.match_return_actions.is_empty()),
    ("label", |s| !s.label.is_empty()),
];

pub(super) fn check_selectors(spec: &Spec, hook: &Hook<'_>, errors: &mut Errors) {
    for (position, selector) in hook.selectors.iter().enumerate() {
        let path = hook.path.field("selectors").index(position);
        let sources = resolve_macros(spec, selector, &path, errors);
        for source in &sources {
            check_selector_fields(spec, hook, source, errors);
        }
    }
}

/// The selector followed by the macros it names. Reports undefined macros and
/// fields set by more than one source.
fn resolve_macros<'a>(
    spec: &'a Spec,
    selector: &'a Selector,
    path: &FieldPath,
    errors: &mut Errors,
) -> Vec<Source<'a>> {
    let mut sources = vec![Source {
        path: path.clone(),
        selector,
    }];
    for (position, name) in selector.macros.iter().enumerate() {
        let macro_path = path.field("macros").index(position);
        let Some(definition) = spec.selectors_macros.get(name) else {
            let defined: Vec<&str> = spec.selectors_macros.keys().map(String::as_str).collect();
            errors.push(
                &macro_path,
                format!(
                    "macro \"{name}\" is not defined in spec.selectorsMacros; defined: {}",
                    if defined.is_empty() {
                        "none".to_owned()
                    } else {
                        defined.join(", ")
                    }
                ),
            );
            continue;
        };
        for (field, is_set) in FIELDS {
            if !is_set(definition) {
                continue;
            }
            if let Some(owner) = sources.iter().position(|source| is_set(source.selector)) {
                let owner = if owner == 0 {
                    "the selector".to_owned()
                } else {
                    format!("macro \"{}\"", selector.macros[owner - 1])
                };
                errors.push(
                    &macro_path,
                    format!("macro \"{name}\" sets {field}, which {owner} already sets"),
                );
            }
        }
        if !definition.macros.is_empty() {
            errors.push(
                &macro_path,
                format!("macro \"{name}\" uses macros itself; macros do not nest"),
            );
        }
        sources.push(Source {
            path: FieldPath::root("spec").field("selectorsMacros").field(name),
            selector: definition,
        });
    }
    sources
}

fn check_selector_fields(spec: &Spec, hook: &Hook<'_>, source: &Source<'_>, errors: &mut Errors) {
    let selector = source.selector;
    let path = &source.path;

    let match_args = path.field("matchArgs");
    check_max_len(&selector.match_args, MAX_MATCH_ARGS, &match_args, errors);
    for (position, filter) in selector.match_args.iter().enumerate() {
        let targets = resolve_targets(
            hook.kind,
            hook.args,
            "args",
            filter,
            &match_args.index(position),
            errors,
        );
        check_filter(spec, filter, &targets, &match_args.index(position), errors);
    }

    let match_data = path.field("matchData");
    check_max_len(&selector.match_data, MAX_MATCH_ARGS, &match_data, errors);
    for (position, filter) in selector.match_data.iter().enumerate() {
        let targets = resolve_targets(
            hook.kind,
            hook.data,
            "data",
            filter,
            &match_data.index(position),
            errors,
        );
        check_filter(spec, filter, &targets, &match_data.index(position), errors);
    }

    check_return_filters(spec, hook, selector, path, errors);

    for (position, pids) in selector.match_pids.iter().enumerate() {
        let values = path.field("matchPIDs").index(position).field("values");
        require_values(pids.values.len(), &values, errors);
        check_max_len(&pids.values, MAX_PID_VALUES, &values, errors);
    }

    for (field, binaries) in [
        ("matchBinaries", &selector.match_binaries),
        ("matchParentBinaries", &selector.match_parent_binaries),
    ] {
        let field_path = path.field(field);
        check_max_len(binaries, 1, &field_path, errors);
        for (position, binary) in binaries.iter().enumerate() {
            let path = field_path.index(position);
            require_values(binary.values.len(), &path.field("values"), errors);
            let membership = matches!(binary.operator, BinaryOperator::In | BinaryOperator::NotIn);
            if binary.follow_children && !membership {
                errors.push(
                    &path.field("followChildren"),
                    format!(
                        "only valid with operator In or NotIn, not {}",
                        binary.operator
                    ),
                );
            }
        }
    }

    for (position, namespaces) in selector.match_namespaces.iter().enumerate() {
        let values = path
            .field("matchNamespaces")
            .index(position)
            .field("values");
        require_values(namespaces.values.len(), &values, errors);
        check_max_len(&namespaces.values, MAX_NAMESPACE_VALUES, &values, errors);
        for (value_position, value) in namespaces.values.iter().enumerate() {
            if value != "host_ns" && value.parse::<u32>().is_err() {
                errors.push(
                    &values.index(value_position),
                    format!("\"{value}\" is not a namespace inode number or host_ns"),
                );
            }
        }
    }
    for (position, changes) in selector.match_namespace_changes.iter().enumerate() {
        let values = path
            .field("matchNamespaceChanges")
            .index(position)
            .field("values");
        require_values(changes.values.len(), &values, errors);
    }
    for (field, capabilities) in [
        ("matchCapabilities", &selector.match_capabilities),
        ("matchCapabilityChanges", &selector.match_capability_changes),
    ] {
        for (position, filter) in capabilities.iter().enumerate() {
            let values = path.field(field).index(position).field("values");
            require_values(filter.values.len(), &values, errors);
        }
    }
    for (position, workload) in selector.match_workloads.iter().enumerate() {
        let path = path.field("matchWorkloads").index(position);
        if let Some(pods) = &workload.pod_selector {
            check_label_selector(pods, &path.field("podSelector"), errors);
        }
        if let Some(containers) = &workload.container_selector {
            check_label_selector(containers, &path.field("containerSelector"), errors);
        }
        if workload
            .host_selector
            .as_ref()
            .is_some_and(|hosts| !hosts.is_empty())
        {
            errors.push(
                &path.field("hostSelector"),
                "only null or {} (all hosts) is supported",
            );
        }
    }

    action::check_actions(
        spec,
        hook,
        &selector.match_actions,
        &path.field("matchActions"),
        errors,
    );
    action::check_actions(
        spec,
        hook,
        &selector.match_return_actions,
        &path.field("matchReturnActions"),
        errors,
    );
}

/// `matchReturnArgs` / `matchReturnActions` need a hook that reads its return value.
fn check_return_filters(
    spec: &Spec,
    hook: &Hook<'_>,
    selector: &Selector,
    path: &FieldPath,
    errors: &mut Errors,
) {
    let return_arg = hook.return_arg.filter(|_| hook.returns);
    for (field, used) in [
        ("matchReturnArgs", !selector.match_return_args.is_empty()),
        (
            "matchReturnActions",
            !selector.match_return_actions.is_empty(),
        ),
    ] {
        if used && return_arg.is_none() {
            errors.push(
                &path.field(field),
                "requires the hook to set return: true and returnArg",
            );
        }
    }
    let Some(return_arg) = return_arg else {
        return;
    };
    let field_path = path.field("matchReturnArgs");
    for (position, filter) in selector.match_return_args.iter().enumerate() {
        let path = field_path.index(position);
        if filter.index != return_arg.index {
            errors.push(
                &path.field("index"),
                format!(
                    "index {} does not match returnArg index {}",
                    filter.index, return_arg.index
                ),
            );
        }
        check_filter(spec, filter, &[return_arg], &path, errors);
    }
}

/// The declared args a filter applies to: by `args` positions when given,
/// else by function argument `index`.
fn resolve_targets<'a>(
    kind: HookKind,
    declared: &'a [Arg],
    list_name: &str,
    filter: &ArgSelector,
    path: &FieldPath,
    errors: &mut Errors,
) -> Vec<&'a Arg> {
    if !filter.args.is_empty() {
        let mut targets = Vec::new();
        for (position, &spec_position) in filter.args.iter().enumerate() {
            match declared.get(spec_position as usize) {
                Some(arg) => targets.push(arg),
                None => errors.push(
                    &path.field("args").index(position),
                    format!(
                        "{spec_position} is not a position in the hook's {list_name} list ({})",
                        describe_positions(declared.len())
                    ),
                ),
            }
        }
        return targets;
    }
    let by_index: Vec<&Arg> = declared
        .iter()
        .filter(|arg| arg.index == filter.index)
        .collect();
    if !by_index.is_empty() {
        return by_index;
    }
    // Tetragon's own tracepoint examples also address args by list position.
    if kind == HookKind::Tracepoint {
        if let Some(arg) = declared.get(filter.index as usize) {
            return vec![arg];
        }
    }
    let indexes: Vec<String> = declared.iter().map(|arg| arg.index.to_string()).collect();
    errors.push(
        &path.field("index"),
        format!(
            "index {} does not refer to a declared arg; {}",
            filter.index,
            if indexes.is_empty() {
                format!("the hook declares no {list_name}")
            } else {
                format!("indexes declared in {list_name}: {}", indexes.join(", "))
            }
        ),
    );
    Vec::new()
}

fn describe_positions(count: usize) -> String {
    match count {
        0 => "it is empty".to_owned(),
        1 => "valid: 0".to_owned(),
        _ => format!("valid: 0 to {}", count - 1),
    }
}

/// Operator/type compatibility and value syntax of one filter.
fn check_filter(
    spec: &Spec,
    filter: &ArgSelector,
    targets: &[&Arg],
    path: &FieldPath,
    errors: &mut Errors,
) {
    let operator = filter.operator;
    for target in targets {
        if let Some(message) = operator::type_mismatch(operator, target.arg_type) {
            errors.push(&path.field("operator"), message);
        }
    }
    let values_path = path.field("values");
    if !operator::takes_values(operator) {
        if !filter.values.is_empty() {
            errors.push(&values_path, format!("operator {operator} takes no values"));
        }
        return;
    }
    if filter.values.is_empty() {
        errors.push(
            &values_path,
            format!("operator {operator} needs at least one value"),
        );
        return;
    }
    // Value syntax depends on the argument type; unresolved targets are
    // already reported, and `auto` types are only known at load time.
    let classes: Vec<ArgClass> = targets
        .iter()
        .map(|arg| ArgClass::of(arg.arg_type))
        .filter(|class| *class != ArgClass::Unchecked)
        .collect();
    if let Some(&class) = classes.first() {
        if let Some(max) = operator::max_values(operator, class) {
            if filter.values.len() > max {
                errors.push(
                    &values_path,
                    format!(
                        "has {} values; at most {max} allowed for operator {operator} on \
                         integer args (use InMap/NotInMap for larger sets)",
                        filter.values.len()
                    ),
                );
            }
        }
    }
    for (position, value) in filter.values.iter().enumerate() {
        let value_path = values_path.index(position);
        if matches!(operator, Operator::InMap | Operator::NotInMap) && value.starts_with("list:") {
            check_list_reference(spec, &value_path, value, errors);
            continue;
        }
        // Compare with the first typed target; filters naming several args share a type.
        let class = classes.first().copied().unwrap_or(ArgClass::Unchecked);
        if let Err(message) = operator::check_value(operator, class, value) {
            errors.push(&value_path, message);
        }
    }
}

fn require_values(count: usize, path: &FieldPath, errors: &mut Errors) {
    if count == 0 {
        errors.push(path, "needs at least one value");
    }
}
