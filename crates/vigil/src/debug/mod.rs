//! `vigil debug progs`: what vigil's BPF programs cost, from the kernel's
//! per-program statistics (run count and run time), like `tetra debug progs`.
//! Only programs named `vigil_*` are shown; others are read for their name only.
use std::{
    collections::BTreeMap,
    fs,
    os::fd::{FromRawFd, OwnedFd},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use libbpf_rs::{libbpf_sys, query::ProgInfoIter};

const NAME_PREFIX: &str = "vigil_";
const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";
/// How often a sleeping refresh checks whether it was interrupted.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Prints each vigil program's runs, run time and ns per run during
/// `interval`, plus the totals since statistics were switched on. With
/// `watch`, prints again every `interval` until SIGINT or SIGTERM.
/// Statistics are switched on only while this runs, then restored.
pub fn progs(interval: Duration, watch: bool) -> Result<()> {
    let stats = StatsSwitch::on()?;
    // Stop between refreshes rather than die, so the sysctl fallback is restored.
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    let mut before = sample()?;
    let mut started = Instant::now();
    loop {
        while started.elapsed() < interval {
            if INTERRUPTED.load(Ordering::Relaxed) {
                return Ok(());
            }
            thread::sleep(SLEEP_SLICE.min(interval));
        }
        let after = sample()?;
        let elapsed = started.elapsed();
        started = Instant::now();
        print!("{}", render(&before, &after, elapsed, stats.how));
        if !watch {
            return Ok(());
        }
        before = after;
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProgStats {
    run_cnt: u64,
    run_time_ns: u64,
}

/// vigil's programs by (name, id): two loads of one program stay apart.
type Sample = BTreeMap<(String, u32), ProgStats>;

fn sample() -> Result<Sample> {
    Ok(ProgInfoIter::default()
        .filter_map(|info| {
            let name = info.name.to_string_lossy().into_owned();
            name.starts_with(NAME_PREFIX).then_some((
                (name, info.id),
                ProgStats {
                    run_cnt: info.run_cnt,
                    run_time_ns: info.run_time_ns,
                },
            ))
        })
        .collect())
}

fn render(before: &Sample, after: &Sample, elapsed: Duration, how: StatsHow) -> String {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let window_ns = elapsed.as_nanos() as f64;
    let mut out = format!(
        "vigil BPF programs over {:.1} s (statistics via {}; overhead = share of {} CPUs)\n",
        elapsed.as_secs_f64(),
        how.describe(),
        cpus
    );
    if after.is_empty() {
        out.push_str("no vigil programs are loaded (is `vigil agent` running?)\n");
        return out;
    }
    out.push_str(&format!(
        "{:>7} {:<16} {:>10} {:>12} {:>8} {:>9} {:>12} {:>14} {:>8}\n",
        "ID", "NAME", "RUNS", "TIME ms", "NS/RUN", "OVH %", "TOTAL RUNS", "TOTAL TIME ms", "NS/RUN"
    ));
    for ((name, id), now) in after {
        let then = before
            .get(&(name.clone(), *id))
            .copied()
            .unwrap_or(ProgStats {
                run_cnt: 0,
                run_time_ns: 0,
            });
        let runs = now.run_cnt.saturating_sub(then.run_cnt);
        let time_ns = now.run_time_ns.saturating_sub(then.run_time_ns);
        out.push_str(&format!(
            "{:>7} {:<16} {:>10} {:>12.3} {:>8} {:>9.4} {:>12} {:>14.3} {:>8}\n",
            id,
            name,
            runs,
            time_ns as f64 / 1e6,
            per_run(time_ns, runs),
            100.0 * time_ns as f64 / (window_ns * cpus),
            now.run_cnt,
            now.run_time_ns as f64 / 1e6,
            per_run(now.run_time_ns, now.run_cnt),
        ));
    }
    out
}

fn per_run(time_ns: u64, runs: u64) -> String {
    time_ns
        .checked_div(runs)
        .map_or_else(|| "-".into(), |n| n.to_string())
}

#[derive(Debug, Clone, Copy)]
pub enum StatsHow {
    /// A BPF_ENABLE_STATS fd: on while held, off when closed, even if we crash.
    EnableStatsFd,
    /// The sysctl was already 1: someone else keeps statistics on.
    AlreadyOn,
    /// The sysctl, which we set and put back.
    Sysctl,
}

impl StatsHow {
    pub fn describe(self) -> &'static str {
        match self {
            StatsHow::EnableStatsFd => "BPF_ENABLE_STATS",
            StatsHow::AlreadyOn => "kernel.bpf_stats_enabled, already on",
            StatsHow::Sysctl => "kernel.bpf_stats_enabled, restored afterwards",
        }
    }
}

pub struct StatsSwitch {
    pub how: StatsHow,
    _fd: Option<OwnedFd>,
}

impl StatsSwitch {
    pub fn on() -> Result<Self> {
        // SAFETY: a plain syscall wrapper; a non-negative result is a new fd we own.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if fd >= 0 {
            return Ok(StatsSwitch {
                how: StatsHow::EnableStatsFd,
                // SAFETY: fd is a fresh descriptor nobody else owns.
                _fd: Some(unsafe { OwnedFd::from_raw_fd(fd) }),
            });
        }
        let current =
            fs::read_to_string(STATS_SYSCTL).with_context(|| format!("reading {STATS_SYSCTL}"))?;
        if current.trim() != "0" {
            return Ok(StatsSwitch {
                how: StatsHow::AlreadyOn,
                _fd: None,
            });
        }
        fs::write(STATS_SYSCTL, "1")
            .with_context(|| format!("enabling BPF statistics through {STATS_SYSCTL}"))?;
        Ok(StatsSwitch {
            how: StatsHow::Sysctl,
            _fd: None,
        })
    }
}

impl Drop for StatsSwitch {
    fn drop(&mut self) {
        if let StatsHow::Sysctl = self.how {
            if let Err(e) = fs::write(STATS_SYSCTL, "0") {
                eprintln!("vigil: could not restore {STATS_SYSCTL} to 0: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_interval_and_totals() {
        let key = ("vigil_exec".to_string(), 7);
        let before = Sample::from([(
            key.clone(),
            ProgStats {
                run_cnt: 10,
                run_time_ns: 10_000,
            },
        )]);
        let after = Sample::from([(
            key,
            ProgStats {
                run_cnt: 110,
                run_time_ns: 210_000,
            },
        )]);
        let text = render(
            &before,
            &after,
            Duration::from_secs(1),
            StatsHow::EnableStatsFd,
        );
        let row = text.lines().nth(2).unwrap_or_default();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[..4], ["7", "vigil_exec", "100", "0.200"]);
        assert_eq!(cols[4], "2000");
        assert_eq!(cols[6..], ["110", "0.210", "1909"]);
        assert!(render(
            &Sample::new(),
            &Sample::new(),
            Duration::from_secs(1),
            StatsHow::Sysctl
        )
        .contains("no vigil programs"));
    }
}
