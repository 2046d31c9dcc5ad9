//! TracingPolicy loading: read and validate the files or API requests
//! (vigil-policy), compile each hook against this kernel (`compile`), load,
//! unload and account for them while the agent runs (`manager`), give every
//! hook a status and every policy a state (`state`), and turn kernel records
//! of policy hooks into `process_kprobe` events (`event`).
mod compile;
mod event;
mod fanotify;
mod manager;
mod metrics;
mod persist;
mod scope;
mod state;
mod syscalls;

use std::path::{Path, PathBuf};

pub use compile::{
    AddrEntry, HookPlan, HookPoint, ImaArg, SockAddrArgs, SockOp, SyscallVia, TracepointArg,
};
pub use event::hook_event;
pub use fanotify::{FanotifySpec, FileAccess, Verdict};
pub use manager::{PolicyError, PolicyManager};
pub use metrics::PolicyMetrics;
pub use persist::PersistedPolicies;
pub use state::{HookTable, PolicyReport, PolicySet, PolicyState};

/// The policy files named on the command line: each `--tracing-policy` file,
/// then the `.yaml`/`.yml` files of each `--tracing-policy-dir`, sorted.
pub fn policy_files(files: &[PathBuf], dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut out = files.to_vec();
    let mut unreadable = Vec::new();
    for dir in dirs {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| is_yaml(p))
                    .collect();
                found.sort();
                out.extend(found);
            }
            Err(e) => unreadable.push((dir.clone(), format!("cannot read directory: {e}"))),
        }
    }
    (out, unreadable)
}

fn is_yaml(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}
