//! Test harness: runs the real agent binary against the real kernel and reads
//! the events it exported.

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// A test that cannot run here, and why.
#[derive(Debug)]
pub struct Skip(pub String);

pub type TestResult = Result<(), Skip>;

/// Skips the calling test with a reason.
#[macro_export]
macro_rules! skip {
    ($($reason:tt)+) => {
        return Err($crate::harness::Skip(format!($($reason)+)))
    };
}

/// Skips unless this machine can run the agent.
#[macro_export]
macro_rules! require_agent {
    () => {
        if let Some(why) = $crate::harness::agent_unavailable() {
            $crate::skip!("{why}");
        }
    };
}

/// The agent binary under test: `$VIGIL_BIN` (as in the VM matrix) or cargo's build.
pub fn vigil_bin() -> PathBuf {
    std::env::var_os("VIGIL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vigil")))
}

/// Why this machine cannot run agent tests, if it cannot.
pub fn agent_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root to load BPF programs".into());
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("kernel has no BTF (/sys/kernel/btf/vmlinux)".into());
    }
    None
}

/// How long an agent may take to load its policies: under TCG (the VM
/// guests) each kernel-function hook's programs take seconds to verify, and
/// a policy of three hooks with return values took longer than 30 s.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Agent {
    child: Child,
    _dir: tempfile::TempDir,
    pub events_path: PathBuf,
    /// Where its gRPC API listens (a socket in its temp dir unless the test chose).
    pub server_address: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    /// Starts `vigil agent` exporting to a temporary file, and waits until it is ready.
    pub fn start(extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let events_path = dir.path().join("events.json");
        // A socket of its own: agents of parallel test runs never collide on a port.
        let chosen = extra.iter().position(|a| *a == "--server-address");
        let server_address = match chosen {
            Some(i) => extra.get(i + 1).copied().unwrap_or_default().to_owned(),
            None => format!("unix://{}", dir.path().join("vigil.sock").display()),
        };
        let mut cmd = Command::new(vigil_bin());
        cmd.arg("agent")
            .arg("--export-filename")
            .arg(&events_path)
            .args([
                "--node-name",
                "vigil-test",
                "--enable-process-cred",
                "--enable-process-ns",
            ])
            // One file holds every event of a test: no rotation.
            .arg("--export-file-max-size-mb=0")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if chosen.is_none() {
            cmd.arg(format!("--server-address={server_address}"));
        }
        // SAFETY: prctl in the child before exec; a test that dies takes its agent along.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawning vigil agent");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[agent] {line}");
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line.clone());
                }
                if line.contains("vigil agent ready") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(READY_TIMEOUT).is_err() {
            let _ = child.kill();
            panic!("vigil agent did not become ready within {READY_TIMEOUT:?}");
        }
        Agent {
            child,
            _dir: dir,
            events_path,
            server_address,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `vigil ARGS --server-address ADDR` against this agent.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(vigil_bin())
            .args(args)
            .arg(format!("--server-address={}", self.server_address))
            .output()
            .expect("running the vigil CLI")
    }

    /// The agent's log lines (stderr) so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// All events exported so far (complete lines only: the agent may be
    /// writing the last one).
    pub fn events(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.events_path).unwrap_or_default();
        text.split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// Waits until `done` holds for the exported events, or panics after `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let evs = self.events();
            if done(&evs) {
                return evs;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; {} events exported",
                    evs.len()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the agent with SIGTERM; it must exit 0 after flushing.
    pub fn stop(mut self) -> Vec<Value> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("waiting for the agent");
        assert!(status.success(), "agent exited with {status}");
        self.events()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Events of `kind` (`process_exec`, ...), bodies only.
pub fn of_kind<'a>(evs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    evs.iter().filter_map(|e| e.get(kind)).collect()
}

pub fn pid_of(body: &Value) -> u64 {
    body["process"]["pid"].as_u64().unwrap_or(0)
}

pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The exec event of `pid` whose binary ends with `suffix`.
pub fn exec_of<'a>(evs: &'a [Value], pid: u32, suffix: &str) -> Option<&'a Value> {
    of_kind(evs, "process_exec")
        .into_iter()
        .find(|b| pid_of(b) == u64::from(pid) && str_at(b, "/process/binary").ends_with(suffix))
}

/// Exec events whose process's parent is `parent_exec_id`.
pub fn children_of<'a>(evs: &'a [Value], parent_exec_id: &str) -> Vec<&'a Value> {
    of_kind(evs, "process_exec")
        .into_iter()
        .filter(|b| str_at(b, "/process/parent_exec_id") == parent_exec_id)
        .collect()
}

pub fn exits_of<'a>(evs: &'a [Value], exec_id: &str) -> Vec<&'a Value> {
    of_kind(evs, "process_exit")
        .into_iter()
        .filter(|b| str_at(b, "/process/exec_id") == exec_id)
        .collect()
}

/// This test process's own exec_id, as the agent's start-time scan reported it.
pub fn own_exec_id(evs: &[Value]) -> String {
    let me = std::process::id();
    of_kind(evs, "process_exec")
        .into_iter()
        .find(|b| pid_of(b) == u64::from(me))
        .map(|b| str_at(b, "/process/exec_id").to_owned())
        .expect("the start-time scan reports the test process")
}

/// Tetragon's example policies: `$VIGIL_TETRAGON_POLICIES` (the VM guests), else
/// the shared fixtures beside the repository.
pub fn tetragon_policies_dir() -> PathBuf {
    std::env::var_os("VIGIL_TETRAGON_POLICIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tetragon-policies")
        })
}

/// One of Tetragon's example policies by file name.
pub fn tetragon_policy(name: &str) -> PathBuf {
    tetragon_policies_dir().join(name)
}

/// This test binary, as the process table names it (resolved path).
pub fn own_exe() -> PathBuf {
    std::env::current_exe()
        .and_then(fs::canonicalize)
        .expect("own executable")
}

/// Writes policy `text` to `dir/name.yaml`; returns the path for `--tracing-policy`.
/// Runs this test binary as tester `mode` with `marker` as its marker
/// path; returns its pid and exit status once it has exited.
pub fn run_tester(mode: &str, marker: &Path) -> (u32, std::process::ExitStatus) {
    let mut child = Command::new(own_exe())
        .env(crate::tester::MODE_VAR, mode)
        .env(crate::tester::MARKER_VAR, marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tester");
    let pid = child.id();
    (pid, child.wait().expect("wait tester"))
}

/// A TracingPolicy document named `name` with the given `spec:` body
/// (indented by two spaces).
pub fn tracing_policy(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: {name}
spec:
{spec}"
    )
}

pub fn write_policy(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    fs::write(&path, text).expect("write policy");
    path.to_str().expect("utf-8 path").to_owned()
}

/// `bpf_*_info` of the BPF object whose id is `id`: `get_fd_by_id` is the
/// bpf(2) command that opens it (BPF_PROG_GET_FD_BY_ID, BPF_LINK_GET_FD_BY_ID).
pub fn bpf_obj_info(get_fd_by_id: i64, id: u32) -> Option<[u8; 256]> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&id.to_ne_bytes());
    // SAFETY: a *_GET_FD_BY_ID command with the id in the first word.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, get_fd_by_id, attr.as_mut_ptr(), 128) } as i32;
    if fd < 0 {
        return None;
    }
    let mut info = [0u8; 256];
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(fd as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
    // SAFETY: BPF_OBJ_GET_INFO_BY_FD (15) into our buffer; then close our fd.
    let r = unsafe { libc::syscall(libc::SYS_bpf, 15, attr.as_mut_ptr(), 128) };
    unsafe { libc::close(fd) };
    (r == 0).then_some(info)
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}
