//! Buffer arguments of system calls: `char_buf` read at the return
//! (`returnCopy`, what read(2) filled) and `char_iovec` (writev(2)'s and,
//! at the return, readv(2)'s iovec arrays). The tester writes and reads
//! known bytes; the events must hold exactly those bytes.
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::Value;

use crate::{
    harness::{of_kind, pid_of, run_tester, str_at, write_policy, Agent, TestResult},
    policy::setup,
    require_agent,
    tester::IOVEC_PARTS,
};

const WAIT: Duration = Duration::from_secs(30);

pub fn read_return_copy_and_iovecs() -> TestResult {
    require_agent!();
    let s = setup();
    let watched = s.file.parent().expect("parent");
    let target = watched.join("buffers");
    let policy = write_policy(
        s.dir.path(),
        "buffers",
        &format!(
            "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: buffers
spec:
  kprobes:
  - call: sys_read
    syscall: true
    args:
    - index: 0
      type: fd
    - index: 1
      type: char_buf
      sizeArgIndex: 3
      returnCopy: true
    - index: 2
      type: size_t
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values: [{dir}/]
  - call: sys_writev
    syscall: true
    args:
    - index: 0
      type: fd
    - index: 1
      type: char_iovec
      sizeArgIndex: 3
    - index: 2
      type: int
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values: [{dir}/]
  - call: sys_readv
    syscall: true
    return: true
    returnArg:
      index: 0
      type: int
    args:
    - index: 0
      type: fd
    - index: 1
      type: char_iovec
      sizeArgIndex: 3
      returnCopy: true
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values: [{dir}/]
",
            dir = watched.display()
        ),
    );
    let agent = Agent::start(&["--tracing-policy", &policy]);
    let (pid, status) = run_tester("buffers", &target);
    assert!(status.success());

    let of = |evs: &[Value], function: &str| -> Option<Value> {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .find(|k| pid_of(k) == u64::from(pid) && str_at(k, "/function_name") == function)
            .cloned()
    };
    let evs = agent.wait_for(WAIT, "read, writev and readv events", |evs| {
        ["__x64_sys_read", "__x64_sys_writev", "__x64_sys_readv"]
            .iter()
            .all(|f| of(evs, f).is_some())
    });
    let content = IOVEC_PARTS.concat();
    let encoded = STANDARD.encode(&content);
    let path = target.to_str().expect("utf-8");

    let read = of(&evs, "__x64_sys_read").expect("read event");
    assert_eq!(str_at(&read, "/args/0/file_arg/path"), path);
    assert_eq!(
        str_at(&read, "/args/1/bytes_arg"),
        encoded,
        "the bytes read(2) filled, as many as it returned (not the 64-byte buffer)"
    );
    assert_eq!(str_at(&read, "/args/2/size_arg"), "64");
    assert!(
        read.get("return").is_none(),
        "no return value without return: true: {read}"
    );

    let writev = of(&evs, "__x64_sys_writev").expect("writev event");
    assert_eq!(str_at(&writev, "/args/0/file_arg/path"), path);
    assert_eq!(str_at(&writev, "/args/1/bytes_arg"), encoded);
    assert_eq!(writev["args"][2]["int_arg"], 2);

    let readv = of(&evs, "__x64_sys_readv").expect("readv event");
    assert_eq!(str_at(&readv, "/args/0/file_arg/path"), path);
    assert_eq!(
        str_at(&readv, "/args/1/bytes_arg"),
        encoded,
        "the 4-byte and 60-byte buffers, as far as readv(2) filled them"
    );
    assert_eq!(readv["return"]["int_arg"], content.len());
    agent.stop();
    Ok(())
}
