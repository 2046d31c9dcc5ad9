//! `vigil policy check --kernel`: everything the agent would do with the
//! policies at start (validate, compile against this kernel's hook kinds,
//! load and attach through the verifier), then detach and report per hook
//! how it would be served or why it is refused.
use std::{mem::MaybeUninit, path::PathBuf};

use anyhow::{bail, Result};

use crate::{
    policy, probe,
    sensors::{
        generic::{GenericObjects, GenericSensor},
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
    let mut policies = policy::load(files, &[], &features);
    let (plans, _hooks) = policies.assign_hooks();
    if !plans.is_empty() {
        let mut process_obj = MaybeUninit::uninit();
        let mut generic_obj = GenericObjects::default();
        match ProcessSensor::load(&mut process_obj, &TRIAL_SENSOR) {
            Ok(sensor) => match GenericSensor::load(
                &mut generic_obj,
                &sensor,
                TRIAL_SENSOR.wakeup_bytes,
                &plans,
            ) {
                Ok((_generic, failed)) => policies.hooks_failed(&failed),
                Err(e) => policies.sensor_failed(&format!("{e:#}")),
            },
            Err(e) => policies.sensor_failed(&format!("process sensor: {e:#}")),
        };
    }
    let report = format!("kernel {}\n{}", features.kernel, policies.report());
    Ok((report, policies.all_served()))
}
