//! Per-policy metrics: state, events posted, actions enforced or only monitored.
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use vigil_bpf::wire::{
    VIGIL_HOOK_STAT_ENFORCED, VIGIL_HOOK_STAT_MAX, VIGIL_HOOK_STAT_MONITORED,
    VIGIL_HOOK_STAT_POSTED, VIGIL_HOOK_STAT_RATE_LIMITED,
};

use super::state::PolicyState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub policy: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub policy: String,
    /// `enforced` or `monitored` (monitor mode: counted, not done).
    pub outcome: String,
}

#[derive(Default, Clone)]
pub struct PolicyMetrics {
    state: Family<StateLabels, Gauge>,
    events: Family<PolicyLabels, Counter>,
    rate_limited: Family<PolicyLabels, Counter>,
    actions: Family<ActionLabels, Counter>,
}

impl PolicyMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "policy_state",
            "1 for each policy's current state (enabled, partially_enabled, disabled, error), 0 for the others",
            self.state.clone(),
        );
        r.register(
            "policy_events",
            "Events posted by each policy's hooks",
            self.events.clone(),
        );
        r.register(
            "policy_events_rate_limited",
            "Events a Post rateLimit held back, per policy",
            self.rate_limited.clone(),
        );
        r.register(
            "policy_actions",
            "Signals sent (enforced) or only counted (monitored) by each policy",
            self.actions.clone(),
        );
    }

    /// Sets 1 for the policy's current state and 0 for the others.
    pub fn set_state(&self, policy: &str, state: PolicyState) {
        for s in PolicyState::ALL {
            self.state
                .get_or_create(&StateLabels {
                    policy: policy.to_owned(),
                    state: s.name().into(),
                })
                .set(i64::from(s == state));
        }
    }

    /// Drops a deleted policy's series.
    pub fn forget(&self, policy: &str) {
        for s in PolicyState::ALL {
            self.state.remove(&StateLabels {
                policy: policy.to_owned(),
                state: s.name().into(),
            });
        }
        self.events.remove(&PolicyLabels {
            policy: policy.to_owned(),
        });
        self.rate_limited.remove(&PolicyLabels {
            policy: policy.to_owned(),
        });
        for outcome in ["enforced", "monitored"] {
            self.actions.remove(&ActionLabels {
                policy: policy.to_owned(),
                outcome: outcome.into(),
            });
        }
    }

    /// Adds what one of the policy's hooks did since the last look
    /// (`enum vigil_hook_stat` deltas).
    pub fn add(&self, policy: &str, delta: &[u64; VIGIL_HOOK_STAT_MAX as usize]) {
        self.events
            .get_or_create(&PolicyLabels {
                policy: policy.to_owned(),
            })
            .inc_by(delta[VIGIL_HOOK_STAT_POSTED as usize]);
        self.rate_limited
            .get_or_create(&PolicyLabels {
                policy: policy.to_owned(),
            })
            .inc_by(delta[VIGIL_HOOK_STAT_RATE_LIMITED as usize]);
        for (stat, outcome) in [
            (VIGIL_HOOK_STAT_ENFORCED, "enforced"),
            (VIGIL_HOOK_STAT_MONITORED, "monitored"),
        ] {
            self.actions
                .get_or_create(&ActionLabels {
                    policy: policy.to_owned(),
                    outcome: outcome.into(),
                })
                .inc_by(delta[stat as usize]);
        }
    }
}
