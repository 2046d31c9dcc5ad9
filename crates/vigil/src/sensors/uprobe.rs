//! TracingPolicy uprobes and USDT probes: one object
//! (`bpf/generic/uprobe.bpf.c`) serves every hooked symbol and probe. It is
//! loaded with the first such hook; its programs are attached once per hook,
//! with the hook's id as the attach cookie (the USDT cookie for USDT
//! probes), and share the system call object's maps (hook configurations,
//! selector strings, pending returns, ring buffer).
use std::{collections::BTreeMap, os::fd::AsFd};

use anyhow::{anyhow, Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    ErrorKind, Link, UprobeOpts, UsdtOpts,
};
use vigil_bpf::{
    syscall::SyscallSkel,
    uprobe::{UprobeSkel, UprobeSkelBuilder},
};

use super::{generic::load_logged, Owned};
use crate::reuse_generic_maps;

/// One uprobe hook: where it attaches and whether it reports the return.
pub struct UprobeHook<'a> {
    pub id: u32,
    pub path: &'a str,
    pub symbol: Option<&'a str>,
    pub offset: u64,
    pub ret: bool,
}

/// The uprobe object and each hook's links. The links are declared first:
/// they are dropped (detached) before the object.
pub struct UprobeHooks {
    links: BTreeMap<u32, Vec<Link>>,
    skel: Owned<UprobeSkel<'static>>,
}

impl UprobeHooks {
    /// Loads the uprobe object with the system call object's maps.
    pub fn load(shared: &SyscallSkel<'_>, wakeup_bytes: u64) -> Result<Self> {
        let skel = Owned::new(|storage| {
            let mut open = UprobeSkelBuilder::default()
                .open(storage)
                .context("opening the uprobe hook's BPF object")?;
            reuse_generic_maps!(&mut open.maps, &shared.maps)?;
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.agent_tgid = std::process::id();
                rodata.host_user_ns = crate::events::host_namespaces().user;
                rodata.vigil_config.wakeup_bytes = wakeup_bytes;
            }
            load_logged(|| open.load())
        })?;
        Ok(UprobeHooks {
            links: BTreeMap::new(),
            skel,
        })
    }

    /// Attaches the uprobe (and uretprobe) of one hook; on failure nothing
    /// of it stays attached.
    pub fn attach(&mut self, hook: &UprobeHook<'_>) -> Result<()> {
        let place = match hook.symbol {
            Some(symbol) => format!("{}:{symbol}", hook.path),
            None => format!("{}+{:#x}", hook.path, hook.offset),
        };
        let one = |retprobe: bool| {
            let progs = &self.skel.progs;
            let prog = if retprobe {
                &progs.vigil_uretprobe
            } else {
                &progs.vigil_uprobe
            };
            let opts = UprobeOpts {
                cookie: u64::from(hook.id),
                retprobe,
                func_name: hook.symbol.map(str::to_owned),
                ..Default::default()
            };
            // With a symbol, libbpf resolves it in the ELF's symbol tables; the offset is then 0.
            let offset = if hook.symbol.is_some() {
                0
            } else {
                hook.offset
            };
            prog.attach_uprobe_with_opts(-1, hook.path, offset as usize, opts)
                .map_err(|e| match (e.kind(), hook.symbol) {
                    (ErrorKind::NotFound, Some(symbol)) => anyhow!(
                        "call not found: no function {symbol} in {} ({e})",
                        hook.path
                    ),
                    _ => anyhow!("attaching uprobe {place}: {e}"),
                })
        };
        let mut links = vec![one(false)?];
        if hook.ret {
            links.push(one(true)?);
        }
        self.links.insert(hook.id, links);
        Ok(())
    }

    /// Attaches the USDT probe `provider:name` of the file at `path` for
    /// hook `id`: every site of the probe in the file, its arguments
    /// decoded as the probe's note describes them.
    pub fn attach_usdt(&mut self, id: u32, path: &str, provider: &str, name: &str) -> Result<()> {
        let opts = UsdtOpts {
            cookie: u64::from(id),
            ..Default::default()
        };
        let link = self
            .skel
            .progs
            .vigil_usdt
            .attach_usdt_with_opts(-1, path, provider, name, opts)
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => {
                    anyhow!("call not found: no USDT probe {provider}:{name} in {path} ({e})")
                }
                _ => anyhow!("attaching USDT probe {path}:{provider}:{name}: {e}"),
            })?;
        self.links.insert(id, vec![link]);
        Ok(())
    }

    /// Detaches hook `id`'s probes.
    pub fn detach(&mut self, id: u32) {
        self.links.remove(&id);
    }

    /// No hook is attached.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}
