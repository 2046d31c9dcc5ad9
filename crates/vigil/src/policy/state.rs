//! Policy and hook states: which hooks the kernel serves (and how, with what
//! guarantee), which were refused and why, and each policy's resulting state.
use std::{fmt::Write, path::Path};

use tracing::{error, info, warn};
use vigil_bpf::wire::{VIGIL_HOOKS_MAX, VIGIL_HOOKS_PER_SYSCALL};

use super::compile::{CompiledPolicy, HookMeta, HookPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyState {
    Enabled,
    PartiallyEnabled,
    Error,
}

impl PolicyState {
    pub fn name(self) -> &'static str {
        match self {
            PolicyState::Enabled => "enabled",
            PolicyState::PartiallyEnabled => "partially_enabled",
            PolicyState::Error => "error",
        }
    }
}

#[derive(Debug)]
enum HookStatus {
    /// Compiled; waiting for the generic sensor to load.
    Ready(Box<HookPlan>),
    Loaded {
        id: u32,
        via: String,
        guarantee: String,
    },
    Refused(String),
}

#[derive(Debug)]
struct HookEntry {
    name: String,
    status: HookStatus,
}

#[derive(Debug)]
pub struct PolicyEntry {
    pub name: String,
    file: String,
    enforce: bool,
    refused: Option<String>,
    hooks: Vec<HookEntry>,
}

impl PolicyEntry {
    pub fn state(&self) -> PolicyState {
        let loaded = self
            .hooks
            .iter()
            .filter(|h| matches!(h.status, HookStatus::Loaded { .. }))
            .count();
        if self.refused.is_some() || loaded == 0 {
            PolicyState::Error
        } else if loaded == self.hooks.len() {
            PolicyState::Enabled
        } else {
            PolicyState::PartiallyEnabled
        }
    }
}

/// Every policy given to the agent, loaded or not.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub policies: Vec<PolicyEntry>,
}

/// Hook number -> what its events need (policy name, function, argument types).
#[derive(Debug, Default)]
pub struct HookTable {
    hooks: Vec<Option<(usize, HookMeta)>>,
}

impl HookTable {
    pub fn get(&self, hook: u32) -> Option<&HookMeta> {
        self.hooks
            .get(hook as usize)
            .and_then(|h| h.as_ref())
            .map(|(_, m)| m)
    }

    /// Index of the hook's policy in the `PolicySet`.
    pub fn policy_of(&self, hook: u32) -> Option<usize> {
        self.hooks
            .get(hook as usize)
            .and_then(|h| h.as_ref())
            .map(|(p, _)| *p)
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }
}

impl PolicySet {
    pub fn add(&mut self, file: &Path, compiled: CompiledPolicy) {
        let hooks = compiled
            .hooks
            .into_iter()
            .map(|h| HookEntry {
                name: h.name,
                status: match h.plan {
                    Ok(plan) => HookStatus::Ready(Box::new(plan)),
                    Err(why) => HookStatus::Refused(why),
                },
            })
            .collect();
        self.policies.push(PolicyEntry {
            name: compiled.name,
            file: file.display().to_string(),
            enforce: compiled.enforce,
            refused: compiled.refused,
            hooks,
        });
    }

    /// A file that did not validate: a policy in the error state named after the file.
    pub fn add_invalid(&mut self, file: &Path, why: String) {
        self.policies.push(PolicyEntry {
            name: file.display().to_string(),
            file: file.display().to_string(),
            enforce: false,
            refused: Some(why),
            hooks: Vec::new(),
        });
    }

    /// Numbers the hooks to load (refusing those beyond the kernel tables'
    /// room) and returns their plans and the table events are built with.
    pub fn assign_hooks(&mut self) -> (Vec<(u32, HookPlan)>, HookTable) {
        let mut plans: Vec<(u32, HookPlan)> = Vec::new();
        let mut table = HookTable::default();
        for (p, policy) in self.policies.iter_mut().enumerate() {
            for hook in &mut policy.hooks {
                let HookStatus::Ready(plan) = &hook.status else {
                    continue;
                };
                let on_point = plans.iter().filter(|(_, q)| q.point == plan.point).count();
                if on_point >= VIGIL_HOOKS_PER_SYSCALL as usize {
                    hook.status = HookStatus::Refused(format!(
                        "more than {VIGIL_HOOKS_PER_SYSCALL} hooks on {}",
                        plan.point
                    ));
                    continue;
                }
                if plans.len() >= VIGIL_HOOKS_MAX as usize {
                    hook.status =
                        HookStatus::Refused(format!("more than {VIGIL_HOOKS_MAX} hooks in all"));
                    continue;
                }
                let id = plans.len() as u32;
                let mut plan = (**plan).clone();
                plan.assign(id);
                table.hooks.push(Some((p, plan.meta.clone())));
                hook.status = HookStatus::Loaded {
                    id,
                    via: plan.via.clone(),
                    guarantee: plan.guarantee.clone(),
                };
                plans.push((id, plan));
            }
        }
        (plans, table)
    }

    /// The generic sensor did not load: every hook that was to use it is refused.
    pub fn sensor_failed(&mut self, why: &str) {
        for hook in self.policies.iter_mut().flat_map(|p| p.hooks.iter_mut()) {
            if matches!(hook.status, HookStatus::Loaded { .. }) {
                hook.status = HookStatus::Refused(format!("generic syscall sensor: {why}"));
            }
        }
    }

    /// Hooks the generic sensor could not attach: refused with the reason.
    pub fn hooks_failed(&mut self, failed: &[(u32, String)]) {
        for hook in self.policies.iter_mut().flat_map(|p| p.hooks.iter_mut()) {
            if let HookStatus::Loaded { id, .. } = hook.status {
                if let Some((_, why)) = failed.iter().find(|(f, _)| *f == id) {
                    hook.status = HookStatus::Refused(why.clone());
                }
            }
        }
    }

    /// The same facts as `log`, as text for `vigil policy check --kernel`:
    /// each policy's state, then each hook's mechanism and guarantee, or why
    /// this kernel refuses it.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for policy in &self.policies {
            let mode = if policy.enforce { "enforce" } else { "monitor" };
            let _ = writeln!(
                out,
                "{}: policy {}: {} ({mode})",
                policy.file,
                policy.name,
                policy.state().name()
            );
            if let Some(why) = &policy.refused {
                let _ = writeln!(out, "  refused: {why}");
            }
            for hook in &policy.hooks {
                let _ = match &hook.status {
                    HookStatus::Loaded { via, guarantee, .. } => {
                        writeln!(out, "  {}: attached via {via}; {guarantee}", hook.name)
                    }
                    HookStatus::Refused(why) => writeln!(out, "  {}: refused: {why}", hook.name),
                    HookStatus::Ready(_) => writeln!(out, "  {}: not loaded", hook.name),
                };
            }
        }
        out
    }

    /// No policy is in the error state.
    pub fn all_served(&self) -> bool {
        self.policies
            .iter()
            .all(|p| p.state() != PolicyState::Error)
    }

    /// One line per hook (status, mechanism, guarantee) and one per policy (state).
    pub fn log(&self) {
        for policy in &self.policies {
            let mode = if policy.enforce { "enforce" } else { "monitor" };
            for hook in &policy.hooks {
                match &hook.status {
                    HookStatus::Loaded { id, via, guarantee } => info!(
                        policy = %policy.name, hook = %hook.name, id, via = %via, guarantee = %guarantee,
                        "policy hook loaded"
                    ),
                    HookStatus::Refused(why) => warn!(
                        policy = %policy.name, hook = %hook.name, reason = %why,
                        "policy hook refused"
                    ),
                    HookStatus::Ready(_) => {}
                }
            }
            let state = policy.state();
            match (&policy.refused, state) {
                (Some(why), _) => error!(
                    policy = %policy.name, file = %policy.file, state = state.name(), reason = %why,
                    "policy refused"
                ),
                (None, PolicyState::Error) => error!(
                    policy = %policy.name, file = %policy.file, state = state.name(), mode,
                    "policy refused: none of its hooks can be served on this kernel"
                ),
                (None, PolicyState::PartiallyEnabled) => warn!(
                    policy = %policy.name, file = %policy.file, state = state.name(), mode,
                    "policy partially enabled: some hooks are refused (see above)"
                ),
                (None, PolicyState::Enabled) => info!(
                    policy = %policy.name, file = %policy.file, state = state.name(), mode,
                    "policy enabled"
                ),
            }
        }
    }
}
