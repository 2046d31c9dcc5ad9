//! `vigil probe`: which hook kinds this kernel offers, found by loading and
//! attaching a trivial program for each one and, where cheap, checking that
//! it ran (or enforced) after a trigger from the probing thread.
//!
//! Nothing here panics on kernel behaviour: every failure becomes a reason
//! string with the stage it happened at.

mod bpf;
mod host;

pub(crate) use host::mount_fs;

use std::time::Instant;

use serde::Serialize;

/// A hook kind or kernel facility vigil can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Btf,
    RingBuffer,
    TpBtf,
    RawTp,
    Tracepoint,
    Kprobe,
    Kretprobe,
    KprobeMulti,
    Fentry,
    Fexit,
    FmodRet,
    FmodRetSyscall,
    KprobeOverride,
    Lsm,
    /// Post imaHash: a sleepable LSM program hashing a file through IMA.
    ImaHash,
    Uprobe,
    UprobeMulti,
    CgroupConnect4,
    FanotifyPerm,
    SendSignal,
    TaskIter,
}

impl Feature {
    /// Every feature, in the order the probe reports them.
    pub const ALL: [Feature; 21] = [
        Feature::Btf,
        Feature::RingBuffer,
        Feature::TpBtf,
        Feature::RawTp,
        Feature::Tracepoint,
        Feature::Kprobe,
        Feature::Kretprobe,
        Feature::KprobeMulti,
        Feature::Fentry,
        Feature::Fexit,
        Feature::FmodRet,
        Feature::FmodRetSyscall,
        Feature::KprobeOverride,
        Feature::Lsm,
        Feature::ImaHash,
        Feature::Uprobe,
        Feature::UprobeMulti,
        Feature::CgroupConnect4,
        Feature::FanotifyPerm,
        Feature::SendSignal,
        Feature::TaskIter,
    ];

    /// The name shown in the table.
    pub fn label(self) -> &'static str {
        match self {
            Feature::Btf => "BTF (/sys/kernel/btf/vmlinux)",
            Feature::RingBuffer => "ring buffer",
            Feature::TpBtf => "tp_btf",
            Feature::RawTp => "raw_tp",
            Feature::Tracepoint => "tracepoint",
            Feature::Kprobe => "kprobe",
            Feature::Kretprobe => "kretprobe",
            Feature::KprobeMulti => "kprobe.multi",
            Feature::Fentry => "fentry",
            Feature::Fexit => "fexit",
            Feature::FmodRet => "fmod_ret",
            Feature::FmodRetSyscall => "fmod_ret on system calls",
            Feature::KprobeOverride => "kprobe override (bpf_override_return)",
            Feature::Lsm => "BPF-LSM",
            Feature::ImaHash => "IMA file hash (lsm.s, bpf_ima_file_hash)",
            Feature::Uprobe => "uprobe",
            Feature::UprobeMulti => "uprobe.multi",
            Feature::CgroupConnect4 => "cgroup/connect4",
            Feature::FanotifyPerm => "fanotify FAN_OPEN_PERM",
            Feature::SendSignal => "bpf_send_signal",
            Feature::TaskIter => "iter/task",
        }
    }
}

/// How far a probe got before it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Something the hook needs is missing (a file, a mount, an LSM).
    Prereq,
    Load,
    Attach,
    /// Loaded and attached, but the trigger did not show the expected effect.
    /// Unlike the other stages this points at a bug, not at the kernel.
    Check,
}

/// What the probe found for one feature.
#[derive(Clone, Debug, Serialize)]
pub struct FeatureStatus {
    pub feature: Feature,
    pub name: &'static str,
    pub available: bool,
    /// The trigger showed the effect (the program ran, or enforced).
    pub verified: bool,
    /// What the check observed, when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Stage>,
    /// Why the feature is not available, e.g. "load: EPERM (Operation not permitted)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The probe's result for the running kernel.
#[derive(Clone, Debug, Serialize)]
pub struct KernelFeatures {
    /// `uname -r`.
    pub kernel: String,
    pub probe_ms: u64,
    pub features: Vec<FeatureStatus>,
}

impl KernelFeatures {
    pub fn has(&self, feature: Feature) -> bool {
        self.features
            .iter()
            .any(|s| s.feature == feature && s.available)
    }
}

/// Why a probe failed: the stage and a precise reason.
#[derive(Debug)]
pub(crate) struct Failure {
    stage: Stage,
    reason: String,
}

impl Failure {
    pub(crate) fn new(stage: Stage, reason: impl Into<String>) -> Self {
        Failure {
            stage,
            reason: reason.into(),
        }
    }
}

/// A check's result: what it observed, or why it failed.
pub(crate) type Outcome = Result<String, Failure>;

/// Probes every feature. Takes well under a second on a normal host.
pub fn detect() -> KernelFeatures {
    let started = Instant::now();
    host::mount_if_missing();
    let quiet = bpf::LibbpfOutput::capture();
    let env = bpf::ProbeEnv::new();
    let features = Feature::ALL
        .iter()
        .map(|&feature| status(feature, probe_one(feature, &env)))
        .collect();
    drop(env);
    drop(quiet);
    KernelFeatures {
        kernel: host::kernel_release(),
        probe_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        features,
    }
}

fn probe_one(feature: Feature, env: &bpf::ProbeEnv) -> Outcome {
    match feature {
        Feature::Btf => host::btf(),
        Feature::RingBuffer => bpf::ring_buffer(env),
        Feature::TpBtf => bpf::tp_btf(env),
        Feature::RawTp => bpf::raw_tp(env),
        Feature::Tracepoint => bpf::tracepoint(env),
        Feature::Kprobe => bpf::kprobe(env),
        Feature::Kretprobe => bpf::kretprobe(env),
        Feature::KprobeMulti => bpf::kprobe_multi(env),
        Feature::Fentry => bpf::fentry(env),
        Feature::Fexit => bpf::fexit(env),
        Feature::FmodRet => bpf::fmod_ret(env),
        Feature::FmodRetSyscall => bpf::fmod_ret_syscall(env),
        Feature::KprobeOverride => bpf::kprobe_override(env),
        Feature::Lsm => bpf::lsm(env),
        Feature::ImaHash => bpf::ima_hash(env),
        Feature::Uprobe => bpf::uprobe(env),
        Feature::UprobeMulti => bpf::uprobe_multi(env),
        Feature::CgroupConnect4 => bpf::connect4(env),
        Feature::FanotifyPerm => host::fanotify_perm(env.dir()),
        Feature::SendSignal => bpf::send_signal(env),
        Feature::TaskIter => bpf::task_iter(env),
    }
}

fn status(feature: Feature, outcome: Outcome) -> FeatureStatus {
    let name = feature.label();
    match outcome {
        Ok(observed) => FeatureStatus {
            feature,
            name,
            available: true,
            verified: true,
            observed: Some(observed),
            failed_at: None,
            reason: None,
        },
        Err(failure) => FeatureStatus {
            feature,
            name,
            available: false,
            verified: false,
            observed: None,
            failed_at: Some(failure.stage),
            reason: Some(failure.reason),
        },
    }
}

/// `vigil probe`: prints the table, or JSON with `json`.
pub fn run(json: bool) -> anyhow::Result<()> {
    let features = detect();
    if json {
        println!("{}", serde_json::to_string_pretty(&features)?);
        return Ok(());
    }
    println!(
        "kernel {} (probed in {} ms)",
        features.kernel, features.probe_ms
    );
    let width = Feature::ALL
        .iter()
        .map(|f| f.label().len())
        .max()
        .unwrap_or(0);
    for s in &features.features {
        let (mark, detail) = match (&s.observed, &s.reason) {
            (Some(observed), _) => ("yes", observed.as_str()),
            (None, Some(reason)) => ("no ", reason.as_str()),
            (None, None) => ("no ", ""),
        };
        println!("  {:width$}  {mark}  {detail}", s.name);
    }
    Ok(())
}
