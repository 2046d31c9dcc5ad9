//! Turns decoded kernel records into public events, with process and parent
//! context from the process cache.
use std::{cell::RefCell, num::NonZeroUsize, path::PathBuf};

use vigil_bpf::wire::{
    vigil_creds, vigil_namespaces, VIGIL_PRIV_FILE_CAPS, VIGIL_PRIV_SETGID, VIGIL_PRIV_SETUID,
    VIGIL_PROC_CLONE, VIGIL_PROC_ERROR_ARGS, VIGIL_PROC_ERROR_CWD, VIGIL_PROC_ERROR_FILENAME,
    VIGIL_PROC_EXECVE, VIGIL_PROC_FILE_UNLINKED, VIGIL_PROC_PROCFS, VIGIL_PROC_ROOT_CWD,
    VIGIL_PROC_TRUNC_ARGS, VIGIL_PROC_TRUNC_FILENAME,
};
use vigil_events::{
    caps, container, exec_id::exec_id, flags, securebits_names, timestamp, BinaryProperties,
    Capabilities, Event, EventBody, FileProperties, InodeProperties, Namespace, Namespaces, Pod,
    PodContainer, Process, ProcessCredentials, ProcessExec, ProcessExit, ProcessRef, UserNamespace,
};

use crate::{
    decode::{CloneRecord, ExecRecord, ExitRecord, KprobeRecord, ProcKey, Record},
    process_cache::{CacheStats, ProcessCache},
    workload::PodLookup,
};

/// What the events carry beyond the defaults (Tetragon's flags of the same names).
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    pub node_name: String,
    pub enable_process_cred: bool,
    pub enable_process_ns: bool,
    /// Ancestors beyond the parent, at most this many (0: none).
    pub ancestors: usize,
    pub process_cache_size: usize,
    /// Where the container runtime's state names each container's pod.
    pub cri_state_dirs: Vec<PathBuf>,
}

pub struct EventBuilder {
    opts: EventOptions,
    cache: ProcessCache,
    pods: RefCell<PodLookup>,
    clock: Clock,
    timestamps: RefCell<timestamp::TimestampFormatter>,
    host_ns: vigil_namespaces,
}

impl EventBuilder {
    pub fn new(opts: EventOptions, host_ns: vigil_namespaces) -> Self {
        let cap = NonZeroUsize::new(opts.process_cache_size).unwrap_or(NonZeroUsize::MIN);
        EventBuilder {
            cache: ProcessCache::new(cap),
            pods: RefCell::new(PodLookup::new(opts.cri_state_dirs.clone())),
            clock: Clock::now(),
            timestamps: RefCell::default(),
            host_ns,
            opts,
        }
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    pub fn node_name(&self) -> &str {
        &self.opts.node_name
    }

    /// The wall-clock time of a kernel monotonic timestamp, in proto3 JSON form.
    pub fn wall_time(&self, ktime: u64) -> String {
        self.timestamps
            .borrow_mut()
            .format(self.clock.wall_nanos(ktime))
    }

    /// Feeds one record; returns the event it produces, if any (forks produce none).
    pub fn handle(&mut self, record: Record) -> Option<Event> {
        match record {
            Record::Exec(e) => Some(self.exec(*e)),
            Record::Clone(c) => {
                self.clone_(c);
                None
            }
            Record::Exit(x) => Some(self.exit(x)),
            // Policy hooks need the policy's hook table: the pipeline builds them with `hook_context`.
            Record::Kprobe(_) => None,
        }
    }

    /// The process image `pid` ran at `ktime` (a record made in user space
    /// knows the pid only); an unknown process keeps key time 0, a miss.
    pub fn image_at(&self, pid: u32, ktime: u64) -> ProcKey {
        self.cache
            .image_at(pid, ktime)
            .unwrap_or(ProcKey { pid, ktime: 0 })
    }

    /// Process, parent and ancestors of a policy hook's record, from the cache.
    pub fn hook_context(
        &mut self,
        rec: &KprobeRecord,
    ) -> (ProcessRef, Option<ProcessRef>, Vec<ProcessRef>) {
        self.context(rec.key, rec.tid)
    }

    /// The process `key` as thread `tid` saw it, with its parent and ancestors;
    /// a process the cache does not know is reported by identity, flagged `miss`.
    fn context(
        &mut self,
        key: ProcKey,
        tid: u32,
    ) -> (ProcessRef, Option<ProcessRef>, Vec<ProcessRef>) {
        let process = match self.cache.get(&key) {
            // Shared as is unless another thread than the cached one acted.
            Some(p) if p.tid == tid => p,
            Some(p) => ProcessRef::new(Process {
                tid,
                ..(*p).clone()
            }),
            None => ProcessRef::new(Process {
                exec_id: exec_id(&self.opts.node_name, key.ktime, key.pid),
                pid: key.pid,
                tid,
                start_time: self.wall_time(key.ktime),
                flags: flags::MISS.into(),
                ..Default::default()
            }),
        };
        let parent = self.cache.parent_of(&key).and_then(|k| self.cache.get(&k));
        (process, parent, self.ancestors(&key))
    }

    /// Wraps an event body with the node name and the record's time.
    pub fn event(&self, ktime: u64, body: EventBody) -> Event {
        Event {
            body,
            node_name: self.opts.node_name.clone(),
            time: self.wall_time(ktime),
        }
    }

    fn exec(&mut self, rec: ExecRecord) -> Event {
        let process = ProcessRef::new(self.process_of(&rec));
        self.cache
            .insert(rec.key, process.clone(), Some(rec.parent));
        let parent = self.cache.get(&rec.parent);
        let ancestors = self.ancestors(&rec.key);
        self.event(
            rec.ktime,
            EventBody::ProcessExec(ProcessExec {
                process,
                parent,
                ancestors,
            }),
        )
    }

    /// A fork without exec: the child runs its parent's binary under a new identity.
    fn clone_(&mut self, rec: CloneRecord) {
        let mut process = match self.cache.get(&rec.parent) {
            Some(parent) => (*parent).clone(),
            None => Process::default(),
        };
        process.exec_id = exec_id(&self.opts.node_name, rec.key.ktime, rec.key.pid);
        process.parent_exec_id = exec_id(&self.opts.node_name, rec.parent.ktime, rec.parent.pid);
        process.pid = rec.key.pid;
        process.tid = rec.tid;
        process.start_time = self.wall_time(rec.key.ktime);
        process.flags = flag_words(rec.flags | VIGIL_PROC_CLONE);
        process.binary_properties = None;
        self.cache
            .insert(rec.key, ProcessRef::new(process), Some(rec.parent));
    }

    fn exit(&mut self, rec: ExitRecord) -> Event {
        let (process, parent, ancestors) = self.context(rec.key, rec.tid);
        self.cache.exited(rec.key);
        let (status, signal) = exit_status(rec.exit_code);
        let time = self.wall_time(rec.ktime);
        self.event(
            rec.ktime,
            EventBody::ProcessExit(ProcessExit {
                process,
                parent,
                signal: signal.map(str::to_owned).unwrap_or_default(),
                status,
                time,
                ancestors,
            }),
        )
    }

    fn ancestors(&self, key: &ProcKey) -> Vec<ProcessRef> {
        if self.opts.ancestors == 0 {
            return Vec::new();
        }
        self.cache.ancestors(key, self.opts.ancestors)
    }

    fn process_of(&self, rec: &ExecRecord) -> Process {
        let node = &self.opts.node_name;
        let c = &rec.creds;
        let container_id = container::from_cgroup_names(&rec.cgroup_name, &rec.cgroup_parent_name);
        let pod = container_id.as_deref().and_then(|id| {
            self.pods.borrow_mut().get(id).map(|w| Pod {
                namespace: w.namespace.clone(),
                name: w.pod.clone(),
                container: PodContainer {
                    id: format!("{}://{}", w.runtime, w.container_id),
                    name: w.container.clone(),
                },
            })
        });
        let docker = container_id
            .map(|id| id.chars().take(container::DOCKER_FIELD_LEN).collect())
            .unwrap_or_default();
        Process {
            exec_id: exec_id(node, rec.key.ktime, rec.key.pid),
            pid: rec.key.pid,
            uid: c.euid,
            cwd: rec.cwd.clone(),
            binary: absolute_binary(&rec.filename, &rec.cwd),
            arguments: arguments(rec.argv.get(1..).unwrap_or_default()),
            flags: flag_words(rec.flags),
            start_time: self.wall_time(rec.key.ktime),
            auid: Some(rec.auid),
            pod,
            docker,
            parent_exec_id: exec_id(node, rec.parent.ktime, rec.parent.pid),
            refcnt: 0,
            cap: self.opts.enable_process_cred.then(|| capabilities(c)),
            ns: self
                .opts
                .enable_process_ns
                .then(|| self.namespaces(&rec.ns)),
            tid: rec.tid,
            process_credentials: self.opts.enable_process_cred.then(|| {
                credentials(
                    c,
                    UserNamespace {
                        ns: self.namespace(rec.ns.user, self.host_ns.user),
                        ..Default::default()
                    },
                )
            }),
            binary_properties: binary_properties(rec),
            cgroup_id: (rec.cgroup_id != 0).then(|| rec.cgroup_id.to_string()),
        }
    }

    fn namespace(&self, inum: u32, host: u32) -> Namespace {
        Namespace {
            inum,
            is_host: inum != 0 && inum == host,
        }
    }

    fn namespaces(&self, ns: &vigil_namespaces) -> Namespaces {
        let h = &self.host_ns;
        Namespaces {
            uts: self.namespace(ns.uts, h.uts),
            ipc: self.namespace(ns.ipc, h.ipc),
            mnt: self.namespace(ns.mnt, h.mnt),
            pid: self.namespace(ns.pid, h.pid),
            pid_for_children: self.namespace(ns.pid_for_children, h.pid_for_children),
            net: self.namespace(ns.net, h.net),
            time: self.namespace(ns.time, h.time),
            time_for_children: self.namespace(ns.time_for_children, h.time_for_children),
            cgroup: self.namespace(ns.cgroup, h.cgroup),
            user: self.namespace(ns.user, h.user),
        }
    }
}

fn binary_properties(rec: &ExecRecord) -> Option<BinaryProperties> {
    let mut props = BinaryProperties::default();
    if rec.priv_flags & VIGIL_PRIV_SETUID != 0 {
        props.setuid = Some(rec.file_uid);
        props
            .privileges_changed
            .push("PRIVILEGES_RAISED_EXEC_FILE_SETUID");
    }
    if rec.priv_flags & VIGIL_PRIV_SETGID != 0 {
        props.setgid = Some(rec.file_gid);
        props
            .privileges_changed
            .push("PRIVILEGES_RAISED_EXEC_FILE_SETGID");
    }
    if rec.priv_flags & VIGIL_PRIV_FILE_CAPS != 0 {
        props
            .privileges_changed
            .push("PRIVILEGES_RAISED_EXEC_FILE_CAP");
    }
    if rec.flags & VIGIL_PROC_FILE_UNLINKED != 0 {
        props.file = Some(FileProperties {
            inode: InodeProperties {
                number: rec.file_ino.to_string(),
                links: rec.file_nlink,
            },
            path: rec.unlinked_path.clone(),
        });
    }
    (props != BinaryProperties::default()).then_some(props)
}

/// The binary as exec was asked for it, made absolute against the cwd.
fn absolute_binary(filename: &str, cwd: &str) -> String {
    if filename.starts_with('/') || filename.is_empty() || cwd.is_empty() {
        return filename.to_owned();
    }
    let rel = filename.trim_start_matches("./");
    if cwd.ends_with('/') {
        format!("{cwd}{rel}")
    } else {
        format!("{cwd}/{rel}")
    }
}

/// Arguments joined by spaces; an argument holding a space is quoted, as Tetragon does.
pub fn arguments(args: &[String]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') || a.is_empty() {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect();
    quoted.join(" ")
}

fn flag_words(bits: u32) -> String {
    const WORDS: [(u32, &str); 9] = [
        (VIGIL_PROC_EXECVE, flags::EXECVE),
        (VIGIL_PROC_PROCFS, flags::PROCFS),
        (VIGIL_PROC_TRUNC_FILENAME, flags::TRUNC_FILENAME),
        (VIGIL_PROC_TRUNC_ARGS, flags::TRUNC_ARGS),
        (VIGIL_PROC_ERROR_FILENAME, flags::ERROR_FILENAME),
        (VIGIL_PROC_ERROR_ARGS, flags::ERROR_ARGS),
        (VIGIL_PROC_ERROR_CWD, flags::ERROR_CWD),
        (VIGIL_PROC_ROOT_CWD, flags::ROOT_CWD),
        (VIGIL_PROC_CLONE, flags::CLONE),
    ];
    let words: Vec<&str> = WORDS
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, w)| *w)
        .collect();
    words.join(" ")
}

/// (status, signal name) from a wait status.
pub fn exit_status(code: u32) -> (u32, Option<&'static str>) {
    let sig = code & 0x7f;
    if sig == 0 {
        ((code >> 8) & 0xff, None)
    } else {
        (0, Some(signal_name(sig)))
    }
}

fn signal_name(sig: u32) -> &'static str {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(sig as usize).copied().unwrap_or("SIGRT")
}

/// Kernel monotonic time to wall-clock time, fixed at start.
struct Clock {
    offset_ns: i128,
}

impl Clock {
    fn now() -> Self {
        let read = |clock| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes into the timespec we own.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        let mono = read(libc::CLOCK_MONOTONIC);
        let real = read(libc::CLOCK_REALTIME);
        Clock {
            offset_ns: real - mono,
        }
    }

    fn wall_nanos(&self, ktime: u64) -> u128 {
        (i128::from(ktime) + self.offset_ns).max(0) as u128
    }
}

/// Namespaces of the host: those of kernel threads (pid 2), else pid 1, else our own.
/// The capability sets of `c`, by name.
pub fn capabilities(c: &vigil_creds) -> Capabilities {
    Capabilities {
        permitted: caps::names(c.cap_permitted),
        effective: caps::names(c.cap_effective),
        inheritable: caps::names(c.cap_inheritable),
    }
}

/// `process_credentials` of a process, or of a `cred` argument.
pub fn credentials(c: &vigil_creds, user_ns: UserNamespace) -> ProcessCredentials {
    ProcessCredentials {
        uid: c.uid,
        gid: c.gid,
        euid: c.euid,
        egid: c.egid,
        suid: c.suid,
        sgid: c.sgid,
        fsuid: c.fsuid,
        fsgid: c.fsgid,
        securebits: securebits_names(c.securebits),
        caps: Some(capabilities(c)),
        user_ns: Some(user_ns),
    }
}

pub fn host_namespaces() -> vigil_namespaces {
    let inum = |name: &str| -> u32 {
        ["/proc/2/ns", "/proc/1/ns", "/proc/self/ns"]
            .iter()
            .find_map(|dir| {
                let link = std::fs::read_link(format!("{dir}/{name}")).ok()?;
                let s = link.to_str()?;
                s.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
            })
            .unwrap_or(0)
    };
    vigil_namespaces {
        uts: inum("uts"),
        ipc: inum("ipc"),
        mnt: inum("mnt"),
        pid: inum("pid"),
        pid_for_children: inum("pid_for_children"),
        net: inum("net"),
        time: inum("time"),
        time_for_children: inum("time_for_children"),
        cgroup: inum("cgroup"),
        user: inum("user"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_bpf::wire::vigil_creds;

    #[test]
    fn quoting_follows_tetragon() {
        let args: Vec<String> = ["-c", "echo a | cat", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(arguments(&args), "-c \"echo a | cat\" \"\"");
    }

    #[test]
    fn exit_status_and_signals() {
        assert_eq!(exit_status(3 << 8), (3, None));
        assert_eq!(exit_status(9), (0, Some("SIGKILL")));
        assert_eq!(exit_status(11 | 0x80), (0, Some("SIGSEGV")));
    }

    #[test]
    fn relative_binaries_are_made_absolute() {
        assert_eq!(absolute_binary("./a.out", "/tmp"), "/tmp/a.out");
        assert_eq!(absolute_binary("bin/x", "/"), "/bin/x");
        assert_eq!(absolute_binary("/bin/sh", "/tmp"), "/bin/sh");
    }

    #[test]
    fn exec_then_exit_links_parent_and_reports_status() {
        let opts = EventOptions {
            node_name: "n".into(),
            process_cache_size: 16,
            ..Default::default()
        };
        let mut b = EventBuilder::new(opts, vigil_namespaces::default());
        let parent = ProcKey {
            pid: 10,
            ktime: 100,
        };
        let child = ProcKey {
            pid: 11,
            ktime: 200,
        };
        let exec = |key: ProcKey, parent: ProcKey, bin: &str| ExecRecord {
            ktime: key.ktime,
            key,
            parent,
            tid: key.pid,
            auid: u32::MAX,
            flags: VIGIL_PROC_EXECVE,
            priv_flags: 0,
            file_uid: 0,
            file_gid: 0,
            file_ino: 0,
            file_nlink: 1,
            cgroup_id: 0,
            creds: vigil_creds {
                uid: 1000,
                euid: 1000,
                ..Default::default()
            },
            ns: vigil_namespaces::default(),
            filename: bin.into(),
            cwd: "/".into(),
            cgroup_name: String::new(),
            cgroup_parent_name: String::new(),
            unlinked_path: String::new(),
            argv: vec![bin.into(), "x y".into()],
        };
        b.handle(Record::Exec(Box::new(exec(
            parent,
            ProcKey { pid: 1, ktime: 1 },
            "/bin/sh",
        ))));
        let ev = b
            .handle(Record::Exec(Box::new(exec(child, parent, "/bin/cat"))))
            .unwrap();
        let EventBody::ProcessExec(e) = &ev.body else {
            panic!()
        };
        assert_eq!(e.process.arguments, "\"x y\"");
        assert_eq!(e.process.uid, 1000);
        assert_eq!(e.parent.as_ref().unwrap().binary, "/bin/sh");
        assert_eq!(e.process.parent_exec_id, e.parent.as_ref().unwrap().exec_id);
        let exit = ExitRecord {
            ktime: 300,
            key: child,
            tid: 11,
            exit_code: 2 << 8,
        };
        let ev = b.handle(Record::Exit(exit)).unwrap();
        let EventBody::ProcessExit(x) = &ev.body else {
            panic!()
        };
        assert_eq!((x.status, x.signal.as_str()), (2, ""));
        assert_eq!(x.process.binary, "/bin/cat");
        assert_eq!(x.parent.as_ref().unwrap().binary, "/bin/sh");
    }
}
