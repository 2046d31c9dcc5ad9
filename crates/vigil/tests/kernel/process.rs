//! The base process sensor, end to end: exec, exit, parents, credentials,
//! namespaces, fileless execution, processes found at start, and no loss.
use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    harness::{
        children_of, exec_of, exits_of, of_kind, own_exec_id, pid_of, str_at, which, Agent,
        TestResult,
    },
    require_agent, skip, tester,
};

const WAIT: Duration = Duration::from_secs(20);

fn run_ok(cmd: &mut Command) -> u32 {
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let _ = child.wait().expect("wait");
    pid
}

pub fn shell_pipeline_three_generations() -> TestResult {
    require_agent!();
    let agent = Agent::start(&[]);
    let cwd = tempfile::tempdir().expect("temp dir");
    let sh = run_ok(
        Command::new("/bin/sh")
            .args(["-c", "echo a | cat"])
            .current_dir(cwd.path())
            .stdout(Stdio::null()),
    );
    let cwd_path = cwd.path().to_str().expect("utf-8 temp dir").to_owned();
    let evs = agent.wait_for(WAIT, "exec of cat under sh", |evs| {
        exec_of(evs, sh, "/sh")
            .map(|sh_ev| children_of(evs, str_at(sh_ev, "/process/exec_id")).len() == 1)
            .unwrap_or(false)
    });

    let sh_ev = exec_of(&evs, sh, "/sh").expect("sh exec");
    assert_eq!(str_at(sh_ev, "/process/binary"), "/bin/sh");
    assert_eq!(
        str_at(sh_ev, "/process/arguments"),
        "-c \"echo a | cat\"",
        "argument with spaces is quoted"
    );
    assert_eq!(str_at(sh_ev, "/process/cwd"), cwd_path);
    assert_eq!(sh_ev["process"]["uid"], 0);
    assert_eq!(sh_ev["process"]["tid"], u64::from(sh));
    assert!(str_at(sh_ev, "/process/flags").contains("execve"));
    // Generation 1 -> 2: this test process (found at start) is sh's parent.
    let me = own_exec_id(&evs);
    assert_eq!(str_at(sh_ev, "/process/parent_exec_id"), me);
    assert_eq!(str_at(sh_ev, "/parent/exec_id"), me);

    // Generation 2 -> 3: cat runs in a forked child of sh.
    let cat = children_of(&evs, str_at(sh_ev, "/process/exec_id"))[0];
    // busybox's sh (in the VM guests) runs its applets through /proc/self/exe.
    let cat_binary = str_at(cat, "/process/binary");
    assert!(
        cat_binary.ends_with("/cat") || (sh_is_busybox() && cat_binary == "/proc/self/exe"),
        "{cat}"
    );
    assert_eq!(str_at(cat, "/process/cwd"), cwd_path);
    assert_eq!(str_at(cat, "/parent/binary"), "/bin/sh");
    assert_ne!(pid_of(cat), u64::from(sh));
    assert_eq!(cat["process"]["process_credentials"]["euid"], 0);

    let evs = agent.stop();
    let cat_exits = exits_of(&evs, str_at(cat, "/process/exec_id"));
    assert_eq!(cat_exits.len(), 1, "one exit for cat");
    assert_eq!(
        str_at(cat_exits[0], "/parent/exec_id"),
        str_at(sh_ev, "/process/exec_id")
    );
    Ok(())
}

pub fn exit_status_and_signals() -> TestResult {
    require_agent!();
    let agent = Agent::start(&[]);
    let status = run_ok(Command::new("/bin/sh").args(["-c", "exit 3"]));
    let killed = run_ok(Command::new("/bin/sh").args(["-c", "kill -KILL $$"]));
    let segv = run_ok(Command::new("/bin/sh").args(["-c", "kill -SEGV $$"]));
    let exit_of = |evs: &[Value], pid: u32| -> Option<Value> {
        of_kind(evs, "process_exit")
            .into_iter()
            .find(|b| pid_of(b) == u64::from(pid))
            .cloned()
    };
    let evs = agent.wait_for(WAIT, "three exits", |evs| {
        [status, killed, segv]
            .iter()
            .all(|&p| exit_of(evs, p).is_some())
    });
    let e = exit_of(&evs, status).expect("exit 3");
    assert_eq!(e["status"], 3);
    assert!(e.get("signal").is_none());
    assert_eq!(str_at(&e, "/process/binary"), "/bin/sh");
    assert_eq!(str_at(&e, "/process/arguments"), "-c \"exit 3\"");
    assert!(!str_at(&e, "/time").is_empty());
    assert_eq!(
        str_at(&exit_of(&evs, killed).expect("killed"), "/signal"),
        "SIGKILL"
    );
    assert_eq!(
        str_at(&exit_of(&evs, segv).expect("segv"), "/signal"),
        "SIGSEGV"
    );
    agent.stop();
    Ok(())
}

pub fn multithreaded_process_exits_once() -> TestResult {
    require_agent!();
    let agent = Agent::start(&[]);
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(&exe)
        .env(tester::MODE_VAR, "threads")
        .spawn()
        .expect("spawn tester");
    let pid = child.id();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(i32::from(tester::THREADS_STATUS)));
    agent.wait_for(WAIT, "the tester's exit", |evs| {
        of_kind(evs, "process_exit")
            .iter()
            .any(|b| pid_of(b) == u64::from(pid))
    });
    // Give late per-thread records every chance to show up before counting.
    std::thread::sleep(Duration::from_millis(300));
    let evs = agent.stop();
    let exits: Vec<_> = of_kind(&evs, "process_exit")
        .into_iter()
        .filter(|b| pid_of(b) == u64::from(pid))
        .collect();
    assert_eq!(exits.len(), 1, "nine threads, one process exit");
    assert_eq!(exits[0]["status"], u64::from(tester::THREADS_STATUS));
    Ok(())
}

pub fn setuid_binary_shows_privilege_change() -> TestResult {
    require_agent!();
    let Some(setpriv) = which("setpriv") else {
        skip!("setpriv (util-linux) is not installed")
    };
    if !Path::new("/usr/bin/id").is_file() {
        skip!("/usr/bin/id (coreutils) is not installed");
    }
    // A directory on the build tree's filesystem (/tmp may be mounted nosuid);
    // in a VM guest the build tree does not exist and /tmp serves.
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = if base.is_dir() {
        tempfile::tempdir_in(base)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let suid = dir.path().join("id-suid");
    fs::copy("/usr/bin/id", &suid).expect("copy id");
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    if !traversable_by_others(&suid) {
        skip!(
            "{} is not reachable by an unprivileged user",
            suid.display()
        );
    }

    let agent = Agent::start(&[]);
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&suid)
        .arg("-u")
        .output()
        .expect("run setuid id");
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        skip!(
            "the kernel did not honour the setuid bit here (nosuid mount?): id -u printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let suid_str = suid.to_str().expect("utf-8 path").to_owned();
    let evs = agent.wait_for(WAIT, "exec of the setuid binary", |evs| {
        of_kind(evs, "process_exec")
            .iter()
            .any(|b| str_at(b, "/process/binary") == suid_str)
    });
    let ev = of_kind(&evs, "process_exec")
        .into_iter()
        .find(|b| str_at(b, "/process/binary") == suid_str)
        .expect("exec");
    let creds = &ev["process"]["process_credentials"];
    assert_eq!(creds["uid"], 65534, "real uid stays the caller's");
    assert_eq!(creds["euid"], 0, "effective uid is the file owner's");
    assert_eq!(
        ev["process"]["uid"], 0,
        "Tetragon's uid is the effective uid"
    );
    let props = &ev["process"]["binary_properties"];
    assert_eq!(props["setuid"], 0);
    assert_eq!(
        props["privileges_changed"][0],
        "PRIVILEGES_RAISED_EXEC_FILE_SETUID"
    );
    agent.stop();
    Ok(())
}

fn sh_is_busybox() -> bool {
    fs::read_link("/bin/sh").is_ok_and(|t| t.to_string_lossy().contains("busybox"))
}

fn traversable_by_others(path: &Path) -> bool {
    path.ancestors().skip(1).all(|p| {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

pub fn new_namespaces_differ_from_parent() -> TestResult {
    require_agent!();
    let Some(unshare) = which("unshare") else {
        skip!("unshare (util-linux) is not installed")
    };
    let agent = Agent::start(&[]);
    let status = Command::new(&unshare)
        .args([
            "--uts",
            "--ipc",
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "/bin/true",
        ])
        .status()
        .expect("run unshare");
    if !status.success() {
        skip!("unshare could not create namespaces here ({status})");
    }
    let evs = agent.wait_for(WAIT, "exec of true under unshare", |evs| {
        of_kind(evs, "process_exec").iter().any(|b| {
            str_at(b, "/process/binary") == "/bin/true"
                && str_at(b, "/parent/binary").ends_with("unshare")
        })
    });
    let inner = of_kind(&evs, "process_exec")
        .into_iter()
        .find(|b| {
            str_at(b, "/process/binary") == "/bin/true"
                && str_at(b, "/parent/binary").ends_with("unshare")
        })
        .expect("true exec");
    let (ns, parent_ns) = (&inner["process"]["ns"], &inner["parent"]["ns"]);
    for kind in ["uts", "ipc", "net", "mnt", "pid"] {
        let (a, b) = (&ns[kind]["inum"], &parent_ns[kind]["inum"]);
        assert!(a.as_u64().unwrap_or(0) > 0, "{kind} inode reported");
        assert_ne!(a, b, "{kind} namespace differs from the parent's");
        assert!(
            ns[kind].get("is_host").is_none(),
            "{kind} is not the host's"
        );
    }
    assert_eq!(
        ns["user"]["inum"], parent_ns["user"]["inum"],
        "user namespace unchanged"
    );
    assert_eq!(
        ns["time"]["inum"], parent_ns["time"]["inum"],
        "time namespace unchanged"
    );
    agent.stop();
    Ok(())
}

pub fn memfd_exec_is_flagged() -> TestResult {
    require_agent!();
    let agent = Agent::start(&[]);
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(&exe)
        .env(tester::MODE_VAR, "memfd")
        .spawn()
        .expect("spawn tester");
    let pid = child.id();
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "fexecve of a memfd copy of /bin/true: {status}"
    );
    let evs = agent.wait_for(WAIT, "exec from memfd", |evs| {
        of_kind(evs, "process_exec")
            .iter()
            .any(|b| pid_of(b) == u64::from(pid) && b["process"].get("binary_properties").is_some())
    });
    let ev = of_kind(&evs, "process_exec")
        .into_iter()
        .find(|b| pid_of(b) == u64::from(pid) && b["process"].get("binary_properties").is_some())
        .expect("memfd exec");
    let file = &ev["process"]["binary_properties"]["file"];
    assert_eq!(file["inode"]["links"], 0, "memfd has no links");
    assert!(
        file["inode"]["number"]
            .as_str()
            .is_some_and(|n| n.parse::<u64>().is_ok()),
        "inode number is a uint64 string"
    );
    assert!(str_at(file, "/path").contains(tester::MEMFD_NAME), "{file}");
    agent.stop();
    Ok(())
}

pub fn process_started_before_agent_is_parent() -> TestResult {
    require_agent!();
    let mut sh = Command::new("/bin/sh")
        .args(["-c", "read go; /bin/echo started-after"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let sh_pid = sh.id();
    let agent = Agent::start(&[]);
    sh.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("write");
    sh.wait().expect("wait");
    let evs = agent.wait_for(WAIT, "echo's exec", |evs| {
        of_kind(evs, "process_exec").iter().any(|b| {
            str_at(b, "/process/binary") == "/bin/echo"
                && str_at(b, "/process/arguments") == "started-after"
        })
    });
    let found = of_kind(&evs, "process_exec")
        .into_iter()
        .find(|b| pid_of(b) == u64::from(sh_pid))
        .expect("sh found at start");
    assert!(
        str_at(found, "/process/flags").contains("procFS"),
        "{found}"
    );
    assert!(str_at(found, "/process/binary").starts_with('/'), "{found}");
    assert_eq!(
        str_at(found, "/process/arguments"),
        "-c \"read go; /bin/echo started-after\""
    );
    let echo = of_kind(&evs, "process_exec")
        .into_iter()
        .find(|b| {
            str_at(b, "/process/binary") == "/bin/echo"
                && str_at(b, "/process/arguments") == "started-after"
        })
        .expect("echo");
    assert_eq!(
        str_at(echo, "/process/parent_exec_id"),
        str_at(found, "/process/exec_id")
    );
    assert_eq!(echo["parent"]["pid"], u64::from(sh_pid));
    agent.stop();
    Ok(())
}

pub fn exec_storm_loses_nothing() -> TestResult {
    require_agent!();
    const N: usize = 2000;
    let agent = Agent::start(&[]);
    let start = Instant::now();
    let sh = run_ok(Command::new("/bin/sh").args([
        "-c",
        &format!("i=0; while [ $i -lt {N} ]; do /bin/true; i=$((i+1)); done"),
    ]));
    let elapsed = start.elapsed();
    // Generous: under software emulation (the VM matrix) an exec takes milliseconds.
    agent.wait_for(Duration::from_secs(180), "the exec loop's exit", |evs| {
        exec_of(evs, sh, "/sh")
            .is_some_and(|sh_ev| !exits_of(evs, str_at(sh_ev, "/process/exec_id")).is_empty())
    });
    let evs = agent.stop();
    let sh_ev = exec_of(&evs, sh, "/sh").expect("sh");
    let kids = children_of(&evs, str_at(sh_ev, "/process/exec_id"));
    assert_eq!(kids.len(), N, "one exec per process");
    assert!(kids
        .iter()
        .all(|k| str_at(k, "/process/binary") == "/bin/true"));
    let exits: usize = kids
        .iter()
        .map(|k| exits_of(&evs, str_at(k, "/process/exec_id")).len())
        .sum();
    assert_eq!(exits, N, "one exit per process");
    assert!(
        of_kind(&evs, "lost_events").is_empty(),
        "nothing lost: {:?}",
        of_kind(&evs, "lost_events")
    );
    println!(
        "    exec storm: {N} processes in {elapsed:.2?} = {:.0} exec/s, 0 lost",
        N as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// After a clean stop, none of the agent's BPF programs stays loaded.
pub fn agent_leaves_nothing_loaded() -> TestResult {
    require_agent!();
    let before = vigil_programs().len();
    let agent = Agent::start(&[]);
    let during = vigil_programs().len();
    agent.stop();
    assert!(
        during > before,
        "the agent's programs are visible while it runs"
    );
    // The kernel frees programs shortly after their last reference goes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while vigil_programs().len() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        vigil_programs().len(),
        before,
        "programs left loaded after exit"
    );
    Ok(())
}

/// Names of loaded BPF programs that are vigil's, from the kernel's program list.
fn vigil_programs() -> Vec<String> {
    let mut names = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&id.to_ne_bytes());
        // SAFETY: BPF_PROG_GET_NEXT_ID reads start_id and writes next_id in attr.
        let r = unsafe { libc::syscall(libc::SYS_bpf, 11, attr.as_mut_ptr(), 128) };
        if r != 0 {
            break;
        }
        id = u32::from_ne_bytes(attr[4..8].try_into().unwrap_or_default());
        if let Some(name) = prog_name(id) {
            if name.starts_with("vigil_") {
                names.push(name);
            }
        }
    }
    names
}

/// The name of BPF program `id`, if it still exists.
pub fn prog_name(id: u32) -> Option<String> {
    // BPF_PROG_GET_FD_BY_ID; struct bpf_prog_info: name[16] at offset 64.
    let info = crate::harness::bpf_obj_info(13, id)?;
    let raw = &info[64..80];
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Some(String::from_utf8_lossy(&raw[..end]).into_owned())
}
