//! Kernel records (the wire format of `intf.h`) into owned Rust records.
//! Every length is checked against the record's size: a malformed record is
//! an error to count, never a panic.
use std::mem::size_of;

use thiserror::Error;
use vigil_bpf::wire::{
    vigil_arg_desc, vigil_arg_skb, vigil_creds, vigil_ima_hash, vigil_msg_clone, vigil_msg_exec,
    vigil_msg_exit, vigil_msg_header, vigil_msg_kprobe, vigil_namespaces, vigil_sock_arg,
    vigil_sockaddr_arg, VIGIL_ARG_AT_RETURN, VIGIL_ARG_SKB, VIGIL_ARG_SOCK, VIGIL_ARG_SOCKADDR,
    VIGIL_ARG_SOCKADDR_KERNEL, VIGIL_KPROBE_HAS_RETURN, VIGIL_KPROBE_IMA_HASH,
    VIGIL_KPROBE_KERNEL_STACK, VIGIL_KPROBE_USER_STACK, VIGIL_MSG_CLONE, VIGIL_MSG_EXEC,
    VIGIL_MSG_EXIT, VIGIL_MSG_KPROBE, VIGIL_MSG_SNAPSHOT,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    pub pid: u32,
    pub ktime: u64,
}

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub ktime: u64,
    pub key: ProcKey,
    pub parent: ProcKey,
    pub tid: u32,
    pub auid: u32,
    pub flags: u32,
    pub priv_flags: u32,
    pub file_uid: u32,
    pub file_gid: u32,
    pub file_ino: u64,
    pub file_nlink: u32,
    pub cgroup_id: u64,
    pub creds: vigil_creds,
    pub ns: vigil_namespaces,
    pub filename: String,
    pub cwd: String,
    pub cgroup_name: String,
    pub cgroup_parent_name: String,
    pub unlinked_path: String,
    /// argv, argv[0] included; the last one may be cut short (see flags).
    pub argv: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CloneRecord {
    pub key: ProcKey,
    pub parent: ProcKey,
    pub tid: u32,
    pub flags: u32,
}

#[derive(Debug, Clone)]
pub struct ExitRecord {
    pub ktime: u64,
    pub key: ProcKey,
    pub tid: u32,
    pub exit_code: u32,
}

/// One argument of a policy hook, as the kernel read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawArg {
    /// `VIGIL_ARG_*`.
    pub kind: u8,
    pub bytes: Vec<u8>,
}

/// A policy hook fired (`VIGIL_MSG_KPROBE`).
#[derive(Debug, Clone)]
pub struct KprobeRecord {
    pub ktime: u64,
    pub key: ProcKey,
    pub tid: u32,
    pub hook: u32,
    /// `VIGIL_KPROBE_*`.
    pub flags: u32,
    /// The selector that matched.
    pub selector: u32,
    /// Set when the hook reports the system call's return value.
    pub ret: Option<i64>,
    /// The bytes after the arguments: a string return value.
    pub ret_data: Vec<u8>,
    /// Ids in the stack_traces map (Post kernelStackTrace / userStackTrace).
    pub kernel_stack: Option<u32>,
    pub user_stack: Option<u32>,
    /// Post imaHash: what bpf_ima_file_hash returned.
    pub ima_hash: Option<vigil_ima_hash>,
    pub args: Vec<RawArg>,
}

#[derive(Debug, Clone)]
pub enum Record {
    Exec(Box<ExecRecord>),
    Clone(CloneRecord),
    Exit(ExitRecord),
    Kprobe(KprobeRecord),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {got} bytes is shorter than its {need}-byte header")]
    Short { need: usize, got: usize },
    #[error("record says it is {said} bytes but {got} arrived")]
    SizeMismatch { said: usize, got: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    #[error("exec record's strings ({need} bytes) overrun its data ({got} bytes)")]
    StringsOverrun { need: usize, got: usize },
    #[error("kprobe record of unknown hook {0}")]
    UnknownHook(u32),
    #[error("kprobe record's arguments ({need} bytes) overrun its data ({got} bytes)")]
    ArgsOverrun { need: usize, got: usize },
    #[error("kprobe record's argument of type {kind} has {got} bytes, not {need}")]
    ArgSize { kind: u8, need: usize, got: usize },
}

/// Decodes one record; `data` may hold more bytes than the record (iterator reads).
pub fn decode(data: &[u8]) -> Result<Record, DecodeError> {
    let hdr: vigil_msg_header = read(data)?;
    let size = hdr.size as usize;
    if size > data.len() || size < size_of::<vigil_msg_header>() {
        return Err(DecodeError::SizeMismatch {
            said: size,
            got: data.len(),
        });
    }
    let data = &data[..size];
    match u32::from(hdr.kind) {
        VIGIL_MSG_EXEC | VIGIL_MSG_SNAPSHOT => decode_exec(data),
        VIGIL_MSG_CLONE => {
            let m: vigil_msg_clone = read(data)?;
            Ok(Record::Clone(CloneRecord {
                key: key(m.key.pid, m.key.ktime),
                parent: key(m.parent.pid, m.parent.ktime),
                tid: m.tid,
                flags: m.flags,
            }))
        }
        VIGIL_MSG_EXIT => {
            let m: vigil_msg_exit = read(data)?;
            Ok(Record::Exit(ExitRecord {
                ktime: m.hdr.ktime,
                key: key(m.key.pid, m.key.ktime),
                tid: m.tid,
                exit_code: m.exit_code,
            }))
        }
        VIGIL_MSG_KPROBE => decode_kprobe(data),
        _ => Err(DecodeError::UnknownKind(hdr.kind)),
    }
}

fn decode_kprobe(data: &[u8]) -> Result<Record, DecodeError> {
    let m: vigil_msg_kprobe = read(data)?;
    let mut rest = &data[size_of::<vigil_msg_kprobe>()..];
    let descs: Vec<_> = m.args.iter().take_while(|d| d.type_ != 0).collect();
    for d in &descs {
        let need = match u32::from(d.type_) {
            VIGIL_ARG_SOCK => size_of::<vigil_sock_arg>(),
            VIGIL_ARG_SKB => size_of::<vigil_arg_skb>(),
            VIGIL_ARG_SOCKADDR | VIGIL_ARG_SOCKADDR_KERNEL => size_of::<vigil_sockaddr_arg>(),
            _ => continue,
        };
        if usize::from(d.len) != need {
            return Err(DecodeError::ArgSize {
                kind: d.type_,
                need,
                got: d.len.into(),
            });
        }
    }
    let need: usize = descs.iter().map(|d| d.len as usize).sum();
    if need > rest.len() {
        return Err(DecodeError::ArgsOverrun {
            need,
            got: rest.len(),
        });
    }
    // Arguments read at the return (returnCopy) come after all the others.
    let at_return = |d: &vigil_arg_desc| u32::from(d.flags) & VIGIL_ARG_AT_RETURN != 0;
    let mut args: Vec<RawArg> = descs
        .iter()
        .map(|d| {
            let (bytes, tail) = rest.split_at(if at_return(d) { 0 } else { d.len.into() });
            rest = tail;
            RawArg {
                kind: d.type_,
                bytes: bytes.to_vec(),
            }
        })
        .collect();
    for (arg, d) in args.iter_mut().zip(&descs).filter(|(_, d)| at_return(d)) {
        let (bytes, tail) = rest.split_at(d.len.into());
        rest = tail;
        arg.bytes = bytes.to_vec();
    }
    // Post imaHash: the hash follows the arguments (LSM hooks have no return).
    let ima_hash = if m.flags & VIGIL_KPROBE_IMA_HASH != 0 {
        let hash: vigil_ima_hash = read(rest)?;
        rest = &rest[size_of::<vigil_ima_hash>()..];
        Some(hash)
    } else {
        None
    };
    Ok(Record::Kprobe(KprobeRecord {
        ktime: m.hdr.ktime,
        key: key(m.key.pid, m.key.ktime),
        tid: m.tid,
        hook: m.hook,
        flags: m.flags,
        selector: m.selector,
        ret: (m.flags & VIGIL_KPROBE_HAS_RETURN != 0).then_some(m.ret),
        ret_data: rest.to_vec(),
        kernel_stack: (m.flags & VIGIL_KPROBE_KERNEL_STACK != 0).then_some(m.kernel_stack),
        user_stack: (m.flags & VIGIL_KPROBE_USER_STACK != 0).then_some(m.user_stack),
        ima_hash,
        args,
    }))
}

/// The size the record at the start of `data` says it has (for walking iterator output).
pub fn record_size(data: &[u8]) -> Result<usize, DecodeError> {
    let hdr: vigil_msg_header = read(data)?;
    Ok(hdr.size as usize)
}

fn key(pid: u32, ktime: u64) -> ProcKey {
    ProcKey { pid, ktime }
}

pub(crate) fn read<T: Copy>(data: &[u8]) -> Result<T, DecodeError> {
    if data.len() < size_of::<T>() {
        return Err(DecodeError::Short {
            need: size_of::<T>(),
            got: data.len(),
        });
    }
    // SAFETY: the length is checked above; T is a plain-old-data wire struct
    // (integers only), valid for any bit pattern; read_unaligned needs no alignment.
    Ok(unsafe { std::ptr::read_unaligned(data.as_ptr().cast::<T>()) })
}

fn decode_exec(data: &[u8]) -> Result<Record, DecodeError> {
    let m: vigil_msg_exec = read(data)?;
    let mut rest = &data[size_of::<vigil_msg_exec>()..];
    let lens = [
        m.filename_len,
        m.cwd_len,
        m.cgroup_len,
        m.cgroup_parent_len,
        m.unlinked_path_len,
        m.args_len,
    ];
    let need: usize = lens.iter().map(|&l| l as usize).sum();
    if need > rest.len() {
        return Err(DecodeError::StringsOverrun {
            need,
            got: rest.len(),
        });
    }
    let mut take = |len: u16| {
        let (s, tail) = rest.split_at(len as usize);
        rest = tail;
        s
    };
    let filename = text(take(m.filename_len));
    let cwd = text(take(m.cwd_len));
    let cgroup_name = text(take(m.cgroup_len));
    let cgroup_parent_name = text(take(m.cgroup_parent_len));
    let unlinked_path = text(take(m.unlinked_path_len));
    let argv = split_argv(take(m.args_len));
    Ok(Record::Exec(Box::new(ExecRecord {
        ktime: m.hdr.ktime,
        key: key(m.key.pid, m.key.ktime),
        parent: key(m.parent.pid, m.parent.ktime),
        tid: m.tid,
        auid: m.auid,
        flags: m.flags,
        priv_flags: m.priv_flags,
        file_uid: m.file_uid,
        file_gid: m.file_gid,
        file_ino: m.file_ino,
        file_nlink: m.file_nlink,
        cgroup_id: m.cgroup_id,
        creds: m.creds,
        ns: m.ns,
        filename,
        cwd,
        cgroup_name,
        cgroup_parent_name,
        unlinked_path,
        argv,
    })))
}

/// Kernel strings are bytes; invalid UTF-8 is replaced, never rejected.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// argv as the kernel lays it out: NUL-terminated strings back to back.
pub fn split_argv(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_bytes<T>(v: &T) -> &[u8] {
        // SAFETY: test helper over plain wire structs.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
    }

    fn exec_record(strings: &[&[u8]; 6]) -> Vec<u8> {
        let mut m = vigil_msg_exec::default();
        m.hdr.kind = VIGIL_MSG_EXEC as u16;
        m.key.pid = 42;
        m.key.ktime = 1000;
        m.parent.pid = 7;
        m.parent.ktime = 500;
        m.filename_len = strings[0].len() as u16;
        m.cwd_len = strings[1].len() as u16;
        m.cgroup_len = strings[2].len() as u16;
        m.cgroup_parent_len = strings[3].len() as u16;
        m.unlinked_path_len = strings[4].len() as u16;
        m.args_len = strings[5].len() as u16;
        let data: Vec<u8> = strings.concat();
        m.hdr.size = (size_of::<vigil_msg_exec>() + data.len()) as u32;
        let mut out = as_bytes(&m).to_vec();
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn exec_strings_and_argv() {
        let rec = exec_record(&[
            b"/bin/sh",
            b"/tmp",
            b"session-1.scope",
            b"user.slice",
            b"",
            b"sh\0-c\0echo a b\0",
        ]);
        let Ok(Record::Exec(e)) = decode(&rec) else {
            panic!("not an exec")
        };
        assert_eq!(
            e.key,
            ProcKey {
                pid: 42,
                ktime: 1000
            }
        );
        assert_eq!(e.parent, ProcKey { pid: 7, ktime: 500 });
        assert_eq!(e.filename, "/bin/sh");
        assert_eq!(e.cwd, "/tmp");
        assert_eq!(e.cgroup_name, "session-1.scope");
        assert_eq!(e.argv, ["sh", "-c", "echo a b"]);
    }

    #[test]
    fn hostile_records_are_errors() {
        let mut rec = exec_record(&[b"/bin/sh", b"", b"", b"", b"", b"sh\0"]);
        assert!(matches!(decode(&rec[..10]), Err(DecodeError::Short { .. })));
        // Lengths that overrun the record.
        let cut = rec.len() - 2;
        rec[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
        assert!(matches!(
            decode(&rec[..cut]),
            Err(DecodeError::StringsOverrun { .. })
        ));
        // A size larger than what arrived.
        rec[4..8].copy_from_slice(&(u32::MAX).to_le_bytes());
        assert!(matches!(
            decode(&rec),
            Err(DecodeError::SizeMismatch { .. })
        ));
        rec[0..2].copy_from_slice(&99u16.to_le_bytes());
        let whole = rec.len() as u32;
        rec[4..8].copy_from_slice(&whole.to_le_bytes());
        assert_eq!(decode(&rec).unwrap_err(), DecodeError::UnknownKind(99));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let rec = exec_record(&[b"/tmp/\xff\xfe", b"", b"", b"", b"", b"a\xff\0"]);
        let Ok(Record::Exec(e)) = decode(&rec) else {
            panic!("not an exec")
        };
        assert_eq!(e.filename, "/tmp/\u{fffd}\u{fffd}");
        assert_eq!(e.argv, ["a\u{fffd}"]);
    }

    #[test]
    fn kprobe_args_in_order_and_checked() {
        let mut m = vigil_msg_kprobe::default();
        m.hdr.kind = VIGIL_MSG_KPROBE as u16;
        m.hook = 3;
        m.args[0].type_ = vigil_bpf::wire::VIGIL_ARG_INT as u8;
        m.args[0].len = 8;
        m.args[1].type_ = vigil_bpf::wire::VIGIL_ARG_STRING as u8;
        m.args[1].len = 4;
        let mut data = (-1i64).to_le_bytes().to_vec();
        data.extend_from_slice(b"/tmp");
        m.hdr.size = (size_of::<vigil_msg_kprobe>() + data.len()) as u32;
        let mut rec = as_bytes(&m).to_vec();
        rec.extend_from_slice(&data);
        let Ok(Record::Kprobe(k)) = decode(&rec) else {
            panic!("not a kprobe")
        };
        assert_eq!((k.hook, k.ret, k.args.len()), (3, None, 2));
        assert_eq!(k.args[1].bytes, b"/tmp");
        // A length that overruns the record.
        m.args[1].len = 400;
        let mut rec = as_bytes(&m).to_vec();
        rec.extend_from_slice(&data);
        assert!(matches!(decode(&rec), Err(DecodeError::ArgsOverrun { .. })));
        // A sock argument must be a whole struct vigil_sock_arg.
        m.args[1].type_ = VIGIL_ARG_SOCK as u8;
        m.args[1].len = 4;
        let mut rec = as_bytes(&m).to_vec();
        rec.extend_from_slice(&data);
        assert!(matches!(
            decode(&rec),
            Err(DecodeError::ArgSize { got: 4, .. })
        ));
    }

    #[test]
    fn return_copy_bytes_follow_the_other_arguments() {
        let mut m = vigil_msg_kprobe::default();
        m.hdr.kind = VIGIL_MSG_KPROBE as u16;
        m.args[0].type_ = vigil_bpf::wire::VIGIL_ARG_CHAR_BUF as u8;
        m.args[0].flags = VIGIL_ARG_AT_RETURN as u8;
        m.args[0].len = 5;
        m.args[1].type_ = vigil_bpf::wire::VIGIL_ARG_SIZE as u8;
        m.args[1].len = 8;
        m.flags = VIGIL_KPROBE_HAS_RETURN;
        m.ret = 5;
        let mut data = 64u64.to_le_bytes().to_vec();
        data.extend_from_slice(b"hello");
        data.extend_from_slice(b"ret");
        m.hdr.size = (size_of::<vigil_msg_kprobe>() + data.len()) as u32;
        let mut rec = as_bytes(&m).to_vec();
        rec.extend_from_slice(&data);
        let Ok(Record::Kprobe(k)) = decode(&rec) else {
            panic!("not a kprobe")
        };
        assert_eq!(k.args[0].bytes, b"hello");
        assert_eq!(k.args[1].bytes, 64u64.to_le_bytes());
        assert_eq!(k.ret_data, b"ret");
    }

    #[test]
    fn argv_splitting() {
        assert!(split_argv(b"").is_empty());
        assert_eq!(split_argv(b"a\0\0b\0"), ["a", "", "b"]);
        assert_eq!(split_argv(b"cut-sho"), ["cut-sho"]);
    }
}
