//! TracingPolicy USDT probes end to end: a small C program with a
//! SystemTap SDT note (<sys/sdt.h>, Debian's systemtap-sdt-dev), built at
//! test time, probed by the real agent.
use std::{
    fs,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{
    harness::{of_kind, pid_of, str_at, tracing_policy, which, write_policy, Agent, TestResult},
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(20);

/// Fires `vigil_test:tick` with its number and word, then writes the
/// marker file (when given): what runs after the probe.
const TARGET_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	long number = argc > 1 ? atol(argv[1]) : 0;
	const char *word = argc > 2 ? argv[2] : "";
	FILE *marker;

	DTRACE_PROBE2(vigil_test, tick, number, word);
	if (argc > 3 && (marker = fopen(argv[3], "w")))
		fclose(marker);
	return 0;
}
"#;

/// Builds the probe target in `dir`, or says why it cannot be probed here.
fn build_target(dir: &Path) -> Result<PathBuf, String> {
    crate::policy::probed("uprobe")
        .map_err(|why| format!("kernel has no uprobes, which USDT probes are ({why})"))?;
    let cc = which("cc").ok_or("no C compiler (cc) to build the USDT target")?;
    let src = dir.join("usdt_target.c");
    let bin = dir.join("usdt_target");
    fs::write(&src, TARGET_C).map_err(|e| format!("writing {}: {e}", src.display()))?;
    let out = Command::new(cc)
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .map_err(|e| format!("running cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot build the USDT target (is systemtap-sdt-dev installed for <sys/sdt.h>?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(bin)
}

fn run_target(bin: &Path, number: i64, word: &str, marker: Option<&Path>) -> (u32, ExitStatus) {
    let mut cmd = Command::new(bin);
    cmd.arg(number.to_string())
        .arg(word)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(marker) = marker {
        cmd.arg(marker);
    }
    let mut child = cmd.spawn().expect("spawn the USDT target");
    let pid = child.id();
    (pid, child.wait().expect("wait for the USDT target"))
}

fn usdts_of(evs: &[Value], pid: u32) -> Vec<&Value> {
    of_kind(evs, "process_usdt")
        .into_iter()
        .filter(|u| pid_of(u) == u64::from(pid))
        .collect()
}

fn policy(name: &str, bin: &Path, selectors: &str) -> String {
    tracing_policy(
        name,
        &format!(
            "  usdts:
  - path: {}
    provider: vigil_test
    name: tick
    args:
    - index: 0
      type: int64
    - index: 1
      type: string
{selectors}",
            bin.display()
        ),
    )
}

/// The probe's two arguments (a number in a register or memory, as the
/// note says, and a string it points to) reach the event; a matchArgs
/// selector on the number keeps only the selected firing.
pub fn usdt_args_and_selector() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = match build_target(dir.path()) {
        Ok(bin) => bin,
        Err(why) => skip!("{why}"),
    };
    let selectors = "    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - \"42\"
";
    let file = write_policy(dir.path(), "usdt", &policy("usdt-args", &bin, selectors));
    let agent = Agent::start(&["--tracing-policy", &file]);
    assert!(
        agent
            .log()
            .iter()
            .any(|l| l.contains("policy hook loaded") && l.contains("usdt ")),
        "no status line for the USDT hook"
    );
    let (other, _) = run_target(&bin, 7, "seven", None);
    let (pid, status) = run_target(&bin, 42, "forty-two", None);
    assert!(status.success(), "{status}");
    let evs = agent.wait_for(WAIT, "the USDT event", |evs| !usdts_of(evs, pid).is_empty());
    let ev = usdts_of(&evs, pid)[0];
    assert_eq!(str_at(ev, "/path"), bin.to_str().expect("utf-8"));
    assert_eq!(str_at(ev, "/provider"), "vigil_test");
    assert_eq!(str_at(ev, "/name"), "tick");
    assert_eq!(str_at(ev, "/policy_name"), "usdt-args");
    assert_eq!(str_at(ev, "/action"), "KPROBE_ACTION_POST");
    assert_eq!(ev["args"][0]["long_arg"], "42", "{ev}");
    assert_eq!(ev["args"][1]["string_arg"], "forty-two", "{ev}");
    assert!(!str_at(ev, "/process/exec_id").is_empty(), "{ev}");
    assert!(
        usdts_of(&evs, other).is_empty(),
        "a firing with 7 matched Equal 42"
    );
    agent.stop();
    Ok(())
}

/// Sigkill at the probe: the process dies before the code after the probe
/// runs (its marker file is never written), and a firing that the selector
/// does not match runs on.
pub fn usdt_sigkill_before_the_code_after_the_probe() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = match build_target(dir.path()) {
        Ok(bin) => bin,
        Err(why) => skip!("{why}"),
    };
    let selectors = "    selectors:
    - matchArgs:
      - index: 1
        operator: Equal
        values:
        - kill-me
      matchActions:
      - action: Sigkill
";
    let file = write_policy(dir.path(), "usdt", &policy("usdt-kill", &bin, selectors));
    let agent = Agent::start(&["--tracing-policy", &file]);
    assert!(agent
        .log()
        .iter()
        .any(|l| l.contains("killed at the probe")));
    let spared = dir.path().join("spared");
    let (_, status) = run_target(&bin, 1, "spare-me", Some(&spared));
    assert!(
        status.success() && spared.exists(),
        "unselected firing: {status}"
    );
    let killed = dir.path().join("killed");
    let (pid, status) = run_target(&bin, 2, "kill-me", Some(&killed));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(!killed.exists(), "the code after the probe ran");
    let evs = agent.wait_for(WAIT, "the USDT kill event", |evs| {
        !usdts_of(evs, pid).is_empty()
    });
    assert_eq!(
        str_at(usdts_of(&evs, pid)[0], "/action"),
        "KPROBE_ACTION_SIGKILL"
    );
    agent.stop();
    Ok(())
}
