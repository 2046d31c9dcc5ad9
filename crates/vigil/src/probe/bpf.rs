//! The BPF side of the probe: one program of `features.bpf.c` per load, so a
//! hook kind the kernel refuses fails only its own feature.

use std::{
    cell::Cell,
    fs,
    io::{self, Read},
    mem::MaybeUninit,
    net::UdpSocket,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    ptr,
    time::Duration,
};

use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Iter, Link, OpenObject, PrintLevel, RingBufferBuilder, UprobeOpts,
};
use vigil_bpf::features::{types::bss, FeaturesSkel, FeaturesSkelBuilder};

use super::{host, Failure, Outcome, Stage};

/// The function the uprobe checks attach to, by name, in vigil's own executable.
#[no_mangle]
#[inline(never)]
pub extern "C" fn vigil_probe_uprobe_target(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_add(1)
}

/// Routes libbpf's messages to tracing while probing: the expected failures
/// would otherwise print warnings to stderr.
pub(super) struct LibbpfOutput(Option<(PrintLevel, libbpf_rs::PrintCallback)>);

impl LibbpfOutput {
    pub(super) fn capture() -> Self {
        LibbpfOutput(libbpf_rs::set_print(Some((PrintLevel::Debug, forward))))
    }
}

impl Drop for LibbpfOutput {
    fn drop(&mut self) {
        libbpf_rs::set_print(self.0.take());
    }
}

fn forward(level: PrintLevel, msg: String) {
    tracing::debug!(?level, "libbpf: {}", msg.trim_end());
}

/// Who the programs filter on, and the files and port the checks use.
pub(super) struct ProbeEnv {
    tgid: u32,
    tid: u32,
    dir: PathBuf,
    deny_port: u16,
}

const DENY_NAME: &str = "vigil-probe-deny";
const MODRET_NAME: &str = "vigil-probe-modret";
const WATCH_NAME: &str = "vigil-probe-watch";
const OVERRIDE_DIR: &str = "vigil-probe-override";
const WATCH_DIR: &str = "vigil-probe-mkdir";
const TRIGGERS: u64 = 3;

impl ProbeEnv {
    pub(super) fn new() -> Self {
        let tgid = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = u32::try_from(unsafe { libc::gettid() }).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("vigil-probe-{tgid}"));
        // A failure here surfaces as the reason of each check that opens these files.
        let _ = fs::create_dir_all(&dir);
        for name in [DENY_NAME, MODRET_NAME, WATCH_NAME] {
            let _ = fs::write(dir.join(name), b"");
        }
        ProbeEnv {
            tgid,
            tid,
            dir,
            // A port no one is likely to use, different per prober.
            deny_port: 40000 + (tgid % 20000) as u16,
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for ProbeEnv {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Opens the skeleton with only `program` enabled, sets the filter values and loads it.
fn load<'o>(
    obj: &'o mut MaybeUninit<OpenObject>,
    env: &ProbeEnv,
    program: &str,
) -> Result<FeaturesSkel<'o>, Failure> {
    let mut open = FeaturesSkelBuilder::default()
        .open(obj)
        .map_err(|e| Failure::new(Stage::Load, format!("open: {}", lib_reason(&e))))?;
    for mut prog in open.open_object_mut().progs_mut() {
        let wanted = prog.name() == program;
        prog.set_autoload(wanted);
    }
    if program != "ringbuf_sys_enter" {
        open.maps
            .probe_ring
            .set_autocreate(false)
            .map_err(|e| Failure::new(Stage::Load, format!("open: {}", lib_reason(&e))))?;
    }
    let bss = open
        .maps
        .bss_data
        .as_deref_mut()
        .ok_or_else(|| Failure::new(Stage::Load, "open: no .bss in the skeleton"))?;
    bss.target_tgid = env.tgid;
    bss.target_tid = env.tid;
    bss.deny_port = env.deny_port;
    copy_name(&mut bss.deny_name, DENY_NAME);
    copy_name(&mut bss.modret_name, MODRET_NAME);
    open.load()
        .map_err(|e| Failure::new(Stage::Load, format!("load: {}", lib_reason(&e))))
}

fn copy_name(dst: &mut [i8; 32], name: &str) {
    for (d, s) in dst.iter_mut().zip(name.bytes().chain(std::iter::repeat(0))) {
        *d = s as i8;
    }
}

/// Reads a counter the kernel updates behind the compiler's back.
fn read<T: Copy>(field: &T) -> T {
    // SAFETY: a valid reference to the mmapped .bss.
    unsafe { ptr::read_volatile(field) }
}

fn bss_of<'a>(skel: &'a FeaturesSkel<'_>) -> Result<&'a bss, Failure> {
    skel.maps
        .bss_data
        .as_deref()
        .ok_or_else(|| Failure::new(Stage::Check, "no mmapped .bss"))
}

/// `EPERM (Operation not permitted)` from a libbpf error, or its message.
fn lib_reason(e: &libbpf_rs::Error) -> String {
    let text = format!("{e:#}");
    let code = text.rfind("os error ").and_then(|at| {
        let digits: String = text[at + 9..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    });
    match code {
        Some(code) => host::errno_reason(code),
        None => text,
    }
}

fn attach_failure(e: &libbpf_rs::Error) -> Failure {
    Failure::new(Stage::Attach, format!("attach: {}", lib_reason(e)))
}

/// What makes a program run.
#[derive(Clone, Copy)]
enum Trigger {
    /// Syscalls from this thread.
    Syscall,
    /// `open()` of a plain file, which goes through `security_file_open`.
    Open,
    /// Calls of [`vigil_probe_uprobe_target`].
    Call,
}

impl Trigger {
    fn fire(self, env: &ProbeEnv) {
        for i in 0..TRIGGERS {
            match self {
                // SAFETY: getppid has no preconditions.
                Trigger::Syscall => drop(unsafe { libc::getppid() }),
                Trigger::Open => drop(fs::File::open(env.file(WATCH_NAME))),
                Trigger::Call => drop(vigil_probe_uprobe_target(i)),
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Trigger::Syscall => "getppid() calls",
            Trigger::Open => "open() calls",
            Trigger::Call => "calls of vigil_probe_uprobe_target",
        }
    }
}

type Attach = fn(&FeaturesSkel<'_>) -> libbpf_rs::Result<Link>;

/// Load, attach, trigger, and require the program's counter to move.
fn count_hits(
    env: &ProbeEnv,
    program: &str,
    attach: Attach,
    trigger: Trigger,
    counter: fn(&bss) -> &u64,
) -> Outcome {
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, program)?;
    let link = attach(&skel).map_err(|e| attach_failure(&e))?;
    trigger.fire(env);
    drop(link);
    hits_or_check(read(counter(bss_of(&skel)?)), trigger)
}

pub(super) fn tp_btf(env: &ProbeEnv) -> Outcome {
    count_hits(
        env,
        "tp_btf_sys_enter",
        |s| s.progs.tp_btf_sys_enter.attach(),
        Trigger::Syscall,
        |b| &b.tp_btf_hits,
    )
}

pub(super) fn raw_tp(env: &ProbeEnv) -> Outcome {
    count_hits(
        env,
        "raw_tp_sys_enter",
        |s| s.progs.raw_tp_sys_enter.attach(),
        Trigger::Syscall,
        |b| &b.raw_tp_hits,
    )
}

pub(super) fn tracepoint(env: &ProbeEnv) -> Outcome {
    count_hits(
        env,
        "tracepoint_sys_enter",
        |s| s.progs.tracepoint_sys_enter.attach(),
        Trigger::Syscall,
        |b| &b.tracepoint_hits,
    )
}

/// Without a kprobe PMU, libbpf falls back to tracefs' kprobe_events and
/// reports ENOENT; say which of the two is missing.
fn with_kprobe_hint(outcome: Outcome) -> Outcome {
    outcome.map_err(|mut f| {
        if f.stage == Stage::Attach && !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
            f.reason.push_str(": no kprobe PMU");
            if !Path::new("/sys/kernel/tracing/kprobe_events").exists() {
                f.reason.push_str(" and no kprobe_events");
            }
        }
        f
    })
}

pub(super) fn kprobe(env: &ProbeEnv) -> Outcome {
    with_kprobe_hint(count_hits(
        env,
        "kprobe_file_open",
        |s| s.progs.kprobe_file_open.attach(),
        Trigger::Open,
        |b| &b.kprobe_hits,
    ))
}

pub(super) fn kretprobe(env: &ProbeEnv) -> Outcome {
    with_kprobe_hint(count_hits(
        env,
        "kretprobe_file_open",
        |s| s.progs.kretprobe_file_open.attach(),
        Trigger::Open,
        |b| &b.kretprobe_hits,
    ))
}

pub(super) fn kprobe_multi(env: &ProbeEnv) -> Outcome {
    count_hits(
        env,
        "kprobe_multi_file_open",
        |s| s.progs.kprobe_multi_file_open.attach(),
        Trigger::Open,
        |b| &b.kprobe_multi_hits,
    )
}

pub(super) fn fentry(env: &ProbeEnv) -> Outcome {
    count_hits(
        env,
        "fentry_file_open",
        |s| s.progs.fentry_file_open.attach(),
        Trigger::Open,
        |b| &b.fentry_hits,
    )
}

pub(super) fn fexit(env: &ProbeEnv) -> Outcome {
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "fexit_file_open")?;
    let link = skel
        .progs
        .fexit_file_open
        .attach()
        .map_err(|e| attach_failure(&e))?;
    Trigger::Open.fire(env);
    drop(link);
    let bss = bss_of(&skel)?;
    let hits = read(&bss.fexit_hits);
    if hits == 0 {
        return Err(Failure::new(
            Stage::Check,
            "check: attached, but no hits after open() calls",
        ));
    }
    Ok(format!(
        "{hits} hits after {TRIGGERS} open() calls, saw return value {}",
        read(&bss.fexit_ret)
    ))
}

/// Opens `deny` expecting `errno`, then an unrelated file expecting success.
fn expect_open_errno(env: &ProbeEnv, deny: &str, errno: i32, what: &str) -> Outcome {
    let want = host::errno_reason(errno);
    match fs::File::open(env.file(deny)) {
        Err(e) if e.raw_os_error() == Some(errno) => {}
        Err(e) => {
            return Err(Failure::new(
                Stage::Check,
                format!(
                    "check: open() of {deny} failed with {}, not {want}",
                    host::io_reason(&e)
                ),
            ))
        }
        Ok(_) => {
            return Err(Failure::new(
                Stage::Check,
                format!("check: attached, but open() of {deny} succeeded"),
            ))
        }
    }
    fs::File::open(env.file(WATCH_NAME)).map_err(|e| {
        Failure::new(
            Stage::Check,
            format!(
                "check: open() of an unrelated file failed: {}",
                host::io_reason(&e)
            ),
        )
    })?;
    Ok(format!(
        "{what}: open() of {deny} failed with {want}, another file opened"
    ))
}

pub(super) fn fmod_ret(env: &ProbeEnv) -> Outcome {
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "fmod_ret_file_open")?;
    let link = skel
        .progs
        .fmod_ret_file_open
        .attach()
        .map_err(|e| attach_failure(&e))?;
    let outcome = expect_open_errno(env, MODRET_NAME, libc::EXDEV, "fmod_ret/security_file_open");
    drop(link);
    outcome
}

/// fmod_ret on `__x64_sys_mkdir` failing this thread's first mkdir(2)
/// with EXDEV: that mkdir must fail, its directory must not exist, and the
/// next mkdir must work.
pub(super) fn fmod_ret_syscall(env: &ProbeEnv) -> Outcome {
    with_error_injection_hint(override_first_mkdir(
        env,
        "fmod_ret_mkdir",
        |s| s.progs.fmod_ret_mkdir.attach(),
        "fmod_ret/__x64_sys_mkdir",
    ))
}

/// The same by a kprobe on `__x64_sys_mkdir` with bpf_override_return.
pub(super) fn kprobe_override(env: &ProbeEnv) -> Outcome {
    with_error_injection_hint(with_kprobe_hint(override_first_mkdir(
        env,
        "kprobe_override_mkdir",
        |s| s.progs.kprobe_override_mkdir.attach(),
        "kprobe/__x64_sys_mkdir",
    )))
}

/// Where the kernel keeps its error injection list (debugfs).
const ERROR_INJECTION_DIR: &str = "/sys/kernel/debug/error_injection";

/// A system call function the kernel refuses to let fail: say so when
/// debugfs is mounted and shows no error injection list.
fn with_error_injection_hint(outcome: Outcome) -> Outcome {
    outcome.map_err(|mut f| {
        let debugfs = fs::read_to_string("/proc/mounts").is_ok_and(|m| {
            m.lines().any(|l| {
                let mut fields = l.split_whitespace().skip(1);
                fields.next() == Some("/sys/kernel/debug") && fields.next() == Some("debugfs")
            })
        });
        if f.stage != Stage::Check && debugfs && !Path::new(ERROR_INJECTION_DIR).exists() {
            f.reason.push_str(&format!(
                ": kernel without function error injection (no {ERROR_INJECTION_DIR}; \
                 CONFIG_FUNCTION_ERROR_INJECTION)"
            ));
        }
        f
    })
}

fn mkdir(path: &Path) -> io::Result<()> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: mkdir(2) on a NUL-terminated path we own; the raw system call,
    // since the kprobe is on __x64_sys_mkdir and libc may use mkdirat.
    let rc = unsafe { libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o700) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn override_first_mkdir(env: &ProbeEnv, program: &str, attach: Attach, what: &str) -> Outcome {
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, program)?;
    let link = attach(&skel).map_err(|e| attach_failure(&e))?;
    let (blocked, allowed) = (env.file(OVERRIDE_DIR), env.file(WATCH_DIR));
    let first = mkdir(&blocked);
    let second = mkdir(&allowed);
    drop(link);
    let check = |reason: String| Failure::new(Stage::Check, format!("check: {reason}"));
    match first {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        Err(e) => {
            return Err(check(format!(
                "mkdir() failed with {}, not {}",
                host::io_reason(&e),
                host::errno_reason(libc::EXDEV)
            )))
        }
        Ok(()) => return Err(check("attached, but mkdir() succeeded".into())),
    }
    if blocked.exists() {
        return Err(check(
            "mkdir() failed, but its directory exists: the call ran".into(),
        ));
    }
    second.map_err(|e| check(format!("the next mkdir() failed: {}", host::io_reason(&e))))?;
    Ok(format!(
        "{what}: mkdir() failed with {} and made nothing, the next mkdir() worked",
        host::errno_reason(libc::EXDEV)
    ))
}

pub(super) fn lsm(env: &ProbeEnv) -> Outcome {
    host::bpf_lsm_active()?;
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "lsm_file_open")?;
    let link = skel
        .progs
        .lsm_file_open
        .attach_lsm()
        .map_err(|e| attach_failure(&e))?;
    let outcome = expect_open_errno(env, DENY_NAME, libc::EPERM, "lsm/file_open");
    drop(link);
    outcome
}

/// A sleepable `lsm.s/file_open` program hashes the prober's file with
/// bpf_ima_file_hash (5.18+), which needs IMA in the kernel.
pub(super) fn ima_hash(env: &ProbeEnv) -> Outcome {
    host::bpf_lsm_active()?;
    host::ima_active()?;
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "ima_file_open")?;
    let link = skel
        .progs
        .ima_file_open
        .attach_lsm()
        .map_err(|e| attach_failure(&e))?;
    let opened = fs::File::open(env.file(DENY_NAME));
    drop(link);
    opened.map_err(|e| {
        Failure::new(
            Stage::Check,
            format!(
                "check: open() of {DENY_NAME} failed: {}",
                host::io_reason(&e)
            ),
        )
    })?;
    match read(&bss_of(&skel)?.ima_algo) {
        0 => Err(Failure::new(
            Stage::Check,
            format!("check: attached, but the open() of {DENY_NAME} was not hashed"),
        )),
        algo if algo < 0 => Err(Failure::new(
            Stage::Prereq,
            format!(
                "bpf_ima_file_hash failed with {}",
                host::errno_reason(i32::try_from(-algo).unwrap_or(i32::MAX))
            ),
        )),
        algo => Ok(format!(
            "lsm.s/file_open: bpf_ima_file_hash hashed {DENY_NAME} (kernel hash algorithm {algo})"
        )),
    }
}

fn own_exe() -> Result<PathBuf, Failure> {
    std::env::current_exe().map_err(|e| {
        Failure::new(
            Stage::Prereq,
            format!("own executable: {}", host::io_reason(&e)),
        )
    })
}

pub(super) fn uprobe(env: &ProbeEnv) -> Outcome {
    let exe = own_exe()?;
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "uprobe_target")?;
    let opts = UprobeOpts {
        func_name: Some("vigil_probe_uprobe_target".into()),
        ..Default::default()
    };
    let link = skel
        .progs
        .uprobe_target
        .attach_uprobe_with_opts(-1, &exe, 0, opts)
        .map_err(|e| attach_failure(&e))?;
    Trigger::Call.fire(env);
    drop(link);
    hits_or_check(read(&bss_of(&skel)?.uprobe_hits), Trigger::Call)
}

pub(super) fn uprobe_multi(env: &ProbeEnv) -> Outcome {
    let exe = own_exe()?;
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "uprobe_multi_target")?;
    let link = skel
        .progs
        .uprobe_multi_target
        .attach_uprobe_multi(-1, &exe, "vigil_probe_uprobe_target", false, false)
        .map_err(|e| attach_failure(&e))?;
    Trigger::Call.fire(env);
    drop(link);
    hits_or_check(read(&bss_of(&skel)?.uprobe_multi_hits), Trigger::Call)
}

fn hits_or_check(hits: u64, trigger: Trigger) -> Outcome {
    if hits == 0 {
        return Err(Failure::new(
            Stage::Check,
            format!(
                "check: attached, but no hits after {TRIGGERS} {}",
                trigger.describe()
            ),
        ));
    }
    Ok(format!(
        "{hits} hits after {TRIGGERS} {}",
        trigger.describe()
    ))
}

pub(super) fn ring_buffer(env: &ProbeEnv) -> Outcome {
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "ringbuf_sys_enter")?;
    let link = skel
        .progs
        .ringbuf_sys_enter
        .attach()
        .map_err(|e| attach_failure(&e))?;
    Trigger::Syscall.fire(env);
    drop(link);
    let records = Cell::new(0u64);
    let ours = Cell::new(0u64);
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.probe_ring, |data: &[u8]| {
            records.set(records.get() + 1);
            if data.get(..4).map(|b| b == env.tgid.to_ne_bytes()) == Some(true) {
                ours.set(ours.get() + 1);
            }
            0
        })
        .map_err(|e| Failure::new(Stage::Attach, format!("ring buffer: {}", lib_reason(&e))))?;
    let ring = builder
        .build()
        .map_err(|e| Failure::new(Stage::Attach, format!("ring buffer: {}", lib_reason(&e))))?;
    ring.poll(Duration::from_millis(100))
        .map_err(|e| Failure::new(Stage::Check, format!("check: poll: {}", lib_reason(&e))))?;
    drop(ring);
    if ours.get() == 0 {
        return Err(Failure::new(
            Stage::Check,
            format!("check: {} records, none carrying this tgid", records.get()),
        ));
    }
    Ok(format!(
        "{} records read back after {TRIGGERS} getppid() calls",
        ours.get()
    ))
}

/// Keeps SIGURG blocked in this thread while it exists, so the signal the
/// program sends stays pending where the check can collect it.
struct BlockedSigurg(libc::sigset_t);

impl BlockedSigurg {
    fn new() -> Result<Self, Failure> {
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        let set = sigurg_set();
        // SAFETY: both sets are valid; old is written by the call.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
        if rc != 0 {
            return Err(Failure::new(
                Stage::Prereq,
                format!("pthread_sigmask: {}", host::errno_reason(rc)),
            ));
        }
        // SAFETY: initialized by the successful call above.
        Ok(BlockedSigurg(unsafe { old.assume_init() }))
    }

    /// Takes a pending SIGURG, if any, without waiting.
    fn take_pending(&self) -> bool {
        let set = sigurg_set();
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid set and timeout; no siginfo wanted.
        unsafe { libc::sigtimedwait(&set, ptr::null_mut(), &zero) == libc::SIGURG }
    }
}

impl Drop for BlockedSigurg {
    fn drop(&mut self) {
        // Drain a signal that arrived late so that it is not delivered (and ignored) later.
        self.take_pending();
        // SAFETY: restores the mask saved in new().
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, ptr::null_mut()) };
    }
}

fn sigurg_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set; sigaddset takes a valid signal.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGURG);
        set.assume_init()
    }
}

pub(super) fn send_signal(env: &ProbeEnv) -> Outcome {
    let blocked = BlockedSigurg::new()?;
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "send_signal_sys_enter")?;
    let link = skel
        .progs
        .send_signal_sys_enter
        .attach()
        .map_err(|e| attach_failure(&e))?;
    Trigger::Syscall.fire(env);
    drop(link);
    let bss = bss_of(&skel)?;
    let ret = read(&bss.signal_ret);
    if read(&bss.signal_sent) == 0 {
        return Err(Failure::new(
            Stage::Check,
            "check: attached, but the program did not run",
        ));
    }
    if ret != 0 {
        return Err(Failure::new(
            Stage::Check,
            format!("check: bpf_send_signal_thread returned {ret}"),
        ));
    }
    if !blocked.take_pending() {
        return Err(Failure::new(
            Stage::Check,
            "check: bpf_send_signal_thread returned 0, but no SIGURG arrived",
        ));
    }
    Ok("bpf_send_signal_thread(SIGURG) from tp_btf/sys_enter reached this thread".into())
}

pub(super) fn connect4(env: &ProbeEnv) -> Outcome {
    let cgroup = host::own_cgroup2_dir()?;
    let dir = fs::File::open(&cgroup).map_err(|e| {
        Failure::new(
            Stage::Prereq,
            format!("{}: {}", cgroup.display(), host::io_reason(&e)),
        )
    })?;
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "connect4_deny")?;
    let link = skel
        .progs
        .connect4_deny
        .attach_cgroup(dir.as_raw_fd())
        .map_err(|e| attach_failure(&e))?;
    let denied = udp_connect(env.deny_port);
    let other = udp_connect(env.deny_port.wrapping_add(1));
    drop(link);
    match (denied, other) {
        (Err(e), other) if e.raw_os_error() == Some(libc::EPERM) => {
            if let Err(e) = other {
                if e.raw_os_error() == Some(libc::EPERM) {
                    return Err(Failure::new(
                        Stage::Check,
                        "check: connect() to another port was denied too",
                    ));
                }
            }
            Ok(format!(
                "connect() to 127.0.0.1:{} denied with EPERM (cgroup {})",
                env.deny_port,
                cgroup.display()
            ))
        }
        (Err(e), _) => Err(Failure::new(
            Stage::Check,
            format!(
                "check: connect() failed with {}, not EPERM",
                host::io_reason(&e)
            ),
        )),
        (Ok(()), _) => Err(Failure::new(
            Stage::Check,
            "check: attached, but connect() to the denied port succeeded",
        )),
    }
}

fn udp_connect(port: u16) -> io::Result<()> {
    UdpSocket::bind("127.0.0.1:0")?.connect(("127.0.0.1", port))
}

pub(super) fn task_iter(env: &ProbeEnv) -> Outcome {
    let mut obj = MaybeUninit::uninit();
    let skel = load(&mut obj, env, "iter_task")?;
    let link = skel
        .progs
        .iter_task
        .attach()
        .map_err(|e| attach_failure(&e))?;
    let mut iter = Iter::new(&link)
        .map_err(|e| Failure::new(Stage::Attach, format!("iter create: {}", lib_reason(&e))))?;
    let mut out = Vec::new();
    iter.read_to_end(&mut out).map_err(|e| {
        Failure::new(
            Stage::Check,
            format!("check: read: {}", host::io_reason(&e)),
        )
    })?;
    drop(iter);
    drop(link);
    let seen = read(&bss_of(&skel)?.iter_seen);
    if seen == 0 {
        return Err(Failure::new(
            Stage::Check,
            "check: iterated, but this process's tasks were not among them",
        ));
    }
    Ok(format!("{seen} tasks of this process seen"))
}
