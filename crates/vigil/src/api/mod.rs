//! vigil's gRPC API (`crates/vigil-api/proto/vigil.proto`): the server in
//! the agent (`server`), the commands it sends to the agent's event loop
//! (here), and the CLI client (`client`).
//!
//! The event loop stays single-threaded and owns every BPF object: the
//! server (on tokio) sends it a `Command` over a channel, which the loop
//! drains between two ring buffer polls, and gets the answer on a oneshot.
pub mod client;
mod peer;
pub mod server;
pub mod tls;

use tokio::sync::{mpsc, oneshot};

use crate::policy::{PolicyError, PolicyReport};

/// Commands waiting for the event loop; a full queue makes callers wait.
pub const COMMAND_QUEUE: usize = 16;

pub type Reply<T> = oneshot::Sender<T>;

pub enum Command {
    Status(Reply<AgentStatus>),
    ListPolicies(Reply<Vec<PolicyReport>>),
    AddPolicy {
        yaml: String,
        reply: Reply<Result<PolicyReport, PolicyError>>,
    },
    DeletePolicy {
        name: String,
        reply: Reply<Result<(), PolicyError>>,
    },
    EnablePolicy {
        name: String,
        reply: Reply<Result<PolicyReport, PolicyError>>,
    },
    DisablePolicy {
        name: String,
        reply: Reply<Result<PolicyReport, PolicyError>>,
    },
}

pub type CommandSender = mpsc::Sender<Command>;
pub type CommandReceiver = mpsc::Receiver<Command>;

pub fn command_channel() -> (CommandSender, CommandReceiver) {
    mpsc::channel(COMMAND_QUEUE)
}

/// What the event loop knows about the running agent.
pub struct AgentStatus {
    pub node_name: String,
    pub kernel_release: String,
    pub sensors: Vec<String>,
    pub features: Vec<FeatureReport>,
    pub events_written: u64,
    pub policies: usize,
}

pub struct FeatureReport {
    pub name: String,
    pub available: bool,
    pub reason: String,
}
