//! The gRPC server of `--server-address` (TCP `host:port`, optionally with
//! TLS, or `unix:///path` for a socket only root can use; TCP callers must
//! be root on this host too unless mTLS vouches for them, see `peer`):
//! streams events to subscribers and forwards policy commands to the
//! agent's event loop.
use std::{os::unix::fs::PermissionsExt, pin::Pin, time::Instant};

use anyhow::{bail, Context, Result};
use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::sync::oneshot;
use tokio_stream::{
    wrappers::{
        errors::BroadcastStreamRecvError, BroadcastStream, TcpListenerStream, UnixListenerStream,
    },
    Stream, StreamExt,
};
use tonic::{Request, Response, Status};
use vigil_api::v1::{
    get_events_response::Item,
    vigil_server::{Vigil, VigilServer},
    AddTracingPolicyRequest, AddTracingPolicyResponse, DeleteTracingPolicyRequest,
    DeleteTracingPolicyResponse, DisableTracingPolicyRequest, DisableTracingPolicyResponse,
    EnableTracingPolicyRequest, EnableTracingPolicyResponse, EventFormat, GetEventsRequest,
    GetEventsResponse, GetStatusRequest, GetStatusResponse, HookStatus, KernelFeature,
    ListTracingPoliciesRequest, ListTracingPoliciesResponse, SubscriberLoss, TracingPolicyState,
    TracingPolicyStatus,
};
use vigil_events::{compact, Event, EventBody};

use super::{peer::Admission, tls::ServerTls, Command, CommandSender, Reply};
use crate::{
    metrics::LossLabels,
    output::{EventStream, SubscriberGuard},
    policy::{PolicyError, PolicyReport, PolicyState},
};

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(String),
    Unix(std::path::PathBuf),
}

impl Address {
    /// `unix:///run/vigil.sock` or `host:port`; empty: no server.
    pub fn parse(s: &str) -> Option<Address> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        Some(match s.strip_prefix("unix://") {
            Some(path) => Address::Unix(path.into()),
            None => Address::Tcp(s.to_owned()),
        })
    }
}

pub struct Api {
    commands: CommandSender,
    stream: EventStream,
    /// `vigil_lost_events{source="grpc_subscriber"}`.
    lost: Counter,
    started: Instant,
}

impl Api {
    pub fn new(
        commands: CommandSender,
        stream: EventStream,
        lost_events: &Family<LossLabels, Counter>,
    ) -> Self {
        let lost = lost_events
            .get_or_create(&LossLabels {
                source: "grpc_subscriber".into(),
                kind: "any".into(),
            })
            .clone();
        Api {
            commands,
            stream,
            lost,
            started: Instant::now(),
        }
    }

    /// Sends a command to the event loop and waits for its answer.
    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| Status::unavailable("the agent is stopping"))?;
        rx.await
            .map_err(|_| Status::unavailable("the agent is stopping"))
    }
}

/// Binds the address now (so that a bad address or TLS setup fails the
/// start), then serves on the current tokio runtime.
pub async fn serve(address: &Address, tls: Option<ServerTls>, api: Api) -> Result<()> {
    let mut builder = tonic::transport::Server::builder();
    let mut admission = Admission {
        verifies_clients: false,
    };
    if let Some(tls) = tls {
        if let Address::Unix(path) = address {
            bail!(
                "TLS is for TCP addresses; unix://{} admits root only already",
                path.display()
            );
        }
        admission.verifies_clients = tls.verifies_clients;
        builder = builder
            .tls_config(tls.config)
            .context("setting up TLS with the --server-tls-* files")?;
    }
    let service = builder.add_service(VigilServer::with_interceptor(api, admission));
    match address {
        Address::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the gRPC server to {addr}"))?;
            tokio::spawn(service.serve_with_incoming(TcpListenerStream::new(listener)));
        }
        Address::Unix(path) => {
            // A live agent's socket is refused; one left by an agent that
            // did not stop cleanly is replaced.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "another agent serves the gRPC API on {}: give this one its own --server-address",
                    path.display()
                );
            }
            if std::fs::symlink_metadata(path).is_ok() {
                std::fs::remove_file(path)
                    .with_context(|| format!("removing the old socket {}", path.display()))?;
            }
            // Whoever can connect can change policies: root only. Bound
            // under a temporary name and renamed once restricted, so that
            // the socket is never reachable with a looser mode.
            let mut staging = path.as_os_str().to_owned();
            staging.push(format!(".{}.tmp", std::process::id()));
            let staging = std::path::PathBuf::from(staging);
            let listener = tokio::net::UnixListener::bind(&staging)
                .with_context(|| format!("binding the gRPC server to {}", staging.display()))?;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
                .and_then(|()| std::fs::rename(&staging, path))
                .with_context(|| format!("restricting {}", path.display()))?;
            tokio::spawn(service.serve_with_incoming(UnixListenerStream::new(listener)));
        }
    }
    Ok(())
}

/// A subscriber's filters and format; it is counted while its stream lives.
struct Subscription {
    kinds: Vec<String>,
    binary_prefixes: Vec<String>,
    compact: bool,
    _counted: SubscriberGuard,
}

impl Subscription {
    fn wants(&self, ev: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == ev.body.kind()) {
            return false;
        }
        if self.binary_prefixes.is_empty() {
            return true;
        }
        let binary = match &ev.body {
            EventBody::ProcessExec(e) => &e.process.binary,
            EventBody::ProcessExit(e) => &e.process.binary,
            EventBody::ProcessKprobe(e) => &e.process.binary,
            EventBody::ProcessLsm(e) => &e.process.binary,
            EventBody::ProcessUprobe(e) => &e.process.binary,
            EventBody::ProcessTracepoint(e) => &e.process.binary,
            EventBody::ProcessUsdt(e) => &e.process.binary,
            EventBody::LostEvents(_) => return true,
        };
        self.binary_prefixes.iter().any(|p| binary.starts_with(p))
    }

    fn render(&self, ev: &Event) -> Option<Result<GetEventsResponse, Status>> {
        if !self.wants(ev) {
            return None;
        }
        let item = if self.compact {
            Item::Compact(compact::render(ev))
        } else {
            match serde_json::to_string(ev) {
                Ok(json) => Item::EventJson(json),
                Err(e) => return Some(Err(Status::internal(format!("encoding an event: {e}")))),
            }
        };
        Some(Ok(GetEventsResponse { item: Some(item) }))
    }
}

fn policy_status(r: PolicyReport) -> TracingPolicyStatus {
    let state = match r.state {
        PolicyState::Enabled => TracingPolicyState::Enabled,
        PolicyState::PartiallyEnabled => TracingPolicyState::PartiallyEnabled,
        PolicyState::Disabled => TracingPolicyState::Disabled,
        PolicyState::Error => TracingPolicyState::Error,
    };
    TracingPolicyStatus {
        name: r.name,
        source: r.source,
        state: state.into(),
        mode: r.mode.into(),
        error: r.error.unwrap_or_default(),
        scope: r.scope.unwrap_or_default(),
        scope_cgroups: r.scope_cgroups as u64,
        hooks: r
            .hooks
            .into_iter()
            .map(|h| HookStatus {
                name: h.name,
                status: h.status.into(),
                mechanism: h.mechanism,
                guarantee: h.guarantee,
                reason: h.reason,
            })
            .collect(),
        events_posted: r.counters.posted,
        actions_enforced: r.counters.enforced,
        actions_monitored: r.counters.monitored,
    }
}

fn policy_error(e: PolicyError) -> Status {
    let message = e.to_string();
    match e {
        PolicyError::Invalid(_) => Status::invalid_argument(message),
        PolicyError::Exists(_) => Status::already_exists(message),
        PolicyError::NotFound(_) => Status::not_found(message),
        PolicyError::Refused { .. } => Status::failed_precondition(message),
    }
}

type EventsStream = Pin<Box<dyn Stream<Item = Result<GetEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Vigil for Api {
    type GetEventsStream = EventsStream;

    async fn get_events(
        &self,
        request: Request<GetEventsRequest>,
    ) -> Result<Response<EventsStream>, Status> {
        let req = request.into_inner();
        let (rx, guard) = self.stream.subscribe();
        let sub = Subscription {
            compact: req.format() == EventFormat::Compact,
            kinds: req.event_types,
            binary_prefixes: req.binary_prefixes,
            _counted: guard,
        };
        let lost = self.lost.clone();
        let events = BroadcastStream::new(rx).filter_map(move |item| match item {
            Ok(ev) => sub.render(&ev),
            Err(BroadcastStreamRecvError::Lagged(count)) => {
                lost.inc_by(count);
                Some(Ok(GetEventsResponse {
                    item: Some(Item::Lost(SubscriberLoss { count })),
                }))
            }
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn get_status(
        &self,
        _: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let s = self.ask(Command::Status).await?;
        Ok(Response::new(GetStatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            node_name: s.node_name,
            kernel_release: s.kernel_release,
            sensors: s.sensors,
            kernel_features: s
                .features
                .into_iter()
                .map(|f| KernelFeature {
                    name: f.name,
                    available: f.available,
                    reason: f.reason,
                })
                .collect(),
            uptime_seconds: self.started.elapsed().as_secs(),
            events_written: s.events_written,
            policies: s.policies as u32,
            event_subscribers: self.stream.subscribers() as u32,
        }))
    }

    async fn list_tracing_policies(
        &self,
        _: Request<ListTracingPoliciesRequest>,
    ) -> Result<Response<ListTracingPoliciesResponse>, Status> {
        let policies = self.ask(Command::ListPolicies).await?;
        Ok(Response::new(ListTracingPoliciesResponse {
            policies: policies.into_iter().map(policy_status).collect(),
        }))
    }

    async fn add_tracing_policy(
        &self,
        request: Request<AddTracingPolicyRequest>,
    ) -> Result<Response<AddTracingPolicyResponse>, Status> {
        let yaml = request.into_inner().yaml;
        let added = self
            .ask(|reply| Command::AddPolicy { yaml, reply })
            .await?
            .map_err(policy_error)?;
        Ok(Response::new(AddTracingPolicyResponse {
            policy: Some(policy_status(added)),
        }))
    }

    async fn delete_tracing_policy(
        &self,
        request: Request<DeleteTracingPolicyRequest>,
    ) -> Result<Response<DeleteTracingPolicyResponse>, Status> {
        let name = request.into_inner().name;
        self.ask(|reply| Command::DeletePolicy { name, reply })
            .await?
            .map_err(policy_error)?;
        Ok(Response::new(DeleteTracingPolicyResponse {}))
    }

    async fn enable_tracing_policy(
        &self,
        request: Request<EnableTracingPolicyRequest>,
    ) -> Result<Response<EnableTracingPolicyResponse>, Status> {
        let name = request.into_inner().name;
        let policy = self
            .ask(|reply| Command::EnablePolicy { name, reply })
            .await?
            .map_err(policy_error)?;
        Ok(Response::new(EnableTracingPolicyResponse {
            policy: Some(policy_status(policy)),
        }))
    }

    async fn disable_tracing_policy(
        &self,
        request: Request<DisableTracingPolicyRequest>,
    ) -> Result<Response<DisableTracingPolicyResponse>, Status> {
        let name = request.into_inner().name;
        let policy = self
            .ask(|reply| Command::DisablePolicy { name, reply })
            .await?
            .map_err(policy_error)?;
        Ok(Response::new(DisableTracingPolicyResponse {
            policy: Some(policy_status(policy)),
        }))
    }
}

#[cfg(test)]
mod tests {

    use vigil_events::{LostEvents, Process, ProcessExec};

    use super::*;

    fn exec_of(binary: &str) -> Event {
        Event {
            body: EventBody::ProcessExec(ProcessExec {
                process: Process {
                    binary: binary.into(),
                    ..Default::default()
                }
                .into(),
                ..Default::default()
            }),
            node_name: "n".into(),
            time: "t".into(),
        }
    }

    #[test]
    fn subscriptions_filter_by_kind_and_binary() {
        let stream = EventStream::new(1);
        let sub = Subscription {
            kinds: vec!["process_exec".into(), "lost_events".into()],
            binary_prefixes: vec!["/usr/bin/".into()],
            compact: false,
            _counted: stream.subscribe().1,
        };
        assert!(sub.wants(&exec_of("/usr/bin/cat")));
        assert!(!sub.wants(&exec_of("/bin/cat")));
        let lost = Event {
            body: EventBody::LostEvents(LostEvents {
                source: "s".into(),
                kind: "k".into(),
                count: 1,
                total: 1,
            }),
            node_name: "n".into(),
            time: "t".into(),
        };
        assert!(sub.wants(&lost), "losses pass the binary filter");
        let Some(Ok(GetEventsResponse {
            item: Some(Item::EventJson(json)),
        })) = sub.render(&exec_of("/usr/bin/cat"))
        else {
            panic!("a JSON event");
        };
        assert!(json.starts_with("{\"process_exec\""), "{json}");
    }

    #[test]
    fn addresses() {
        assert_eq!(Address::parse(""), None);
        assert_eq!(
            Address::parse("localhost:54321"),
            Some(Address::Tcp("localhost:54321".into()))
        );
        assert_eq!(
            Address::parse("unix:///run/vigil.sock"),
            Some(Address::Unix("/run/vigil.sock".into()))
        );
    }
}
