//! Serde model of `KProbeSelector` and its filters and actions.

use serde::Deserialize;

use crate::capability::Capability;
use crate::enums::{
    ActionKind, BinaryOperator, CapabilitySet, Namespace, Operator, RateLimitScope, SetOperator,
};
use crate::model::LabelSelector;

/// Filters inside a selector are ANDed; selectors of a hook are ORed, first match wins.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Selector {
    pub label: String,
    /// Names of `spec.selectorsMacros` entries merged into this selector.
    pub macros: Vec<String>,
    #[serde(rename = "matchPIDs")]
    pub match_pids: Vec<PidSelector>,
    pub match_args: Vec<ArgSelector>,
    pub match_data: Vec<ArgSelector>,
    pub match_return_args: Vec<ArgSelector>,
    pub match_binaries: Vec<BinarySelector>,
    pub match_parent_binaries: Vec<BinarySelector>,
    pub match_namespaces: Vec<NamespaceSelector>,
    pub match_namespace_changes: Vec<NamespaceChangesSelector>,
    pub match_capabilities: Vec<CapabilitiesSelector>,
    pub match_capability_changes: Vec<CapabilitiesSelector>,
    pub match_workloads: Vec<WorkloadSelector>,
    pub match_actions: Vec<Action>,
    pub match_return_actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PidSelector {
    pub operator: SetOperator,
    pub values: Vec<u32>,
    #[serde(default, rename = "isNamespacePID")]
    pub is_namespace_pid: bool,
    #[serde(default)]
    pub follow_forks: bool,
}

/// A filter on one argument (`matchArgs`), data item (`matchData`) or the return value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArgSelector {
    /// Function argument position; Tetragon's default is 0.
    #[serde(default)]
    pub index: u32,
    /// Positions in the hook's `args` list; takes precedence over `index`.
    #[serde(default)]
    pub args: Vec<u32>,
    pub operator: Operator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BinarySelector {
    pub operator: BinaryOperator,
    pub values: Vec<String>,
    /// Also match descendants of the binaries (only with `In`/`NotIn`).
    #[serde(default)]
    pub follow_children: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceSelector {
    pub namespace: Namespace,
    pub operator: SetOperator,
    /// Namespace inode numbers, or `host_ns`.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceChangesSelector {
    pub operator: SetOperator,
    pub values: Vec<Namespace>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CapabilitiesSelector {
    #[serde(default, rename = "type")]
    pub set: CapabilitySet,
    pub operator: SetOperator,
    #[serde(default)]
    pub is_namespace_capability: bool,
    pub values: Vec<Capability>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct WorkloadSelector {
    pub pod_selector: Option<LabelSelector>,
    pub container_selector: Option<LabelSelector>,
    pub host_selector: Option<LabelSelector>,
}

/// An entry of `matchActions` / `matchReturnActions`. Argument fields are
/// optional so that a missing required argument can be reported.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Action {
    pub action: ActionKind,
    /// Error returned by `Override`, or by the enforcer for `NotifyEnforcer`.
    #[serde(default)]
    pub arg_error: Option<i32>,
    /// Signal number for `Signal` and `NotifyEnforcer`.
    #[serde(default)]
    pub arg_sig: Option<u32>,
    /// Argument index of the socket for `TrackSock`/`UntrackSock`.
    #[serde(default)]
    pub arg_sock: Option<u32>,
    #[serde(default)]
    pub arg_url: Option<String>,
    #[serde(default)]
    pub arg_fqdn: Option<String>,
    /// Argument index and value written by `Set`.
    #[serde(default)]
    pub arg_index: Option<u32>,
    #[serde(default)]
    pub arg_value: Option<i32>,
    /// Uprobe `Override`: register assignments.
    #[serde(default)]
    pub arg_regs: Vec<String>,
    /// Uprobe `Override`: redirect to a symbol, address or offset (at most one).
    #[serde(default)]
    pub arg_new_symbol: Option<String>,
    #[serde(default)]
    pub arg_new_addr: Option<u64>,
    #[serde(default)]
    pub arg_new_offset: Option<u64>,
    /// Uprobe `Override` with `argNewSymbol`: library that provides the symbol.
    #[serde(default, rename = "sopath")]
    pub so_path: Option<String>,
    /// `Post` only: `N`, `Ns`, `Nm` or `Nh` (seconds by default).
    #[serde(default)]
    pub rate_limit: Option<String>,
    #[serde(default)]
    pub rate_limit_scope: Option<RateLimitScope>,
    #[serde(default)]
    pub kernel_stack_trace: bool,
    #[serde(default)]
    pub user_stack_trace: bool,
    /// `Post` on LSM hooks only: collect the IMA file hash.
    #[serde(default)]
    pub ima_hash: bool,
}
