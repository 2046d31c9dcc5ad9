//! connect(2) hooks that must block on kernels without BPF-LSM or fmod_ret:
//! the generic hook as cgroup/connect4 and cgroup/connect6 programs,
//! link-attached to the cgroup v2 root (multi-attach: other programs there
//! keep running, and dropping the links detaches only ours), plus the
//! sys_exit_connect tracepoint that sends the signals cgroup programs may
//! not send themselves. One instance per hook, so that hooks come and go
//! one by one.
use std::{
    ffi::CString,
    fs, io,
    os::fd::{AsFd, AsRawFd},
    path::PathBuf,
};

use anyhow::{bail, Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, TracepointCategory,
};
use vigil_bpf::{
    connect::{ConnectSkel, ConnectSkelBuilder},
    syscall::SyscallSkel,
};

use super::{generic::load_logged, Owned};
use crate::reuse_generic_maps;

/// Where vigil mounts the cgroup v2 hierarchy when the host has not.
const OWN_CGROUP2: &str = "/run/vigil/cgroup2";

/// The instance serving one connect hook. The links are declared first:
/// they are dropped (detached) before the object.
pub struct ConnectHook {
    _links: Vec<Link>,
    _skel: Owned<ConnectSkel<'static>>,
}

impl ConnectHook {
    /// Loads a connect front-end for hook `id` with the system call
    /// object's maps, and attaches it to the cgroup v2 root.
    pub fn load(shared: &SyscallSkel<'_>, wakeup_bytes: u64, id: u32) -> Result<Self> {
        let skel = Owned::new(|storage| {
            let mut open = ConnectSkelBuilder::default()
                .open(storage)
                .context("opening the cgroup connect hook's BPF object")?;
            reuse_generic_maps!(&mut open.maps, &shared.maps)?;
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.agent_tgid = std::process::id();
                rodata.host_user_ns = crate::events::host_namespaces().user;
                rodata.vigil_config.wakeup_bytes = wakeup_bytes;
                rodata.connect_hooks.count = 1;
                rodata.connect_hooks.hooks[0] = id;
            }
            load_logged(|| open.load())
        })?;
        let root = cgroup2_root()?;
        let dir = fs::File::open(&root)
            .with_context(|| format!("opening the cgroup v2 root {}", root.display()))?;
        let progs = &skel.progs;
        let links = vec![
            progs
                .vigil_connect4
                .attach_cgroup(dir.as_raw_fd())
                .with_context(|| format!("attaching cgroup/connect4 to {}", root.display()))?,
            progs
                .vigil_connect6
                .attach_cgroup(dir.as_raw_fd())
                .with_context(|| format!("attaching cgroup/connect6 to {}", root.display()))?,
            progs
                .vigil_connect_exit
                .attach_tracepoint(TracepointCategory::Syscalls, "sys_exit_connect")
                .context("attaching tracepoint syscalls/sys_exit_connect")?,
        ];
        tracing::debug!(root = %root.display(), hook = id, "cgroup connect hook attached");
        Ok(ConnectHook {
            _links: links,
            _skel: skel,
        })
    }
}

/// The root of the cgroup v2 hierarchy: a cgroup2 mount of `/` (mountinfo's
/// root field), or vigil's own mount when the host has none.
fn cgroup2_root() -> Result<PathBuf> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let found = mountinfo.lines().find_map(|line| {
        let (fields, fstype) = line.split_once(" - ")?;
        let mut fields = fields.split_whitespace();
        let root = fields.nth(3)?;
        let dir = fields.next()?;
        (fstype.starts_with("cgroup2 ") && root == "/").then(|| PathBuf::from(dir))
    });
    if let Some(dir) = found {
        return Ok(dir);
    }
    fs::create_dir_all(OWN_CGROUP2).with_context(|| format!("creating {OWN_CGROUP2}"))?;
    let (fstype, target) = (CString::new("cgroup2")?, CString::new(OWN_CGROUP2)?);
    // SAFETY: valid NUL-terminated strings; data may be NULL.
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
        bail!(
            "no cgroup v2 mount, and mounting one on {OWN_CGROUP2} failed: {}",
            io::Error::last_os_error()
        );
    }
    tracing::info!("mounted the cgroup v2 hierarchy on {OWN_CGROUP2}");
    Ok(PathBuf::from(OWN_CGROUP2))
}
