//! What /proc and the kernel say about an agent process: CPU time, memory,
//! and the BPF programs and maps it holds (from its fds' fdinfo, so only
//! objects that process owns are ever looked at).
use std::{fs, os::fd::FromRawFd, os::fd::OwnedFd, process::Command};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// User plus system CPU seconds of a process, all threads.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised comm, which may itself hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i - 3)
            .context("short /proc/PID/stat")?
            .parse()
            .context("non-numeric CPU time in /proc/PID/stat")
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(14)? + ticks(15)?) as f64 / hz)
}

/// A `Vm*:` line of /proc/PID/status, in KiB (VmHWM is the peak RSS).
pub fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BpfProg {
    pub id: u32,
    pub name: String,
    pub run_cnt: u64,
    pub run_time_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BpfMap {
    pub id: u32,
    pub name: String,
    pub map_type: u32,
    pub max_entries: u64,
    pub memlock: u64,
}

/// The BPF programs and maps a process holds fds to.
#[derive(Debug, Clone, Default)]
pub struct BpfObjects {
    pub progs: Vec<BpfProg>,
    pub maps: Vec<BpfMap>,
}

impl BpfObjects {
    pub fn of(pid: u32) -> Result<Self> {
        let mut out = BpfObjects::default();
        let dir = format!("/proc/{pid}/fdinfo");
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
            // An fd may close while we look; skip it.
            let Ok(text) = fs::read_to_string(entry?.path()) else {
                continue;
            };
            let field = |key: &str| -> Option<u64> {
                text.lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                    .and_then(|v| v.trim().parse().ok())
            };
            if let Some(id) = field("prog_id") {
                let id = id as u32;
                if out.progs.iter().all(|p| p.id != id) {
                    out.progs.push(BpfProg {
                        id,
                        name: String::new(),
                        run_cnt: field("run_cnt").unwrap_or(0),
                        run_time_ns: field("run_time_ns").unwrap_or(0),
                    });
                }
            } else if let Some(id) = field("map_id") {
                let id = id as u32;
                if out.maps.iter().all(|m| m.id != id) {
                    out.maps.push(BpfMap {
                        id,
                        name: String::new(),
                        map_type: field("map_type").unwrap_or(0) as u32,
                        max_entries: field("max_entries").unwrap_or(0),
                        memlock: field("memlock").unwrap_or(0),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Fills in names with bpftool, asking only about these ids.
    pub fn name(&mut self) {
        for p in &mut self.progs {
            p.name = bpftool_name("prog", p.id);
        }
        for m in &mut self.maps {
            m.name = bpftool_name("map", m.id);
        }
    }

    pub fn memlock(&self) -> u64 {
        self.maps.iter().map(|m| m.memlock).sum()
    }

    /// Run count and time per program since `before` (programs matched by id).
    pub fn since(&self, before: &BpfObjects) -> Vec<BpfProg> {
        self.progs
            .iter()
            .map(|p| {
                let then = before.progs.iter().find(|b| b.id == p.id);
                BpfProg {
                    run_cnt: p.run_cnt - then.map_or(0, |b| b.run_cnt.min(p.run_cnt)),
                    run_time_ns: p.run_time_ns
                        - then.map_or(0, |b| b.run_time_ns.min(p.run_time_ns)),
                    ..p.clone()
                }
            })
            .collect()
    }
}

fn bpftool_name(kind: &str, id: u32) -> String {
    Command::new("bpftool")
        .args(["--json", kind, "show", "id", &id.to_string()])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v.get("name")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Keeps the kernel's per-program statistics on while held (BPF_ENABLE_STATS;
/// closing the fd switches them back off, even if we crash).
pub fn enable_bpf_stats() -> Result<OwnedFd> {
    const BPF_ENABLE_STATS: libc::c_long = 32;
    // union bpf_attr's enable_stats: { __u32 type }, BPF_STATS_RUN_TIME = 0.
    let attr = [0u32; 4];
    // SAFETY: attr outlives the call and its size is passed along.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_ENABLE_STATS,
            attr.as_ptr(),
            std::mem::size_of_val(&attr) as libc::c_uint,
        )
    };
    if fd < 0 {
        bail!(
            "BPF_ENABLE_STATS failed: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
