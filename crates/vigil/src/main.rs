//! vigil: eBPF security observability and runtime enforcement.
mod agent;
mod api;
mod bpf_usage;
mod config;
mod debug;
mod decode;
mod events;
mod kernel_ring;
mod metrics;
mod output;
mod policy;
mod policy_check;
mod probe;
mod process_cache;
mod ring_reader;
mod sensors;
mod stacks;
mod workload;

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    /// Log filter (tracing syntax), e.g. `info` or `vigil=debug`.
    #[arg(long, global = true, default_value = "info", env = "VIGIL_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: watch processes and write events.
    Agent(Box<config::AgentArgs>),
    /// Show which hook kinds this kernel offers, found by trying each one.
    Probe {
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        output: String,
    },
    /// Work with TracingPolicy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Look inside a running vigil.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Manage the policies of a running agent (gRPC).
    #[command(subcommand, visible_alias = "tp")]
    Tracingpolicy(TracingPolicyCommand),
    /// Stream a running agent's events (gRPC).
    Getevents {
        #[command(flatten)]
        server: ServerArg,
        /// Line format.
        #[arg(long, short = 'o', value_enum, default_value = "json")]
        output: output::Format,
        /// Only these event kinds (process_exec, process_kprobe, ...; repeatable).
        #[arg(long = "event-type", value_name = "KIND")]
        event_types: Vec<String>,
        /// Only events of processes whose binary starts with this (repeatable).
        #[arg(long = "binary-prefix", value_name = "PATH")]
        binary_prefixes: Vec<String>,
    },
    /// Version, node, sensors and kernel features of a running agent (gRPC).
    Status {
        #[command(flatten)]
        server: ServerArg,
        #[arg(long, short = 'o', value_parser = ["text", "json"], default_value = "text")]
        output: String,
    },
}

#[derive(clap::Args)]
struct ServerArg {
    /// The agent's gRPC address: `host:port` or `unix:///path`.
    #[arg(long, env = "VIGIL_SERVER_ADDRESS", default_value = api::client::DEFAULT_SERVER_ADDRESS)]
    server_address: String,
    /// Connect with TLS, trusting this CA (PEM) to have signed the agent's certificate.
    #[arg(long, env = "VIGIL_TLS_CA_FILE", value_name = "PATH")]
    tls_ca_file: Option<std::path::PathBuf>,
    /// This client's certificate (PEM), for an agent that demands one (mTLS).
    #[arg(long, env = "VIGIL_TLS_CERT_FILE", value_name = "PATH")]
    tls_cert_file: Option<std::path::PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(long, env = "VIGIL_TLS_KEY_FILE", value_name = "PATH")]
    tls_key_file: Option<std::path::PathBuf>,
    /// The name the agent's certificate must carry [default: the host of --server-address].
    #[arg(long, env = "VIGIL_TLS_SERVER_NAME", value_name = "NAME")]
    tls_server_name: Option<String>,
}

impl ServerArg {
    fn target(self) -> api::client::Target {
        api::client::Target {
            address: self.server_address,
            tls: api::tls::ClientTlsFiles {
                ca_file: self.tls_ca_file,
                cert_file: self.tls_cert_file,
                key_file: self.tls_key_file,
                server_name: self.tls_server_name,
            },
        }
    }
}

#[derive(Subcommand)]
enum TracingPolicyCommand {
    /// Add a policy from a YAML file; validation errors name the field.
    Add {
        #[command(flatten)]
        server: ServerArg,
        file: std::path::PathBuf,
    },
    /// Detach a policy and forget it.
    Delete {
        #[command(flatten)]
        server: ServerArg,
        name: String,
    },
    /// Policies with state, mode and counters.
    List {
        #[command(flatten)]
        server: ServerArg,
        #[arg(long, short = 'o', value_parser = ["text", "json"], default_value = "text")]
        output: String,
    },
    /// Re-attach a disabled policy.
    Enable {
        #[command(flatten)]
        server: ServerArg,
        name: String,
    },
    /// Detach a policy's hooks, keeping the policy.
    Disable {
        #[command(flatten)]
        server: ServerArg,
        name: String,
    },
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Per-program BPF run counts and run time of vigil's programs (kernel statistics).
    Progs {
        /// Seconds to measure (and between refreshes with --watch).
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Refresh until interrupted.
        #[arg(long)]
        watch: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policies offline (no root, no kernel); exits non-zero on any error.
    /// With --kernel (root), also load and attach every hook on this kernel,
    /// report how each is served or why it is refused, and detach.
    Check {
        /// Try every hook on this kernel; exit non-zero if a policy would be in the error state.
        #[arg(long)]
        kernel: bool,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = match config::expand_config_file(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // A client's error is the server's answer (e.g. one line per policy
    // problem): printed as is, not as a log line.
    let client = matches!(
        cli.command,
        Command::Tracingpolicy(_) | Command::Getevents { .. } | Command::Status { .. }
    );
    match run(cli.command) {
        Ok(code) => code,
        Err(e) if client => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Probe { output } => probe::run(output == "json").map(|()| ExitCode::SUCCESS),
        Command::Debug(DebugCommand::Progs { interval, watch }) => {
            let interval = std::time::Duration::try_from_secs_f64(interval)
                .context("--interval must be a positive number of seconds")?;
            debug::progs(interval, watch).map(|()| ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Check { files, kernel }) => {
            let report = vigil_policy::check_files(&files);
            print!("{report}");
            if !report.is_ok() {
                return Ok(ExitCode::FAILURE);
            }
            if !kernel {
                return Ok(ExitCode::SUCCESS);
            }
            let (report, served) = policy_check::on_this_kernel(&files)?;
            print!("{report}");
            Ok(if served {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Tracingpolicy(tp) => {
            match tp {
                TracingPolicyCommand::Add { server, file } => {
                    api::client::add_policy(&server.target(), &file)
                }
                TracingPolicyCommand::Delete { server, name } => {
                    api::client::delete_policy(&server.target(), &name)
                }
                TracingPolicyCommand::List { server, output } => {
                    api::client::list_policies(&server.target(), output == "json")
                }
                TracingPolicyCommand::Enable { server, name } => {
                    api::client::set_enabled(&server.target(), &name, true)
                }
                TracingPolicyCommand::Disable { server, name } => {
                    api::client::set_enabled(&server.target(), &name, false)
                }
            }?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Getevents {
            server,
            output,
            event_types,
            binary_prefixes,
        } => {
            let query = api::client::EventsQuery {
                compact: output == output::Format::Compact,
                event_types,
                binary_prefixes,
            };
            api::client::get_events(&server.target(), query).map(|()| ExitCode::SUCCESS)
        }
        Command::Status { server, output } => {
            api::client::status(&server.target(), output == "json").map(|()| ExitCode::SUCCESS)
        }
        Command::Agent(args) => {
            let stop = Arc::new(AtomicBool::new(false));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let metrics = Arc::new(metrics::Metrics::default());
                let address = api::server::Address::parse(&args.server_address);
                let tls = api::tls::server_tls(
                    args.server_tls_cert_file.as_deref(),
                    args.server_tls_key_file.as_deref(),
                    &args.server_tls_client_ca_files,
                )?;
                let api = match &address {
                    None if tls.is_some() => {
                        anyhow::bail!("--server-tls-* flags need a --server-address to serve on")
                    }
                    Some(addr) => {
                        let (commands, receiver) = api::command_channel();
                        let stream = output::EventStream::new(args.event_queue_size);
                        let server =
                            api::server::Api::new(commands, stream.clone(), &metrics.lost_events);
                        let tls_mode = match &tls {
                            None => "off",
                            Some(t) if t.verifies_clients => "mtls",
                            Some(_) => "on",
                        };
                        api::server::serve(addr, tls, server).await?;
                        tracing::info!(address = %args.server_address, tls = tls_mode, "serving the gRPC API");
                        Some(agent::ApiLink {
                            commands: receiver,
                            stream,
                        })
                    }
                    None => None,
                };
                let pipeline_stop = stop.clone();
                let mut pipeline = tokio::task::spawn_blocking(move || {
                    agent::run(*args, pipeline_stop, metrics, api)
                });
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .context("installing the SIGTERM handler")?;
                let stopped = tokio::select! {
                    r = &mut pipeline => Some(r),
                    _ = tokio::signal::ctrl_c() => None,
                    _ = term.recv() => None,
                };
                let result = match stopped {
                    Some(r) => r.context("agent thread")?,
                    None => {
                        tracing::info!("stopping");
                        stop.store(true, Ordering::Relaxed);
                        pipeline.await.context("agent thread")?
                    }
                };
                if let Some(api::server::Address::Unix(path)) = &address {
                    let _ = std::fs::remove_file(path);
                }
                result.map(|()| ExitCode::SUCCESS)
            })
        }
    }
}
