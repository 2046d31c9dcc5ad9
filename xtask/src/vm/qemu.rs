//! Boots a kernel under QEMU TCG with the initramfs and collects the serial
//! console. A watchdog kills QEMU by PID when the guest overruns its time.
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

/// `bpf` in the LSM list makes BPF-LSM programs run; Debian's default has it
/// too, this pins the order and keeps AppArmor out of the way.
const CMDLINE: &str = "console=ttyS0 lsm=lockdown,capability,landlock,yama,bpf panic=-1 quiet";

pub struct Boot {
    /// The console output, `\r` removed.
    pub serial: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

fn qemu(vmlinux: &Path, initramfs: &Path, shell: bool) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    // KVM on this class of host is PVM, which cannot run stock kernels: TCG only.
    cmd.args([
        "-accel",
        "tcg",
        "-m",
        "2G",
        "-smp",
        "2",
        "-no-reboot",
        "-nic",
        "none",
    ])
    .arg("-kernel")
    .arg(vmlinux)
    .arg("-initrd")
    .arg(initramfs)
    .arg("-append")
    .arg(if shell {
        format!("{CMDLINE} vigil.shell")
    } else {
        CMDLINE.to_owned()
    });
    if shell {
        cmd.arg("-nographic");
    } else {
        cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
            .stdin(Stdio::null());
    }
    cmd
}

/// An interactive boot: the console is this terminal (Ctrl-A X quits QEMU).
pub fn shell(vmlinux: &Path, initramfs: &Path) -> Result<()> {
    qemu(vmlinux, initramfs, true)
        .status()
        .context("running qemu-system-x86_64")?;
    Ok(())
}

/// Boots, copying the console to `log` as it arrives, and returns it whole.
pub fn boot(vmlinux: &Path, initramfs: &Path, timeout: Duration, log: &Path) -> Result<Boot> {
    let started = Instant::now();
    let mut child = qemu(vmlinux, initramfs, false)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running qemu-system-x86_64")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let mut log_file =
        fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let reader = thread::spawn(move || {
        let mut serial = String::new();
        let mut lines = BufReader::new(stdout);
        let mut raw = Vec::new();
        // Console bytes need not be UTF-8; read bytes and convert lossily per line.
        while lines.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&raw).replace('\r', "");
            let _ = log_file.write_all(line.as_bytes());
            serial.push_str(&line);
            raw.clear();
        }
        serial
    });

    let mut timed_out = false;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > timeout {
            // Kill by PID: the guest may be wedged, and QEMU does not exit by itself.
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let serial = reader.join().unwrap_or_default();
    Ok(Boot {
        serial,
        elapsed: started.elapsed(),
        timed_out,
    })
}
