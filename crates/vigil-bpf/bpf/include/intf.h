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
	/* A Post kernelStackTrace/userStackTrace found no room in stack_traces
	 * (or could not walk the stack): the event has no such trace. */
	VIGIL_STAT_LOST_STACK = 6,
	VIGIL_STAT_MAX = 7,
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
	/* kprobe.multi: a function's attach cookie packs the ids of its hooks
	 * (up to VIGIL_HOOKS_PER_SYSCALL), each as id + 1 in this many bits
	 * (0: no more hooks). */
	VIGIL_MULTI_ID_BITS = 16,
	/* (hook, cgroup) pairs of scoped hooks in all. */
	VIGIL_SCOPE_ENTRIES = 16384,
	VIGIL_SYSCALLS_MAX = 512,
	/* Sockets TrackSock can track at once (an LRU: the oldest go first). */
	VIGIL_TRACKED_SOCKS_MAX = 32000,
	/* Longest string value a selector compares (LPM trie key room). */
	VIGIL_MATCH_STRING_MAX = 248,
	/* Bytes kept of one string, path or buffer argument. */
	VIGIL_ARG_DATA_MAX = 4096,
	/* matchNamespaces entries per selector, and inode numbers per entry (Tetragon: 4). */
	VIGIL_MATCH_NS_MAX = 4,
	VIGIL_MATCH_NS_VALUES_MAX = 4,
	/* matchCapabilities entries per selector (one per capability set). */
	VIGIL_MATCH_CAPS_MAX = 3,
	/* Bytes of each argument that tell rate-limited events apart (Tetragon: 40). */
	VIGIL_RATE_KEY_ARG_BYTES = 40,
	/* Ancestors a matchPIDs followForks or a matchBinaries followChildren looks through. */
	VIGIL_ANCESTORS_WALK = 16,
	/* struct iovec entries a char_iovec argument is read from. */
	VIGIL_IOVEC_MAX = 16,
	/* Stacks the stack_traces map holds at once, and frames per stack
	 * (the kernel's default perf_event_max_stack). */
	VIGIL_STACK_TRACES_MAX = 1024,
	VIGIL_STACK_DEPTH = 127,
};

/* vigil_match_ns.ns: the fields of struct vigil_namespaces, in order. */
enum vigil_ns_kind {
	VIGIL_NS_UTS = 0,
	VIGIL_NS_IPC = 1,
	VIGIL_NS_MNT = 2,
	VIGIL_NS_PID = 3,
	VIGIL_NS_PID_FOR_CHILDREN = 4,
	VIGIL_NS_NET = 5,
	VIGIL_NS_TIME = 6,
	VIGIL_NS_TIME_FOR_CHILDREN = 7,
	VIGIL_NS_CGROUP = 8,
	VIGIL_NS_USER = 9,
	VIGIL_NS_KINDS = 10,
};

/* vigil_match_caps.set */
enum vigil_cap_set {
	VIGIL_CAP_EFFECTIVE = 0,
	VIGIL_CAP_INHERITABLE = 1,
	VIGIL_CAP_PERMITTED = 2,
};

/* vigil_selector_config.rate_scope */
enum vigil_rate_scope {
	VIGIL_RATE_THREAD = 0,
	VIGIL_RATE_PROCESS = 1,
	VIGIL_RATE_GLOBAL = 2,
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
	/* A user-space struct sockaddr * (system calls), as struct vigil_sockaddr_arg. */
	VIGIL_ARG_SOCKADDR = 10,
	/* A kernel struct sockaddr * (kernel functions, the cgroup connect hooks). */
	VIGIL_ARG_SOCKADDR_KERNEL = 11,
	/* A struct sock * (kernel functions), as struct vigil_sock_arg. */
	VIGIL_ARG_SOCK = 12,
	/* A user-space struct iovec array whose count is another argument: the
	 * bytes of its buffers, one after the other. */
	VIGIL_ARG_CHAR_IOVEC = 13,
	/* Kernel objects (kernel functions), numbered apart from the types above
	 * so that each family of types can grow. A struct path *, as its full path. */
	VIGIL_ARG_PATH = 32,
	/* A struct dentry *: its path within its own file system. */
	VIGIL_ARG_DENTRY = 33,
	/* A struct linux_binprm *: the full path of the file being executed. */
	VIGIL_ARG_LINUX_BINPRM = 34,
	/* An int capability number (8 bytes, as integers). */
	VIGIL_ARG_CAPABILITY = 35,
	/* A kernel_cap_t *: the capability bits (8 bytes). */
	VIGIL_ARG_KERNEL_CAP = 36,
	/* A struct user_namespace *: struct vigil_arg_user_ns. */
	VIGIL_ARG_USER_NS = 37,
	/* A struct cred *: struct vigil_arg_cred. */
	VIGIL_ARG_CRED = 38,
	/* A struct sk_buff * with its IP and TCP/UDP headers: struct vigil_arg_skb. */
	VIGIL_ARG_SKB = 39,
	/* A union bpf_attr * of BPF_PROG_LOAD: struct vigil_arg_bpf_attr. */
	VIGIL_ARG_BPF_ATTR = 40,
	/* A struct bpf_map *: struct vigil_arg_bpf_map. */
	VIGIL_ARG_BPF_MAP = 41,
	/* A struct perf_event *: struct vigil_arg_perf_event. */
	VIGIL_ARG_PERF_EVENT = 42,
};

/* VIGIL_ARG_USER_NS bytes. */
struct vigil_arg_user_ns {
	__s32 level;
	/* The namespace's owner and group. */
	__u32 uid;
	__u32 gid;
	__u32 inum;
};

/* VIGIL_ARG_CRED bytes. */
struct vigil_arg_cred {
	struct vigil_creds creds;
	struct vigil_arg_user_ns user_ns;
};

/* VIGIL_ARG_SKB bytes. */
struct vigil_arg_skb {
	__u32 hash;
	__u32 len;
	__u32 priority;
	__u32 mark;
	/* AF_INET or AF_INET6 from the IP header's version; 0 for other packets. */
	__u16 family;
	/* The IP header's protocol (IPv6: its next header). */
	__u16 protocol;
	/* skb->protocol, the link-layer protocol (ETH_P_IP...), host byte order. */
	__u16 proto;
	/* TCP, UDP, UDP-Lite and SCTP ports, host byte order. */
	__u16 sport;
	__u16 dport;
	__u16 _pad;
	/* Network order: 4 bytes for AF_INET, 16 for AF_INET6. */
	__u8 saddr[16];
	__u8 daddr[16];
};

/* VIGIL_ARG_BPF_ATTR bytes: the BPF_PROG_LOAD part of the attributes. */
struct vigil_arg_bpf_attr {
	__u32 prog_type;
	__u32 insn_cnt;
	char prog_name[16];
};

/* VIGIL_ARG_BPF_MAP bytes. */
struct vigil_arg_bpf_map {
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	char map_name[16];
};

enum {
	/* Room for the kprobe PMU's function name (KSYM_NAME_LEN is larger,
	 * function names are not). */
	VIGIL_KPROBE_FUNC_MAX = 128,
};

/* VIGIL_ARG_PERF_EVENT bytes. */
struct vigil_arg_perf_event {
	/* attr.type: PERF_TYPE_* or a PMU's number. */
	__u32 perf_type;
	__u32 _pad;
	__u64 config;
	/* kprobe PMU events: the function and the offset into it. */
	__u64 probe_offset;
	char kprobe_func[VIGIL_KPROBE_FUNC_MAX];
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
	/* returnCopy: read when the function returns, not at the call (in a
	 * hook's config); its bytes follow the other arguments' (in an event). */
	VIGIL_ARG_AT_RETURN = 1 << 3,
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
	/* Socket addresses against the `addr_match` trie (SAddr, DAddr, ...). */
	VIGIL_OP_ADDR_IN = 16,
	VIGIL_OP_ADDR_NOT_IN = 17,
};

/* vigil_match_arg.field: which part of a sock or sockaddr argument an
 * operator compares (ports, protocol, family, state use the integer
 * operators on it; addresses use VIGIL_OP_ADDR_*). */
enum vigil_sock_field {
	VIGIL_FIELD_VALUE = 0,
	VIGIL_FIELD_FAMILY = 1,
	VIGIL_FIELD_PROTOCOL = 2,
	VIGIL_FIELD_STATE = 3,
	VIGIL_FIELD_SPORT = 4,
	VIGIL_FIELD_DPORT = 5,
	VIGIL_FIELD_SADDR = 6,
	VIGIL_FIELD_DADDR = 7,
};

/* vigil_selector_config.actions and vigil_msg_kprobe.action */
enum vigil_action_flags {
	VIGIL_ACTION_POST = 1 << 0,
	VIGIL_ACTION_SIGNAL = 1 << 1,
	/* Make the hooked operation fail with override_error (BPF-LSM, cgroup connect). */
	VIGIL_ACTION_OVERRIDE = 1 << 2,
	/* Post kernelStackTrace / userStackTrace. */
	VIGIL_ACTION_KERNEL_STACK = 1 << 3,
	VIGIL_ACTION_USER_STACK = 1 << 4,
	/* TrackSock / UntrackSock: the socket in argument arg_sock gets (or
	 * loses) the caller as its owner in `tracked_socks`. */
	VIGIL_ACTION_TRACK_SOCK = 1 << 5,
	VIGIL_ACTION_UNTRACK_SOCK = 1 << 6,
	/* Post imaHash (LSM hooks): the event waits in `pending` for the
	 * sleepable program on the same hook, which appends the file's IMA
	 * hash, applies the selector's Override and posts it. */
	VIGIL_ACTION_IMA_HASH = 1 << 7,
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
	/* Some selector matches the parent's binary (matchParentBinaries). */
	VIGIL_HOOK_NEED_PARENT_BINARY = 1 << 5,
	VIGIL_HOOK_NEED_PARENT_BINARY_REVERSED = 1 << 6,
	/* Set by the loader while the hook exists: a removed hook's slot is
	 * zeroed, and a program that still reads its id does nothing. */
	VIGIL_HOOK_LIVE = 1 << 7,
	/* returnArgAction TrackSock / UntrackSock on the returned socket: the
	 * call's return is waited for even when its selector does not post. */
	VIGIL_HOOK_RETURN_TRACK_SOCK = 1 << 9,
	VIGIL_HOOK_RETURN_UNTRACK_SOCK = 1 << 10,
	/* The policy is scoped to workloads (TracingPolicyNamespaced, pod or
	 * container selectors): the hook runs only for callers whose cgroup is
	 * in `hook_scope` under the hook's id. */
	VIGIL_HOOK_SCOPED = 1 << 11,
};

/* `hook_scope` key: a cgroup (v2 id) a scoped hook applies to. */
struct vigil_scope_key {
	__u32 hook;
	__u32 _pad;
	__u64 cgroup_id;
};

/* vigil_msg_kprobe.flags */
enum vigil_kprobe_flags {
	VIGIL_KPROBE_HAS_RETURN = 1 << 0,
	/* The selector's signal was not sent (or its override not applied): monitor mode. */
	VIGIL_KPROBE_MONITORED = 1 << 1,
	/* bpf_send_signal failed. */
	VIGIL_KPROBE_SIGNAL_FAILED = 1 << 2,
	/* kernel_stack / user_stack name a stack in stack_traces. */
	VIGIL_KPROBE_KERNEL_STACK = 1 << 3,
	VIGIL_KPROBE_USER_STACK = 1 << 4,
	/* The event names the owner of a socket TrackSock tracked (argument
	 * sock_arg), not the task that ran the hook. */
	VIGIL_KPROBE_SOCK_OWNER = 1 << 5,
	/* Waited for only for returnArgAction: not posted at the return. */
	VIGIL_KPROBE_NO_POST = 1 << 6,
	/* A struct vigil_ima_hash follows the arguments. */
	VIGIL_KPROBE_IMA_HASH = 1 << 7,
};

/* Largest digest bpf_ima_file_hash writes (SHA-512). */
#define VIGIL_IMA_DIGEST_MAX 64

/* Post imaHash: what bpf_ima_file_hash returned, after the arguments. */
struct vigil_ima_hash {
	/* The kernel's enum hash_algo (HASH_ALGO_SHA256 = 4, ...), or a negative errno. */
	__s32 algo;
	__u32 _pad;
	__u8 digest[VIGIL_IMA_DIGEST_MAX];
};

/* Per hook, in the per-CPU `hook_stats` array at hook * VIGIL_HOOK_STAT_MAX. */
enum vigil_hook_stat {
	VIGIL_HOOK_STAT_POSTED = 0,
	VIGIL_HOOK_STAT_ENFORCED = 1,
	VIGIL_HOOK_STAT_MONITORED = 2,
	/* Events a Post rateLimit held back. */
	VIGIL_HOOK_STAT_RATE_LIMITED = 3,
	VIGIL_HOOK_STAT_MAX = 4,
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
	/* enum vigil_sock_field: the part of a sock/sockaddr argument compared. */
	__u8 field;
	/* Namespace of this entry's strings in the `string_match` trie. */
	__u32 match_id;
	__u64 values[VIGIL_MATCH_VALUES_MAX];
};

/* matchNamespaces entry: the caller's namespace `ns` is (not) one of `values`. */
struct vigil_match_ns {
	__u8 ns;
	__u8 not_in;
	__u8 nvalues;
	__u8 _pad;
	__u32 values[VIGIL_MATCH_NS_VALUES_MAX];
};

/* matchCapabilities entry: the caller's capability set `set` holds (In) any,
 * or (NotIn) none, of `mask`. With ns_cap, only callers outside the host's
 * user namespace match (isNamespaceCapability). */
struct vigil_match_caps {
	__u8 set;
	__u8 not_in;
	__u8 ns_cap;
	__u8 _pad[5];
	__u64 mask;
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
	__u8 nmatch_ns;
	__u8 nmatch_caps;
	/* Post's rateLimitScope (enum vigil_rate_scope). */
	__u8 rate_scope;
	/* TrackSock / UntrackSock: the index of the socket argument. */
	__u8 arg_sock;
	/* Post's rateLimit: at most one event per key in this many ns; 0 = unlimited. */
	__u64 rate_limit_ns;
	struct vigil_match_ns match_ns[VIGIL_MATCH_NS_MAX];
	struct vigil_match_caps match_caps[VIGIL_MATCH_CAPS_MAX];
	/* matchParentBinaries: like binary_op, on the parent process's binary. */
	__u32 parent_binary_match_id;
	__u8 parent_binary_op;
	/* matchPIDs: isNamespacePID (the pid as the caller's pid namespace sees
	 * it) and followForks (the pid or any ancestor's, up to VIGIL_ANCESTORS_WALK). */
	__u8 pid_in_ns;
	__u8 pid_follow_forks;
	/* matchNamespaceChanges: In (0) / NotIn (1). */
	__u8 ns_change_not_in;
	/* matchNamespaceChanges: 1 << enum vigil_ns_kind for each namespace to
	 * compare with the one the process had at exec; 0 = no such filter. */
	__u16 ns_change_mask;
	/* matchCapabilityChanges: 1 when caps_change applies. */
	__u8 caps_change_on;
	/* matchBinaries followChildren: binary_op (In/NotIn) looks at the
	 * caller's ancestors' binaries too (up to VIGIL_ANCESTORS_WALK). */
	__u8 binary_follow_children;
	/* matchCapabilityChanges: the capabilities of caps_change.set that differ
	 * from those at exec include (In) any / (NotIn) none of caps_change.mask. */
	struct vigil_match_caps caps_change;
};

struct vigil_hook_config {
	__u32 flags;
	__u8 nargs;
	__u8 nselectors;
	/* Type of the return value (VIGIL_ARG_INT...) with VIGIL_HOOK_RETURN;
	 * VIGIL_ARG_NONE when the hook returns only for a returnCopy argument. */
	__u8 ret_type;
	/* 1 + the position in args of the returnCopy argument; 0 = none. */
	__u8 copy_arg;
	struct vigil_arg_config args[VIGIL_HOOK_ARGS_MAX];
	/* 1 + the index of the first sock argument: an event on a socket that
	 * TrackSock tracked names its owner; 0 = no sock argument. */
	__u8 sock_arg;
	__u8 _pad2[3];
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

/* Key of the `addr_match` LPM trie: the match id, the address family
 * (AF_INET or AF_INET6, so that a v4 CIDR never matches a v6 address), then
 * the address in network order; prefixlen counts 64 bits + the CIDR's bits. */
struct vigil_addr_key {
	__u32 prefixlen;
	__u32 match_id;
	__u32 family;
	__u8 addr[16];
};

/* A sockaddr argument (VIGIL_ARG_SOCKADDR*) in the event data. */
struct vigil_sockaddr_arg {
	__u16 family;
	/* Host byte order. */
	__u16 port;
	__u32 _pad;
	/* Network order: 4 bytes for AF_INET, 16 for AF_INET6. */
	__u8 addr[16];
};

/* A sock argument (VIGIL_ARG_SOCK) in the event data. */
struct vigil_sock_arg {
	__u16 family;
	__u16 sock_type;
	__u16 protocol;
	/* TCP_ESTABLISHED... (enum in include/net/tcp_states.h). */
	__u16 state;
	/* Host byte order. */
	__u16 sport;
	__u16 dport;
	__u32 mark;
	__u32 priority;
	__u32 _pad;
	__u8 saddr[16];
	__u8 daddr[16];
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
	/* The returnCopy argument's count (char_buf: its size argument, or
	 * VIGIL_ARG_DATA_MAX without one; char_iovec: the number of iovecs). */
	__u32 copy_count;
	/* The returnCopy argument's pointer, kept from the call to the return. */
	__u64 copy_ptr;
	/* Ids in stack_traces, with VIGIL_KPROBE_KERNEL_STACK / _USER_STACK. */
	__u32 kernel_stack;
	__u32 user_stack;
};

#endif /* VIGIL_INTF_H */
