//! Tester programs: this test binary re-run with `VIGIL_TESTER=<mode>` does
//! one small thing the tests watch the agent report.
use std::{ffi::CString, process::ExitCode, thread, time::Duration};

pub const MODE_VAR: &str = "VIGIL_TESTER";

/// The exit status of the `threads` tester.
pub const THREADS_STATUS: u8 = 7;
/// The name the `memfd` tester gives its memory file.
pub const MEMFD_NAME: &str = "vigil-memfd-test";
/// The `unlink-open` tester's paths: unlinked first, then opened.
pub const UNLINK_VAR: &str = "VIGIL_TESTER_UNLINK";
pub const OPEN_VAR: &str = "VIGIL_TESTER_OPEN";

pub fn run(mode: &str) -> ExitCode {
    match mode {
        "threads" => threads(),
        "memfd" => memfd_exec(),
        "unlink-open" => unlink_then_open(),
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

/// unlinkat(2) of one path, then openat(2) of another, from one thread: a
/// policy's event for the open proves the unlink was already reported, or not.
fn unlink_then_open() -> ExitCode {
    let (Some(unlink), Some(open)) = (std::env::var_os(UNLINK_VAR), std::env::var_os(OPEN_VAR))
    else {
        return ExitCode::from(104);
    };
    let Ok(unlink) = CString::new(unlink.into_encoded_bytes()) else {
        return ExitCode::from(105);
    };
    // SAFETY: unlinkat on a NUL-terminated path we own.
    let removed = unsafe { libc::unlinkat(libc::AT_FDCWD, unlink.as_ptr(), 0) };
    if removed != 0 || std::fs::File::open(open).is_err() {
        return ExitCode::from(106);
    }
    ExitCode::SUCCESS
}
