//! The workloads, what each agent is told to watch during them, and how the
//! events an agent wrote are matched to the workload's own activity.
use std::{collections::HashSet, path::PathBuf, process::Command};

use anyhow::Result;
use serde::Serialize;

use super::{setup, Env};

/// Files a host agent would watch; the open loops never touch them.
const SENSITIVE_FILES: [&str; 3] = ["/etc/shadow", "/etc/gshadow", "/etc/passwd"];
/// Audit rule key, so that only our rules' records are counted.
pub const AUDIT_KEY: &str = "vigil_bench";
/// Printed by bpftrace's BEGIN probe, which runs once every probe is attached.
pub const BPFTRACE_READY: &str = "vigil-bench-ready";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// fork + exec of /bin/true, one after another.
    ExecStorm,
    /// openat + close of a file no rule or policy matches (vigil: a
    /// `sys_openat` policy on the paths).
    QuietOpen,
    /// The same loop; vigil watches the paths with a `security_file_open`
    /// file policy, Tetragon's usual form and auditd `-w`'s equivalent.
    QuietFile,
    /// openat + close of a file every agent reports.
    LoudOpen,
    /// TCP connect + accept on loopback.
    Connect,
    /// `make -j2` of a generated C project.
    Build,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::ExecStorm,
        Kind::QuietOpen,
        Kind::QuietFile,
        Kind::LoudOpen,
        Kind::Connect,
        Kind::Build,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ExecStorm => "exec-storm",
            Kind::QuietOpen => "quiet-open",
            Kind::QuietFile => "quiet-open-file",
            Kind::LoudOpen => "loud-open",
            Kind::Connect => "connect",
            Kind::Build => "build",
        }
    }
}

pub struct Workload {
    pub kind: Kind,
    pub iterations: u64,
    /// The file the open loops open.
    target: PathBuf,
    project: PathBuf,
}

/// What an agent reported, reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Exec {
        pid: u32,
        ppid: u32,
        binary: String,
    },
    Exit,
    /// A file or network hook fired for `pid`; `path` when the tool gives it.
    Syscall {
        pid: u32,
        path: Option<String>,
    },
    Lost {
        kind: String,
        count: u64,
    },
}

impl Workload {
    pub fn new(env: &Env, kind: Kind) -> Workload {
        let quick = env.quick;
        let iterations = match kind {
            Kind::ExecStorm => pick(quick, 500, 2_000),
            Kind::QuietOpen | Kind::QuietFile => pick(quick, 200_000, 1_000_000),
            // auditd logs each of these at ~40 µs (kernel.md), so fewer.
            Kind::LoudOpen => pick(quick, 20_000, 100_000),
            Kind::Connect => pick(quick, 20_000, 100_000),
            // Translation units in the generated project.
            Kind::Build => pick(quick, 16, 96),
        };
        let target = match kind {
            Kind::LoudOpen => env.work.join("loud-open-target"),
            _ => env.work.join("quiet-open-target"),
        };
        Workload {
            kind,
            iterations,
            target,
            project: env.work.join("c-project"),
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    pub fn describe(&self) -> String {
        let n = self.iterations;
        match self.kind {
            Kind::ExecStorm => format!("{n} × fork + exec /bin/true"),
            Kind::QuietOpen => format!("{n} × openat + close, path never watched"),
            Kind::QuietFile => format!("{n} × openat + close, path never watched, file policy"),
            Kind::LoudOpen => format!("{n} × openat + close, every open reported"),
            Kind::Connect => format!("{n} × TCP connect + accept on 127.0.0.1"),
            Kind::Build => format!("make -j2 of a generated C project, {n} files + main"),
        }
    }

    /// Untimed preparation before each run.
    pub fn prepare(&self) -> Result<()> {
        match self.kind {
            Kind::QuietOpen | Kind::QuietFile | Kind::LoudOpen => {
                if !self.target.exists() {
                    std::fs::write(&self.target, b"bench\n")?;
                }
                Ok(())
            }
            Kind::Build => {
                if !self.project.join("Makefile").exists() {
                    setup::generate_c_project(&self.project, self.iterations as usize)?;
                }
                setup::run(
                    Command::new("make")
                        .args(["-s", "clean", "-C"])
                        .arg(&self.project),
                )
            }
            Kind::ExecStorm | Kind::Connect => Ok(()),
        }
    }

    pub fn command(&self, env: &Env) -> Command {
        let n = self.iterations.to_string();
        match self.kind {
            Kind::ExecStorm => {
                let mut c = Command::new(env.bin.join("execstorm"));
                c.arg(n);
                c
            }
            Kind::QuietOpen | Kind::QuietFile | Kind::LoudOpen => {
                let mut c = Command::new(env.bin.join("openloop"));
                c.arg(&self.target).arg(n);
                c
            }
            Kind::Connect => {
                let mut c = Command::new(env.bin.join("connloop"));
                c.arg(n);
                c
            }
            Kind::Build => {
                let mut c = Command::new("make");
                c.args(["-s", "-j2", "-C"]).arg(&self.project);
                c
            }
        }
    }

    /// Events the workload should produce; for the build it is only known
    /// once a run has been counted by a tool that never drops (auditd).
    pub fn expected(&self) -> Option<u64> {
        match self.kind {
            Kind::ExecStorm | Kind::LoudOpen | Kind::Connect => Some(self.iterations),
            Kind::QuietOpen | Kind::QuietFile => Some(0),
            Kind::Build => None,
        }
    }

    /// The TracingPolicy for workloads that need file or network hooks.
    pub fn policy(&self, env: &Env) -> Option<PathBuf> {
        let file = match self.kind {
            Kind::QuietOpen => "quiet-open.yaml",
            Kind::QuietFile => "quiet-file.yaml",
            Kind::LoudOpen => "loud-open.yaml",
            Kind::Connect => "connect.yaml",
            Kind::ExecStorm | Kind::Build => return None,
        };
        Some(env.root.join("bench/policies").join(file))
    }

    /// auditctl arguments, one rule per entry.
    pub fn audit_rules(&self) -> Vec<Vec<String>> {
        let syscall = |name: &str| {
            [
                "-a",
                "always,exit",
                "-F",
                "arch=b64",
                "-S",
                name,
                "-k",
                AUDIT_KEY,
            ]
            .map(String::from)
            .to_vec()
        };
        match self.kind {
            Kind::ExecStorm | Kind::Build => vec![syscall("execve")],
            Kind::QuietOpen | Kind::QuietFile => SENSITIVE_FILES
                .iter()
                .map(|f| {
                    ["-w", f, "-p", "rwa", "-k", AUDIT_KEY]
                        .map(String::from)
                        .to_vec()
                })
                .collect(),
            Kind::LoudOpen => vec![syscall("openat")],
            Kind::Connect => vec![syscall("connect")],
        }
    }

    pub fn bpftrace_program(&self) -> String {
        let begin = format!("BEGIN {{ printf(\"{BPFTRACE_READY}\\n\"); }}");
        let probe = match self.kind {
            Kind::ExecStorm | Kind::Build => "tracepoint:sched:sched_process_exec { printf(\"exec %d %d %s\\n\", pid, curtask->real_parent->tgid, str(args->filename)); }".to_owned(),
            Kind::QuietOpen | Kind::QuietFile => format!(
                "tracepoint:syscalls:sys_enter_openat /{}/ {{ printf(\"open %d %s\\n\", pid, str(args->filename)); }}",
                SENSITIVE_FILES.map(|f| format!("str(args->filename) == \"{f}\"")).join(" || ")
            ),
            Kind::LoudOpen => "tracepoint:syscalls:sys_enter_openat /comm == \"openloop\"/ { printf(\"open %d %s\\n\", pid, str(args->filename)); }".to_owned(),
            Kind::Connect => "tracepoint:syscalls:sys_enter_connect /comm == \"connloop\"/ { printf(\"connect %d\\n\", pid); }".to_owned(),
        };
        format!("{begin} {probe}")
    }

    /// The workload's events among what an agent observed.
    pub fn matched(&self, workload_pid: u32, observed: &[Observed]) -> u64 {
        let target = self.target.to_string_lossy();
        let mut n = 0;
        // The build's processes: everything exec'd below make.
        let mut tree = HashSet::from([workload_pid]);
        for o in observed {
            let hit = match (self.kind, o) {
                (Kind::ExecStorm, Observed::Exec { ppid, .. }) => *ppid == workload_pid,
                (Kind::Build, Observed::Exec { pid, ppid, .. }) => {
                    let below = tree.contains(ppid);
                    if below {
                        tree.insert(*pid);
                    }
                    below
                }
                (Kind::LoudOpen, Observed::Syscall { pid, path }) => {
                    *pid == workload_pid && path.as_deref().is_none_or(|p| p == target)
                }
                (
                    Kind::QuietOpen | Kind::QuietFile | Kind::Connect,
                    Observed::Syscall { pid, .. },
                ) => *pid == workload_pid,
                _ => false,
            };
            n += u64::from(hit);
        }
        n
    }
}

fn pick(quick: bool, quick_value: u64, full_value: u64) -> u64 {
    if quick {
        quick_value
    } else {
        full_value
    }
}

pub fn lost(observed: &[Observed]) -> u64 {
    observed
        .iter()
        .map(|o| match o {
            Observed::Lost { count, .. } => *count,
            _ => 0,
        })
        .sum()
}

/// vigil's JSON lines. Start-time scan records (`procFS`) are not events of the run.
pub fn parse_vigil(text: &str) -> Vec<Observed> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let pid_of = |v: &serde_json::Value, key: &str| {
                v.get(key)?.get("pid")?.as_u64().map(|p| p as u32)
            };
            if let Some(e) = v.get("process_exec") {
                let process = e.get("process")?;
                let flags = process.get("flags")?.as_str().unwrap_or_default();
                if flags.contains("procFS") {
                    return None;
                }
                return Some(Observed::Exec {
                    pid: pid_of(e, "process")?,
                    ppid: pid_of(e, "parent").unwrap_or(0),
                    binary: process.get("binary")?.as_str()?.to_owned(),
                });
            }
            if v.get("process_exit").is_some() {
                return Some(Observed::Exit);
            }
            if let Some(e) = v.get("lost_events") {
                return Some(Observed::Lost {
                    kind: e.get("kind")?.as_str()?.to_owned(),
                    count: e.get("count")?.as_u64()?,
                });
            }
            // Policy events (process_tracepoint, process_kprobe, ...).
            let (_, e) = v
                .as_object()?
                .iter()
                .find(|(k, _)| k.starts_with("process_"))?;
            Some(Observed::Syscall {
                pid: pid_of(e, "process")?,
                path: None,
            })
        })
        .collect()
}

/// auditd's log, our key only. A PATH record belongs to the SYSCALL record before it.
pub fn parse_audit(text: &str) -> Vec<Observed> {
    let mut out = Vec::new();
    let mut syscall_pid = None;
    for line in text.lines() {
        let field = |key: &str| {
            line.split([' ', '\x1d'])
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        };
        let num = |key: &str| field(key).and_then(|v| v.parse::<u32>().ok());
        match field("type") {
            Some("SYSCALL") => {
                syscall_pid = None;
                if field("key") != Some(&format!("\"{AUDIT_KEY}\"")) {
                    continue;
                }
                let (Some(pid), Some(nr)) = (num("pid"), num("syscall")) else {
                    continue;
                };
                match nr {
                    // execve
                    59 if field("success") == Some("yes") => out.push(Observed::Exec {
                        pid,
                        ppid: num("ppid").unwrap_or(0),
                        binary: field("exe")
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_owned(),
                    }),
                    // openat: the path follows in a PATH record.
                    257 => syscall_pid = Some(pid),
                    _ => out.push(Observed::Syscall { pid, path: None }),
                }
            }
            Some("PATH") => {
                if let (Some(pid), Some(name)) = (syscall_pid, field("name")) {
                    out.push(Observed::Syscall {
                        pid,
                        path: Some(name.trim_matches('"').to_owned()),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// bpftrace's output lines as printed by `bpftrace_program`, plus its loss notices.
pub fn parse_bpftrace(text: &str) -> Vec<Observed> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let num = |s: Option<&str>| s.and_then(|s| s.parse::<u32>().ok());
            match f.next()? {
                "exec" => Some(Observed::Exec {
                    pid: num(f.next())?,
                    ppid: num(f.next())?,
                    binary: f.next().unwrap_or_default().to_owned(),
                }),
                "open" => Some(Observed::Syscall {
                    pid: num(f.next())?,
                    path: f.next().map(str::to_owned),
                }),
                "connect" => Some(Observed::Syscall {
                    pid: num(f.next())?,
                    path: None,
                }),
                "Lost" => Some(Observed::Lost {
                    kind: "perf_buffer".into(),
                    count: f.next()?.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_records_become_events() {
        let log = "type=SYSCALL msg=audit(1.0:1): arch=c000003e syscall=59 success=yes exit=0 ppid=10 pid=11 comm=\"true\" exe=\"/usr/bin/true\" key=\"vigil_bench\"\x1dARCH=x86_64\n\
type=EXECVE msg=audit(1.0:1): argc=1 a0=\"true\"\n\
type=SYSCALL msg=audit(1.0:2): arch=c000003e syscall=257 success=yes exit=3 ppid=10 pid=12 key=\"vigil_bench\"\n\
type=PATH msg=audit(1.0:2): item=0 name=\"/t/loud\" inode=5\n\
type=SYSCALL msg=audit(1.0:3): arch=c000003e syscall=42 success=yes exit=0 ppid=10 pid=13 key=(null)\n";
        assert_eq!(
            parse_audit(log),
            [
                Observed::Exec {
                    pid: 11,
                    ppid: 10,
                    binary: "/usr/bin/true".into()
                },
                Observed::Syscall {
                    pid: 12,
                    path: Some("/t/loud".into())
                },
            ]
        );
    }

    #[test]
    fn vigil_lines_become_events() {
        let text = r#"{"process_exec":{"process":{"pid":5,"binary":"/usr/bin/true","flags":"execve clone"},"parent":{"pid":4}},"time":"t"}
{"process_exec":{"process":{"pid":1,"binary":"/sbin/init","flags":"procFS"}},"time":"t"}
{"lost_events":{"source":"kernel_ring_buffer","kind":"process_exec","count":3,"total":3},"time":"t"}
{"process_exit":{"process":{"pid":5}},"time":"t"}"#;
        let got = parse_vigil(text);
        assert_eq!(got.len(), 3);
        assert_eq!(lost(&got), 3);
        assert!(matches!(
            got[0],
            Observed::Exec {
                pid: 5,
                ppid: 4,
                ..
            }
        ));
    }

    #[test]
    fn build_tree_counts_descendants_only() {
        let exec = |pid, ppid| Observed::Exec {
            pid,
            ppid,
            binary: String::new(),
        };
        let w = Workload {
            kind: Kind::Build,
            iterations: 1,
            target: PathBuf::new(),
            project: PathBuf::new(),
        };
        let seen = [exec(101, 100), exec(102, 101), exec(200, 1), exec(103, 102)];
        assert_eq!(w.matched(100, &seen), 3);
        let seen =
            parse_bpftrace("Attaching 2 probes...\nexec 101 100 /usr/bin/cc\nLost 7 events\n");
        assert_eq!(w.matched(100, &seen), 1);
        assert_eq!(lost(&seen), 7);
    }
}
