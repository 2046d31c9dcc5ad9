//! The guest kernels of the matrix: stock Debian images, resolved to their
//! current ABI package at run time, cached as uncompressed ELF `vmlinux`
//! (booted through PVH, which skips decompression under TCG).
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use super::apt::{self, Apt};

/// A kernel of the matrix. To add one, add a line here (see docs/testing.md).
pub struct KernelSpec {
    /// What `--kernel` calls it.
    pub name: &'static str,
    /// The meta package whose `Depends` names the current ABI package.
    pub meta_package: &'static str,
}

pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        name: "6.1",
        meta_package: "linux-image-amd64",
    },
    KernelSpec {
        name: "6.12",
        meta_package: "linux-image-6.12-amd64",
    },
];

pub fn spec(name: &str) -> Result<&'static KernelSpec> {
    KERNELS.iter().find(|k| k.name == name).with_context(|| {
        let known: Vec<_> = KERNELS.iter().map(|k| k.name).collect();
        format!("unknown kernel {name:?}; known: host, {}", known.join(", "))
    })
}

/// A kernel ready to boot.
pub struct GuestKernel {
    /// The ABI package, e.g. `linux-image-6.1.0-57-amd64`.
    pub package: String,
    pub vmlinux: PathBuf,
}

/// Resolves, downloads (once) and unpacks the kernel.
pub fn fetch(apt: &Apt, spec: &KernelSpec, cache: &Path) -> Result<GuestKernel> {
    let package = apt.resolve_depends(spec.meta_package, "linux-image-")?;
    let dir = cache.join("kernels").join(&package);
    let vmlinux = dir.join("vmlinux");
    if vmlinux.exists() {
        return Ok(GuestKernel { package, vmlinux });
    }
    eprintln!("vm-test: fetching {package}");
    let deb = apt.download(&package, &cache.join("debs"))?;
    let unpacked = dir.join("pkg");
    apt::extract(&deb, "./boot/vmlinuz-*", &unpacked)?;
    let bzimage = fs::read_dir(unpacked.join("boot"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .with_context(|| format!("no boot/vmlinuz-* in {}", deb.display()))?;
    extract_vmlinux(&bzimage, &vmlinux)?;
    // The .deb and the bzImage are not needed once the ELF is out.
    let _ = fs::remove_file(&deb);
    let _ = fs::remove_dir_all(&unpacked);
    Ok(GuestKernel { package, vmlinux })
}

/// Gets the ELF kernel out of a bzImage: the setup header gives the compressed
/// payload's place; Debian uses xz (6.1) or zstd (6.12).
fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<()> {
    let data = fs::read(bzimage).with_context(|| format!("reading {}", bzimage.display()))?;
    let le32 = |at: usize| -> Result<usize> {
        let bytes = data
            .get(at..at + 4)
            .context("bzImage too short for its setup header")?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
    };
    let setup_sects = match data.get(0x1f1).copied() {
        Some(0) => 4,
        Some(n) => usize::from(n),
        None => bail!("{} is not a bzImage", bzimage.display()),
    };
    let start = (setup_sects + 1) * 512 + le32(0x248)?;
    // The last 4 bytes are the uncompressed size the build appends, not stream data.
    let len = le32(0x24c)?.checked_sub(4).context("empty payload")?;
    let payload = data
        .get(start..start + len)
        .context("payload outside the bzImage")?;
    let tool = if payload.starts_with(b"\xfd7zXZ\x00") {
        "xz"
    } else if payload.starts_with(b"\x28\xb5\x2f\xfd") {
        "zstd"
    } else {
        bail!("{}: unknown payload compression", bzimage.display());
    };
    let compressed = out.with_extension(tool);
    fs::write(&compressed, payload)?;
    let status = Command::new(tool)
        .arg("-dc")
        .arg(&compressed)
        .stdout(fs::File::create(out)?)
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {tool} (install xz-utils / zstd)"))?;
    fs::remove_file(&compressed)?;
    let elf = fs::read(out)
        .map(|d| d.starts_with(b"\x7fELF"))
        .unwrap_or(false);
    if !status.success() || !elf {
        let _ = fs::remove_file(out);
        bail!(
            "{tool} -dc of {}'s payload failed ({status})",
            bzimage.display()
        );
    }
    Ok(())
}
