//! Serde model of `TracingPolicy` / `TracingPolicyNamespaced` (`cilium.io/v1alpha1`).
//!
//! Field names and CRD defaults follow Tetragon's CRD. Every struct denies
//! unknown fields, as Tetragon's strict loader does.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::enums::{
    ApiVersion, ArgSource, ArgType, Kind, LabelOperator, ListType, ReturnArgAction,
};
use crate::selector::Selector;

/// One policy document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    pub api_version: ApiVersion,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
}

impl Policy {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn is_namespaced(&self) -> bool {
        self.kind == Kind::TracingPolicyNamespaced
    }
}

/// The subset of Kubernetes `ObjectMeta` that a policy file may carry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Spec {
    pub kprobes: Vec<KProbeSpec>,
    pub tracepoints: Vec<TracepointSpec>,
    pub uprobes: Vec<UProbeSpec>,
    pub usdts: Vec<UsdtSpec>,
    #[serde(rename = "lsmhooks")]
    pub lsm_hooks: Vec<LsmHookSpec>,
    /// Same shape as kprobes, attached as fentry/fexit.
    pub fentries: Vec<KProbeSpec>,
    /// Emit loader (mmap) events.
    pub loader: bool,
    pub lists: Vec<ListSpec>,
    pub enforcers: Vec<EnforcerSpec>,
    pub options: Vec<OptionSpec>,
    pub selectors_macros: BTreeMap<String, Selector>,
    pub pod_selector: Option<LabelSelector>,
    pub container_selector: Option<LabelSelector>,
    /// Only `null` or `{}` is accepted; forbidden in `TracingPolicyNamespaced`.
    pub host_selector: Option<LabelSelector>,
    pub node_selector: Option<LabelSelector>,
}

fn default_true() -> bool {
    true
}

/// A kprobe (also used for `fentries`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KProbeSpec {
    /// Function name, or `list:NAME` for every function of a list.
    pub call: String,
    /// CRD default is `true`: without `syscall: false` the call is treated as a syscall.
    #[serde(default = "default_true")]
    pub syscall: bool,
    #[serde(default)]
    pub r#return: bool,
    #[serde(default)]
    pub return_arg: Option<Arg>,
    #[serde(default)]
    pub return_arg_action: Option<ReturnArgAction>,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub data: Vec<Arg>,
    #[serde(default)]
    pub selectors: Vec<Selector>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub ignore: Option<KProbeIgnore>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct KProbeIgnore {
    /// Skip calls missing from the running kernel instead of failing.
    pub call_not_found: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TracepointSpec {
    pub subsystem: String,
    pub event: String,
    /// Attach as a raw tracepoint; args are then `TP_PROTO` arguments.
    #[serde(default)]
    pub raw: bool,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub selectors: Vec<Selector>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UProbeSpec {
    /// Traced binary or library.
    pub path: String,
    #[serde(default)]
    pub symbols: Vec<String>,
    #[serde(default)]
    pub offsets: Vec<u64>,
    #[serde(default)]
    pub addrs: Vec<u64>,
    #[serde(default)]
    pub ref_ctr_offsets: Vec<u64>,
    #[serde(default)]
    pub btf_path: Option<String>,
    #[serde(default)]
    pub resolve_path_in_container: bool,
    #[serde(default)]
    pub r#return: bool,
    #[serde(default)]
    pub return_arg: Option<Arg>,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub data: Vec<Arg>,
    #[serde(default)]
    pub selectors: Vec<Selector>,
    /// `sha1:`/`sha256:`/`sha384:`/`sha512:` hex digests or `build-id:` hex.
    #[serde(default)]
    pub binary_digests: Vec<String>,
    #[serde(default)]
    pub ignore: Option<UProbeIgnore>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct UProbeIgnore {
    pub digest_verification_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UsdtSpec {
    pub path: String,
    pub provider: String,
    pub name: String,
    #[serde(default)]
    pub btf_path: Option<String>,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub selectors: Vec<Selector>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LsmHookSpec {
    /// LSM hook name without the `security_` prefix.
    pub hook: String,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub selectors: Vec<Selector>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `KProbeArg`: one argument (or return value, or data item) to read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Arg {
    /// Function argument position (tracepoints: format field position).
    pub index: u32,
    #[serde(default, rename = "type")]
    pub arg_type: ArgType,
    #[serde(default)]
    pub label: String,
    /// BTF field path to follow from the argument, e.g. `mm.owner.real_parent.comm`.
    #[serde(default)]
    pub resolve: String,
    #[serde(default, rename = "btfType")]
    pub btf_type: Option<String>,
    #[serde(default, rename = "btfTypeModule")]
    pub btf_type_module: Option<String>,
    /// 1-based position of the function argument holding this buffer's size.
    #[serde(default)]
    pub size_arg_index: u32,
    #[serde(default)]
    pub return_copy: bool,
    #[serde(default)]
    pub max_data: bool,
    #[serde(default)]
    pub source: Option<ArgSource>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListSpec {
    pub name: String,
    #[serde(default, rename = "type")]
    pub list_type: Option<ListType>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub validated: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnforcerSpec {
    /// Syscalls (or `list:NAME`) the enforcer program attaches to.
    pub calls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionSpec {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// Kubernetes `LabelSelector`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<LabelRequirement>,
}

impl LabelSelector {
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelRequirement {
    pub key: String,
    pub operator: LabelOperator,
    #[serde(default)]
    pub values: Vec<String>,
}
