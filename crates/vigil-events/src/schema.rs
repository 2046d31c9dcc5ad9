//! Events as Tetragon exports them (`GetEventsResponse` in proto3 JSON with
//! proto field names). Field order and names follow Tetragon's protos; zero
//! values and empty fields are omitted, wrapper types (`UInt32Value`) are
//! written whenever set, and 64-bit integers are strings.
use std::{
    fmt,
    ops::Deref,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, OnceLock,
    },
};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A process shared between the process cache and the events that name it:
/// an event clones a pointer, not the process. Immutable once shared, so its
/// JSON is kept from the second event that names it on and copied verbatim
/// afterwards (a busy process is named by every event it causes; most
/// processes only by their exec and exit, which is not worth the memory).
/// The cached form is JSON text: events serialize only to JSON.
#[derive(Clone)]
pub struct ProcessRef(Arc<SharedProcess>);

struct SharedProcess {
    process: Process,
    serialized: AtomicU32,
    json: OnceLock<Box<RawValue>>,
}

impl ProcessRef {
    pub fn new(process: Process) -> Self {
        ProcessRef(Arc::new(SharedProcess {
            process,
            serialized: AtomicU32::new(0),
            json: OnceLock::new(),
        }))
    }
}

impl From<Process> for ProcessRef {
    fn from(process: Process) -> Self {
        ProcessRef::new(process)
    }
}

impl Default for ProcessRef {
    fn default() -> Self {
        ProcessRef::new(Process::default())
    }
}

impl Deref for ProcessRef {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.0.process
    }
}

impl fmt::Debug for ProcessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.process.fmt(f)
    }
}

impl Serialize for ProcessRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shared = &*self.0;
        if let Some(json) = shared.json.get() {
            return json.serialize(s);
        }
        if shared.serialized.fetch_add(1, Ordering::Relaxed) == 0 {
            return shared.process.serialize(s);
        }
        match serde_json::value::to_raw_value(&shared.process) {
            Ok(json) => shared.json.get_or_init(|| json).serialize(s),
            Err(_) => shared.process.serialize(s),
        }
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// One line of the export: exactly one event body plus the envelope.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(flatten)]
    pub body: EventBody,
    pub node_name: String,
    pub time: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    ProcessExec(ProcessExec),
    ProcessExit(ProcessExit),
    ProcessKprobe(ProcessKprobe),
    ProcessLsm(ProcessLsm),
    ProcessUprobe(ProcessUprobe),
    ProcessTracepoint(ProcessTracepoint),
    ProcessUsdt(ProcessUsdt),
    /// vigil's own: events lost before they reached this stream, counted where they were lost.
    LostEvents(LostEvents),
}

impl EventBody {
    /// The JSON key of this event kind (`process_exec`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::ProcessExec(_) => "process_exec",
            EventBody::ProcessExit(_) => "process_exit",
            EventBody::ProcessKprobe(_) => "process_kprobe",
            EventBody::ProcessLsm(_) => "process_lsm",
            EventBody::ProcessUprobe(_) => "process_uprobe",
            EventBody::ProcessTracepoint(_) => "process_tracepoint",
            EventBody::ProcessUsdt(_) => "process_usdt",
            EventBody::LostEvents(_) => "lost_events",
        }
    }

    /// The kernel and user stack traces of a policy event (None for the
    /// process lifecycle and loss records).
    pub fn stack_traces_mut(
        &mut self,
    ) -> Option<(&mut Vec<StackTraceEntry>, &mut Vec<StackTraceEntry>)> {
        match self {
            EventBody::ProcessKprobe(e) => {
                Some((&mut e.kernel_stack_trace, &mut e.user_stack_trace))
            }
            EventBody::ProcessLsm(e) => Some((&mut e.kernel_stack_trace, &mut e.user_stack_trace)),
            EventBody::ProcessUprobe(e) => {
                Some((&mut e.kernel_stack_trace, &mut e.user_stack_trace))
            }
            EventBody::ProcessTracepoint(e) => {
                Some((&mut e.kernel_stack_trace, &mut e.user_stack_trace))
            }
            EventBody::ProcessUsdt(e) => Some((&mut e.kernel_stack_trace, &mut e.user_stack_trace)),
            EventBody::ProcessExec(_) | EventBody::ProcessExit(_) | EventBody::LostEvents(_) => {
                None
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessExec {
    pub process: ProcessRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ProcessRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessExit {
    pub process: ProcessRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ProcessRef>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub signal: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub status: u32,
    pub time: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
}

/// A policy hook fired (`ProcessKprobe`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessKprobe {
    pub process: ProcessRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ProcessRef>,
    /// The kernel function, e.g. `__x64_sys_openat`.
    pub function_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<KprobeArgument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#return: Option<KprobeArgument>,
    /// `KprobeAction` name: `KPROBE_ACTION_POST`, `KPROBE_ACTION_SIGKILL`, ...
    pub action: &'static str,
    pub policy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
    /// Post `kernelStackTrace`: innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_stack_trace: Vec<StackTraceEntry>,
    /// Post `userStackTrace`: innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_stack_trace: Vec<StackTraceEntry>,
}

/// One frame of a stack trace (`StackTraceEntry`); 64-bit integers are
/// strings in proto3 JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StackTraceEntry {
    #[serde(serialize_with = "u64_text", skip_serializing_if = "is_zero_u64")]
    pub address: u64,
    /// From the start of `symbol`.
    #[serde(serialize_with = "u64_text", skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub symbol: String,
    /// The kernel module or the file of the mapping.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub module: String,
}

fn u64_text<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// An LSM hook of a policy fired (`ProcessLsm`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessLsm {
    pub process: ProcessRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ProcessRef>,
    /// The LSM hook, e.g. `file_open`.
    pub function_name: String,
    pub policy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<KprobeArgument>,
    /// `KprobeAction` name: `KPROBE_ACTION_POST`, `KPROBE_ACTION_OVERRIDE`, ...
    pub action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
    /// Post `kernelStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_stack_trace: Vec<StackTraceEntry>,
    /// Post `userStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_stack_trace: Vec<StackTraceEntry>,
    /// Post `imaHash`: the IMA hash of the hook's file, `"sha256:<hex>"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ima_hash: String,
}

/// A uprobe of a policy fired (`ProcessUprobe`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessUprobe {
    pub process: ProcessRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ProcessRef>,
    /// The probed binary or library.
    pub path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub symbol: String,
    pub policy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<KprobeArgument>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
    /// Probe offset in the file when the policy gave offsets, not symbols (uint64: a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    pub action: &'static str,
    /// The function's return value, with `return: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#return: Option<KprobeArgument>,
    /// Post `kernelStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_stack_trace: Vec<StackTraceEntry>,
    /// Post `userStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_stack_trace: Vec<StackTraceEntry>,
}

/// A USDT probe of a policy fired (`ProcessUsdt`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessUsdt {
    pub process: ProcessRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ProcessRef>,
    /// The binary or library holding the probe.
    pub path: String,
    pub provider: String,
    pub name: String,
    pub policy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<KprobeArgument>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
    pub action: &'static str,
    /// Post `kernelStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_stack_trace: Vec<StackTraceEntry>,
    /// Post `userStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_stack_trace: Vec<StackTraceEntry>,
}

/// A tracepoint of a policy fired (`ProcessTracepoint`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessTracepoint {
    pub process: ProcessRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ProcessRef>,
    pub subsys: String,
    pub event: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<KprobeArgument>,
    pub policy_name: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
    /// Post `kernelStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_stack_trace: Vec<StackTraceEntry>,
    /// Post `userStackTrace` (vigil: also on this event), innermost frame first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_stack_trace: Vec<StackTraceEntry>,
}

/// One argument: exactly one typed value, and the policy's label for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KprobeArgument {
    #[serde(flatten)]
    pub value: ArgValue,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label: String,
}

/// The `KprobeArgument` oneof members vigil produces. 64-bit integers are
/// strings in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgValue {
    IntArg(i32),
    UintArg(u32),
    LongArg(String),
    SizeArg(String),
    StringArg(String),
    /// base64 of the bytes.
    BytesArg(String),
    FileArg(KprobeFile),
    PathArg(KprobeFile),
    LinuxBinprmArg(KprobeFile),
    CapabilityArg(KprobeCapability),
    /// Capability names, space separated.
    KernelCapTArg(String),
    UserNsArg(UserNamespace),
    ProcessCredentialsArg(ProcessCredentials),
    /// A `syscall64` argument: the system call number and its ABI.
    SyscallId(SyscallId),
    SockArg(KprobeSock),
    SockaddrArg(KprobeSockaddr),
    SkbArg(KprobeSkb),
    BpfAttrArg(KprobeBpfAttr),
    BpfMapArg(KprobeBpfMap),
    PerfEventArg(KprobePerfEvent),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KprobeCapability {
    pub value: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyscallId {
    pub id: u32,
    /// `x64` (or `i386` for 32-bit calls).
    pub abi: &'static str,
}

impl ArgValue {
    /// `bytes_arg`: bytes fields are base64 in proto3 JSON.
    pub fn bytes(data: &[u8]) -> Self {
        use base64::{engine::general_purpose::STANDARD, Engine};
        ArgValue::BytesArg(STANDARD.encode(data))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KprobeFile {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// A `struct sock` (`KprobeSock`): names for family, type, protocol, state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KprobeSock {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub family: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub sock_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub mark: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub priority: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub saddr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub daddr: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub sport: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub dport: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
}

/// A `struct sockaddr` (`KprobeSockaddr`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KprobeSockaddr {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub family: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u32,
}

/// A `struct sk_buff` (`KprobeSkb`): `proto` is the link-layer protocol
/// (ETH_P_IP...), `protocol` the IP header's, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KprobeSkb {
    #[serde(skip_serializing_if = "is_zero")]
    pub hash: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub len: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub priority: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub mark: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub saddr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub daddr: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub sport: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub dport: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub proto: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub family: String,
}

/// The BPF_PROG_LOAD attributes (`KprobeBpfAttr`; its JSON names are the
/// proto's, capitalized).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KprobeBpfAttr {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prog_type: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub insn_cnt: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prog_name: String,
}

/// A `struct bpf_map` (`KprobeBpfMap`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KprobeBpfMap {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub map_type: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub key_size: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub value_size: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_entries: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub map_name: String,
}

/// A `struct perf_event` (`KprobePerfEvent`): the function and offset of a
/// kprobe PMU event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KprobePerfEvent {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kprobe_func: String,
    #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
    pub event_type: String,
    #[serde(serialize_with = "u64_text", skip_serializing_if = "is_zero_u64")]
    pub config: u64,
    #[serde(serialize_with = "u64_text", skip_serializing_if = "is_zero_u64")]
    pub probe_offset: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LostEvents {
    /// Where the loss happened: `kernel_ring_buffer`, `decode`, ...
    pub source: String,
    /// Which event kind was lost (`process_exec`, ...), or `unknown`.
    pub kind: String,
    /// Lost since the previous record for the same source and kind.
    pub count: u64,
    /// Lost since the agent started.
    pub total: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Process {
    pub exec_id: String,
    pub pid: u32,
    pub uid: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cwd: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub binary: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arguments: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub flags: String,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auid: Option<u32>,
    /// The Kubernetes pod and container, when the container runtime's
    /// state on the node names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub docker: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent_exec_id: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub refcnt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<Capabilities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns: Option<Namespaces>,
    pub tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_credentials: Option<ProcessCredentials>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_properties: Option<BinaryProperties>,
    /// vigil's own: the cgroup v2 id, for joining with cgroup-scoped data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<String>,
}

/// Tetragon's `pod` object, with the fields the runtime state carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub container: PodContainer,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodContainer {
    /// `containerd://<id>` or `cri-o://<id>`, as Kubernetes names it.
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capabilities {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permitted: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effective: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inheritable: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Namespace {
    #[serde(skip_serializing_if = "is_zero")]
    pub inum: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub is_host: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    pub uts: Namespace,
    pub ipc: Namespace,
    pub mnt: Namespace,
    pub pid: Namespace,
    pub pid_for_children: Namespace,
    pub net: Namespace,
    pub time: Namespace,
    pub time_for_children: Namespace,
    pub cgroup: Namespace,
    pub user: Namespace,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcessCredentials {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub securebits: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caps: Option<Capabilities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_ns: Option<UserNamespace>,
}

/// A user namespace: its nesting level and owner are known for kernel
/// objects (`user_ns_arg`), not for processes' credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserNamespace {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    pub ns: Namespace,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BinaryProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setuid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setgid: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub privileges_changed: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileProperties>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileProperties {
    pub inode: InodeProperties,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InodeProperties {
    /// uint64 in proto3 JSON is a string.
    pub number: String,
    pub links: u32,
}

/// Secure bits (`SecureBitsType`), lowest bit first.
pub fn securebits_names(bits: u32) -> Vec<&'static str> {
    const NAMES: [&str; 8] = [
        "SecBitNoRoot",
        "SecBitNoRootLocked",
        "SecBitNoSetUidFixup",
        "SecBitNoSetUidFixupLocked",
        "SecBitKeepCaps",
        "SecBitKeepCapsLocked",
        "SecBitNoCapAmbientRaise",
        "SecBitNoCapAmbientRaiseLocked",
    ];
    (0..8)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| NAMES[b])
        .collect()
}

/// Process `flags` words in Tetragon's spelling.
pub mod flags {
    pub const EXECVE: &str = "execve";
    pub const PROCFS: &str = "procFS";
    pub const TRUNC_FILENAME: &str = "truncFilename";
    pub const TRUNC_ARGS: &str = "truncArgs";
    pub const ERROR_FILENAME: &str = "errorFilename";
    pub const ERROR_ARGS: &str = "errorArgs";
    pub const ERROR_CWD: &str = "errorCWD";
    pub const ROOT_CWD: &str = "rootcwd";
    pub const CLONE: &str = "clone";
    pub const MISS: &str = "miss";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn omits_empty_fields_like_proto3_json() {
        let ev = Event {
            body: EventBody::ProcessExit(ProcessExit {
                process: ProcessRef::new(Process {
                    exec_id: "eA==".into(),
                    pid: 7,
                    uid: 0,
                    start_time: "t0".into(),
                    tid: 7,
                    ..Default::default()
                }),
                signal: "SIGKILL".into(),
                time: "t1".into(),
                ..Default::default()
            }),
            node_name: "n".into(),
            time: "t1".into(),
        };
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!({
                "process_exit": {
                    "process": {"exec_id": "eA==", "pid": 7, "uid": 0, "start_time": "t0", "tid": 7},
                    "signal": "SIGKILL",
                    "time": "t1"
                },
                "node_name": "n",
                "time": "t1"
            })
        );
    }

    #[test]
    fn kprobe_args_are_typed_oneofs() {
        let ev = ProcessKprobe {
            function_name: "__x64_sys_write".into(),
            args: vec![
                KprobeArgument {
                    value: ArgValue::FileArg(KprobeFile {
                        path: "/tmp/x".into(),
                    }),
                    label: String::new(),
                },
                KprobeArgument {
                    value: ArgValue::SizeArg("3".into()),
                    label: "count".into(),
                },
            ],
            r#return: Some(KprobeArgument {
                value: ArgValue::IntArg(-2),
                label: String::new(),
            }),
            action: "KPROBE_ACTION_POST",
            policy_name: "p".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v["args"],
            json!([{"file_arg": {"path": "/tmp/x"}}, {"size_arg": "3", "label": "count"}])
        );
        assert_eq!(v["return"], json!({"int_arg": -2}));
        assert_eq!(v["action"], "KPROBE_ACTION_POST");
    }

    #[test]
    fn a_shared_process_serializes_the_same_every_time() {
        let process = ProcessRef::new(Process {
            exec_id: "eA==".into(),
            pid: 7,
            binary: "/bin/\"q\"".into(),
            arguments: "a\tb".into(),
            start_time: "t0".into(),
            auid: Some(0),
            tid: 7,
            ..Default::default()
        });
        let direct = serde_json::to_string(&*process).unwrap();
        for _ in 0..3 {
            assert_eq!(serde_json::to_string(&process).unwrap(), direct);
        }
        assert!(process.0.json.get().is_some());
        assert_eq!(
            serde_json::to_value(&process).unwrap(),
            serde_json::to_value(&*process).unwrap()
        );
        let other_thread = ProcessRef::new(Process {
            tid: 8,
            ..(*process).clone()
        });
        assert!(serde_json::to_string(&other_thread)
            .unwrap()
            .contains("\"tid\":8"));
    }

    #[test]
    fn securebits() {
        assert_eq!(
            securebits_names(0b1_0001),
            ["SecBitNoRoot", "SecBitKeepCaps"]
        );
    }
}
