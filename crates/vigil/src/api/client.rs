//! The CLI side of the API: `vigil tracingpolicy ...`, `vigil getevents`
//! and `vigil status` talk to a running agent at `--server-address`.
use std::{io::Write, path::Path};

use anyhow::{anyhow, bail, Context, Result};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint, Uri};
use vigil_api::v1::{
    get_events_response::Item, vigil_client::VigilClient, AddTracingPolicyRequest,
    DeleteTracingPolicyRequest, DisableTracingPolicyRequest, EnableTracingPolicyRequest,
    EventFormat, GetEventsRequest, GetStatusRequest, ListTracingPoliciesRequest,
    TracingPolicyState, TracingPolicyStatus,
};

use super::{server::Address, tls::ClientTlsFiles};

/// Tetragon's default, like `tetra`.
pub const DEFAULT_SERVER_ADDRESS: &str = "localhost:54321";

/// Where the agent is and how to reach it.
pub struct Target {
    pub address: String,
    pub tls: ClientTlsFiles,
}

async fn connect(target: &Target) -> Result<VigilClient<Channel>> {
    let addr = Address::parse(&target.address).context("--server-address is empty")?;
    let tls = target.tls.config()?;
    let channel = match addr {
        Address::Tcp(hostport) => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let mut endpoint = Endpoint::from_shared(format!("{scheme}://{hostport}"))
                .with_context(|| format!("bad server address {hostport}"))?;
            if let Some(tls) = tls {
                endpoint = endpoint.tls_config(tls).context("setting up TLS")?;
            }
            endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to the agent at {scheme}://{hostport}"))?
        }
        Address::Unix(_) if tls.is_some() => {
            bail!("--tls-* flags are for TCP addresses; a unix:// socket admits root only already")
        }
        Address::Unix(path) => {
            let display = path.display().to_string();
            // The URI is required but unused: the connector dials the socket.
            Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .with_context(|| format!("connecting to the agent at unix://{display}"))?
        }
    };
    Ok(VigilClient::new(channel))
}

/// The server's message, as the user should read it; for a call that
/// never reached the server (e.g. a TLS alert), what stopped it.
fn rpc_error(status: tonic::Status) -> anyhow::Error {
    let mut message = status.message().to_owned();
    let mut cause = std::error::Error::source(&status);
    while let Some(e) = cause {
        // Some causes repeat their own source in their message.
        let text = e.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = e.source();
    }
    anyhow!(message)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn add_policy(target: &Target, file: &Path) -> Result<()> {
    let yaml =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    runtime()?.block_on(async {
        let mut client = connect(target).await?;
        let added = client
            .add_tracing_policy(AddTracingPolicyRequest { yaml })
            .await
            .map_err(rpc_error)?
            .into_inner();
        if let Some(p) = added.policy {
            println!("policy {} added: {}", p.name, state_name(&p));
            print_hooks(&p);
        }
        Ok(())
    })
}

pub fn delete_policy(target: &Target, name: &str) -> Result<()> {
    runtime()?.block_on(async {
        connect(target)
            .await?
            .delete_tracing_policy(DeleteTracingPolicyRequest { name: name.into() })
            .await
            .map_err(rpc_error)?;
        println!("policy {name} deleted");
        Ok(())
    })
}

pub fn set_enabled(target: &Target, name: &str, enable: bool) -> Result<()> {
    runtime()?.block_on(async {
        let mut client = connect(target).await?;
        let policy = if enable {
            client
                .enable_tracing_policy(EnableTracingPolicyRequest { name: name.into() })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .policy
        } else {
            client
                .disable_tracing_policy(DisableTracingPolicyRequest { name: name.into() })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .policy
        };
        if let Some(p) = policy {
            println!("policy {}: {}", p.name, state_name(&p));
        }
        Ok(())
    })
}

pub fn list_policies(target: &Target, json_output: bool) -> Result<()> {
    let policies = runtime()?.block_on(async {
        let reply = connect(target)
            .await?
            .list_tracing_policies(ListTracingPoliciesRequest {})
            .await
            .map_err(rpc_error)?;
        Ok::<_, anyhow::Error>(reply.into_inner().policies)
    })?;
    if json_output {
        let list: Vec<Value> = policies.iter().map(policy_json).collect();
        println!("{}", json!({ "policies": list }));
        return Ok(());
    }
    println!(
        "{:<24} {:<18} {:<8} {:>8} {:>8} {:>8}  SOURCE",
        "NAME", "STATE", "MODE", "NPOST", "NENFORCE", "NMONITOR"
    );
    for p in &policies {
        println!(
            "{:<24} {:<18} {:<8} {:>8} {:>8} {:>8}  {}",
            p.name,
            state_name(p),
            p.mode,
            p.events_posted,
            p.actions_enforced,
            p.actions_monitored,
            p.source
        );
    }
    Ok(())
}

fn state_name(p: &TracingPolicyStatus) -> &'static str {
    match p.state() {
        TracingPolicyState::Enabled => "enabled",
        TracingPolicyState::PartiallyEnabled => "partially_enabled",
        TracingPolicyState::Disabled => "disabled",
        TracingPolicyState::Error => "error",
        TracingPolicyState::Unspecified => "unknown",
    }
}

fn print_hooks(p: &TracingPolicyStatus) {
    if !p.scope.is_empty() {
        println!(
            "  scoped to {} ({} cgroups match now)",
            p.scope, p.scope_cgroups
        );
    }
    for h in &p.hooks {
        match h.status.as_str() {
            "refused" => println!("  {}: refused: {}", h.name, h.reason),
            status => println!(
                "  {}: {status} via {} ({})",
                h.name, h.mechanism, h.guarantee
            ),
        }
    }
}

fn policy_json(p: &TracingPolicyStatus) -> Value {
    json!({
        "name": p.name,
        "source": p.source,
        "state": state_name(p),
        "mode": p.mode,
        "error": p.error,
        "scope": p.scope,
        "scope_cgroups": p.scope_cgroups,
        "hooks": p.hooks.iter().map(|h| json!({
            "name": h.name,
            "status": h.status,
            "mechanism": h.mechanism,
            "guarantee": h.guarantee,
            "reason": h.reason,
        })).collect::<Vec<_>>(),
        "events_posted": p.events_posted,
        "actions_enforced": p.actions_enforced,
        "actions_monitored": p.actions_monitored,
    })
}

pub struct EventsQuery {
    pub compact: bool,
    pub event_types: Vec<String>,
    pub binary_prefixes: Vec<String>,
}

/// Prints events as they come until the agent goes away or the user stops it.
pub fn get_events(target: &Target, q: EventsQuery) -> Result<()> {
    runtime()?.block_on(async {
        let mut client = connect(target).await?;
        let format = if q.compact {
            EventFormat::Compact
        } else {
            EventFormat::Json
        };
        let mut stream = client
            .get_events(GetEventsRequest {
                event_types: q.event_types,
                binary_prefixes: q.binary_prefixes,
                format: format.into(),
            })
            .await
            .map_err(rpc_error)?
            .into_inner();
        let mut out = std::io::stdout().lock();
        loop {
            let next = tokio::select! {
                m = stream.message() => m.map_err(rpc_error)?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let Some(msg) = next else {
                bail!("the agent closed the stream");
            };
            match msg.item {
                Some(Item::EventJson(line)) | Some(Item::Compact(line)) => {
                    writeln!(out, "{line}")?;
                }
                Some(Item::Lost(l)) => {
                    eprintln!("vigil getevents: fell behind, {} events lost", l.count);
                }
                None => {}
            }
            out.flush()?;
        }
    })
}

pub fn status(target: &Target, json_output: bool) -> Result<()> {
    let s = runtime()?.block_on(async {
        let reply = connect(target)
            .await?
            .get_status(GetStatusRequest {})
            .await
            .map_err(rpc_error)?;
        Ok::<_, anyhow::Error>(reply.into_inner())
    })?;
    if json_output {
        let features: Vec<Value> = s
            .kernel_features
            .iter()
            .map(|f| json!({"name": f.name, "available": f.available, "reason": f.reason}))
            .collect();
        println!(
            "{}",
            json!({
                "version": s.version,
                "node_name": s.node_name,
                "kernel_release": s.kernel_release,
                "sensors": s.sensors,
                "kernel_features": features,
                "uptime_seconds": s.uptime_seconds,
                "events_written": s.events_written,
                "policies": s.policies,
                "event_subscribers": s.event_subscribers,
            })
        );
        return Ok(());
    }
    println!(
        "vigil {} on {} (kernel {})",
        s.version, s.node_name, s.kernel_release
    );
    println!(
        "up {} s, {} events written, {} policies, {} event subscribers",
        s.uptime_seconds, s.events_written, s.policies, s.event_subscribers
    );
    println!("sensors: {}", s.sensors.join(", "));
    for f in &s.kernel_features {
        if f.available {
            println!("  {:<20} yes", f.name);
        } else {
            println!("  {:<20} no: {}", f.name, f.reason);
        }
    }
    Ok(())
}
