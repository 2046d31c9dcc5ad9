//! Starting and stopping the agents compared (vigil, auditd, bpftrace) and
//! measuring them while a workload runs. Every agent is our child process
//! and is stopped, or killed, before the next run.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{
    procfs::{self, BpfObjects, BpfProg},
    workloads::{self, Observed, Workload, BPFTRACE_READY},
    Env,
};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const BPFTRACE_STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Longer than vigil's 1 s loss-counter period, so losses are reported
/// and the ring buffer drained before we look.
const VIGIL_SETTLE: Duration = Duration::from_millis(1500);
const AUDIT_BACKLOG: &str = "8192";
/// Kernel waits for auditd when the backlog is full (no loss, throttling).
const AUDIT_BACKLOG_WAIT: &str = "60000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    Baseline,
    Vigil,
    Auditd,
    Bpftrace,
}

impl Agent {
    pub const ALL: [Agent; 4] = [
        Agent::Baseline,
        Agent::Vigil,
        Agent::Auditd,
        Agent::Bpftrace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Agent::Baseline => "baseline",
            Agent::Vigil => "vigil",
            Agent::Auditd => "auditd",
            Agent::Bpftrace => "bpftrace",
        }
    }
}

/// An agent running as our child, with what it looked like before the workload.
pub struct Session {
    agent: Agent,
    child: Child,
    output: PathBuf,
    output_offset: u64,
    cpu_before: f64,
    bpf_before: BpfObjects,
    audit_lost_before: u64,
}

/// What an agent did during one workload run.
pub struct Measured {
    pub observed: Vec<Observed>,
    /// Losses the agent itself reports (vigil's records, bpftrace's notices, auditd's counter).
    pub lost: u64,
    pub cpu_s: f64,
    pub peak_rss_kib: u64,
    pub bpf_progs: Vec<BpfProg>,
    /// Counters since the programs were loaded (statistics were on by then).
    pub bpf_total: BpfObjects,
    pub kernel_map_bytes: u64,
}

impl Session {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Count what the agent wrote from its start, not from when it was ready.
    pub fn read_from_start(&mut self) {
        self.output_offset = 0;
    }

    pub fn vigil(env: &Env, name: &str, extra: &[String]) -> Result<Session> {
        let output = env.work.join(format!("{name}.vigil.json"));
        let log = env.work.join(format!("{name}.vigil.log"));
        remove(&output)?;
        let child = Command::new(&env.vigil)
            .arg("agent")
            .arg("--export-filename")
            .arg(&output)
            .args(["--export-file-max-size-mb", "0"])
            // No gRPC API: its default TCP port would clash with any other agent.
            .arg("--server-address=")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("starting vigil")?;
        let mut s = Session::new(Agent::Vigil, child, output);
        s.wait_for(&log, "vigil agent ready")?;
        s.output_offset = fs::metadata(&s.output).map_or(0, |m| m.len());
        s.mark()?;
        Ok(s)
    }

    pub fn auditd(env: &Env, workload: &Workload) -> Result<Session> {
        let conf = env.work.join("auditd");
        let plugins = conf.join("plugins.d");
        fs::create_dir_all(&plugins)?;
        let output = env.work.join("audit.log");
        remove(&output)?;
        let conf_file = conf.join("auditd.conf");
        fs::write(&conf_file, auditd_conf(&output, &plugins))?;
        // auditd refuses a config others can write.
        set_mode(&conf_file, 0o640)?;
        let child = Command::new("/sbin/auditd")
            .arg("-n")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(env.work.join("auditd.log"))?)
            .spawn()
            .context("starting /sbin/auditd")?;
        let mut s = Session::new(Agent::Auditd, child, output);
        let pid = s.pid().to_string();
        let deadline = Instant::now() + START_TIMEOUT;
        while audit_status("pid")?.as_deref() != Some(pid.as_str()) {
            s.check_alive()?;
            if Instant::now() > deadline {
                bail!("auditd did not register with the kernel");
            }
            thread::sleep(Duration::from_millis(50));
        }
        auditctl(&["-D"])?;
        auditctl(&["-b", AUDIT_BACKLOG])?;
        auditctl(&["--backlog_wait_time", AUDIT_BACKLOG_WAIT])?;
        for rule in workload.audit_rules() {
            let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
            auditctl(&rule)?;
        }
        auditctl(&["-e", "1"])?;
        s.audit_lost_before = audit_lost()?;
        s.mark()?;
        Ok(s)
    }

    pub fn bpftrace(env: &Env, workload: &Workload) -> Result<Session> {
        let output = env.work.join("bpftrace.out");
        let log = env.work.join("bpftrace.log");
        // Output to stdout, which bpftrace line-buffers by default (its `-o`
        // file is fully buffered, so the BEGIN marker would not show).
        let child = Command::new("bpftrace")
            .arg("-e")
            .arg(workload.bpftrace_program())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&output)?)
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("starting bpftrace")?;
        let mut s = Session::new(Agent::Bpftrace, child, output.clone());
        s.wait_for(&output, BPFTRACE_READY)?;
        s.mark()?;
        Ok(s)
    }

    fn new(agent: Agent, child: Child, output: PathBuf) -> Session {
        Session {
            agent,
            child,
            output,
            output_offset: 0,
            cpu_before: 0.0,
            bpf_before: BpfObjects::default(),
            audit_lost_before: 0,
        }
    }

    /// Where the measurement starts: the agent is up and idle.
    fn mark(&mut self) -> Result<()> {
        self.cpu_before = procfs::cpu_seconds(self.pid())?;
        self.bpf_before = BpfObjects::of(self.pid())?;
        self.bpf_before.name();
        Ok(())
    }

    fn wait_for(&mut self, file: &Path, marker: &str) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if fs::read_to_string(file).is_ok_and(|t| t.contains(marker)) {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{} did not print {marker:?} within {START_TIMEOUT:?}",
                    self.agent.name()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early: {status}", self.agent.name());
        }
        Ok(())
    }

    /// The agent's BPF programs and maps now (only while it runs).
    pub fn bpf_now(&self) -> Result<BpfObjects> {
        let mut now = BpfObjects::of(self.pid())?;
        for p in &mut now.progs {
            if let Some(b) = self.bpf_before.progs.iter().find(|b| b.id == p.id) {
                p.name.clone_from(&b.name);
            }
        }
        for m in &mut now.maps {
            if let Some(b) = self.bpf_before.maps.iter().find(|b| b.id == m.id) {
                m.name.clone_from(&b.name);
            }
        }
        Ok(now)
    }

    /// Lets the agent catch up, measures it, stops it and reads what it wrote.
    pub fn finish(mut self) -> Result<Measured> {
        let pid = self.pid();
        match self.agent {
            Agent::Vigil => thread::sleep(VIGIL_SETTLE),
            Agent::Auditd => wait_until_stable(&self.output)?,
            Agent::Bpftrace | Agent::Baseline => thread::sleep(Duration::from_secs(1)),
        }
        let cpu_s = procfs::cpu_seconds(pid)? - self.cpu_before;
        let peak_rss_kib = procfs::status_kib(pid, "VmHWM")?;
        let bpf_now = self.bpf_now()?;
        let bpf_progs = bpf_now.since(&self.bpf_before);
        let kernel_map_bytes = bpf_now.memlock();
        let audit_lost = match self.agent {
            Agent::Auditd => {
                let lost = audit_lost()?.saturating_sub(self.audit_lost_before);
                auditctl(&["-D"])?;
                auditctl(&["-e", "0"])?;
                lost
            }
            _ => 0,
        };
        match self.agent {
            // bpftrace 0.17 sometimes never exits on SIGINT after a flood of
            // output; what it printed is already in the file (line-buffered).
            Agent::Bpftrace => {
                if stop(&mut self.child, libc::SIGINT, BPFTRACE_STOP_TIMEOUT).is_err() {
                    eprintln!("bench: bpftrace ignored SIGINT; killed it");
                }
            }
            _ => stop(&mut self.child, libc::SIGTERM, STOP_TIMEOUT)?,
        }
        let bytes =
            fs::read(&self.output).with_context(|| format!("reading {}", self.output.display()))?;
        let text =
            String::from_utf8_lossy(bytes.get(self.output_offset as usize..).unwrap_or_default());
        let observed = match self.agent {
            Agent::Vigil => workloads::parse_vigil(&text),
            Agent::Auditd => workloads::parse_audit(&text),
            Agent::Bpftrace | Agent::Baseline => workloads::parse_bpftrace(&text),
        };
        let lost = workloads::lost(&observed) + audit_lost;
        Ok(Measured {
            observed,
            lost,
            cpu_s,
            peak_rss_kib,
            bpf_progs,
            bpf_total: bpf_now,
            kernel_map_bytes,
        })
    }
}

impl Drop for Session {
    /// On an error path: kill the agent and, for auditd, drop our rules.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.agent == Agent::Auditd {
            let _ = auditctl(&["-D"]);
            let _ = auditctl(&["-e", "0"]);
        }
    }
}

/// Sends `signal` to our child and waits for a clean exit; kills it after `timeout`.
fn stop(child: &mut Child, signal: libc::c_int, timeout: Duration) -> Result<()> {
    // SAFETY: kill on the pid of a child we have not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            // bpftrace exits with 0 on SIGINT; vigil and auditd on SIGTERM.
            if !status.success() {
                bail!("agent pid {} exited with {status}", child.id());
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!("agent pid {} did not stop within {timeout:?}", child.id());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// auditd writes asynchronously: wait until its log stops growing.
fn wait_until_stable(path: &Path) -> Result<()> {
    let size = || fs::metadata(path).map_or(0, |m| m.len());
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut last = size();
    let mut unchanged = 0;
    while unchanged < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(300));
        let now = size();
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
    }
    Ok(())
}

fn auditd_conf(log: &Path, plugins: &Path) -> String {
    // Debian's defaults, except: our own log file, and never stop or
    // suspend on disk space (a benchmark must not wedge auditing).
    format!(
        "local_events = yes\nwrite_logs = yes\nlog_file = {}\nlog_group = root\nlog_format = ENRICHED\n\
flush = INCREMENTAL_ASYNC\nfreq = 50\nmax_log_file = 4096\nnum_logs = 2\npriority_boost = 4\n\
name_format = NONE\nmax_log_file_action = IGNORE\nspace_left = 75\nspace_left_action = IGNORE\n\
admin_space_left = 50\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\n\
disk_error_action = IGNORE\nq_depth = 2000\noverflow_action = SYSLOG\nmax_restarts = 10\n\
plugin_dir = {}\nend_of_event_timeout = 2\n",
        log.display(),
        plugins.display()
    )
}

pub fn auditctl(args: &[&str]) -> Result<String> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("running auditctl")?;
    if !out.status.success() {
        bail!(
            "auditctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One value of `auditctl -s`.
pub fn audit_status(key: &str) -> Result<Option<String>> {
    Ok(auditctl(&["-s"])?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::to_owned)))
}

fn audit_lost() -> Result<u64> {
    audit_status("lost")?
        .and_then(|v| v.parse().ok())
        .context("no `lost` in auditctl -s")
}

/// The kernel's audit settings before we changed them, put back on drop.
pub struct AuditSettings {
    enabled: String,
    backlog_limit: String,
    backlog_wait_time: String,
}

impl AuditSettings {
    pub fn save() -> Result<Option<AuditSettings>> {
        if Command::new("auditctl").arg("-s").output().is_err() {
            return Ok(None);
        }
        let get = |k| audit_status(k)?.with_context(|| format!("no `{k}` in auditctl -s"));
        Ok(Some(AuditSettings {
            enabled: get("enabled")?,
            backlog_limit: get("backlog_limit")?,
            backlog_wait_time: get("backlog_wait_time")?,
        }))
    }
}

impl Drop for AuditSettings {
    fn drop(&mut self) {
        let restore = [
            vec!["-D"],
            vec!["-e", self.enabled.as_str()],
            vec!["-b", self.backlog_limit.as_str()],
            vec!["--backlog_wait_time", self.backlog_wait_time.as_str()],
        ];
        for args in restore {
            if let Err(e) = auditctl(&args) {
                eprintln!("bench: restoring audit settings: {e:#}");
            }
        }
    }
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}
