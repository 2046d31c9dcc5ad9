//! The agent's settings: command-line flags (Tetragon's names where the
//! concept is the same), optionally preset by a YAML file whose keys are the
//! flag names (`export-filename: /var/log/vigil.json`). Flags win over the file.
use std::{ffi::OsString, path::PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::output::Format;

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// YAML file of flag values (keys are flag names without dashes).
    #[arg(long, value_name = "PATH")]
    pub config_file: Option<PathBuf>,

    /// Node name in events and exec ids [default: the host name].
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,

    /// Write events to this file (JSON lines, mode 0600, rotated by size).
    #[arg(long, value_name = "PATH")]
    pub export_filename: Option<PathBuf>,

    /// Rotate the export file past this size; 0 never rotates.
    #[arg(long, default_value_t = 10)]
    pub export_file_max_size_mb: u64,

    /// Rotated export files to keep.
    #[arg(long, default_value_t = 5)]
    pub export_file_max_backups: u32,

    /// Also write events to stdout when writing to a file.
    #[arg(long)]
    pub export_stdout: bool,

    /// Format on stdout [default: compact on a terminal, json otherwise].
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Format>,

    /// Add process_credentials and cap to process objects.
    #[arg(long)]
    pub enable_process_cred: bool,

    /// Add ns (namespace inodes) to process objects.
    #[arg(long)]
    pub enable_process_ns: bool,

    /// Add ancestors beyond the parent (`base`, as in Tetragon; later also hook kinds).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_missing_value = "base")]
    pub enable_ancestors: Option<Vec<String>>,

    /// Most processes kept in the user-space process cache.
    #[arg(long, default_value_t = 65536)]
    pub process_cache_size: usize,

    /// Capacity of the in-kernel process table (allocated as used).
    #[arg(long, default_value_t = 16384)]
    pub execve_map_entries: u32,

    /// Kernel-to-user ring buffer size in bytes (a power of two). Its pages
    /// are mapped into the agent when it starts, so they count in its RSS.
    #[arg(long, default_value_t = 8 << 20)]
    pub rb_size: u32,

    /// How often the ring buffer is read when the kernel has not woken us.
    #[arg(long, default_value_t = 10)]
    pub rb_poll_interval_ms: u64,

    /// Bytes of kernel records held in user space while the event pipeline
    /// catches up (bursts, a busy CPU, a slow disk); past it the kernel ring
    /// fills and further records are counted lost. Used only when needed;
    /// 0 hands the pipeline one batch at a time.
    #[arg(long, default_value_t = 64 << 20)]
    pub event_queue_bytes: usize,

    /// Run the event reader this much above normal CPU priority (nice -N;
    /// 0 leaves it), as auditd's priority_boost does, so that a busy machine
    /// does not starve it into losing events. The gRPC threads stay at 0.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=20))]
    pub priority_boost: u8,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:2112).
    #[arg(long, value_name = "ADDR")]
    pub metrics_server: Option<String>,

    /// Keep the kernel's BPF run-time statistics on while the agent runs, so that
    /// the metrics vigil_bpf_prog_runs and vigil_bpf_prog_run_time_seconds count
    /// (costs a few tens of ns per program run).
    #[arg(long)]
    pub enable_bpf_stats: bool,
    /// Serve the gRPC API here: `host:port` or `unix:///path`; empty disables it.
    #[arg(long, value_name = "ADDR", default_value = crate::api::client::DEFAULT_SERVER_ADDRESS)]
    pub server_address: String,

    /// TLS on a TCP `--server-address`: the agent's certificate (PEM, the
    /// chain after it).
    #[arg(long, value_name = "PATH")]
    pub server_tls_cert_file: Option<PathBuf>,

    /// The private key of `--server-tls-cert-file` (PEM).
    #[arg(long, value_name = "PATH")]
    pub server_tls_key_file: Option<PathBuf>,

    /// CA certificates (PEM; comma-separated or repeated) whose signature a
    /// client's certificate must carry (mTLS). Such clients are served from
    /// any host as any user; without client CAs, TCP serves root on this host only.
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub server_tls_client_ca_files: Vec<PathBuf>,

    /// Events kept for each GetEvents subscriber that falls behind; past
    /// that it loses the oldest, counted and told.
    #[arg(long, default_value_t = 10000)]
    pub event_queue_size: usize,

    /// Load this TracingPolicy file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub tracing_policy: Vec<PathBuf>,

    /// Load every .yaml/.yml TracingPolicy file of this directory (repeatable).
    #[arg(long, value_name = "DIR")]
    pub tracing_policy_dir: Vec<PathBuf>,

    /// Where the container runtime keeps each container's OCI config.json
    /// (`<DIR>/<id>/config.json` or `<DIR>/<id>/userdata/config.json`),
    /// which names its pod: for policies scoped to Kubernetes workloads
    /// (repeatable; default containerd's k8s.io tasks and CRI-O's containers).
    #[arg(long, value_name = "DIR", default_values_t = crate::workload::DEFAULT_STATE_DIRS.map(String::from))]
    pub cri_state_dir: Vec<String>,

    /// How often the cgroup tree is scanned for started and removed
    /// containers while a scoped policy is loaded (a process in a cgroup not
    /// seen before triggers a scan too).
    #[arg(long, value_name = "MS", default_value_t = 10000)]
    pub workload_rescan_interval_ms: u64,

    /// Keep policies added over the API (and their disabled state) in
    /// `--grpc-policies-dir`, and load them again at start.
    #[arg(long)]
    pub persist_grpc_policies: bool,

    /// Where `--persist-grpc-policies` keeps them.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/run/vigil/grpc-policies"
    )]
    pub grpc_policies_dir: PathBuf,
}

impl AgentArgs {
    pub fn ancestors_enabled(&self) -> bool {
        self.enable_ancestors
            .as_ref()
            .is_some_and(|v| v.iter().any(|s| s == "base"))
    }
}

/// Inserts the config file's settings as flags right after the `agent`
/// subcommand, so that flags given on the command line override them.
pub fn expand_config_file(args: Vec<OsString>) -> Result<Vec<OsString>> {
    let Some(pos) = args
        .iter()
        .position(|a| a == "--config-file" || a.to_string_lossy().starts_with("--config-file="))
    else {
        return Ok(args);
    };
    let path = match args[pos].to_string_lossy().strip_prefix("--config-file=") {
        Some(p) => PathBuf::from(p),
        None => match args.get(pos + 1) {
            Some(p) => PathBuf::from(p),
            None => bail!("--config-file needs a path"),
        },
    };
    let Some(agent) = args.iter().position(|a| a == "agent") else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let flags =
        config_flags(&text).with_context(|| format!("in config file {}", path.display()))?;
    let mut out = args;
    out.splice(agent + 1..agent + 1, flags);
    Ok(out)
}

fn config_flags(yaml: &str) -> Result<Vec<OsString>> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_saphyr::from_str(yaml).context("not a YAML mapping of flag names to values")?;
    let mut out = Vec::new();
    for (key, value) in map {
        if key == "config-file" {
            bail!("config-file cannot be set from a config file");
        }
        let flag = format!("--{key}");
        match value {
            serde_json::Value::Bool(true) => out.push(flag.into()),
            serde_json::Value::Bool(false) | serde_json::Value::Null => {}
            serde_json::Value::String(s) => out.push(format!("{flag}={s}").into()),
            serde_json::Value::Number(n) => out.push(format!("{flag}={n}").into()),
            serde_json::Value::Array(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect();
                out.push(format!("{flag}={}", items.join(",")).into());
            }
            serde_json::Value::Object(_) => bail!("{key}: nested mappings are not flag values"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_becomes_flags() {
        let flags = config_flags("export-filename: /tmp/x.json\nenable-process-ns: true\nenable-process-cred: false\nrb-size: 4096\nenable-ancestors: [base]\n").unwrap();
        let mut flags: Vec<_> = flags
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        flags.sort();
        assert_eq!(
            flags,
            [
                "--enable-ancestors=base",
                "--enable-process-ns",
                "--export-filename=/tmp/x.json",
                "--rb-size=4096",
            ]
        );
        assert!(config_flags("- a\n- b\n").is_err());
        assert!(config_flags("x:\n  y: 1\n").is_err());
    }
}
