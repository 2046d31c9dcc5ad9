//! The policies of a running agent: loaded from files at start, added,
//! deleted, enabled and disabled while it runs (the API's commands), each
//! with its state and counters. Runs on the agent's event loop thread, which
//! owns the generic sensor; the sensor is loaded when the first policy
//! needs it.
use std::{collections::BTreeSet, path::PathBuf};

use tracing::{info, warn};
use vigil_bpf::wire::{VIGIL_HOOKS_MAX, VIGIL_HOOK_STAT_MAX};

use super::state::HookTable;
use super::{
    compile, metrics::PolicyMetrics, persist::PersistedPolicies, policy_files, PolicyReport,
    PolicySet, PolicyState,
};
use crate::{
    probe::{self, KernelFeatures},
    sensors::{fanotify::RecordSink, generic::GenericSensor, process::ProcessSensor, sock_addr},
    workload::{WorkloadResolver, DEFAULT_STATE_DIRS},
};

/// Where a policy added over the API comes from, in listings.
pub const API_SOURCE: &str = "grpc";

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Validation errors, one `PATH: message` line each.
    #[error("{0}")]
    Invalid(String),
    #[error("a policy named {0:?} is already loaded")]
    Exists(String),
    #[error("no policy named {0:?}")]
    NotFound(String),
    /// Valid, but nothing of it can be served on this kernel.
    #[error("policy {name:?} cannot be loaded: {why}")]
    Refused { name: String, why: String },
}

type HookCounters = [u64; VIGIL_HOOK_STAT_MAX as usize];

pub struct PolicyManager {
    set: PolicySet,
    generic: Option<GenericSensor>,
    features: Option<KernelFeatures>,
    /// Per hook id: its kernel counters at the last look.
    last_counters: Vec<HookCounters>,
    metrics: PolicyMetrics,
    wakeup_bytes: u64,
    /// Where policies added over the API are kept across restarts, if asked.
    persisted: Option<PersistedPolicies>,
    /// Where hooks decided in user space (fanotify) send their events.
    records: RecordSink,
    /// The node's pod containers, for scoped policies.
    workloads: WorkloadResolver,
}

impl PolicyManager {
    pub fn new(metrics: PolicyMetrics, wakeup_bytes: u64, records: RecordSink) -> Self {
        PolicyManager {
            set: PolicySet::default(),
            generic: None,
            features: None,
            last_counters: vec![[0; VIGIL_HOOK_STAT_MAX as usize]; VIGIL_HOOKS_MAX as usize],
            metrics,
            wakeup_bytes,
            persisted: None,
            records,
            workloads: WorkloadResolver::new(
                std::fs::read_to_string("/proc/self/mountinfo")
                    .ok()
                    .and_then(|m| sock_addr::cgroup2_mount(&m))
                    .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup")),
                DEFAULT_STATE_DIRS.iter().map(PathBuf::from).collect(),
            ),
        }
    }

    /// Where pod containers are found: the cgroup v2 root and the container
    /// runtimes' state directories.
    pub fn set_workload_sources(&mut self, cgroup_root: PathBuf, state_dirs: Vec<PathBuf>) {
        self.workloads = WorkloadResolver::new(cgroup_root, state_dirs);
    }

    /// Some loaded policy is scoped to workloads.
    fn has_scoped(&self) -> bool {
        self.set
            .policies
            .iter()
            .any(|p| p.scope.is_some() && p.loaded_ids().next().is_some())
    }

    /// Looks at the cgroup tree again (new containers, removed cgroups) and
    /// updates the scoped hooks if the containers changed. Does nothing
    /// while no scoped policy is loaded.
    pub fn rescan_workloads(&mut self) {
        if self.has_scoped() && self.workloads.scan() {
            self.sync_scopes();
        }
    }

    /// Processes ran in these cgroups: one the last scan did not see is new
    /// (a container just started), so the tree is scanned again.
    pub fn cgroups_seen(&mut self, cgroups: &mut Vec<u64>) {
        if !self.has_scoped() {
            cgroups.clear();
            return;
        }
        cgroups.retain(|c| !self.workloads.knows(*c));
        if !cgroups.is_empty() {
            self.rescan_workloads();
            for cgroup in cgroups.drain(..) {
                self.workloads.mark_seen(cgroup);
            }
        }
    }

    /// Gives every loaded scoped hook the cgroups its policy's scope matches now.
    fn sync_scopes(&mut self) {
        let Some(generic) = &mut self.generic else {
            return;
        };
        for policy in &mut self.set.policies {
            let Some(scope) = &policy.scope else { continue };
            let cgroups: BTreeSet<u64> = self
                .workloads
                .iter()
                .filter(|(_, w)| scope.matches(w))
                .map(|(id, _)| id)
                .collect();
            for id in policy.loaded_ids() {
                if let Err(e) = generic.set_scope(id, &cgroups) {
                    warn!(policy = %policy.name, hook = id, error = %format!("{e:#}"),
                        "scoped hook misses some of its cgroups");
                }
            }
            policy.scope_cgroups = cgroups.len();
        }
    }

    /// A manager for a kernel already probed.
    pub fn with_features(
        metrics: PolicyMetrics,
        wakeup_bytes: u64,
        records: RecordSink,
        features: KernelFeatures,
    ) -> Self {
        PolicyManager {
            features: Some(features),
            ..PolicyManager::new(metrics, wakeup_bytes, records)
        }
    }

    /// What `vigil probe` finds on this kernel, probed once.
    pub fn features(&mut self) -> &KernelFeatures {
        self.features.get_or_insert_with(probe::detect)
    }

    /// Sensors loaded so far.
    pub fn generic_loaded(&self) -> bool {
        self.generic.is_some()
    }

    pub fn len(&self) -> usize {
        self.set.policies.len()
    }

    /// Validates, compiles and loads the policy files named at start.
    /// Failures never stop the agent: they become hook and policy states,
    /// logged one line each.
    pub fn load_files(
        &mut self,
        files: &[PathBuf],
        dirs: &[PathBuf],
        process: &ProcessSensor,
        table: &mut HookTable,
    ) {
        if files.is_empty() && dirs.is_empty() {
            return;
        }
        let (paths, unreadable) = policy_files(files, dirs);
        for (dir, why) in unreadable {
            self.set.add_invalid(&dir, why);
        }
        for path in paths {
            match vigil_policy::check_file(&path) {
                Ok(policies) => {
                    for policy in &policies {
                        let compiled = compile::compile(policy, self.features());
                        let source = path.display().to_string();
                        match self.set.add(&source, compiled) {
                            Ok(idx) => self.load(idx, process, table),
                            Err(why) => self.set.add_invalid(&path, why),
                        }
                    }
                }
                Err(errors) => self.set.add_invalid(&path, errors.to_string()),
            }
        }
        for p in &self.set.policies {
            p.log();
            self.metrics.set_state(&p.name, p.state());
        }
    }

    /// Loads the policies an earlier run added over the API (with their
    /// disabled state), and keeps later API changes in that directory. A
    /// stored policy that no longer loads is logged and left on disk.
    pub fn load_persisted(
        &mut self,
        store: PersistedPolicies,
        process: &ProcessSensor,
        table: &mut HookTable,
    ) {
        let found = match store.load() {
            Ok(found) => found,
            Err(e) => {
                warn!(dir = %store.dir().display(), error = %e, "cannot read persisted policies");
                Vec::new()
            }
        };
        for stored in found {
            match self.add_yaml(&stored.yaml, process, table) {
                Ok(report) if stored.disabled => {
                    if let Err(e) = self.disable(&report.name) {
                        warn!(file = %stored.path.display(), error = %e, "cannot disable persisted policy");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(file = %stored.path.display(), error = %e, "persisted policy not loaded")
                }
            }
        }
        info!(dir = %store.dir().display(), "policies added over the API are persisted");
        self.persisted = Some(store);
    }

    /// Applies `change` to the stored copy of an API policy; a failure is
    /// logged: the running agent has the change either way.
    fn persist(&self, name: &str, change: impl FnOnce(&PersistedPolicies) -> std::io::Result<()>) {
        let from_api = self
            .set
            .find(name)
            .is_none_or(|idx| self.set.policies[idx].report().source == API_SOURCE);
        if let (Some(store), true) = (&self.persisted, from_api) {
            if let Err(e) = change(store) {
                warn!(policy = %name, dir = %store.dir().display(), error = %e, "cannot persist policy change");
            }
        }
    }

    /// Adds one policy from YAML text: strict validation (errors with field
    /// paths), compilation against this kernel, then its hooks load. A
    /// policy none of whose hooks can be served is not kept.
    pub fn add_yaml(
        &mut self,
        yaml: &str,
        process: &ProcessSensor,
        table: &mut HookTable,
    ) -> Result<PolicyReport, PolicyError> {
        let policies = vigil_policy::check_str(yaml).map_err(|errors| {
            PolicyError::Invalid(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let [policy] = policies.as_slice() else {
            return Err(PolicyError::Invalid(format!(
                "<file>: {} policy documents; add them one by one",
                policies.len()
            )));
        };
        let compiled = compile::compile(policy, self.features());
        let name = compiled.name.clone();
        let idx = self
            .set
            .add(API_SOURCE, compiled)
            .map_err(|_| PolicyError::Exists(name.clone()))?;
        self.load(idx, process, table);
        let entry = &self.set.policies[idx];
        entry.log();
        if entry.state() == PolicyState::Error {
            let why = entry.refusal();
            self.remove(idx);
            return Err(PolicyError::Refused { name, why });
        }
        self.metrics.set_state(&name, entry.state());
        let report = entry.report();
        self.persist(&name, |store| store.save(&name, yaml));
        Ok(report)
    }

    pub fn delete(&mut self, name: &str) -> Result<(), PolicyError> {
        let idx = self.index(name)?;
        self.refresh_counters();
        self.persist(name, |store| store.forget(name));
        self.remove(idx);
        info!(policy = %name, "policy deleted");
        Ok(())
    }

    pub fn enable(
        &mut self,
        name: &str,
        process: &ProcessSensor,
        table: &mut HookTable,
    ) -> Result<PolicyReport, PolicyError> {
        let idx = self.index(name)?;
        self.load(idx, process, table);
        self.persist(name, |store| store.set_disabled(name, false));
        Ok(self.changed(idx))
    }

    pub fn disable(&mut self, name: &str) -> Result<PolicyReport, PolicyError> {
        let idx = self.index(name)?;
        self.refresh_counters();
        if let Some(generic) = &mut self.generic {
            self.set.policies[idx].unload(generic);
        }
        self.persist(name, |store| store.set_disabled(name, true));
        Ok(self.changed(idx))
    }

    /// Each policy's state and each hook's mechanism and guarantee, or why
    /// it is refused (`vigil policy check --kernel`), and whether no policy
    /// is in the error state.
    pub fn report(&self) -> (String, bool) {
        (self.set.report(), self.set.all_served())
    }

    /// Every policy, with counters read from the kernel just now.
    pub fn list(&mut self) -> Vec<PolicyReport> {
        self.refresh_counters();
        self.set.policies.iter().map(|p| p.report()).collect()
    }

    /// Reads every loaded hook's kernel counters and adds what changed to
    /// its policy (counters and metrics).
    pub fn refresh_counters(&mut self) {
        let Some(generic) = &self.generic else { return };
        for idx in 0..self.set.policies.len() {
            let policy = &self.set.policies[idx];
            let mut total = [0u64; VIGIL_HOOK_STAT_MAX as usize];
            for id in policy.loaded_ids() {
                let Ok(now) = generic.hook_counters(id) else {
                    continue;
                };
                let last = &mut self.last_counters[id as usize];
                for ((t, n), l) in total.iter_mut().zip(now).zip(last.iter()) {
                    *t += n.saturating_sub(*l);
                }
                *last = now;
            }
            self.metrics.add(&policy.name, &total);
            self.set.count(idx, &total);
        }
    }

    fn index(&self, name: &str) -> Result<usize, PolicyError> {
        self.set
            .find(name)
            .ok_or_else(|| PolicyError::NotFound(name.to_owned()))
    }

    /// Loads policy `idx`'s hooks, loading the generic sensor first if needed.
    fn load(&mut self, idx: usize, process: &ProcessSensor, table: &mut HookTable) {
        if self.generic.is_none() {
            match GenericSensor::load(process, self.wakeup_bytes) {
                Ok(mut g) => {
                    g.set_record_sink(self.records.clone());
                    self.generic = Some(g);
                }
                Err(e) => {
                    self.set.policies[idx].sensor_failed(&format!("{e:#}"));
                    return;
                }
            }
        }
        if let Some(generic) = &mut self.generic {
            let policy = &mut self.set.policies[idx];
            policy.load(generic, table);
            for id in policy.loaded_ids() {
                // The sensor zeroed the kernel counters of a new hook.
                self.last_counters[id as usize] = [0; VIGIL_HOOK_STAT_MAX as usize];
            }
            if policy.scope.is_some() {
                self.workloads.scan();
                self.sync_scopes();
            }
        }
    }

    fn changed(&self, idx: usize) -> PolicyReport {
        let entry = &self.set.policies[idx];
        entry.log();
        self.metrics.set_state(&entry.name, entry.state());
        entry.report()
    }

    fn remove(&mut self, idx: usize) {
        let mut entry = self.set.policies.remove(idx);
        if let Some(generic) = &mut self.generic {
            entry.unload(generic);
        }
        self.metrics.forget(&entry.name);
    }
}
