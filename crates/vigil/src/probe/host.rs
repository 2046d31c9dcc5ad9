//! The non-BPF side of the probe: mounts, files, fanotify, errno names.

use std::{
    ffi::CString,
    fs,
    io::{self, Read},
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    thread,
};

use super::{Failure, Outcome, Stage};

const TRACEFS: &str = "/sys/kernel/tracing";
const SECURITYFS: &str = "/sys/kernel/security";
const LSM_LIST: &str = "/sys/kernel/security/lsm";

/// Classic tracepoints need tracefs (libbpf reads event ids there) and the
/// LSM check reads securityfs; neither is mounted on every host.
pub(super) fn mount_if_missing() {
    if !Path::new(TRACEFS).join("events").exists() {
        mount("tracefs", TRACEFS);
    }
    if !Path::new(LSM_LIST).exists() {
        mount("securityfs", SECURITYFS);
    }
}

/// Best effort: a failed mount shows up later as the reason of the feature that needs it.
fn mount(fstype: &str, target: &str) {
    if let Err(e) = mount_fs(fstype, target) {
        tracing::debug!("mount {fstype:?} on {target:?}: {e}");
    }
}

/// Mounts a pseudo file system (tracefs, cgroup2, ...) on `target`.
pub(crate) fn mount_fs(fstype: &str, target: &str) -> io::Result<()> {
    let fstype = CString::new(fstype).map_err(io::Error::other)?;
    let target = CString::new(target).map_err(io::Error::other)?;
    // SAFETY: all pointers are valid NUL-terminated strings; data may be NULL.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(super) fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

pub(super) fn btf() -> Outcome {
    let path = "/sys/kernel/btf/vmlinux";
    match fs::metadata(path) {
        Ok(m) if m.len() > 0 => Ok(format!("{path}: {} bytes", m.len())),
        Ok(_) => Err(Failure::new(Stage::Prereq, format!("{path} is empty"))),
        Err(e) => Err(Failure::new(
            Stage::Prereq,
            format!("{path}: {}", io_reason(&e)),
        )),
    }
}

/// Whether BPF-LSM programs can run: `bpf` must be in the active LSM list.
/// An unreadable list is not a verdict; the functional check decides then.
pub(super) fn bpf_lsm_active() -> Result<(), Failure> {
    match fs::read_to_string(LSM_LIST) {
        Ok(list) if list.trim().split(',').any(|l| l == "bpf") => Ok(()),
        Ok(_) => Err(Failure::new(
            Stage::Prereq,
            format!("bpf not in {LSM_LIST}"),
        )),
        Err(_) => Ok(()),
    }
}

/// Whether IMA is enabled: it publishes `/sys/kernel/security/ima`. Without
/// securityfs (no LSM list either) this is not a verdict.
pub(super) fn ima_active() -> Result<(), Failure> {
    let ima = Path::new("/sys/kernel/security/ima");
    if Path::new(LSM_LIST).exists() && !ima.is_dir() {
        return Err(Failure::new(
            Stage::Prereq,
            format!("IMA is not enabled (no {})", ima.display()),
        ));
    }
    Ok(())
}

/// The cgroup v2 directory this process is in, e.g. `/sys/fs/cgroup/unified/`.
pub(super) fn own_cgroup2_dir() -> Result<PathBuf, Failure> {
    let mounts = fs::read_to_string("/proc/self/mounts")
        .map_err(|e| Failure::new(Stage::Prereq, format!("/proc/self/mounts: {e}")))?;
    let root = mounts
        .lines()
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let dir = fields.nth(1)?;
            (fields.next()? == "cgroup2").then(|| PathBuf::from(dir))
        })
        .next()
        .ok_or_else(|| Failure::new(Stage::Prereq, "no cgroup2 mount"))?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Failure::new(Stage::Prereq, format!("/proc/self/cgroup: {e}")))?;
    let rel = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| Failure::new(Stage::Prereq, "no cgroup v2 entry in /proc/self/cgroup"))?;
    Ok(root.join(rel.trim_start_matches('/')))
}

/// `FAN_OPEN_PERM` on one file: the prober denies an open from another thread.
pub(super) fn fanotify_perm(dir: &Path) -> Outcome {
    let file = dir.join("fanotify");
    fs::write(&file, b"")
        .map_err(|e| Failure::new(Stage::Prereq, format!("creating {}: {e}", file.display())))?;
    let path = CString::new(file.as_os_str().as_encoded_bytes())
        .map_err(|e| Failure::new(Stage::Prereq, e.to_string()))?;

    // SAFETY: plain syscall with flag arguments.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
            (libc::O_RDONLY | libc::O_CLOEXEC) as u32,
        )
    };
    if fd < 0 {
        return Err(Failure::new(
            Stage::Load,
            format!("fanotify_init: {}", last_errno()),
        ));
    }
    // SAFETY: fd is a new descriptor owned by nobody else.
    let group = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: group is open and path is NUL-terminated.
    let rc = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            libc::FAN_MARK_ADD,
            libc::FAN_OPEN_PERM,
            libc::AT_FDCWD,
            path.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(Failure::new(
            Stage::Attach,
            format!("fanotify_mark: {}", last_errno()),
        ));
    }

    let target = file.clone();
    let opener = thread::spawn(move || fs::File::open(target).map(drop));
    let answered = answer_with_deny(&group);
    // Closing the group allows any open still waiting, so the join cannot hang.
    drop(group);
    let opened = opener
        .join()
        .map_err(|_| Failure::new(Stage::Check, "opener thread panicked"))?;
    answered?;
    match opened {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            Ok("open() of the marked file denied with EPERM".into())
        }
        Err(e) => Err(Failure::new(
            Stage::Check,
            format!("open() failed with {} instead of EPERM", io_reason(&e)),
        )),
        Ok(()) => Err(Failure::new(
            Stage::Check,
            "open() succeeded despite FAN_DENY",
        )),
    }
}

/// Waits (1 s at most) for the permission event and denies it.
fn answer_with_deny(group: &OwnedFd) -> Result<(), Failure> {
    let mut pfd = libc::pollfd {
        fd: group.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is a valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut pfd, 1, 1000) } {
        1 => {}
        0 => return Err(Failure::new(Stage::Check, "no permission event within 1 s")),
        _ => {
            return Err(Failure::new(
                Stage::Check,
                format!("poll: {}", last_errno()),
            ))
        }
    }
    let mut buf = [0u8; 4096];
    // SAFETY: the group fd stays open while borrowed; File does not close it (forget below).
    let mut reader = unsafe { fs::File::from_raw_fd(group.as_raw_fd()) };
    let read = reader.read(&mut buf);
    std::mem::forget(reader);
    let len = read.map_err(|e| Failure::new(Stage::Check, format!("read: {}", io_reason(&e))))?;
    let meta_len = size_of::<libc::fanotify_event_metadata>();
    let mut at = 0;
    while at + meta_len <= len {
        // SAFETY: the kernel wrote a whole metadata record at `at`; read_unaligned copes with alignment.
        let meta: libc::fanotify_event_metadata =
            unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
        if meta.event_len == 0 {
            break;
        }
        if meta.fd >= 0 {
            // SAFETY: the event's fd is ours to close.
            let event_file = unsafe { OwnedFd::from_raw_fd(meta.fd) };
            let response = libc::fanotify_response {
                fd: event_file.as_raw_fd(),
                response: libc::FAN_DENY,
            };
            // SAFETY: writes one response struct to the group fd.
            let wrote = unsafe {
                libc::write(
                    group.as_raw_fd(),
                    (&response as *const libc::fanotify_response).cast(),
                    size_of::<libc::fanotify_response>(),
                )
            };
            if wrote < 0 {
                return Err(Failure::new(
                    Stage::Check,
                    format!("writing FAN_DENY: {}", last_errno()),
                ));
            }
        }
        at += meta.event_len as usize;
    }
    Ok(())
}

/// `EPERM (Operation not permitted)` for the calling thread's errno.
pub(super) fn last_errno() -> String {
    io_reason(&io::Error::last_os_error())
}

pub(super) fn io_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => errno_reason(code),
        None => e.to_string(),
    }
}

/// `EPERM (Operation not permitted)`; kernel-internal codes get their kernel names.
pub(super) fn errno_reason(code: i32) -> String {
    let name = match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        // Kernel-internal, leaks out of bpf(): "operation not supported".
        524 => return "ENOTSUPP (524, not supported by this kernel)".into(),
        _ => return format!("errno {code} ({})", strerror(code)),
    };
    format!("{name} ({})", strerror(code))
}

fn strerror(code: i32) -> String {
    let text = io::Error::from_raw_os_error(code).to_string();
    // std appends " (os error N)"; the name already says which.
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}
