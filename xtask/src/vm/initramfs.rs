//! The guest's root: busybox, `/init`, vigil, the test executables and the
//! policies they load, as an
//! uncompressed newc cpio (the kernel unpacks it faster than gzip under TCG,
//! and no cpio tool is needed).
use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

/// Lines the init script prints so that the host can split the serial log.
pub const MARK: &str = "@@VIGIL";

/// Mounts what vigil needs, runs the probe and each test executable between
/// markers, then powers off. With `vigil.shell` on the command line it opens
/// a shell on the console instead.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
ip link set lo up
# Keep kernel messages off the console: the host parses it.
echo 1 > /proc/sys/kernel/printk
ulimit -l unlimited
# Policies name binaries by their Debian paths: hard links keep the path
# (a symlink would make the binary /bin/busybox). busybox has no bash
# applet: tests run /usr/bin/bash with argv[0] sh.
for tool in cat head bash; do ln /bin/busybox /usr/bin/$tool; done
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
echo 'root:*:19000:0:99999:7:::' > /etc/shadow
export VIGIL_BIN=/bin/vigil VIGIL_IN_VM=1
export VIGIL_DEFAULT_POLICIES=/policies/default VIGIL_TETRAGON_POLICIES=/policies/tetragon
read up idle < /proc/uptime
echo "@@VIGIL KERNEL $(uname -r) uptime=$up"
echo "@@VIGIL LSM $(cat /sys/kernel/security/lsm)"
if grep -q vigil.shell /proc/cmdline; then
  echo "vigil vm shell: vigil is /bin/vigil, tests are in /tests; exit to power off"
  setsid cttyhack sh
  poweroff -f
fi
echo "@@VIGIL BEGIN probe"
/bin/vigil probe --output json
echo "@@VIGIL END probe rc=$?"
FILTER=$(cat /etc/vigil-filter)
for t in /tests/*; do
  [ -x "$t" ] || continue
  echo "@@VIGIL BEGIN test ${t##*/}"
  "$t" --test-threads=1 --show-output $FILTER
  echo "@@VIGIL END test ${t##*/} rc=$?"
done
read up idle < /proc/uptime
echo "@@VIGIL DONE uptime=$up"
poweroff -f
"#;

/// A file to place in the guest.
pub struct GuestFile {
    pub guest_path: String,
    pub host_path: PathBuf,
}

/// Writes the initramfs to `out`. `filter` goes to libtest as its name filter.
pub fn build(out: &Path, busybox: &Path, files: &[GuestFile], filter: Option<&str>) -> Result<()> {
    let mut cpio = Cpio::new(io::BufWriter::new(fs::File::create(out)?));
    for dir in [
        "bin",
        "dev",
        "etc",
        "proc",
        "sys",
        "tmp",
        "tests",
        "usr",
        "usr/bin",
        "policies",
        "policies/default",
        "policies/tetragon",
    ] {
        cpio.dir(dir)?;
    }
    cpio.char_device("dev/console", 5, 1)?;
    cpio.file("init", 0o755, INIT.as_bytes())?;
    // One word, or none: the init script passes it unquoted.
    let filter = filter.unwrap_or("").split_whitespace().next().unwrap_or("");
    cpio.file("etc/vigil-filter", 0o644, filter.as_bytes())?;
    let busybox_data =
        fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    cpio.file("bin/busybox", 0o755, &busybox_data)?;
    for f in files {
        let data =
            fs::read(&f.host_path).with_context(|| format!("reading {}", f.host_path.display()))?;
        cpio.file(&f.guest_path, 0o755, &data)?;
    }
    cpio.finish()?.flush()?;
    Ok(())
}

/// A minimal writer of the "newc" cpio format the kernel unpacks.
struct Cpio<W: Write> {
    out: W,
    written: usize,
    ino: u32,
}

impl<W: Write> Cpio<W> {
    fn new(out: W) -> Self {
        Cpio {
            out,
            written: 0,
            ino: 1,
        }
    }

    fn dir(&mut self, name: &str) -> io::Result<()> {
        self.entry(name, 0o040_755, (0, 0), &[])
    }

    fn char_device(&mut self, name: &str, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, 0o020_600, (major, minor), &[])
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, 0o100_000 | perm, (0, 0), data)
    }

    fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        Ok(self.out)
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{name} is over 4 GiB"))
        })?;
        let name_size = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o040_000 != 0 { 2 } else { 1 },
            0, // mtime
            size,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name_size as u32,
            0, // check
        ];
        self.ino += 1;
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len();
        Ok(())
    }

    /// Header+name and data each end on a 4-byte boundary.
    fn pad(&mut self) -> io::Result<()> {
        let fill = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..fill])
    }
}
