//! connect(2), UDP send and bind(2) hooks that must block on kernels
//! without BPF-LSM or fmod_ret: the generic hook as cgroup sock_addr
//! programs (connect4/6, sendmsg4/6 or bind4/6), link-attached to the cgroup
//! v2 root (multi-attach: other programs there keep running, and dropping
//! the links detaches only ours), plus the exit tracepoints of the system
//! calls where the signals cgroup programs may not send themselves are
//! sent. One instance per hook, so that hooks come and go one by one; each
//! instance loads only its operation's programs.
use std::{
    fs,
    os::fd::{AsFd, AsRawFd},
    path::PathBuf,
};

use anyhow::{bail, Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, TracepointCategory,
};
use vigil_bpf::{
    sock_addr::{SockAddrSkel, SockAddrSkelBuilder},
    syscall::SyscallSkel,
};

use super::{generic::load_logged, Owned};
use crate::{
    policy::{SockAddrArgs, SockOp},
    reuse_generic_maps,
};

/// Where vigil mounts the cgroup v2 hierarchy when the host has not.
const OWN_CGROUP2: &str = "/run/vigil/cgroup2";

/// The register slot of an address no argument names (system call
/// arguments are slots 0 to 5).
const UNNAMED_SLOT: u32 = 7;

/// The instance serving one sock_addr hook. The links are declared first:
/// they are dropped (detached) before the object.
pub struct SockAddrHook {
    _links: Vec<Link>,
    _skel: Owned<SockAddrSkel<'static>>,
}

impl SockAddrHook {
    /// Loads the front-end of `op` for hook `id` with the system call
    /// object's maps, and attaches it to the cgroup v2 root.
    pub fn load(
        shared: &SyscallSkel<'_>,
        wakeup_bytes: u64,
        id: u32,
        op: SockOp,
        args: SockAddrArgs,
    ) -> Result<Self> {
        let skel = Owned::new(|storage| {
            let mut open = SockAddrSkelBuilder::default()
                .open(storage)
                .context("opening the cgroup sock_addr hook's BPF object")?;
            reuse_generic_maps!(&mut open.maps, &shared.maps)?;
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.agent_tgid = std::process::id();
                rodata.host_user_ns = crate::events::host_namespaces().user;
                rodata.vigil_config.wakeup_bytes = wakeup_bytes;
                rodata.sock_hook = id;
                rodata.args_syscall_nr = args.syscall_nr;
                rodata.addr_arg = args.addr.unwrap_or(UNNAMED_SLOT);
                rodata.addrlen_arg = args.addrlen;
            }
            let progs = &mut open.progs;
            for (prog, of) in [
                (&mut progs.vigil_connect4, SockOp::Connect),
                (&mut progs.vigil_connect6, SockOp::Connect),
                (&mut progs.vigil_sendmsg4, SockOp::Sendmsg),
                (&mut progs.vigil_sendmsg6, SockOp::Sendmsg),
                (&mut progs.vigil_bind4, SockOp::Bind),
                (&mut progs.vigil_bind6, SockOp::Bind),
            ] {
                prog.set_autoload(of == op);
            }
            load_logged(|| open.load())
        })?;
        let root = cgroup2_root()?;
        let dir = fs::File::open(&root)
            .with_context(|| format!("opening the cgroup v2 root {}", root.display()))?;
        let progs = &skel.progs;
        let (v4, v6) = match op {
            SockOp::Connect => (&progs.vigil_connect4, &progs.vigil_connect6),
            SockOp::Sendmsg => (&progs.vigil_sendmsg4, &progs.vigil_sendmsg6),
            SockOp::Bind => (&progs.vigil_bind4, &progs.vigil_bind6),
        };
        let mut links = Vec::new();
        for (prog, family) in [(v4, "4"), (v6, "6")] {
            links.push(prog.attach_cgroup(dir.as_raw_fd()).with_context(|| {
                format!(
                    "attaching cgroup/{}{family} to {}",
                    op.program(),
                    root.display()
                )
            })?);
        }
        for syscall in op.syscalls() {
            let exit = format!("sys_exit_{syscall}");
            links.push(
                progs
                    .vigil_sock_addr_exit
                    .attach_tracepoint(TracepointCategory::Syscalls, &exit)
                    .with_context(|| format!("attaching tracepoint syscalls/{exit}"))?,
            );
        }
        tracing::debug!(root = %root.display(), hook = id, op = op.program(), "cgroup sock_addr hook attached");
        Ok(SockAddrHook {
            _links: links,
            _skel: skel,
        })
    }
}

/// The first cgroup2 mount of the hierarchy's root in `mountinfo` (its
/// root field is `/`).
pub(crate) fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (fields, fstype) = line.split_once(" - ")?;
        let mut fields = fields.split_whitespace();
        let root = fields.nth(3)?;
        let dir = fields.next()?;
        (fstype.starts_with("cgroup2 ") && root == "/").then(|| PathBuf::from(dir))
    })
}

/// The root of the cgroup v2 hierarchy: a cgroup2 mount of `/`, or vigil's
/// own mount when the host has none.
pub(crate) fn cgroup2_root() -> Result<PathBuf> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    if let Some(dir) = cgroup2_mount(&mountinfo) {
        return Ok(dir);
    }
    fs::create_dir_all(OWN_CGROUP2).with_context(|| format!("creating {OWN_CGROUP2}"))?;
    if let Err(e) = crate::probe::mount_fs("cgroup2", OWN_CGROUP2) {
        bail!("no cgroup v2 mount, and mounting one on {OWN_CGROUP2} failed: {e}");
    }
    tracing::info!("mounted the cgroup v2 hierarchy on {OWN_CGROUP2}");
    Ok(PathBuf::from(OWN_CGROUP2))
}
