//! The policies shipped in `policies/` (what `scripts/run.sh` loads) load and post.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    harness::{of_kind, str_at, Agent, TestResult},
    require_agent, skip,
};

pub fn default_policies_load_and_post() -> TestResult {
    require_agent!();
    // The VM guests carry them at $VIGIL_DEFAULT_POLICIES.
    let dir = std::env::var_os("VIGIL_DEFAULT_POLICIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"));
    if !dir.is_dir() {
        skip!("the repository's policies are not at {}", dir.display());
    }
    let dir = dir.to_str().expect("utf-8 path").to_owned();
    let agent = Agent::start(&["--tracing-policy-dir", &dir]);
    for name in ["sensitive-files", "privilege-changes"] {
        assert!(
            agent
                .log()
                .iter()
                .any(|l| l.contains("policy enabled") && l.contains(name)),
            "{name} is enabled"
        );
    }
    let status = Command::new("/usr/bin/head")
        .args(["-c", "1", "/etc/shadow"])
        .output()
        .expect("run head");
    assert!(status.status.success(), "head /etc/shadow: {status:?}");
    let evs = agent.wait_for(Duration::from_secs(20), "the /etc/shadow open", |evs| {
        of_kind(evs, "process_kprobe")
            .iter()
            .any(|b| str_at(b, "/policy_name") == "sensitive-files")
    });
    let ev = of_kind(&evs, "process_kprobe")
        .into_iter()
        .find(|b| str_at(b, "/policy_name") == "sensitive-files")
        .expect("event");
    assert_eq!(str_at(ev, "/function_name"), "__x64_sys_openat");
    assert_eq!(str_at(ev, "/args/1/string_arg"), "/etc/shadow");
    assert_eq!(str_at(ev, "/message"), "sensitive file opened");
    assert_eq!(str_at(ev, "/process/binary"), "/usr/bin/head");
    agent.stop();
    Ok(())
}
