//! File-open and execution hooks served by fanotify permission events
//! (FAN_OPEN_PERM, FAN_OPEN_EXEC_PERM) where BPF cannot stop the call: one
//! fanotify group per hook, marking only the files (inode marks) and the
//! directories (marks with FAN_EVENT_ON_CHILD) that the selectors' paths
//! name, so that every other open stays in the kernel. A dedicated thread
//! answers each event; an event it cannot decide in time is allowed and
//! counted. Dropping the hook stops the thread and closes the group, and
//! the kernel allows whatever was still waiting.
use std::{
    collections::{HashMap, HashSet},
    fs,
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{sync_channel, Receiver, SyncSender},
        Arc, LazyLock,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use nix::{
    errno::Errno,
    fcntl::AT_FDCWD,
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::{
        eventfd::{EfdFlags, EventFd},
        fanotify::{
            EventFFlags, Fanotify, FanotifyEvent, FanotifyResponse, InitFlags, MarkFlags,
            MaskFlags, Response,
        },
        inotify::{AddWatchFlags, InitFlags as InotifyFlags, Inotify, WatchDescriptor},
        signal::{kill, Signal},
    },
    unistd::Pid,
};
use prometheus_client::metrics::counter::Counter;
use tracing::warn;
use vigil_bpf::wire::{
    VIGIL_HOOK_STAT_ENFORCED, VIGIL_HOOK_STAT_MAX, VIGIL_HOOK_STAT_MONITORED,
    VIGIL_HOOK_STAT_POSTED, VIGIL_KPROBE_MONITORED, VIGIL_KPROBE_SIGNAL_FAILED,
};

use crate::{
    decode::{KprobeRecord, ProcKey, RawArg},
    policy::{FanotifySpec, FileAccess, Verdict},
};

/// Past this, an event still waiting for its verdict is allowed without one.
pub const DECISION_DEADLINE: Duration = Duration::from_millis(100);
/// Marks per hook at most: a Prefix naming a huge tree is refused, not half served.
const MARKS_MAX: usize = 8192;
/// Records waiting for the event loop; past that they are counted as lost.
const RECORD_QUEUE: usize = 8192;

/// Accesses allowed because vigil could not decide in time (or could not
/// read the file's path), over every fanotify hook.
pub static DEFAULT_ALLOWED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Where fanotify hooks send their events: to the agent's event loop.
#[derive(Clone)]
pub struct RecordSink {
    tx: SyncSender<KprobeRecord>,
    lost: Arc<AtomicU64>,
}

/// The event loop's end: records, and how many were dropped on a full queue.
pub struct RecordSource {
    pub rx: Receiver<KprobeRecord>,
    pub lost: Arc<AtomicU64>,
}

pub fn record_channel() -> (RecordSink, RecordSource) {
    let (tx, rx) = sync_channel(RECORD_QUEUE);
    let lost = Arc::new(AtomicU64::new(0));
    (
        RecordSink {
            tx,
            lost: lost.clone(),
        },
        RecordSource { rx, lost },
    )
}

impl RecordSink {
    /// Never blocks the decision thread: a full queue (or no reader) loses the record.
    fn send(&self, rec: KprobeRecord) {
        if self.tx.try_send(rec).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the decision thread counts, read like a BPF hook's counters.
#[derive(Default)]
struct Counters {
    stats: [AtomicU64; VIGIL_HOOK_STAT_MAX as usize],
}

impl Counters {
    fn inc(&self, stat: u32) {
        self.stats[stat as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// One hook's fanotify group, marks and decision thread.
pub struct FanotifyHook {
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl FanotifyHook {
    /// Creates the group, marks what the selectors name, and starts answering.
    pub fn start(id: u32, spec: &FanotifySpec, arg_kind: u8, sink: RecordSink) -> Result<Self> {
        let group = Fanotify::init(
            InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK,
            EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
        )
        .map_err(|e| {
            anyhow::anyhow!("fanotify_init(FAN_CLASS_CONTENT) failed: {e} (needs CAP_SYS_ADMIN and CONFIG_FANOTIFY_ACCESS_PERMISSIONS)")
        })?;
        let inotify = Inotify::init(InotifyFlags::IN_NONBLOCK | InotifyFlags::IN_CLOEXEC)
            .context("inotify_init")?;
        let mut marks = Marks {
            group,
            inotify,
            mask: match spec.access {
                FileAccess::Open => MaskFlags::FAN_OPEN_PERM,
                FileAccess::Exec => MaskFlags::FAN_OPEN_EXEC_PERM,
            },
            equal: spec
                .selectors
                .iter()
                .flat_map(|s| s.equal.iter().map(PathBuf::from))
                .collect(),
            prefixes: spec
                .selectors
                .iter()
                .flat_map(|s| s.prefix.clone())
                .collect(),
            dirs: HashMap::new(),
            marked: 0,
        };
        marks.mark_all()?;
        let stop = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC).context("eventfd")?);
        let counters = Arc::new(Counters::default());
        let decider = Decider {
            id,
            spec: spec.clone(),
            arg_kind,
            sink,
            counters: counters.clone(),
            own_pid: std::process::id(),
        };
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vigil-fanotify-{id}"))
            .spawn(move || serve(marks, decider, &thread_stop))
            .context("starting the fanotify decision thread")?;
        Ok(FanotifyHook {
            stop,
            thread: Some(thread),
            counters,
        })
    }

    /// Events posted, accesses enforced and monitored (`enum vigil_hook_stat`).
    pub fn counters(&self) -> [u64; VIGIL_HOOK_STAT_MAX as usize] {
        let mut out = [0; VIGIL_HOOK_STAT_MAX as usize];
        for (o, c) in out.iter_mut().zip(&self.counters.stats) {
            *o = c.load(Ordering::Relaxed);
        }
        out
    }
}

impl Drop for FanotifyHook {
    fn drop(&mut self) {
        if let Err(e) = self.stop.write(1) {
            warn!(error = %e, "waking the fanotify decision thread to stop");
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the fanotify decision thread panicked");
            }
        }
    }
}

/// The group's marks, and the inotify watches that keep them current.
struct Marks {
    group: Fanotify,
    inotify: Inotify,
    mask: MaskFlags,
    equal: HashSet<PathBuf>,
    prefixes: Vec<String>,
    /// Watched directories, to resolve inotify's names.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    marked: usize,
}

impl Marks {
    fn mark_all(&mut self) -> Result<()> {
        for path in self.equal.clone() {
            let dir = path.parent().unwrap_or(Path::new("/"));
            // The parent is watched so that a file replaced by rename or
            // created later gets its inode marked.
            self.watch(dir)
                .with_context(|| format!("Equal {}: watching {}", path.display(), dir.display()))?;
            match self.mark(&path, false) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => bail!("Equal {}: fanotify_mark: {e}", path.display()),
            }
        }
        for prefix in self.prefixes.clone() {
            self.mark_prefix(&prefix)
                .with_context(|| format!("Prefix {prefix}"))?;
        }
        Ok(())
    }

    /// Prefix `/a/b/`: every directory of the tree `/a/b`; Prefix `/a/bc`:
    /// `/a` (its children only) and the trees of its subdirectories whose
    /// path starts with `/a/bc`.
    fn mark_prefix(&mut self, prefix: &str) -> Result<()> {
        let trimmed = prefix.trim_end_matches('/');
        if trimmed.is_empty() {
            bail!("a Prefix of / would mark every directory; name a narrower one");
        }
        if prefix.ends_with('/') {
            return self.mark_tree(Path::new(trimmed));
        }
        let base = Path::new(prefix).parent().unwrap_or(Path::new("/"));
        self.mark_dir(base)?;
        for dir in subdirs(base)? {
            if dir.to_string_lossy().starts_with(prefix) {
                self.mark_tree(&dir)?;
            }
        }
        Ok(())
    }

    fn mark_tree(&mut self, root: &Path) -> Result<()> {
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            self.mark_dir(&dir)?;
            todo.extend(subdirs(&dir)?);
        }
        Ok(())
    }

    fn mark_dir(&mut self, dir: &Path) -> Result<()> {
        if self.marked >= MARKS_MAX {
            bail!("more than {MARKS_MAX} directories to mark");
        }
        self.mark(dir, true)
            .with_context(|| format!("fanotify_mark on directory {}", dir.display()))?;
        self.watch(dir)
            .with_context(|| format!("inotify watch on {}", dir.display()))
    }

    fn mark(&mut self, path: &Path, dir: bool) -> nix::Result<()> {
        let (flags, mask) = if dir {
            (
                MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_ONLYDIR,
                self.mask | MaskFlags::FAN_EVENT_ON_CHILD,
            )
        } else {
            (MarkFlags::FAN_MARK_ADD, self.mask)
        };
        self.group.mark(flags, mask, AT_FDCWD, Some(path))?;
        self.marked += 1;
        Ok(())
    }

    fn watch(&mut self, dir: &Path) -> nix::Result<()> {
        let wd = self.inotify.add_watch(
            dir,
            AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR,
        )?;
        self.dirs.insert(wd, dir.to_path_buf());
        Ok(())
    }

    /// Marks what appeared under the watched directories: a directory under
    /// a prefix (its whole tree), a file an Equal names (its new inode).
    fn on_inotify(&mut self) {
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    warn!(error = %e, "reading inotify events");
                    return;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    warn!(
                        "inotify queue overflowed: directories created meanwhile may be unmarked"
                    );
                }
                let (Some(dir), Some(name)) = (self.dirs.get(&ev.wd), &ev.name) else {
                    continue;
                };
                let path = dir.join(name);
                let text = path.to_string_lossy();
                let result = if ev.mask.contains(AddWatchFlags::IN_ISDIR)
                    && self.prefixes.iter().any(|p| text.starts_with(p.as_str()))
                {
                    self.mark_tree(&path)
                } else if self.equal.contains(&path) {
                    self.mark(&path, false).map_err(Into::into)
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    warn!(path = %path.display(), error = %format!("{e:#}"), "marking a new file or directory");
                }
            }
        }
    }
}

/// The directories directly in `dir` (symbolic links not followed).
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

/// The selectors, and where decisions and events go.
struct Decider {
    id: u32,
    spec: FanotifySpec,
    arg_kind: u8,
    sink: RecordSink,
    counters: Arc<Counters>,
    own_pid: u32,
}

/// The first selector that matches an access, with the file's path.
enum Decision {
    NoMatch,
    /// The path could not be read, or the deadline passed: allowed, counted.
    Undecided,
    Matched {
        selector: usize,
        path: String,
    },
}

impl Decider {
    fn decide(&self, fd: BorrowedFd<'_>, pid: u32, read_at: Instant) -> Decision {
        if pid == self.own_pid {
            return Decision::NoMatch;
        }
        if read_at.elapsed() > DECISION_DEADLINE {
            return Decision::Undecided;
        }
        let Ok(path) = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
            return Decision::Undecided;
        };
        let path = path.to_string_lossy().into_owned();
        let mut binary: Option<String> = None;
        for (s, sel) in self.spec.selectors.iter().enumerate() {
            if !sel.matches_path(&path) || !sel.matches_pid(pid) {
                continue;
            }
            if let Some(bins) = &sel.binaries {
                let binary = binary.get_or_insert_with(|| {
                    fs::read_link(format!("/proc/{pid}/exe"))
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default()
                });
                if !bins.matches(binary) {
                    continue;
                }
            }
            return Decision::Matched { selector: s, path };
        }
        Decision::NoMatch
    }

    /// Answers one permission event, and reports it.
    fn answer(&self, group: &Fanotify, ev: &FanotifyEvent, read_at: Instant) {
        let Some(fd) = ev.fd() else {
            warn!(hook = self.id, "fanotify queue overflowed");
            return;
        };
        let pid = ev.pid().unsigned_abs();
        // Before any kill: the caller's exit must come after its event.
        let ktime = monotonic_ns();
        let mut response = Response::FAN_ALLOW;
        match self.decide(fd, pid, read_at) {
            Decision::NoMatch => {}
            Decision::Undecided => {
                DEFAULT_ALLOWED.inc();
            }
            Decision::Matched { selector, path } => {
                let sel = &self.spec.selectors[selector];
                let mut flags = 0;
                match (sel.verdict, self.spec.enforce) {
                    (Verdict::Allow, _) => {}
                    (_, false) => {
                        flags |= VIGIL_KPROBE_MONITORED;
                        self.counters.inc(VIGIL_HOOK_STAT_MONITORED);
                    }
                    (Verdict::Deny, true) => {
                        response = Response::FAN_DENY;
                        self.counters.inc(VIGIL_HOOK_STAT_ENFORCED);
                    }
                    (Verdict::Kill, true) => {
                        // Killed first: the denied call then never returns to user code.
                        if kill(Pid::from_raw(ev.pid()), Signal::SIGKILL).is_err() {
                            flags |= VIGIL_KPROBE_SIGNAL_FAILED;
                        }
                        response = Response::FAN_DENY;
                        self.counters.inc(VIGIL_HOOK_STAT_ENFORCED);
                    }
                }
                if sel.post {
                    self.counters.inc(VIGIL_HOOK_STAT_POSTED);
                    self.sink.send(KprobeRecord {
                        ktime,
                        key: ProcKey { pid, ktime: 0 },
                        tid: pid,
                        hook: self.id,
                        flags,
                        selector: selector as u32,
                        ret: None,
                        ret_data: Vec::new(),
                        ima_hash: None,
                        // A permission event has no stack to take.
                        kernel_stack: None,
                        user_stack: None,
                        args: vec![RawArg {
                            kind: self.arg_kind,
                            bytes: path.into_bytes(),
                        }],
                    });
                }
            }
        }
        if let Err(e) = group.write_response(FanotifyResponse::new(fd, response)) {
            warn!(hook = self.id, error = %e, "answering a fanotify permission event");
        }
    }
}

/// The decision thread: answers permission events and keeps the marks
/// current until told to stop; the group closes when it returns.
fn serve(mut marks: Marks, decider: Decider, stop: &EventFd) {
    loop {
        let (group_ready, inotify_ready, stopped) = {
            let mut fds = [
                PollFd::new(marks.group.as_fd(), PollFlags::POLLIN),
                PollFd::new(marks.inotify.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    warn!(error = %e, "polling the fanotify group; its hook stops blocking");
                    return;
                }
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]))
        };
        if stopped {
            return;
        }
        if group_ready {
            loop {
                let events = match marks.group.read_events() {
                    Ok(events) if !events.is_empty() => events,
                    Ok(_) | Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        warn!(error = %e, "reading fanotify events");
                        break;
                    }
                };
                let read_at = Instant::now();
                for ev in &events {
                    decider.answer(&marks.group, ev, read_at);
                }
            }
        }
        if inotify_ready {
            marks.on_inotify();
        }
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
