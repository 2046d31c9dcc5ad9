/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The wire format: every struct that crosses the kernel/user boundary, and
 * the constants both sides must agree on. BPF programs include it after
 * vmlinux.h; user space gets it through bindgen (crates/vigil-bpf/build.rs).
 * Constants are enums so that bindgen carries them over.
 */
#ifndef VIGIL_INTF_H
#define VIGIL_INTF_H

#ifndef __bpf__
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef int __s32;
#endif

enum vigil_limits {
	/* Room for one path; a longer path keeps its last components. */
	VIGIL_PATH_MAX = 4096,
	/* argv bytes kept per exec; longer argument lists are truncated. */
	VIGIL_ARGS_MAX = 8192,
	/* One cgroup directory name (kernfs node name). */
	VIGIL_CGROUP_NAME_MAX = 128,
};

enum vigil_msg_kind {
	VIGIL_MSG_EXEC = 1,
	VIGIL_MSG_CLONE = 2,
	VIGIL_MSG_EXIT = 3,
	/* A process that existed when the agent started (task iterator). */
	VIGIL_MSG_SNAPSHOT = 4,
	/* A policy hook fired (generic sensor). */
	VIGIL_MSG_KPROBE = 5,
};

/* vigil_msg_exec.flags and the in-kernel process table's flags. */
enum vigil_proc_flags {
	VIGIL_PROC_EXECVE = 1 << 0,
	VIGIL_PROC_CLONE = 1 << 1,
	VIGIL_PROC_PROCFS = 1 << 2,
	VIGIL_PROC_TRUNC_FILENAME = 1 << 3,
	VIGIL_PROC_TRUNC_ARGS = 1 << 4,
	VIGIL_PROC_TRUNC_CWD = 1 << 5,
	VIGIL_PROC_ERROR_FILENAME = 1 << 6,
	VIGIL_PROC_ERROR_ARGS = 1 << 7,
	VIGIL_PROC_ERROR_CWD = 1 << 8,
	VIGIL_PROC_ROOT_CWD = 1 << 9,
	/* The executed file has no links left: memfd or deleted binary. */
	VIGIL_PROC_FILE_UNLINKED = 1 << 10,
	VIGIL_PROC_FILE_MEMFD = 1 << 11,
	/* The parent was not in the process table; its key was derived. */
	VIGIL_PROC_PARENT_DERIVED = 1 << 12,
};

/* vigil_msg_exec.priv_flags: how this exec changed privileges. */
enum vigil_priv_flags {
	VIGIL_PRIV_SETUID = 1 << 0,
	VIGIL_PRIV_SETGID = 1 << 1,
	VIGIL_PRIV_FILE_CAPS = 1 << 2,
};

/* Index into the per-CPU `stats` array of counters kept by the kernel side. */
enum vigil_stat {
	VIGIL_STAT_LOST_EXEC = 0,
	VIGIL_STAT_LOST_CLONE = 1,
	VIGIL_STAT_LOST_EXIT = 2,
	VIGIL_STAT_PROC_TABLE_FULL = 3,
	VIGIL_STAT_PROC_TABLE_MISS = 4,
	VIGIL_STAT_LOST_KPROBE = 5,
	VIGIL_STAT_MAX = 6,
};

/* Identity of one process image: its tgid and the ktime it began (exec,
 * fork, or the task start time for processes found at start). */
struct vigil_proc_key {
	__u32 pid;
	__u32 _pad;
	__u64 ktime;
};

struct vigil_msg_header {
	__u16 kind;
	__u16 _pad;
	/* Total size of the message, header included. */
	__u32 size;
	/* bpf_ktime_get_ns() when the message was made. */
	__u64 ktime;
};

struct vigil_creds {
	__u32 uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	__u32 securebits;
	__u32 _pad;
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
};

struct vigil_namespaces {
	__u32 uts, ipc, mnt, pid, pid_for_children, net, time, time_for_children, cgroup, user;
};

/*
 * VIGIL_MSG_EXEC and VIGIL_MSG_SNAPSHOT. Followed by `data`, which holds, in
 * this order and without terminators: filename, cwd, cgroup leaf name,
 * cgroup parent name, unlinked file path, argv (NUL-separated).
 */
struct vigil_msg_exec {
	struct vigil_msg_header hdr;
	struct vigil_proc_key key;
	struct vigil_proc_key parent;
	__u32 tid;
	__u32 auid;
	__u32 flags;
	__u32 priv_flags;
	/* Owner of the executed file, for setuid/setgid reporting. */
	__u32 file_uid;
	__u32 file_gid;
	__u64 file_ino;
	__u32 file_nlink;
	__u32 _pad;
	__u64 cgroup_id;
	struct vigil_creds creds;
	struct vigil_namespaces ns;
	__u16 filename_len;
	__u16 cwd_len;
	__u16 cgroup_len;
	__u16 cgroup_parent_len;
	__u16 unlinked_path_len;
	__u16 args_len;
	__u32 _pad2;
};

struct vigil_msg_clone {
	struct vigil_msg_header hdr;
	struct vigil_proc_key key;
	struct vigil_proc_key parent;
	__u32 tid;
	__u32 flags;
};

struct vigil_msg_exit {
	struct vigil_msg_header hdr;
	struct vigil_proc_key key;
	__u32 tid;
	/* task->exit_code: status << 8 | signal. */
	__u32 exit_code;
	__u32 flags;
	__u32 _pad;
};

/* Read-only configuration, set by the loader before load. */
struct vigil_process_config {
	/* Wake the reader only when this much data is waiting. */
	__u64 wakeup_bytes;
};

/*
 * The generic syscall hook (bpf/generic/): one program, configured by maps
 * that user space fills from TracingPolicy kprobes on system calls.
 */
enum vigil_generic_limits {
	/* Arguments per hook and selectors per hook (Tetragon's limits). */
	VIGIL_HOOK_ARGS_MAX = 5,
	VIGIL_SELECTORS_MAX = 5,
	VIGIL_MATCH_ARGS_MAX = 5,
	/* Integer values per matchArgs entry (InRange: pairs). */
	VIGIL_MATCH_VALUES_MAX = 8,
	VIGIL_MATCH_PIDS_MAX = 4,
	VIGIL_HOOKS_PER_SYSCALL = 4,
	VIGIL_HOOKS_MAX = 64,
	VIGIL_SYSCALLS_MAX = 512,
	/* Longest string value a selector compares (LPM trie key room). */
	VIGIL_MATCH_STRING_MAX = 248,
	/* Bytes kept of one string, path or buffer argument. */
	VIGIL_ARG_DATA_MAX = 4096,
};

enum vigil_arg_type {
	VIGIL_ARG_NONE = 0,
	VIGIL_ARG_INT = 1,
	VIGIL_ARG_UINT = 2,
	VIGIL_ARG_LONG = 3,
	VIGIL_ARG_ULONG = 4,
	VIGIL_ARG_SIZE = 5,
	/* A user-space NUL-terminated string (`string`, `filename`). */
	VIGIL_ARG_STRING = 6,
	/* A file descriptor, reported as the open file's absolute path. */
	VIGIL_ARG_FD = 7,
	/* A user-space buffer whose size is another argument. */
	VIGIL_ARG_CHAR_BUF = 8,
	/* A struct file * (kernel functions), reported as the file's absolute path. */
	VIGIL_ARG_FILE = 9,
};

/* vigil_match_arg.arg naming the hook's return value (matchReturnArgs),
 * evaluated when the hooked function returns. */
enum vigil_match_target {
	VIGIL_MATCH_RETURN_ARG = VIGIL_HOOK_ARGS_MAX,
};

/* vigil_tp_field.flags */
enum vigil_tp_field_flags {
	/* Sign-extend the field to 64 bits. */
	VIGIL_TP_FIELD_SIGNED = 1 << 0,
};

/* One argument of a classic tracepoint hook: the integer or pointer of
 * `size` bytes at `offset` in the tracepoint's record (tracefs
 * events/SUB/EVENT/format). */
struct vigil_tp_field {
	__u16 offset;
	__u8 size;
	__u8 flags;
};

/* One hook's arguments' fields, in args order (tracepoint.bpf.c read-only data). */
struct vigil_tp_fields {
	struct vigil_tp_field fields[VIGIL_HOOK_ARGS_MAX];
	__u32 _pad;
};

/* vigil_arg_desc.flags */
enum vigil_arg_flags {
	VIGIL_ARG_TRUNCATED = 1 << 0,
	VIGIL_ARG_ERROR = 1 << 1,
	/* Keep a reversed copy for Postfix selectors. */
	VIGIL_ARG_NEED_REVERSED = 1 << 2,
};

enum vigil_match_op {
	VIGIL_OP_NONE = 0,
	/* Strings (and binaries: In = EQ, NotIn = NEQ). */
	VIGIL_OP_STR_EQ = 1,
	VIGIL_OP_STR_NEQ = 2,
	VIGIL_OP_STR_PREFIX = 3,
	VIGIL_OP_STR_NOT_PREFIX = 4,
	VIGIL_OP_STR_POSTFIX = 5,
	VIGIL_OP_STR_NOT_POSTFIX = 6,
	/* Integers. */
	VIGIL_OP_INT_EQ = 7,
	VIGIL_OP_INT_NEQ = 8,
	VIGIL_OP_INT_GT = 9,
	VIGIL_OP_INT_LT = 10,
	VIGIL_OP_INT_MASK = 11,
	VIGIL_OP_INT_IN_RANGE = 12,
	VIGIL_OP_INT_NOT_IN_RANGE = 13,
	/* matchPIDs. */
	VIGIL_OP_PID_IN = 14,
	VIGIL_OP_PID_NOT_IN = 15,
};

/* vigil_selector_config.actions and vigil_msg_kprobe.action */
enum vigil_action_flags {
	VIGIL_ACTION_POST = 1 << 0,
	VIGIL_ACTION_SIGNAL = 1 << 1,
	/* Make the hooked operation fail with override_error (BPF-LSM). */
	VIGIL_ACTION_OVERRIDE = 1 << 2,
};

/* vigil_hook_config.flags */
enum vigil_hook_flags {
	/* Report at sys_exit, with the return value. */
	VIGIL_HOOK_RETURN = 1 << 0,
	/* Policy mode enforce; otherwise signals are only counted. */
	VIGIL_HOOK_ENFORCE = 1 << 1,
	/* Some selector matches binaries: build the binary's keys. */
	VIGIL_HOOK_NEED_BINARY = 1 << 2,
	VIGIL_HOOK_NEED_BINARY_REVERSED = 1 << 3,
	/* Selectors need only integers and the start of strings: evaluate them
	 * on short reads (vigil_arg_config.filter_len), and read the arguments
	 * in full only for an event that is posted. */
	VIGIL_HOOK_FILTER_FIRST = 1 << 4,
};

/* vigil_msg_kprobe.flags */
enum vigil_kprobe_flags {
	VIGIL_KPROBE_HAS_RETURN = 1 << 0,
	/* The selector's signal was not sent (or its override not applied): monitor mode. */
	VIGIL_KPROBE_MONITORED = 1 << 1,
	/* bpf_send_signal failed. */
	VIGIL_KPROBE_SIGNAL_FAILED = 1 << 2,
};

/* Per hook, in the per-CPU `hook_stats` array at hook * VIGIL_HOOK_STAT_MAX. */
enum vigil_hook_stat {
	VIGIL_HOOK_STAT_POSTED = 0,
	VIGIL_HOOK_STAT_ENFORCED = 1,
	VIGIL_HOOK_STAT_MONITORED = 2,
	VIGIL_HOOK_STAT_MAX = 3,
};

struct vigil_arg_config {
	__u8 type;
	/* System call argument position (0-5). */
	__u8 index;
	/* char_buf: 1-based position of the size argument. */
	__u8 size_index;
	__u8 flags;
	/* With VIGIL_HOOK_FILTER_FIRST: bytes of a string to read for the
	 * selectors (longest selector value + 2, so that a longer string is
	 * never taken for an equal one); 0 when no selector reads the string. */
	__u16 filter_len;
	__u16 _pad;
};

struct vigil_match_arg {
	/* Position in the hook's args. */
	__u8 arg;
	__u8 op;
	__u8 nvalues;
	__u8 _pad;
	/* Namespace of this entry's strings in the `string_match` trie. */
	__u32 match_id;
	__u64 values[VIGIL_MATCH_VALUES_MAX];
};

struct vigil_selector_config {
	__u8 nmatch_args;
	__u8 binary_op;
	__u8 pid_op;
	__u8 npids;
	__u32 binary_match_id;
	__u32 pids[VIGIL_MATCH_PIDS_MAX];
	__u32 actions;
	__u32 signal;
	struct vigil_match_arg match_args[VIGIL_MATCH_ARGS_MAX];
	/* VIGIL_ACTION_OVERRIDE: the negative errno the operation fails with. */
	__s32 override_error;
	__u32 _pad;
};

struct vigil_hook_config {
	__u32 flags;
	__u8 nargs;
	__u8 nselectors;
	/* Type of the return value (VIGIL_ARG_INT...) with VIGIL_HOOK_RETURN. */
	__u8 ret_type;
	__u8 _pad;
	struct vigil_arg_config args[VIGIL_HOOK_ARGS_MAX];
	__u32 _pad2;
	struct vigil_selector_config selectors[VIGIL_SELECTORS_MAX];
};

/* `syscall_hooks`: system call number -> the hooks on it; also the hooks
 * of one kernel function (bpf/generic/kprobe.bpf.c, read-only data). */
struct vigil_syscall_hooks {
	__u32 count;
	__u32 hooks[VIGIL_HOOKS_PER_SYSCALL];
	/* 1: served by raw_tp sys_enter/sys_exit, because the system call has no
	 * tracepoint of its own (the per-syscall tracepoints serve all others). */
	__u32 raw_tp;
};

/* Key of the `string_match` LPM trie: the match id, then the string. */
struct vigil_string_key {
	__u32 prefixlen;
	__u32 match_id;
	__u8 data[VIGIL_MATCH_STRING_MAX];
};

struct vigil_arg_desc {
	__u16 len;
	__u8 type;
	__u8 flags;
};

/*
 * VIGIL_MSG_KPROBE: one hook firing. Followed by each argument's bytes in
 * order (integers as 8 bytes, strings and paths without terminator).
 */
struct vigil_msg_kprobe {
	struct vigil_msg_header hdr;
	struct vigil_proc_key key;
	__u32 tid;
	__u32 hook;
	/* VIGIL_ACTION_* of the matching selector. */
	__u32 action;
	__u32 flags;
	__s64 ret;
	__u32 selector;
	__u32 signal;
	struct vigil_arg_desc args[VIGIL_HOOK_ARGS_MAX];
	__u32 _pad;
};

#endif /* VIGIL_INTF_H */
