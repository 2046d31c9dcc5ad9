//! Policy and hook states: which hooks the kernel serves (and how, with what
//! guarantee), which were refused and why, which policies are disabled, and
//! each policy's resulting state and counters.
use std::{fmt::Write, path::Path};

use tracing::{error, info, warn};
use vigil_bpf::wire::{
    VIGIL_HOOKS_MAX, VIGIL_HOOK_STAT_ENFORCED, VIGIL_HOOK_STAT_MAX, VIGIL_HOOK_STAT_MONITORED,
    VIGIL_HOOK_STAT_POSTED,
};

use super::compile::{CompiledPolicy, HookMeta, HookPlan};
use super::scope::Scope;
use crate::sensors::generic::GenericSensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyState {
    Enabled,
    PartiallyEnabled,
    Disabled,
    Error,
}

impl PolicyState {
    pub const ALL: [PolicyState; 4] = [
        PolicyState::Enabled,
        PolicyState::PartiallyEnabled,
        PolicyState::Disabled,
        PolicyState::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyState::Enabled => "enabled",
            PolicyState::PartiallyEnabled => "partially_enabled",
            PolicyState::Disabled => "disabled",
            PolicyState::Error => "error",
        }
    }
}

#[derive(Debug)]
enum HookStatus {
    /// Compiled, not in the kernel (the policy is disabled or not loaded yet).
    Unloaded,
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
    /// What to load; `None` when the hook cannot be served here at all.
    plan: Option<Box<HookPlan>>,
    status: HookStatus,
}

/// What a policy's hooks did, summed over its hooks since it was added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PolicyCounters {
    pub posted: u64,
    pub enforced: u64,
    pub monitored: u64,
}

impl PolicyCounters {
    fn add(&mut self, delta: &[u64; VIGIL_HOOK_STAT_MAX as usize]) {
        self.posted += delta[VIGIL_HOOK_STAT_POSTED as usize];
        self.enforced += delta[VIGIL_HOOK_STAT_ENFORCED as usize];
        self.monitored += delta[VIGIL_HOOK_STAT_MONITORED as usize];
    }
}

#[derive(Debug)]
pub struct PolicyEntry {
    pub name: String,
    /// The file it came from, or `grpc`.
    source: String,
    enforce: bool,
    enabled: bool,
    refused: Option<String>,
    /// The workloads it is limited to, and how many cgroups match now.
    pub scope: Option<Scope>,
    pub scope_cgroups: usize,
    hooks: Vec<HookEntry>,
    pub counters: PolicyCounters,
}

impl PolicyEntry {
    pub fn state(&self) -> PolicyState {
        if self.refused.is_some() {
            return PolicyState::Error;
        }
        if !self.enabled {
            return PolicyState::Disabled;
        }
        let loaded = self.loaded_ids().count();
        if loaded == 0 {
            PolicyState::Error
        } else if loaded == self.hooks.len() {
            PolicyState::Enabled
        } else {
            PolicyState::PartiallyEnabled
        }
    }

    /// Ids of the hooks in the kernel now.
    pub fn loaded_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.hooks.iter().filter_map(|h| match h.status {
            HookStatus::Loaded { id, .. } => Some(id),
            _ => None,
        })
    }

    /// Why nothing of the policy runs: its own refusal or its hooks'.
    pub fn refusal(&self) -> String {
        if let Some(why) = &self.refused {
            return why.clone();
        }
        let reasons: Vec<String> = self
            .hooks
            .iter()
            .filter_map(|h| match &h.status {
                HookStatus::Refused(why) => Some(format!("{}: {why}", h.name)),
                _ => None,
            })
            .collect();
        if reasons.is_empty() {
            "the policy has no hooks".into()
        } else {
            reasons.join("; ")
        }
    }

    pub fn report(&self) -> PolicyReport {
        PolicyReport {
            name: self.name.clone(),
            source: self.source.clone(),
            state: self.state(),
            mode: if self.enforce { "enforce" } else { "monitor" },
            error: self.refused.clone(),
            scope: self.scope.as_ref().map(ToString::to_string),
            scope_cgroups: self.scope_cgroups,
            hooks: self
                .hooks
                .iter()
                .map(|h| {
                    let mut r = HookReport {
                        name: h.name.clone(),
                        ..Default::default()
                    };
                    match &h.status {
                        HookStatus::Unloaded => r.status = "disabled",
                        HookStatus::Loaded { via, guarantee, .. } => {
                            r.status = "loaded";
                            r.mechanism = via.clone();
                            r.guarantee = guarantee.clone();
                        }
                        HookStatus::Refused(why) => {
                            r.status = "refused";
                            r.reason = why.clone();
                        }
                    }
                    r
                })
                .collect(),
            counters: self.counters,
        }
    }

    /// Loads every hook that has a plan into the generic sensor; a hook the
    /// sensor refuses is refused with the reason, the others still load.
    pub fn load(&mut self, sensor: &mut GenericSensor, table: &mut HookTable) {
        self.enabled = true;
        if self.refused.is_some() {
            return;
        }
        self.load_multi(sensor, table);
        for hook in &mut self.hooks {
            let Some(plan) = &hook.plan else { continue };
            if matches!(hook.status, HookStatus::Loaded { .. }) || plan.point.is_multi() {
                continue;
            }
            hook.status = match sensor.add_hook(plan) {
                Ok((id, plan)) => {
                    table.insert(id, plan.meta);
                    HookStatus::Loaded {
                        id,
                        via: plan.via,
                        guarantee: plan.guarantee,
                    }
                }
                Err(e) => HookStatus::Refused(format!("{e:#}")),
            };
        }
    }

    /// Loads the policy's kprobe.multi hooks together: one program for all
    /// of them, so they load or are refused together.
    fn load_multi(&mut self, sensor: &mut GenericSensor, table: &mut HookTable) {
        let waiting: Vec<usize> = (0..self.hooks.len())
            .filter(|&i| {
                let hook = &self.hooks[i];
                !matches!(hook.status, HookStatus::Loaded { .. })
                    && hook.plan.as_ref().is_some_and(|p| p.point.is_multi())
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        let plans: Vec<&HookPlan> = waiting
            .iter()
            .filter_map(|&i| self.hooks[i].plan.as_deref())
            .collect();
        match sensor.add_multi_hooks(&plans) {
            Ok(loaded) => {
                for (i, (id, plan)) in waiting.into_iter().zip(loaded) {
                    table.insert(id, plan.meta);
                    self.hooks[i].status = HookStatus::Loaded {
                        id,
                        via: plan.via,
                        guarantee: plan.guarantee,
                    };
                }
            }
            Err(e) => {
                let why = format!("{e:#}");
                for i in waiting {
                    self.hooks[i].status = HookStatus::Refused(why.clone());
                }
            }
        }
    }

    /// Takes every loaded hook out of the kernel; they stay compiled, for `load`.
    pub fn unload(&mut self, sensor: &mut GenericSensor) {
        self.enabled = false;
        for hook in &mut self.hooks {
            if let HookStatus::Loaded { id, .. } = hook.status {
                if let Err(e) = sensor.remove_hook(id) {
                    warn!(policy = %self.name, hook = %hook.name, error = %format!("{e:#}"),
                        "removing a hook left something behind");
                }
                hook.status = HookStatus::Unloaded;
            }
        }
    }

    /// The generic sensor could not load: every hook that was to use it is refused.
    pub fn sensor_failed(&mut self, why: &str) {
        for hook in &mut self.hooks {
            if hook.plan.is_some() {
                hook.status = HookStatus::Refused(format!("generic syscall sensor: {why}"));
            }
        }
    }

    /// One line per hook (status, mechanism, guarantee) and one for the policy (state).
    pub fn log(&self) {
        let mode = if self.enforce { "enforce" } else { "monitor" };
        for hook in &self.hooks {
            match &hook.status {
                HookStatus::Loaded { id, via, guarantee } => info!(
                    policy = %self.name, hook = %hook.name, id, via = %via, guarantee = %guarantee,
                    "policy hook loaded"
                ),
                HookStatus::Refused(why) => warn!(
                    policy = %self.name, hook = %hook.name, reason = %why,
                    "policy hook refused"
                ),
                HookStatus::Unloaded => {}
            }
        }
        let state = self.state();
        let (name, file) = (&self.name, &self.source);
        match (&self.refused, state) {
            (Some(why), _) => error!(
                policy = %name, file = %file, state = state.name(), reason = %why,
                "policy refused"
            ),
            (None, PolicyState::Error) => error!(
                policy = %name, file = %file, state = state.name(), mode,
                "policy refused: none of its hooks can be served on this kernel"
            ),
            (None, PolicyState::PartiallyEnabled) => warn!(
                policy = %name, file = %file, state = state.name(), mode,
                "policy partially enabled: some hooks are refused (see above)"
            ),
            (None, PolicyState::Enabled | PolicyState::Disabled) => info!(
                policy = %name, file = %file, state = state.name(), mode,
                "policy {}", state.name()
            ),
        }
    }
}

/// A policy as the API and the CLI show it.
#[derive(Debug, Clone)]
pub struct PolicyReport {
    pub name: String,
    pub source: String,
    pub state: PolicyState,
    pub mode: &'static str,
    pub error: Option<String>,
    /// What a scoped policy is limited to, and the cgroups matching now.
    pub scope: Option<String>,
    pub scope_cgroups: usize,
    pub hooks: Vec<HookReport>,
    pub counters: PolicyCounters,
}

#[derive(Debug, Clone, Default)]
pub struct HookReport {
    pub name: String,
    /// `loaded`, `disabled` or `refused`.
    pub status: &'static str,
    pub mechanism: String,
    pub guarantee: String,
    pub reason: String,
}

/// Every policy given to the agent, loaded or not, in the order added.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub policies: Vec<PolicyEntry>,
}

/// Hook id -> what its events need (policy name, function, argument types).
/// An entry outlives its hook until the id is reused, so that a record the
/// hook posted just before its removal still finds its policy.
#[derive(Debug)]
pub struct HookTable {
    hooks: Vec<Option<HookMeta>>,
}

impl Default for HookTable {
    fn default() -> Self {
        HookTable {
            hooks: vec![None; VIGIL_HOOKS_MAX as usize],
        }
    }
}

impl HookTable {
    pub fn get(&self, hook: u32) -> Option<&HookMeta> {
        self.hooks.get(hook as usize).and_then(|h| h.as_ref())
    }

    fn insert(&mut self, hook: u32, meta: HookMeta) {
        if let Some(slot) = self.hooks.get_mut(hook as usize) {
            *slot = Some(meta);
        }
    }
}

impl PolicySet {
    /// Adds a compiled policy (not loaded yet); refused when the name is taken.
    pub fn add(&mut self, source: &str, compiled: CompiledPolicy) -> Result<usize, String> {
        if self.find(&compiled.name).is_some() {
            return Err(format!(
                "a policy named {:?} is already loaded",
                compiled.name
            ));
        }
        let hooks = compiled
            .hooks
            .into_iter()
            .map(|h| match h.plan {
                Ok(plan) => HookEntry {
                    name: h.name,
                    plan: Some(Box::new(plan)),
                    status: HookStatus::Unloaded,
                },
                Err(why) => HookEntry {
                    name: h.name,
                    plan: None,
                    status: HookStatus::Refused(why),
                },
            })
            .collect();
        self.policies.push(PolicyEntry {
            name: compiled.name,
            source: source.to_owned(),
            enforce: compiled.enforce,
            enabled: true,
            refused: compiled.refused,
            scope: compiled.scope,
            scope_cgroups: 0,
            hooks,
            counters: PolicyCounters::default(),
        });
        Ok(self.policies.len() - 1)
    }

    /// A file that did not validate: a policy in the error state named after the file.
    pub fn add_invalid(&mut self, file: &Path, why: String) {
        self.policies.push(PolicyEntry {
            name: file.display().to_string(),
            source: file.display().to_string(),
            enforce: false,
            enabled: true,
            refused: Some(why),
            scope: None,
            scope_cgroups: 0,
            hooks: Vec::new(),
            counters: PolicyCounters::default(),
        });
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.policies.iter().position(|p| p.name == name)
    }

    /// Each policy's state, then each hook's mechanism and guarantee, or why
    /// this kernel refuses it: the text of `vigil policy check --kernel`.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for policy in &self.policies {
            let mode = if policy.enforce { "enforce" } else { "monitor" };
            let _ = writeln!(
                out,
                "{}: policy {}: {} ({mode})",
                policy.source,
                policy.name,
                policy.state().name()
            );
            if let Some(why) = &policy.refused {
                let _ = writeln!(out, "  refused: {why}");
            }
            if let Some(scope) = &policy.scope {
                let _ = writeln!(
                    out,
                    "  scoped to {scope} ({} cgroups match now)",
                    policy.scope_cgroups
                );
            }
            for hook in &policy.hooks {
                let _ = match &hook.status {
                    HookStatus::Loaded { via, guarantee, .. } => {
                        writeln!(out, "  {}: attached via {via}; {guarantee}", hook.name)
                    }
                    HookStatus::Refused(why) => writeln!(out, "  {}: refused: {why}", hook.name),
                    HookStatus::Unloaded => writeln!(out, "  {}: not loaded", hook.name),
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

    /// Adds what hook `hook` did since the last look to its policy's counters.
    pub fn count(&mut self, policy: usize, delta: &[u64; VIGIL_HOOK_STAT_MAX as usize]) {
        if let Some(p) = self.policies.get_mut(policy) {
            p.counters.add(delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(enabled: bool, statuses: Vec<HookStatus>) -> PolicyEntry {
        PolicyEntry {
            name: "p".into(),
            source: "grpc".into(),
            enforce: true,
            enabled,
            refused: None,
            scope: None,
            scope_cgroups: 0,
            hooks: statuses
                .into_iter()
                .map(|status| HookEntry {
                    name: "h".into(),
                    plan: None,
                    status,
                })
                .collect(),
            counters: PolicyCounters::default(),
        }
    }

    fn loaded(id: u32) -> HookStatus {
        HookStatus::Loaded {
            id,
            via: String::new(),
            guarantee: String::new(),
        }
    }

    #[test]
    fn states_follow_hooks_and_enablement() {
        assert_eq!(
            entry(true, vec![loaded(0), loaded(1)]).state(),
            PolicyState::Enabled
        );
        assert_eq!(
            entry(true, vec![loaded(0), HookStatus::Refused("x".into())]).state(),
            PolicyState::PartiallyEnabled
        );
        assert_eq!(
            entry(false, vec![HookStatus::Unloaded]).state(),
            PolicyState::Disabled
        );
        let refused = entry(true, vec![HookStatus::Refused("no such call".into())]);
        assert_eq!(refused.state(), PolicyState::Error);
        assert_eq!(refused.refusal(), "h: no such call");
    }

    #[test]
    fn counters_add_hook_stats() {
        let mut c = PolicyCounters::default();
        let mut delta = [0u64; VIGIL_HOOK_STAT_MAX as usize];
        delta[VIGIL_HOOK_STAT_POSTED as usize] = 3;
        delta[VIGIL_HOOK_STAT_MONITORED as usize] = 1;
        c.add(&delta);
        c.add(&delta);
        assert_eq!((c.posted, c.enforced, c.monitored), (6, 0, 2));
    }
}
