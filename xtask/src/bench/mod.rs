//! `cargo xtask bench`: vigil's overhead against no agent, auditd and
//! bpftrace on the same workloads, its throughput ceiling and memory
//! (issue #4). Results go to bench/results/latest.json and, for a full
//! run of every workload, BENCHMARKS.md.
mod agents;
mod limits;
mod procfs;
mod report;
mod setup;
mod workloads;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use agents::{Agent, AuditSettings, Session};
use procfs::BpfProg;
use workloads::{Kind, Workload};

#[derive(clap::Args)]
pub struct Args {
    /// Fewer repetitions and iterations, 10 s ceiling runs (minutes, not half an hour).
    #[arg(long)]
    quick: bool,
    /// Run only this workload; `ceiling` and `live-processes` are vigil's limits.
    #[arg(long, value_name = "NAME", value_parser = workload_names())]
    workload: Option<String>,
}

const LIMITS: [&str; 2] = ["ceiling", "live-processes"];

fn workload_names() -> clap::builder::PossibleValuesParser {
    let mut names: Vec<&'static str> = Kind::ALL.iter().map(|k| k.name()).collect();
    names.extend(LIMITS);
    clap::builder::PossibleValuesParser::new(names)
}

/// Paths and facts every part of the bench needs.
pub struct Env {
    root: PathBuf,
    /// Scratch space: agent outputs, logs, the C project (gitignored).
    work: PathBuf,
    /// The compiled workload programs.
    bin: PathBuf,
    vigil: PathBuf,
    quick: bool,
    /// Whether vigil can load TracingPolicies, or why not.
    policy: Result<(), String>,
}

/// One workload run under one agent.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub agent: Agent,
    pub rep: usize,
    pub wall_s: f64,
    /// The workload's events among what the agent wrote.
    pub matched: Option<u64>,
    pub lost: Option<u64>,
    pub agent_cpu_s: Option<f64>,
    pub agent_peak_rss_kib: Option<u64>,
    pub bpf_run_ns: Option<u64>,
    pub bpf_progs: Vec<BpfProg>,
    pub kernel_map_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    pub name: &'static str,
    pub description: String,
    pub expected: Option<u64>,
    /// Why vigil did not run this workload.
    pub vigil_not_run: Option<String>,
    pub summaries: Vec<report::Summary>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub date: String,
    pub command: String,
    pub commit: String,
    pub quick: bool,
    pub reps: usize,
    pub machine: Vec<(String, String)>,
    pub load_average_before: String,
    pub load_average_after: String,
    pub duration_s: f64,
    pub workloads: Vec<WorkloadResult>,
    pub ceiling: Option<limits::Ceiling>,
    pub overflow: Option<limits::Overflow>,
    pub live_processes: Option<limits::LiveProcesses>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the bench loads BPF programs and audit rules: run it as root");
    }
    let started = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf();
    let results_dir = root.join("bench/results");
    let work = results_dir.join("work");
    fs::create_dir_all(&work)?;

    setup::install_packages()?;
    let vigil = setup::build_vigil(&root)?;
    let bin = work.join("bin");
    setup::build_workloads(&root, &bin)?;
    let env = Env {
        policy: setup::policy_support(&vigil),
        root,
        work,
        bin,
        vigil,
        quick: args.quick,
    };
    // Restored on every exit path, as are the kernel's BPF statistics (fd).
    let _audit = AuditSettings::save()?;
    let _stats = procfs::enable_bpf_stats()?;

    let reps = if args.quick { 2 } else { 5 };
    let wanted = |name: &str| args.workload.as_deref().is_none_or(|w| w == name);
    let load_average_before = setup::load_average();
    let mut machine = setup::machine();
    machine.push((
        "other vigil agents at start".into(),
        setup::other_vigil_agents(),
    ));
    let mut workloads = Vec::new();
    for kind in Kind::ALL {
        if wanted(kind.name()) {
            workloads.push(run_workload(&env, &Workload::new(&env, kind), reps)?);
        }
    }
    let (ceiling, overflow) = if wanted("ceiling") {
        (
            Some(retry(|| limits::ceiling(&env))?),
            Some(retry(|| limits::overflow(&env))?),
        )
    } else {
        (None, None)
    };
    let live_processes = if wanted("live-processes") {
        Some(retry(|| limits::live_processes(&env))?)
    } else {
        None
    };

    let results = Results {
        date: report::now_utc(),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        commit: setup::git_head(&env.root),
        quick: args.quick,
        reps,
        machine,
        load_average_before,
        load_average_after: setup::load_average(),
        duration_s: started.elapsed().as_secs_f64(),
        workloads,
        ceiling,
        overflow,
        live_processes,
    };
    let json = results_dir.join("latest.json");
    fs::write(&json, serde_json::to_string_pretty(&results)?)?;
    let tables = report::markdown(&results);
    println!("{tables}");
    eprintln!("bench: wrote {}", json.display());
    if args.workload.is_none() && !args.quick {
        let doc = env.root.join("BENCHMARKS.md");
        report::update_document(&doc, &tables)?;
        eprintln!("bench: updated {}", doc.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_workload(env: &Env, w: &Workload, reps: usize) -> Result<WorkloadResult> {
    let vigil_args: Result<Vec<String>, String> = match (w.policy(env), &env.policy) {
        (None, _) => Ok(Vec::new()),
        (Some(policy), Ok(())) => Ok(vec![
            "--tracing-policy".into(),
            policy.to_string_lossy().into_owned(),
        ]),
        (Some(_), Err(reason)) => Err(reason.clone()),
    };
    let mut samples = Vec::new();
    // Interleaved (baseline, vigil, auditd, bpftrace, baseline, ...) so
    // that drift in the machine's load hits every agent alike.
    for rep in 0..reps {
        for agent in Agent::ALL {
            let args = match (agent, &vigil_args) {
                (Agent::Vigil, Err(_)) => continue,
                (_, Ok(args)) => args.as_slice(),
                (_, Err(_)) => &[],
            };
            let s = retry(|| run_once(env, w, agent, rep, args))
                .with_context(|| format!("{} under {}", w.name(), agent.name()))?;
            eprintln!(
                "bench: {} rep {} {:>8}: {:.3} s, matched {:?}, lost {:?}",
                w.name(),
                rep + 1,
                agent.name(),
                s.wall_s,
                s.matched,
                s.lost
            );
            samples.push(s);
        }
    }
    let expected = w.expected().or_else(|| {
        // The build's exec count: auditd waits rather than drops, so its count is the truth.
        samples
            .iter()
            .filter(|s| s.agent == Agent::Auditd && s.lost == Some(0))
            .filter_map(|s| s.matched)
            .max()
    });
    Ok(WorkloadResult {
        name: w.name(),
        description: w.describe(),
        expected,
        vigil_not_run: vigil_args.err(),
        summaries: report::summarize(&samples, expected),
        samples,
    })
}

/// Tries up to three times: other users of a shared machine may kill
/// processes named like ours (`pkill vigil`), which voids that run only.
pub fn retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    const ATTEMPTS: usize = 3;
    let mut attempt = 1;
    loop {
        match f() {
            Err(e) if attempt < ATTEMPTS => {
                eprintln!("bench: run failed, retrying ({attempt}/{ATTEMPTS}): {e:#}");
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn run_once(
    env: &Env,
    w: &Workload,
    agent: Agent,
    rep: usize,
    vigil_args: &[String],
) -> Result<Sample> {
    w.prepare()?;
    let session = match agent {
        Agent::Baseline => None,
        Agent::Vigil => Some(Session::vigil(env, w.name(), vigil_args)?),
        Agent::Auditd => Some(Session::auditd(env, w)?),
        Agent::Bpftrace => Some(Session::bpftrace(env, w)?),
    };
    let mut cmd = w.command(env);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let t = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id();
    let status = child.wait()?;
    let wall_s = t.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    let m = session.map(Session::finish).transpose()?;
    Ok(Sample {
        agent,
        rep,
        wall_s,
        matched: m.as_ref().map(|m| w.matched(pid, &m.observed)),
        lost: m.as_ref().map(|m| m.lost),
        agent_cpu_s: m.as_ref().map(|m| m.cpu_s),
        agent_peak_rss_kib: m.as_ref().map(|m| m.peak_rss_kib),
        bpf_run_ns: m
            .as_ref()
            .filter(|m| !m.bpf_progs.is_empty())
            .map(|m| m.bpf_progs.iter().map(|p| p.run_time_ns).sum()),
        kernel_map_bytes: m
            .as_ref()
            .filter(|m| !m.bpf_total.maps.is_empty())
            .map(|m| m.kernel_map_bytes),
        bpf_progs: m.map(|m| m.bpf_progs).unwrap_or_default(),
    })
}
