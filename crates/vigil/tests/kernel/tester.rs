//! Tester programs: this test binary re-run with `VIGIL_TESTER=<mode>` does
//! one small thing the tests watch the agent report.
use std::{ffi::CString, process::ExitCode, thread, time::Duration};

pub const MODE_VAR: &str = "VIGIL_TESTER";

/// The exit status of the `threads` tester.
pub const THREADS_STATUS: u8 = 7;
/// The name the `memfd` tester gives its memory file.
pub const MEMFD_NAME: &str = "vigil-memfd-test";

pub fn run(mode: &str) -> ExitCode {
    match mode {
        "threads" => threads(),
        "memfd" => memfd_exec(),
        "open" => open_repeatedly(),
        "open-without-caps" => open_without_caps(),
        "unshare-open" => unshare_then_open(),
        _ => {
            eprintln!("unknown tester mode {mode}");
            ExitCode::from(100)
        }
    }
}

/// Eight threads that outlive their start; the process must end once, not nine times.
fn threads() -> ExitCode {
    let workers: Vec<_> = (0..8)
        .map(|i| thread::spawn(move || thread::sleep(Duration::from_millis(50 + i * 10))))
        .collect();
    for w in workers {
        let _ = w.join();
    }
    ExitCode::from(THREADS_STATUS)
}

/// Executes a copy of /bin/true from an anonymous memory file (fileless execution).
fn memfd_exec() -> ExitCode {
    let Ok(image) = std::fs::read("/bin/true") else {
        return ExitCode::from(101);
    };
    let name = CString::new(MEMFD_NAME).unwrap_or_default();
    // SAFETY: plain syscalls on our own fd and buffers; fexecve only returns on failure.
    unsafe {
        let fd = libc::memfd_create(name.as_ptr(), 0);
        if fd < 0 || libc::write(fd, image.as_ptr().cast(), image.len()) != image.len() as isize {
            return ExitCode::from(102);
        }
        let arg0 = CString::new("true").unwrap_or_default();
        let argv = [arg0.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        libc::fexecve(fd, argv.as_ptr(), envp.as_ptr());
    }
    ExitCode::from(103)
}

/// Opens the file named by the first argument as many times as the second says.
fn open_repeatedly() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(times)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        return ExitCode::from(102);
    };
    for _ in 0..times {
        if std::fs::File::open(path).is_err() {
            return ExitCode::from(103);
        }
    }
    ExitCode::SUCCESS
}

/// Empties its effective capability set (keeping the permitted one), then
/// opens the file named by the first argument.
fn open_without_caps() -> ExitCode {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the ABI requires.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
            return ExitCode::from(104);
        }
        for d in &mut data {
            d.effective = 0;
        }
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
            return ExitCode::from(105);
        }
    }
    match std::env::args().nth(1).map(std::fs::File::open) {
        Some(Ok(_)) => ExitCode::SUCCESS,
        _ => ExitCode::from(106),
    }
}

/// Moves to a new mount namespace after its exec, then opens the file named
/// by the first argument.
fn unshare_then_open() -> ExitCode {
    // SAFETY: unshare affects only this process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return ExitCode::from(107);
    }
    match std::env::args().nth(1).map(std::fs::File::open) {
        Some(Ok(_)) => ExitCode::SUCCESS,
        _ => ExitCode::from(106),
    }
}
