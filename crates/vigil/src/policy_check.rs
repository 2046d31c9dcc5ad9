//! `vigil policy check --kernel`: everything the agent would do with the
//! policies at start (validate, compile against this kernel's hook kinds,
//! load and attach every hook through the verifier, as `PolicyManager`
//! does), then detach and report per hook how it would be served or why it
//! is refused.
use std::{mem::MaybeUninit, path::PathBuf};

use anyhow::{bail, Context, Result};

use crate::{
    policy::{HookTable, PolicyManager, PolicyMetrics},
    probe,
    sensors::{
        fanotify,
        process::{ProcessSensor, ProcessSensorConfig},
    },
};

/// Small maps: the trial load only has to pass the verifier and attach.
const TRIAL_SENSOR: ProcessSensorConfig = ProcessSensorConfig {
    ring_buffer_bytes: 64 * 1024,
    process_table_entries: 64,
    wakeup_bytes: 16 * 1024,
};

/// Returns the report and whether every policy would be at least partially served.
pub fn on_this_kernel(files: &[PathBuf]) -> Result<(String, bool)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("--kernel loads BPF programs to try each hook: run it as root");
    }
    let features = probe::detect();
    let kernel = features.kernel.clone();
    let mut process_obj = MaybeUninit::uninit();
    let process = ProcessSensor::load(&mut process_obj, &TRIAL_SENSOR)
        .context("loading the process sensor the policy hooks share maps with")?;
    // Events of the trial's fanotify hooks are not read: they queue, then count as lost.
    let (records, _unread) = fanotify::record_channel();
    let mut policies = PolicyManager::with_features(
        PolicyMetrics::default(),
        TRIAL_SENSOR.wakeup_bytes,
        records,
        features,
    );
    let mut table = HookTable::default();
    policies.load_files(files, &[], &process, &mut table);
    let (report, served) = policies.report();
    // Dropping the manager detaches every hook it attached.
    drop(policies);
    Ok((format!("kernel {kernel}\n{report}"), served))
}
