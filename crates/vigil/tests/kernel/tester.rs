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
        "open" => open_repeatedly(),
        "open-without-caps" => open_without_caps(),
        "unshare-open" => unshare_then_open(),
        "uprobe" => uprobe_calls(),
        "mkdir" => mkdir_marker(),
        "mkdirat" => mkdirat_marker(),
        "connect" => connect(),
        "unlink-open" => unlink_then_open(),
        "chown" => chown_marker(),
        "buffers" => buffers(),
        "stack" => stack_target(),
        "uprobe-wait" => uprobe_then_wait(),
        "file" => file_op(),
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

/// The marker file `vigil_uprobe_target` creates (the uprobe tests' proof that it ran).
pub const MARKER_VAR: &str = "VIGIL_TESTER_MARKER";
/// The argument the `uprobe` tester passes to `vigil_uprobe_target`.
pub const NUMBER_VAR: &str = "VIGIL_TESTER_NUMBER";
/// The string argument of `vigil_uprobe_target`.
pub const UPROBE_STRING: &str = "hello uprobe";
/// What `vigil_uprobe_name(1)` returns (`vigil_uprobe_name(0)` returns "other").
pub const UPROBE_NAME: &str = "sudo make me a sandwich";

/// A user-space function for the uprobe tests: creates the marker file
/// named by `$VIGIL_TESTER_MARKER` (if set) and returns `n * 2`.
#[no_mangle]
#[inline(never)]
pub extern "C" fn vigil_uprobe_target(n: i64, s: *const std::ffi::c_char) -> i64 {
    if let Some(marker) = std::env::var_os(MARKER_VAR) {
        let _ = std::fs::write(marker, "ran");
    }
    std::hint::black_box(s);
    n * 2
}

/// The function the `stack` tester makes its mkdir(2) from.
pub const STACK_FUNCTION: &str = "vigil_stack_target";

/// mkdir(2) of `path` with the `syscall` instruction itself, so that the
/// user stack's innermost frame is this function.
#[no_mangle]
#[inline(never)]
pub extern "C" fn vigil_stack_target(path: *const std::ffi::c_char) -> i64 {
    let ret: i64;
    // SAFETY: mkdir(2) on a NUL-terminated path; the instruction clobbers rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_mkdir => ret,
            in("rdi") path,
            in("rsi") 0o755,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Makes the directory `$VIGIL_TESTER_MARKER` from `vigil_stack_target`,
/// then waits for a line on stdin (the test reads the event meanwhile).
fn stack_target() -> ExitCode {
    let Some(path) = std::env::var_os(MARKER_VAR) else {
        return ExitCode::from(104);
    };
    let Ok(path) = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) else {
        return ExitCode::from(105);
    };
    if std::hint::black_box(vigil_stack_target)(path.as_ptr()) != 0 {
        return ExitCode::from(106);
    }
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    ExitCode::SUCCESS
}

/// Calls `vigil_uprobe_target`, then waits for a line on stdin (the test
/// reads the event, whose user stack needs this process's mappings).
fn uprobe_then_wait() -> ExitCode {
    let s = CString::new(UPROBE_STRING).unwrap_or_default();
    std::hint::black_box(vigil_uprobe_target)(1, s.as_ptr());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    ExitCode::SUCCESS
}

/// Returns a C string for the string return value tests.
#[no_mangle]
#[inline(never)]
pub extern "C" fn vigil_uprobe_name(which: i32) -> *const std::ffi::c_char {
    let name: &'static std::ffi::CStr = if which == 1 {
        c"sudo make me a sandwich"
    } else {
        c"other"
    };
    name.as_ptr()
}

/// Calls the uprobe targets with `$VIGIL_TESTER_NUMBER`.
fn uprobe_calls() -> ExitCode {
    let n: i64 = std::env::var(NUMBER_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let s = CString::new(UPROBE_STRING).unwrap_or_default();
    let doubled = std::hint::black_box(vigil_uprobe_target)(n, s.as_ptr());
    let name = std::hint::black_box(vigil_uprobe_name)((n % 2) as i32);
    std::hint::black_box(name);
    ExitCode::from((doubled & 0x7f) as u8)
}

/// Makes the directory named by `$VIGIL_TESTER_MARKER` with mkdir(2); exits
/// 0 when it did, else with the errno (EPERM: 1).
fn mkdir_marker() -> ExitCode {
    let Some(path) = std::env::var_os(MARKER_VAR) else {
        return ExitCode::from(104);
    };
    let Ok(path) = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) else {
        return ExitCode::from(105);
    };
    // SAFETY: mkdir on a NUL-terminated path we own.
    let rc = unsafe { libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o755) };
    if rc == 0 {
        return ExitCode::SUCCESS;
    }
    let errno = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(255);
    ExitCode::from(u8::try_from(errno).unwrap_or(255))
}

/// mkdirat(2) of `$VIGIL_TESTER_MARKER` (relative to the working
/// directory); exits 0 when it made the directory, else with the errno.
fn mkdirat_marker() -> ExitCode {
    let Some(path) = std::env::var_os(MARKER_VAR) else {
        return ExitCode::from(104);
    };
    let Ok(path) = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) else {
        return ExitCode::from(105);
    };
    // SAFETY: mkdirat on a NUL-terminated path we own.
    let rc = unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o755) };
    if rc == 0 {
        return ExitCode::SUCCESS;
    }
    let errno = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(255);
    ExitCode::from(u8::try_from(errno).unwrap_or(255))
}

/// Creates the file named by `$VIGIL_TESTER_MARKER` and chowns it to 1:1
/// (a CAP_CHOWN check); exits 0 when it did, else with the errno.
fn chown_marker() -> ExitCode {
    let Some(path) = std::env::var_os(MARKER_VAR) else {
        return ExitCode::from(104);
    };
    if std::fs::write(&path, "x").is_err() {
        return ExitCode::from(105);
    }
    match std::os::unix::fs::chown(&path, Some(1), Some(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(u8::try_from(e.raw_os_error().unwrap_or(255)).unwrap_or(255)),
    }
}

/// The two buffers the `buffers` tester writes with writev(2).
pub const IOVEC_PARTS: [&[u8]; 2] = [b"hello ", b"iovec\n"];

/// Writes `IOVEC_PARTS` to the file named by `$VIGIL_TESTER_MARKER` with one
/// writev(2), reads it back with read(2) into a 64-byte buffer, then again
/// with readv(2) into buffers of 4 and 60 bytes.
fn buffers() -> ExitCode {
    use std::io::{IoSlice, IoSliceMut, Read, Seek, Write};
    let Some(path) = std::env::var_os(MARKER_VAR) else {
        return ExitCode::from(104);
    };
    let Ok(mut file) = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
    else {
        return ExitCode::from(105);
    };
    let parts = IOVEC_PARTS.map(IoSlice::new);
    let total: usize = IOVEC_PARTS.iter().map(|p| p.len()).sum();
    if !matches!(file.write_vectored(&parts), Ok(n) if n == total) {
        return ExitCode::from(106);
    }
    let mut buf = [0u8; 64];
    if file.rewind().is_err() || !matches!(file.read(&mut buf), Ok(n) if n == total) {
        return ExitCode::from(107);
    }
    let (mut head, mut tail) = ([0u8; 4], [0u8; 60]);
    let mut bufs = [IoSliceMut::new(&mut head), IoSliceMut::new(&mut tail)];
    if file.rewind().is_err() || !matches!(file.read_vectored(&mut bufs), Ok(n) if n == total) {
        return ExitCode::from(108);
    }
    ExitCode::SUCCESS
}

/// One operation on the file named by argv[2], chosen by argv[1]: `read`
/// (read(2) it whole), `write` (append a byte with write(2)), `mmap-write`
/// (map it shared and writable), `truncate` (truncate(2) to 0 bytes). Exits
/// 0 when done, else with the errno.
fn file_op() -> ExitCode {
    use std::{fs::OpenOptions, io::Write};
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(op), Some(path)) = (args.first(), args.get(1)) else {
        return ExitCode::from(104);
    };
    let done = match op.as_str() {
        "read" => std::fs::read(path).map(drop),
        "write" => OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(b"x")),
        "mmap-write" => OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .and_then(|f| map_shared_writable(&f)),
        "truncate" => truncate(path),
        _ => return ExitCode::from(105),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(u8::try_from(e.raw_os_error().unwrap_or(255)).unwrap_or(255)),
    }
}

/// mmap(2) of one page of `file`, shared and writable, unmapped again.
fn map_shared_writable(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a new mapping of our own open file, which nothing touches
    // before it is unmapped.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        libc::munmap(addr, 4096);
    }
    Ok(())
}

/// truncate(2) of `path` to 0 bytes (by path: ftruncate takes another LSM hook).
fn truncate(path: &str) -> std::io::Result<()> {
    let path = CString::new(path).map_err(std::io::Error::other)?;
    // SAFETY: truncate on a NUL-terminated path we own.
    if unsafe { libc::truncate(path.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
