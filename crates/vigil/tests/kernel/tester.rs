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
        "connect" => connect(),
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

/// Connects to the address in argv[1]: 0 when connected, 1 when refused.
fn connect() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        return ExitCode::from(104);
    };
    match std::net::TcpStream::connect(addr.as_str()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}
