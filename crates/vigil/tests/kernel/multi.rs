//! Many kernel functions in one policy: served by one kprobe.multi program
//! (kretprobe.multi for return values) where the kernel has it, one program
//! per function with `disable-kprobe-multi`; and `spec.fentries`, served by
//! BPF trampolines only. The host has neither kprobes nor trampolines: there
//! the fentries refusal is checked and the rest skips; the VM kernels run
//! the hooks.
use std::{
    fs,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    harness::{
        of_kind, pid_of, str_at, tracing_policy, vigil_bin, write_policy, Agent, TestResult,
    },
    policy::probed,
    process::prog_name,
    require_agent, skip,
};

const WAIT: Duration = Duration::from_secs(30);

/// The functions mkdir, rename and rmdir of a directory go through, each
/// with the parent's path first and the dentry second.
const DIR_FUNCTIONS: [&str; 3] = [
    "security_path_mkdir",
    "security_path_rename",
    "security_path_rmdir",
];

/// A policy hooking `functions` through one list, reporting the parent's
/// path and the dentry, for calls in `dir` only; `extra` goes into the
/// kprobe (return values), `options` into the spec.
fn dir_policy(name: &str, dir: &Path, functions: &[&str], options: &str, extra: &str) -> String {
    tracing_policy(
        name,
        &format!(
            "{options}  lists:
  - name: dirs
    values: [{functions}]
  kprobes:
  - call: list:dirs
    syscall: false
{extra}    args:
    - index: 0
      type: path
    - index: 1
      type: dentry
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - {dir}
",
            functions = functions.join(", "),
            dir = dir.display()
        ),
    )
}

const NO_MULTI: &str = "  options:
  - name: disable-kprobe-multi
    value: \"true\"
";

/// Makes `dir/a`, renames it to `dir/b` and removes it, from this process.
fn dir_calls(dir: &Path) {
    fs::create_dir(dir.join("a")).expect("mkdir");
    fs::rename(dir.join("a"), dir.join("b")).expect("rename");
    fs::remove_dir(dir.join("b")).expect("rmdir");
}

/// This process's event from `function`.
fn event_of<'a>(evs: &'a [Value], function: &str) -> Option<&'a Value> {
    of_kind(evs, "process_kprobe").into_iter().find(|k| {
        pid_of(k) == u64::from(std::process::id()) && str_at(k, "/function_name") == function
    })
}

/// Waits for one event per function of DIR_FUNCTIONS and checks its
/// arguments: the directory, and the dentry each call names.
fn check_dir_events(agent: &Agent, dir: &Path) -> Vec<Value> {
    let evs = agent.wait_for(WAIT, "the mkdir, rename and rmdir events", |evs| {
        DIR_FUNCTIONS.iter().all(|f| event_of(evs, f).is_some())
    });
    for (function, dentry) in DIR_FUNCTIONS.iter().zip(["/a", "/a", "/b"]) {
        let ev = event_of(&evs, function).expect("event");
        assert_eq!(
            str_at(ev, "/args/0/path_arg/path"),
            dir.to_str().expect("utf-8"),
            "{ev}"
        );
        // A dentry's path starts at the root of its own file system.
        assert!(
            str_at(ev, "/args/1/path_arg/path").ends_with(dentry),
            "{function} names {dentry}: {ev}"
        );
        let count = of_kind(&evs, "process_kprobe")
            .iter()
            .filter(|k| {
                pid_of(k) == u64::from(std::process::id())
                    && str_at(k, "/function_name") == *function
            })
            .count();
        assert_eq!(count, 1, "one event from {function}");
    }
    evs
}

/// Names of the programs behind the agent's BPF links (the kernel keeps 15
/// characters of a name), one per link.
fn link_programs(pid: u32) -> Vec<String> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| fs::read_to_string(fd.path()).ok())
        .filter(|info| info.contains("link_type:"))
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .filter_map(prog_name)
        .collect()
}

/// How many of `links` run one of the programs `names`.
fn links_to(links: &[String], names: &[&str]) -> usize {
    links.iter().filter(|n| names.contains(&n.as_str())).count()
}

const MULTI_PROGRAMS: [&str; 2] = ["vigil_multi_kpr", "vigil_multi_kre"];
const SINGLE_PROGRAMS: [&str; 2] = ["vigil_fentry", "vigil_kprobe"];

/// The status line of list entry `function` in the agent's log.
fn status_of(agent: &Agent, function: &str) -> String {
    let hook = format!("spec.kprobes[0] {function} (list:dirs)");
    agent
        .log()
        .into_iter()
        .find(|l| l.contains("policy hook") && l.contains(&hook))
        .unwrap_or_else(|| panic!("no status line for {hook}"))
}

fn require_kprobe_multi() -> TestResult {
    if let Err(why) = probed("kprobe_multi") {
        skip!("kernel has no kprobe.multi ({why})");
    }
    Ok(())
}

/// A list of three functions and one that does not exist: the three are
/// served by one kprobe.multi program (one link), each posts its event
/// with its own function name and arguments; the missing one is refused
/// on its own.
pub fn kprobe_multi_serves_a_list_of_functions() -> TestResult {
    require_agent!();
    require_kprobe_multi()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let functions = [
        DIR_FUNCTIONS[0],
        "vigil_no_such_function",
        DIR_FUNCTIONS[1],
        DIR_FUNCTIONS[2],
    ];
    let policy = write_policy(
        dir.path(),
        "dirs",
        &dir_policy("dirs", dir.path(), &functions, "", ""),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    for function in DIR_FUNCTIONS {
        let status = status_of(&agent, function);
        assert!(
            status.contains(&format!(
                "kprobe.multi {function} (3 functions, one program)"
            )),
            "{status}"
        );
    }
    let missing = status_of(&agent, "vigil_no_such_function");
    assert!(
        missing.contains("policy hook refused")
            && missing.contains("call not found: no kernel function named vigil_no_such_function"),
        "{missing}"
    );
    let links = link_programs(agent.pid());
    let counts = (
        links_to(&links, &MULTI_PROGRAMS),
        links_to(&links, &SINGLE_PROGRAMS),
    );
    assert_eq!(counts, (1, 0), "links: {links:?}");
    dir_calls(dir.path());
    check_dir_events(&agent, dir.path());
    agent.stop();
    Ok(())
}

/// The same list with `disable-kprobe-multi`: one program per function.
pub fn disable_kprobe_multi_keeps_one_program_per_function() -> TestResult {
    require_agent!();
    require_kprobe_multi()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(
        dir.path(),
        "dirs",
        &dir_policy("dirs", dir.path(), &DIR_FUNCTIONS, NO_MULTI, ""),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    for function in DIR_FUNCTIONS {
        let status = status_of(&agent, function);
        assert!(
            status.contains("policy hook loaded") && !status.contains("kprobe.multi"),
            "{status}"
        );
    }
    let links = link_programs(agent.pid());
    let counts = (
        links_to(&links, &MULTI_PROGRAMS),
        links_to(&links, &SINGLE_PROGRAMS),
    );
    assert_eq!(counts, (0, 3), "links: {links:?}");
    dir_calls(dir.path());
    check_dir_events(&agent, dir.path());
    agent.stop();
    Ok(())
}

/// `return: true` on the list: kretprobe.multi completes each event with
/// the function's return value (0: allowed).
pub fn return_values_by_kretprobe_multi() -> TestResult {
    require_agent!();
    require_kprobe_multi()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let ret = "    return: true
    returnArg:
      index: 0
      type: int
";
    let policy = write_policy(
        dir.path(),
        "dirs",
        &dir_policy("dirs", dir.path(), &DIR_FUNCTIONS, "", ret),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    for function in DIR_FUNCTIONS {
        let status = status_of(&agent, function);
        assert!(
            status.contains(&format!(
                "kprobe.multi + kretprobe.multi {function} (3 functions, one program)"
            )),
            "{status}"
        );
    }
    let links = link_programs(agent.pid());
    let counts = (
        links_to(&links, &MULTI_PROGRAMS[..1]),
        links_to(&links, &MULTI_PROGRAMS[1..]),
    );
    assert_eq!(counts, (1, 1), "links: {links:?}");
    dir_calls(dir.path());
    let evs = check_dir_events(&agent, dir.path());
    for function in DIR_FUNCTIONS {
        let ev = event_of(&evs, function).expect("event");
        assert_eq!(ev["return"]["int_arg"], 0, "{function} allowed: {ev}");
    }
    agent.stop();
    Ok(())
}

/// Twenty functions every kernel of the matrix has (the security hooks of
/// path and inode operations).
const TWENTY_FUNCTIONS: [&str; 20] = [
    "security_path_mkdir",
    "security_path_rmdir",
    "security_path_rename",
    "security_path_unlink",
    "security_path_symlink",
    "security_path_link",
    "security_path_mknod",
    "security_path_truncate",
    "security_path_chmod",
    "security_path_chown",
    "security_inode_mkdir",
    "security_inode_rmdir",
    "security_inode_unlink",
    "security_inode_rename",
    "security_inode_link",
    "security_inode_symlink",
    "security_inode_create",
    "security_inode_mknod",
    "security_inode_setattr",
    "security_inode_getattr",
];

/// A policy hooking `functions` through one list, for a binary that does
/// not exist: the hooks load and attach, and post nothing.
fn quiet_policy(name: &str, functions: &[&str], options: &str) -> String {
    tracing_policy(
        name,
        &format!(
            "{options}  lists:
  - name: functions
    values: [{}]
  kprobes:
  - call: list:functions
    syscall: false
    selectors:
    - matchBinaries:
      - operator: In
        values:
        - /nonexistent/vigil-test
",
            functions.join(", ")
        ),
    )
}

/// Runs `vigil policy check --kernel` (load, verify and attach every hook,
/// then detach) on `policy`; returns its report and how long it took.
fn timed_check(policy: &str) -> (String, Duration) {
    let start = Instant::now();
    let out = Command::new(vigil_bin())
        .args(["policy", "check", "--kernel", policy])
        .output()
        .expect("vigil policy check --kernel");
    let took = start.elapsed();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}");
    (report, took)
}

/// The load and attach time of a policy hooking twenty functions: one
/// program per function against one kprobe.multi program (printed; the
/// numbers in docs/policies.md come from here). A policy with one function
/// is the baseline (probe, process sensor, one load).
pub fn load_time_of_twenty_functions() -> TestResult {
    require_agent!();
    require_kprobe_multi()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let one = write_policy(
        dir.path(),
        "one",
        &quiet_policy("one", &TWENTY_FUNCTIONS[..1], NO_MULTI),
    );
    let per_function = write_policy(
        dir.path(),
        "per-function",
        &quiet_policy("per-function", &TWENTY_FUNCTIONS, NO_MULTI),
    );
    let multi = write_policy(
        dir.path(),
        "multi",
        &quiet_policy("multi", &TWENTY_FUNCTIONS, ""),
    );
    let (_, baseline) = timed_check(&one);
    let (separate, separate_time) = timed_check(&per_function);
    let (shared, shared_time) = timed_check(&multi);
    let loaded = |report: &str, multi: bool| {
        report
            .lines()
            .filter(|l| l.contains(": attached via") && l.contains("kprobe.multi") == multi)
            .count()
    };
    assert_eq!(loaded(&separate, false), 20, "{separate}");
    assert!(
        shared.contains("(20 functions, one program)") && loaded(&shared, true) == 20,
        "{shared}"
    );
    println!(
        "20 functions: one program each {separate_time:.1?}, one kprobe.multi program \
         {shared_time:.1?}; one function {baseline:.1?} (probe, process sensor, one load)"
    );
    Ok(())
}

/// `spec.fentries`: served by fentry where the kernel has trampolines (a
/// process_kprobe event with the function's arguments); elsewhere refused
/// with the probe's reason, never served by a kprobe.
pub fn fentries_by_trampolines_only() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let text = tracing_policy(
        "fentries",
        &format!(
            "  fentries:
  - call: security_path_mkdir
    syscall: false
    args:
    - index: 0
      type: path
    - index: 1
      type: dentry
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values:
        - {}
",
            dir.path().display()
        ),
    );
    let policy = write_policy(dir.path(), "fentries", &text);
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let status = agent
        .log()
        .into_iter()
        .find(|l| l.contains("policy hook") && l.contains("spec.fentries[0] security_path_mkdir"))
        .expect("a status line for spec.fentries[0]");
    if let Err(why) = probed("fentry") {
        assert!(
            status.contains("policy hook refused")
                && status.contains(&format!(
                    "fentry on security_path_mkdir: the kernel has no BPF trampolines \
                     (vigil probe: fentry: {why}); spec.fentries are served by fentry, fexit \
                     and fmod_ret only, never by kprobes"
                )),
            "{status}"
        );
        fs::create_dir(dir.path().join("a")).expect("mkdir");
        // Time for an event, were there one, to reach the export file.
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            event_of(&agent.events(), "security_path_mkdir").is_none(),
            "nothing serves the refused hook"
        );
        agent.stop();
        return Ok(());
    }
    assert!(
        status.contains("policy hook loaded") && status.contains("fentry security_path_mkdir"),
        "{status}"
    );
    fs::create_dir(dir.path().join("a")).expect("mkdir");
    let evs = agent.wait_for(WAIT, "the mkdir event", |evs| {
        event_of(evs, "security_path_mkdir").is_some()
    });
    let ev = event_of(&evs, "security_path_mkdir").expect("event");
    assert_eq!(
        str_at(ev, "/args/0/path_arg/path"),
        dir.path().to_str().expect("utf-8")
    );
    assert!(str_at(ev, "/args/1/path_arg/path").ends_with("/a"), "{ev}");
    assert_eq!(str_at(ev, "/policy_name"), "fentries");
    agent.stop();
    Ok(())
}
