//! Workload scoping of a policy: a `TracingPolicyNamespaced` applies to the
//! containers of pods in its namespace, and `spec.containerSelector` narrows
//! that to container names. The kernel checks the caller's cgroup against
//! the cgroups the scope matches (`hook_scope`), which the agent keeps
//! current from the workload resolver.
use std::fmt;

use vigil_policy::{LabelOperator, LabelRequirement, LabelSelector, Policy};

use super::compile::{HookPlan, HookPoint};
use crate::workload::Workload;

/// The namespace kubectl gives an object whose manifest names none.
const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// Pods of this namespace only; `None`: pods of every namespace.
    namespace: Option<String>,
    /// Requirements on the container name, all of which must hold.
    container_names: Vec<LabelRequirement>,
}

impl Scope {
    /// The scope `policy` asks for: `None` for a policy of the whole host,
    /// an error naming the field for scoping vigil cannot apply.
    pub fn of_policy(policy: &Policy) -> Result<Option<Scope>, String> {
        let spec = &policy.spec;
        if spec.pod_selector.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(
                "spec.podSelector: pod labels are not in the container runtime's state, \
                 from which vigil finds pods (no Kubernetes API); select by namespace \
                 (TracingPolicyNamespaced) or container name (spec.containerSelector)"
                    .into(),
            );
        }
        let container_names = match &spec.container_selector {
            Some(selector) => name_requirements(selector)?,
            None => Vec::new(),
        };
        let namespace = policy.is_namespaced().then(|| {
            policy
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
        });
        if namespace.is_none() && container_names.is_empty() {
            return Ok(None);
        }
        Ok(Some(Scope {
            namespace,
            container_names,
        }))
    }

    pub fn matches(&self, w: &Workload) -> bool {
        self.namespace.as_ref().is_none_or(|ns| *ns == w.namespace)
            && self.container_names.iter().all(|r| {
                let listed = r.values.contains(&w.container);
                match r.operator {
                    LabelOperator::In => listed,
                    LabelOperator::NotIn => !listed,
                    LabelOperator::Exists => true,
                    LabelOperator::DoesNotExist => false,
                }
            })
    }

    /// Marks a hook's plan as scoped, or refuses it where the scope cannot
    /// be checked: cgroup socket-address programs (not built with the check)
    /// and fanotify hooks (decided in user space without it).
    pub fn apply(&self, mut plan: HookPlan) -> Result<HookPlan, String> {
        let kind = match plan.point {
            HookPoint::CgroupSockAddr { .. } => Some("cgroup socket-address"),
            HookPoint::Fanotify(_) => Some("fanotify"),
            _ => None,
        };
        if let Some(kind) = kind {
            return Err(format!(
                "served here by a {kind} hook ({}), which vigil cannot scope to workloads ({self}) yet",
                plan.via
            ));
        }
        plan.config.flags |= vigil_bpf::wire::VIGIL_HOOK_SCOPED;
        Ok(plan)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "pods of namespace {ns}")?,
            None => write!(f, "pods of every namespace")?,
        }
        for r in &self.container_names {
            write!(f, ", container name {} {:?}", r.operator, r.values)?;
        }
        Ok(())
    }
}

/// `spec.containerSelector` as requirements on the container name, the one
/// container field the runtime state carries.
fn name_requirements(selector: &LabelSelector) -> Result<Vec<LabelRequirement>, String> {
    let path = "spec.containerSelector";
    let mut out = Vec::new();
    for (key, value) in &selector.match_labels {
        if key != "name" {
            return Err(format!(
                "{path}.matchLabels.{key}: vigil can select containers by name only"
            ));
        }
        out.push(LabelRequirement {
            key: key.clone(),
            operator: LabelOperator::In,
            values: vec![value.clone()],
        });
    }
    for (i, r) in selector.match_expressions.iter().enumerate() {
        if r.key != "name" {
            return Err(format!(
                "{path}.matchExpressions[{i}].key: \"{}\": vigil can select containers by name only",
                r.key
            ));
        }
        out.push(r.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Policy {
        vigil_policy::check_str(yaml)
            .expect("a valid policy")
            .remove(0)
    }

    fn workload(namespace: &str, container: &str) -> Workload {
        Workload {
            namespace: namespace.into(),
            pod: "p".into(),
            container: container.into(),
            container_id: String::new(),
            runtime: "containerd",
        }
    }

    const HOOK: &str = "  kprobes:\n  - call: sys_mkdirat\n    syscall: true\n";

    #[test]
    fn namespaced_policies_scope_to_their_namespace() {
        let p = policy(&format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata:\n  name: t\n  namespace: shop\nspec:\n{HOOK}"
        ));
        let scope = Scope::of_policy(&p).expect("served").expect("scoped");
        assert!(scope.matches(&workload("shop", "app")));
        assert!(!scope.matches(&workload("other", "app")));
    }

    #[test]
    fn container_names_narrow_the_scope() {
        let p = policy(&format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n  containerSelector:\n    matchExpressions:\n    - key: name\n      operator: NotIn\n      values: [sidecar]\n{HOOK}"
        ));
        let scope = Scope::of_policy(&p).expect("served").expect("scoped");
        assert!(scope.matches(&workload("any", "app")));
        assert!(!scope.matches(&workload("any", "sidecar")));
    }

    #[test]
    fn pod_labels_are_refused_by_name() {
        let p = policy(&format!(
            "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: t\nspec:\n  podSelector:\n    matchLabels:\n      app: web\n{HOOK}"
        ));
        let why = Scope::of_policy(&p).expect_err("refused");
        assert!(why.starts_with("spec.podSelector:"), "{why}");
    }
}
