//! From what each kernel printed to outcomes: the probe's capability table,
//! the proof tests it implies, and libtest results.
use std::collections::BTreeSet;

use serde_json::Value;

use super::initramfs::MARK;

/// Hook kinds vigil must be shown to drive on at least one kernel of the matrix.
const PROOF_FEATURES: [&str; 6] = ["kprobe", "kretprobe", "fentry", "fexit", "lsm", "fmod_ret"];

/// One block of output between markers, with the exit status the guest printed.
pub struct Section {
    pub text: String,
    pub rc: Option<i32>,
}

/// What one kernel (the host or a guest) produced.
pub struct Transcript {
    /// `host`, `6.1`, ...
    pub label: String,
    pub release: Option<String>,
    /// Guest uptime when /init started, in seconds.
    pub init_uptime: Option<f64>,
    pub probe: Option<Section>,
    /// (executable name, its output).
    pub tests: Vec<(String, Section)>,
    /// Why the run is incomplete (timeout, crash), if it is.
    pub problem: Option<String>,
    pub seconds: f64,
}

impl Transcript {
    pub fn new(label: &str) -> Self {
        Transcript {
            label: label.to_owned(),
            release: None,
            init_uptime: None,
            probe: None,
            tests: Vec::new(),
            problem: None,
            seconds: 0.0,
        }
    }

    /// Splits a guest's console log at the init script's markers.
    pub fn from_serial(label: &str, serial: &str) -> Self {
        let mut t = Transcript::new(label);
        let mut open: Option<(String, String)> = None;
        let mut done = false;
        for line in serial.lines() {
            let Some(rest) = line.strip_prefix(MARK).map(str::trim) else {
                if let Some((_, text)) = open.as_mut() {
                    text.push_str(line);
                    text.push('\n');
                }
                continue;
            };
            if let Some(kernel) = rest.strip_prefix("KERNEL ") {
                let mut words = kernel.split_whitespace();
                t.release = words.next().map(str::to_owned);
                t.init_uptime = words
                    .find_map(|w| w.strip_prefix("uptime="))
                    .and_then(|u| u.parse().ok());
            } else if let Some(what) = rest.strip_prefix("BEGIN ") {
                open = Some((what.to_owned(), String::new()));
            } else if let Some(end) = rest.strip_prefix("END ") {
                let rc = end
                    .rsplit_once("rc=")
                    .and_then(|(_, rc)| rc.trim().parse().ok());
                if let Some((what, text)) = open.take() {
                    let section = Section { text, rc };
                    match what.strip_prefix("test ") {
                        Some(name) => t.tests.push((name.to_owned(), section)),
                        None => t.probe = Some(section),
                    }
                }
            } else if rest.starts_with("DONE") {
                done = true;
            }
        }
        if let Some((what, _)) = open {
            t.problem = Some(format!("the guest stopped inside {what}"));
        } else if !done {
            t.problem = Some("the guest stopped before the end of /init".into());
        }
        t
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

pub struct Outcome {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

/// A feature row of the capability table.
pub struct Capability {
    pub feature: String,
    pub name: String,
    /// `yes`, or `no: <reason>`, or `FAIL: <reason>`.
    pub cell: String,
    pub reason: Option<String>,
}

/// The probe's JSON, whatever else the section holds (log lines, kernel messages).
pub fn capabilities(t: &Transcript) -> Result<Vec<Capability>, String> {
    let section = t.probe.as_ref().ok_or("no probe output")?;
    let start = section
        .text
        .find("\n{")
        .map(|i| i + 1)
        .or_else(|| section.text.starts_with('{').then_some(0));
    let end = section.text.rfind("\n}").map(|i| i + 2);
    let (Some(start), Some(end)) = (start, end) else {
        return Err(format!("no JSON in the probe output (rc {:?})", section.rc));
    };
    let json: Value =
        serde_json::from_str(&section.text[start..end]).map_err(|e| format!("probe JSON: {e}"))?;
    let features = json["features"]
        .as_array()
        .ok_or("probe JSON has no features")?;
    Ok(features
        .iter()
        .map(|f| {
            let reason = f["reason"].as_str().map(str::to_owned);
            let short = reason
                .as_deref()
                .map(without_parentheses)
                .unwrap_or_default();
            let cell = match (f["available"].as_bool(), f["failed_at"].as_str()) {
                (Some(true), _) => "yes".to_owned(),
                (_, Some("check")) => format!("FAIL: {short}"),
                _ => format!("no: {short}"),
            };
            Capability {
                feature: f["feature"].as_str().unwrap_or("?").to_owned(),
                name: f["name"].as_str().unwrap_or("?").to_owned(),
                cell,
                reason,
            }
        })
        .collect())
}

/// `load: EPERM (Operation not permitted)` → `load: EPERM`, to fit a table cell.
fn without_parentheses(reason: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in reason.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" :", ":")
}

/// Every outcome of one kernel: one test per probed feature (the proof tests
/// among them), then the libtest executables' tests.
pub fn outcomes(t: &Transcript, filter: Option<&str>) -> Vec<Outcome> {
    let mut out = Vec::new();
    match capabilities(t) {
        Ok(caps) => {
            for c in caps {
                let kind = if PROOF_FEATURES.contains(&c.feature.as_str()) {
                    "proof"
                } else {
                    "probe"
                };
                let status = match c.cell.split(':').next() {
                    Some("yes") => Status::Pass,
                    Some("FAIL") => Status::Fail,
                    _ => Status::Skip,
                };
                out.push(Outcome {
                    name: format!("{kind}/{}", c.feature),
                    status,
                    detail: c.reason.unwrap_or_default(),
                });
            }
        }
        Err(e) => out.push(Outcome {
            name: "probe".into(),
            status: Status::Fail,
            detail: e,
        }),
    }
    out.retain(|o| filter.is_none_or(|f| o.name.contains(f)));
    for (exe, section) in &t.tests {
        out.extend(libtest(exe, section));
    }
    if let Some(problem) = &t.problem {
        out.push(Outcome {
            name: "guest".into(),
            status: Status::Fail,
            detail: problem.clone(),
        });
    }
    out
}

/// Reads a test executable's output: libtest's (run with `--test-threads=1
/// --show-output`) or vigil's own kernel harness, which prints the same
/// `test NAME ... ok|FAILED|skipped: why` lines. A test counts as skipped
/// when its output has a line starting with `SKIP:`.
pub fn libtest(exe: &str, section: &Section) -> Vec<Outcome> {
    let mut skipped = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut results = Vec::new();
    let mut summary = false;
    for line in section.text.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            current = Some(name.to_owned());
        } else if line.starts_with("SKIP:") {
            if let Some(name) = &current {
                skipped.insert(name.clone());
            }
        } else if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, result)) = rest.rsplit_once(" ... ") {
                current = Some(name.to_owned());
                results.push((name.to_owned(), result.trim().to_owned()));
            }
        } else if line.starts_with("test result:") || line.contains(" passed, ") {
            summary = true;
        }
    }
    let mut out: Vec<Outcome> = results
        .into_iter()
        .map(|(name, result)| {
            let status = if result.starts_with("ok") && !skipped.contains(&name) {
                Status::Pass
            } else if result.starts_with("ok")
                || result.starts_with("ignored")
                || result.starts_with("skipped")
            {
                Status::Skip
            } else {
                Status::Fail
            };
            Outcome {
                name: format!("{exe}::{name}"),
                status,
                detail: result,
            }
        })
        .collect();
    let failed = out.iter().any(|o| o.status == Status::Fail);
    if !summary || (section.rc != Some(0) && !failed) {
        out.push(Outcome {
            name: exe.to_owned(),
            status: Status::Fail,
            detail: format!(
                "exited with rc {:?} without a test failure or summary (crash?)",
                section.rc
            ),
        });
    }
    out
}

/// Prints the capability matrix, one column per kernel.
pub fn print_capabilities(transcripts: &[Transcript]) {
    let columns: Vec<(String, Vec<Capability>)> = transcripts
        .iter()
        .map(|t| {
            let head = format!("{} {}", t.label, t.release.as_deref().unwrap_or("?"));
            (head, capabilities(t).unwrap_or_default())
        })
        .collect();
    let Some(rows) = columns.iter().map(|(_, c)| c).find(|c| !c.is_empty()) else {
        println!("(no kernel produced a capability table)");
        return;
    };
    let first = rows.iter().map(|c| c.name.len()).max().unwrap_or(0).max(7);
    let width = 34;
    print!("{:first$}", "feature");
    for (head, _) in &columns {
        print!("  {:width$}", clip(head, width));
    }
    println!();
    for (i, row) in rows.iter().enumerate() {
        print!("{:first$}", row.name);
        for (_, caps) in &columns {
            let cell = caps.get(i).map(|c| c.cell.as_str()).unwrap_or("-");
            print!("  {:width$}", clip(cell, width));
        }
        println!();
    }
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// Proof tests that no kernel passed and at least one skipped: the matrix
/// never showed vigil driving that hook kind.
pub fn proofs_never_run(per_kernel: &[Vec<Outcome>]) -> Vec<Outcome> {
    PROOF_FEATURES
        .iter()
        .map(|f| format!("proof/{f}"))
        .filter(|name| {
            let seen = per_kernel.iter().flatten().filter(|o| &o.name == name);
            let statuses: Vec<Status> = seen.map(|o| o.status).collect();
            !statuses.is_empty() && statuses.iter().all(|s| *s == Status::Skip)
        })
        .map(|name| Outcome {
            detail: "skipped on every kernel of the matrix".into(),
            name,
            status: Status::Fail,
        })
        .collect()
}

pub fn count(outcomes: &[Outcome], status: Status) -> usize {
    outcomes.iter().filter(|o| o.status == status).count()
}
