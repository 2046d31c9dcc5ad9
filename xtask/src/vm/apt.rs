//! Debian packages for the harness, fetched through a private apt
//! configuration (sources and lists under the cache), so the machine's own
//! apt setup stays as found.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context, Result};

/// bookworm + security (6.12 and the current 6.1 live there) + backports
/// (qemu-system-x86 must come from there when qemu-utils is a backport).
const SOURCES: &str = "\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

/// Package indexes older than this are refreshed.
const LISTS_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

pub struct Apt {
    root: PathBuf,
}

impl Apt {
    /// Prepares `<cache>/apt` and refreshes its package lists when stale.
    pub fn new(cache: &Path) -> Result<Self> {
        let root = cache.join("apt");
        for dir in ["sources", "lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(root.join(dir))
                .with_context(|| format!("creating {}", root.join(dir).display()))?;
        }
        fs::write(root.join("sources/vigil-vm.sources"), SOURCES)?;
        let apt = Apt { root };
        let stamp = apt.root.join("updated");
        let fresh = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < LISTS_MAX_AGE);
        if !fresh {
            eprintln!(
                "vm-test: apt-get update (private lists in {})",
                apt.root.display()
            );
            apt.run(apt.command("apt-get").arg("update").arg("-qq"))?;
            fs::write(&stamp, b"")?;
        }
        Ok(apt)
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        let dir = |p: &str| self.root.join(p).display().to_string();
        for opt in [
            "Dir::Etc::sourcelist=/dev/null".to_owned(),
            format!("Dir::Etc::sourceparts={}", dir("sources")),
            format!("Dir::State::Lists={}", dir("lists")),
            format!("Dir::Cache={}", dir("cache")),
        ] {
            cmd.arg("-o").arg(opt);
        }
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }

    fn run(&self, cmd: &mut Command) -> Result<()> {
        let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
        if !status.success() {
            bail!("{cmd:?} failed: {status}");
        }
        Ok(())
    }

    /// The concrete package a meta package depends on, e.g.
    /// `linux-image-amd64` → `linux-image-6.1.0-57-amd64`.
    pub fn resolve_depends(&self, meta: &str, prefix: &str) -> Result<String> {
        let out = self
            .command("apt-cache")
            .args(["depends", meta])
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("apt-cache depends {meta}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter_map(|l| l.trim().trim_start_matches('|').strip_prefix("Depends: "))
            .find(|dep| dep.starts_with(prefix))
            .map(str::to_owned)
            .with_context(|| format!("no {prefix}* dependency of {meta} in:\n{text}"))
    }

    /// Downloads `package`'s .deb into `dir` and returns its path.
    pub fn download(&self, package: &str, dir: &Path) -> Result<PathBuf> {
        fs::create_dir_all(dir)?;
        self.run(
            self.command("apt-get")
                .args(["download", "-qq", package])
                .current_dir(dir),
        )?;
        let prefix = format!("{package}_");
        fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
            })
            .with_context(|| {
                format!(
                    "apt-get download {package} left no .deb in {}",
                    dir.display()
                )
            })
    }

    /// Installs qemu-system-x86 from backports: the image's qemu-utils is a
    /// backport, which breaks the bookworm qemu-system-common.
    pub fn install_qemu(&self) -> Result<()> {
        eprintln!("vm-test: installing qemu-system-x86 from bookworm-backports");
        self.run(self.command("apt-get").args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "-t",
            "bookworm-backports",
            "qemu-system-x86",
        ]))
    }
}

/// Extracts the members matching `pattern` (tar wildcard, e.g. `./boot/vmlinuz-*`)
/// of a .deb into `dest`; the full package would unpack hundreds of MB of modules.
pub fn extract(deb: &Path, pattern: &str, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest)?;
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("running dpkg-deb")?;
    let tar_in = dpkg.stdout.take().context("dpkg-deb stdout")?;
    let tar = Command::new("tar")
        .args(["-x", "--wildcards", "-C"])
        .arg(dest)
        .arg(pattern)
        .stdin(tar_in)
        .status()
        .context("running tar")?;
    let dpkg = dpkg.wait()?;
    if !tar.success() || !dpkg.success() {
        bail!(
            "extracting {pattern} from {}: tar {tar}, dpkg-deb {dpkg}",
            deb.display()
        );
    }
    Ok(())
}
