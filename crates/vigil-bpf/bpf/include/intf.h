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
	VIGIL_STAT_MAX = 5,
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

#endif /* VIGIL_INTF_H */
