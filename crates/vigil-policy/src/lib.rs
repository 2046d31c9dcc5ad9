//! Parse and validate Cilium Tetragon `TracingPolicy` / `TracingPolicyNamespaced`
//! YAML (`cilium.io/v1alpha1`), unchanged, without a kernel.
//!
//! Parsing is strict (unknown fields are errors) and applies the CRD defaults;
//! validation then checks the CRD limits and cross references and reports every
//! problem with its field path, e.g.
//! `policy.yaml: spec.kprobes[0].selectors[1].matchArgs[0].operator: ...`.

mod capability;
mod check;
mod enums;
mod error;
mod model;
pub mod net;
mod parse;
mod selector;
pub(crate) mod validate;

pub use capability::Capability;
pub use check::{check_file, check_files, check_str, CheckReport, FileReport};
pub use enums::{
    ActionKind, ApiVersion, ArgSource, ArgType, BinaryOperator, CapabilitySet, Kind, LabelOperator,
    ListType, Namespace, Operator, RateLimitScope, ReturnArgAction, SetOperator,
};
pub use error::{PolicyError, PolicyErrors};
pub use model::{
    Arg, EnforcerSpec, KProbeIgnore, KProbeSpec, LabelRequirement, LabelSelector, ListSpec,
    LsmHookSpec, Metadata, OptionSpec, Policy, Spec, TracepointSpec, UProbeIgnore, UProbeSpec,
    UsdtSpec,
};
pub use selector::{
    Action, ArgSelector, BinarySelector, CapabilitiesSelector, NamespaceChangesSelector,
    NamespaceSelector, PidSelector, Selector, WorkloadSelector,
};
