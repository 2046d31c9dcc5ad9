//! vigil's limits: the highest event rate it writes without loss, proof
//! that past it every loss is counted, and its memory with many processes.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{
    agents::{Measured, Session},
    procfs::{self, BpfMap},
    workloads::Observed,
    Env,
};

/// Processes that start processes at once: enough to keep both CPUs busy.
const GENERATOR_WORKERS: &str = "4";
/// The rate issue #4 asks vigil to hold without loss.
const TARGET_EVENTS_PER_S: f64 = 200_000.0;
/// Retries at a lower rate when a run lost events.
const CEILING_BACKOFFS: usize = 3;
const BACKOFF_FACTOR: f64 = 0.7;
/// The smallest ring buffer (one page), read by an agent at the lowest CPU
/// priority while the generator keeps both CPUs busy.
const OVERFLOW_RB_SIZE: &str = "4096";
const OVERFLOW_NICE: libc::c_int = 19;
const LIVE_PROCESSES: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct RateRun {
    /// `exec` (fork + exec /bin/true), `fork` (fork + _exit) or `open`
    /// (open + close of a file a loaded policy reports).
    pub mode: &'static str,
    /// Operations per second asked for; none: as fast as the machine can.
    pub target_rate: Option<f64>,
    pub duration_s: f64,
    pub processes_started: u64,
    pub processes_per_s: f64,
    /// JSON events vigil wrote (exec, exit, policy events), per second.
    pub events_written: u64,
    pub events_per_s: f64,
    pub lost_counted: u64,
    pub accounting: ExecAccounting,
    /// Exec events of /bin/true: the generator's own.
    pub true_exec_events: u64,
    pub agent_cpu_s: f64,
    pub agent_peak_rss_kib: u64,
}

/// Every exec the kernel ran vigil's exec program for, against what vigil
/// wrote and what it counted as lost.
#[derive(Debug, Clone, Serialize)]
pub struct ExecAccounting {
    /// Runs of `vigil_exec` (kernel statistics) until the agent was measured.
    pub kernel_execs: u64,
    pub exec_events: u64,
    pub exec_lost_counted: u64,
    /// kernel_execs − exec_events − exec_lost_counted. Above 0: events vanished
    /// uncounted. At or below 0: all accounted for (execs that happened
    /// between the measurement and the agent's stop are written but not in
    /// kernel_execs).
    pub unaccounted: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub runs: Vec<RateRun>,
    /// Highest events/s held for the whole duration with nothing lost.
    pub sustained_events_per_s: f64,
    pub sustained_execs_per_s: f64,
    /// Every as-fast-as-possible run lost nothing: vigil kept up with all
    /// the machine could produce, so the real ceiling is higher.
    pub generator_bound: bool,
    /// Why the open mode (policy events) did not run.
    pub open_not_run: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overflow {
    pub rb_size: u64,
    pub agent_nice: i32,
    pub run: RateRun,
    /// /bin/true exec events vigil wrote, and the storm's exec count.
    pub storm_exec_events: u64,
    pub storm_execs: u64,
    pub every_loss_counted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveProcesses {
    pub processes: usize,
    pub rss_idle_kib: u64,
    pub rss_with_processes_kib: u64,
    pub peak_rss_kib: u64,
    pub process_cache_size: Option<u64>,
    pub kernel_map_bytes: u64,
    pub maps: Vec<BpfMap>,
}

pub fn ceiling(env: &Env) -> Result<Ceiling> {
    let secs = if env.quick { 10.0 } else { 60.0 };
    let mut runs = Vec::new();
    let mut generator_bound = true;
    let (mut best_events, mut best_execs) = (0.0f64, 0.0f64);
    let open_target = env.work.join("loud-open-target");
    std::fs::write(&open_target, b"bench\n")?;
    let policy = env.root.join("bench/policies/loud-open.yaml");
    let open_args = [
        "--tracing-policy".to_owned(),
        policy.to_string_lossy().into_owned(),
    ];
    for mode in ["exec", "fork", "open"] {
        let (extra, path): (&[String], _) = match mode {
            "open" if env.policy.is_err() => continue,
            "open" => (&open_args, Some(open_target.as_path())),
            _ => (&[], None),
        };
        // Process starts top out far below the target: go straight to the
        // fastest; opens can go past it: hold the target first.
        let mut plan = match mode {
            "open" => vec![Some(TARGET_EVENTS_PER_S), None],
            _ => vec![None],
        };
        let mut backoffs = 0;
        let mut next = 0;
        while let Some(&rate) = plan.get(next) {
            next += 1;
            let run = rate_run(env, mode, rate, secs, extra, path, false)?;
            eprintln!(
                "bench: ceiling {mode} asked {rate:?}/s: {:.0} ops/s, {:.0} events/s, lost {}",
                run.processes_per_s, run.events_per_s, run.lost_counted
            );
            let clean = run.lost_counted == 0 && run.accounting.unaccounted <= 0;
            if clean {
                best_events = best_events.max(run.events_per_s);
                if mode == "exec" {
                    best_execs = best_execs.max(run.processes_per_s);
                }
            } else {
                if rate.is_none() {
                    generator_bound = false;
                }
                if backoffs < CEILING_BACKOFFS {
                    backoffs += 1;
                    plan.push(Some(run.processes_per_s * BACKOFF_FACTOR));
                }
            }
            runs.push(run);
        }
    }
    Ok(Ceiling {
        runs,
        sustained_events_per_s: best_events,
        sustained_execs_per_s: best_execs,
        generator_bound,
        open_not_run: env.policy.clone().err(),
    })
}

pub fn overflow(env: &Env) -> Result<Overflow> {
    // No user-space queue either: the reader takes a batch only when the
    // pipeline has handled the last one.
    let extra = [
        "--rb-size".to_owned(),
        OVERFLOW_RB_SIZE.to_owned(),
        "--event-queue-bytes".to_owned(),
        "0".to_owned(),
    ];
    let run = rate_run(env, "exec", None, 6.0, &extra, None, true)?;
    eprintln!(
        "bench: overflow: {} execs, {} exec events, {} counted lost, unaccounted {}",
        run.processes_started,
        run.accounting.exec_events,
        run.accounting.exec_lost_counted,
        run.accounting.unaccounted
    );
    let every_loss_counted = run.accounting.unaccounted <= 0 && run.lost_counted > 0;
    Ok(Overflow {
        rb_size: OVERFLOW_RB_SIZE.parse().unwrap_or_default(),
        agent_nice: OVERFLOW_NICE,
        storm_exec_events: run.true_exec_events,
        storm_execs: run.processes_started,
        every_loss_counted,
        run,
    })
}

/// One vigil, one generator run; with `starve`, vigil runs at the lowest
/// CPU priority so that it falls behind and its ring buffer overflows.
fn rate_run(
    env: &Env,
    mode: &'static str,
    rate: Option<f64>,
    secs: f64,
    extra: &[String],
    open_target: Option<&std::path::Path>,
    starve: bool,
) -> Result<RateRun> {
    let mut session = Session::vigil(env, &format!("rate-{mode}"), extra)?;
    session.read_from_start();
    if starve {
        // SAFETY: setpriority on our own child's pid.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, session.pid(), OVERFLOW_NICE) };
        if rc != 0 {
            bail!("renicing vigil: {}", std::io::Error::last_os_error());
        }
    }
    let started = Instant::now();
    let generator = Command::new(env.bin.join("execrate"))
        .arg(mode)
        .arg(format!("{:.0}", rate.unwrap_or(0.0)))
        .arg(secs.to_string())
        .arg(GENERATOR_WORKERS)
        .args(open_target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting execrate")?;
    let out = generator.wait_with_output()?;
    let elapsed = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("execrate {mode} failed: {}", out.status);
    }
    let processes_started: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("execrate printed no count")?;
    let m = session.finish()?;
    let events_written = m
        .observed
        .iter()
        .filter(|o| !matches!(o, Observed::Lost { .. }))
        .count() as u64;
    let true_exec_events = m
        .observed
        .iter()
        .filter(|o| matches!(o, Observed::Exec { binary, .. } if binary.ends_with("/true")))
        .count() as u64;
    Ok(RateRun {
        mode,
        target_rate: rate,
        duration_s: elapsed,
        processes_started,
        processes_per_s: processes_started as f64 / elapsed,
        events_written,
        events_per_s: events_written as f64 / elapsed,
        lost_counted: m.lost,
        accounting: accounting(&m),
        true_exec_events,
        agent_cpu_s: m.cpu_s,
        agent_peak_rss_kib: m.peak_rss_kib,
    })
}

fn accounting(m: &Measured) -> ExecAccounting {
    let kernel_execs = m
        .bpf_total
        .progs
        .iter()
        .filter(|p| p.name == "vigil_exec")
        .map(|p| p.run_cnt)
        .sum();
    let exec_events = m
        .observed
        .iter()
        .filter(|o| matches!(o, Observed::Exec { .. }))
        .count() as u64;
    let exec_lost_counted = m
        .observed
        .iter()
        .map(|o| match o {
            Observed::Lost { kind, count } if kind == "process_exec" => *count,
            _ => 0,
        })
        .sum();
    ExecAccounting {
        kernel_execs,
        exec_events,
        exec_lost_counted,
        unaccounted: kernel_execs as i64 - exec_events as i64 - exec_lost_counted as i64,
    }
}

pub fn live_processes(env: &Env) -> Result<LiveProcesses> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let session = Session::vigil(env, "live", &["--metrics-server".into(), addr.clone()])?;
    let pid = session.pid();
    let rss_idle_kib = procfs::status_kib(pid, "VmRSS")?;
    let mut sleepers = Sleepers(Vec::with_capacity(LIVE_PROCESSES));
    for _ in 0..LIVE_PROCESSES {
        sleepers.0.push(
            Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .context("starting sleep")?,
        );
    }
    // Let vigil read every exec before measuring.
    thread::sleep(Duration::from_secs(3));
    let rss_with_processes_kib = procfs::status_kib(pid, "VmRSS")?;
    let process_cache_size = metric(&addr, "vigil_process_cache_size");
    drop(sleepers);
    let m = session.finish()?;
    eprintln!(
        "bench: {LIVE_PROCESSES} live processes: vigil RSS {rss_with_processes_kib} KiB (idle {rss_idle_kib}), cache {process_cache_size:?}"
    );
    Ok(LiveProcesses {
        processes: LIVE_PROCESSES,
        rss_idle_kib,
        rss_with_processes_kib,
        peak_rss_kib: m.peak_rss_kib,
        process_cache_size,
        kernel_map_bytes: m.kernel_map_bytes,
        maps: m.bpf_total.maps,
    })
}

/// Our `sleep` children; killed and reaped however we leave.
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn metric(addr: &str, name: &str) -> Option<u64> {
    let mut conn = TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}
