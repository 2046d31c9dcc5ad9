/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The generic hook logic shared by every TracingPolicy front-end (system
 * call tracepoints, kprobes, fentry, BPF-LSM): read a hook's arguments,
 * find its first matching selector, act, and post. A front-end fills
 * `regs` with the hooked function's arguments and calls run_hook(); user
 * space describes each hook (arguments, selectors, actions) in maps, as
 * Tetragon's generic kprobe does. No code is generated per policy.
 *
 * The ring buffer `events`, the counters `stats` and the process table
 * `procs` are the process sensor's (the loader reuses their fds), so that
 * selectors read the process table and events stay in one ordered stream.
 */
#ifndef VIGIL_GENERIC_BPF_H
#define VIGIL_GENERIC_BPF_H

#include "common.bpf.h"
#include <bpf/bpf_endian.h>
#include "path.bpf.h"
#include "process_table.bpf.h"
#include "task.bpf.h"
#include "stack.bpf.h"

/* Address families (include/linux/socket.h; vmlinux.h has no macros). */
#define VIGIL_AF_INET 2
#define VIGIL_AF_INET6 10

#define ARG_MASK (VIGIL_ARG_DATA_MAX - 1)
/* Every argument but the last starts below this offset (4 x 4095 bytes). */
#define OFF_MASK (VIGIL_ARG_DATA_MAX * 4 - 1)
#define DATA_SIZE (VIGIL_ARG_DATA_MAX * VIGIL_HOOK_ARGS_MAX)
#define KEY_BITS(len) (32 + 8 * (len))
/* Largest short read of a string for the selectors (vigil_arg_config.filter_len). */
#define FILTER_LEN_MASK 255

/* Set by the loader: the agent's own calls are never hooked (its writes
 * would otherwise feed a write hook forever). */
const volatile __u32 agent_tgid = 0;

struct generic_event {
	struct vigil_msg_kprobe msg;
	char data[DATA_SIZE];
};

/* A trie key with room for a short read one byte past the key's data. */
struct arg_key {
	struct vigil_string_key key;
	__u8 slack[FILTER_LEN_MASK + 1 - VIGIL_MATCH_STRING_MAX];
};

/* Post rateLimit: the hook, selector, scope (thread, process or nothing)
 * and the first bytes of each argument; the value is the last post's time. */
struct rate_key {
	__u32 hook;
	__u32 selector;
	__u64 scope;
	/* VIGIL_RATE_KEY_ARG_BYTES per argument (one dimension: the skeleton's
	 * generated Rust types cannot default nested arrays). */
	__u8 args[VIGIL_HOOK_ARGS_MAX * VIGIL_RATE_KEY_ARG_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct rate_key);
	__type(value, __u64);
} rate_limits SEC(".maps");

/* Per-CPU state of the hook being evaluated: too large for the stack, and
 * shared with the bpf_loop callbacks. */
struct generic_state {
	struct generic_event ev;
	/* The hooked function's arguments; eight slots so that a masked index stays inside. */
	__u64 regs[8];
	__u64 arg_val[VIGIL_HOOK_ARGS_MAX];
	/* Length of each string argument as the selectors see it. */
	__u32 arg_len[VIGIL_HOOK_ARGS_MAX];
	/* Each sock or sockaddr argument as the selectors see it (a sockaddr's
	 * address and port are its saddr and sport, as Tetragon's SAddr/SPort). */
	struct vigil_sock_arg sock[VIGIL_HOOK_ARGS_MAX];
	__u32 off;
	__u32 hook;
	__u32 matched;
	__u32 bin_len;
	struct vigil_string_key bin;
	struct vigil_string_key bin_rev;
	__u32 parent_bin_len;
	struct vigil_string_key parent_bin;
	struct vigil_string_key parent_bin_rev;
	/* The start of each string argument (selector keys) and its reversed end. */
	struct arg_key fwd[VIGIL_HOOK_ARGS_MAX];
	struct vigil_string_key rev[VIGIL_HOOK_ARGS_MAX];
	struct rate_key rate;
	/* 1: run_hook left the event in `ev` for the front-end to add the
	 * stacks its selector posts and send it (post_with_stacks). */
	__u32 stacks_pending;
	/* An ancestor's binary (matchBinaries followChildren). */
	struct vigil_string_key ancestor_bin;
	/* A string return value (matchReturnArgs), and its reversed end. */
	struct arg_key ret_fwd;
	struct vigil_string_key ret_rev;
	/* The owner of the hook's sock argument if TrackSock tracks it (pid 0:
	 * none), read before the selectors' actions can untrack it. */
	struct vigil_proc_key sock_owner;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct generic_state);
} generic_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_HOOKS_MAX);
	__type(key, __u32);
	__type(value, struct vigil_hook_config);
} hook_configs SEC(".maps");

/* Selector strings: value is the string's length, so that Equal can tell an
 * exact match from a prefix. Postfix strings are stored reversed. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_string_key);
	__type(value, __u32);
} string_match SEC(".maps");

/* Selector addresses and CIDRs (SAddr, DAddr, ...); the value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_addr_key);
	__type(value, __u8);
} addr_match SEC(".maps");

/* Cgroups each scoped hook (VIGIL_HOOK_SCOPED) applies to; user space
 * keeps it current as containers come and go. The value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_SCOPE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_scope_key);
	__type(value, __u8);
} hook_scope SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_HOOKS_MAX * VIGIL_HOOK_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hook_stats SEC(".maps");

struct pending_key {
	__u64 pid_tgid;
	__u32 hook;
	__u32 _pad;
};

/* Events of hooks with `return: true`, from the call until its return. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pending_key);
	__type(value, struct generic_event);
} pending SEC(".maps");

/* Sockets TrackSock tracks: struct sock pointer -> the process that owns
 * it, so that events on the socket in another context (softirq, a process
 * it was passed to) name that process. An LRU: a socket whose UntrackSock
 * never ran cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VIGIL_TRACKED_SOCKS_MAX);
	__type(key, __u64);
	__type(value, struct vigil_proc_key);
} tracked_socks SEC(".maps");

#ifdef VIGIL_DEFERRED_SIGNAL
/* Program types that may not signal (cgroup hooks) leave the signal here;
 * the front-end sends it when the call returns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} deferred_signals SEC(".maps");

static __always_inline long send_signal(__u32 sig)
{
	__u64 id = bpf_get_current_pid_tgid();

	return bpf_map_update_elem(&deferred_signals, &id, &sig, BPF_ANY);
}
#else
static __always_inline long send_signal(__u32 sig)
{
	return bpf_send_signal(sig);
}
#endif

static __always_inline struct generic_state *state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&generic_scratch, &zero);
}

static __always_inline int is_agent(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == agent_tgid;
}

/* The state with the hooked function's arguments from its pt_regs (the
 * x86_64 calling convention), or NULL for the agent's own calls. */
static __always_inline struct generic_state *state_from_regs(struct pt_regs *ctx)
{
	struct generic_state *s;

	if (is_agent())
		return NULL;
	s = state();
	if (!s)
		return NULL;
	s->regs[0] = ctx->di;
	s->regs[1] = ctx->si;
	s->regs[2] = ctx->dx;
	s->regs[3] = ctx->cx;
	s->regs[4] = ctx->r8;
	s->regs[5] = ctx->r9;
	return s;
}

static __always_inline void hook_stat_inc(__u32 hook, __u32 stat)
{
	__u32 idx = hook * VIGIL_HOOK_STAT_MAX + stat;
	__u64 *v = bpf_map_lookup_elem(&hook_stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline __u32 event_size(__u32 data_len)
{
	__u64 size = sizeof(struct vigil_msg_kprobe) + (__u64)data_len;

	return size > sizeof(struct generic_event) ? sizeof(struct generic_event) : size;
}

/* Copies `len` bytes of user memory at `ptr` to data[off...] (at most
 * VIGIL_ARG_DATA_MAX - 1); returns the number copied. */
static __always_inline __u32 copy_user_buf(char *data, __u32 off, __u64 ptr, __u64 want,
					   __u8 *flags)
{
	__u32 len;

	if (want > ARG_MASK) {
		want = ARG_MASK;
		*flags |= VIGIL_ARG_TRUNCATED;
	}
	/* A 32-bit length, masked after a barrier: older verifiers (6.1) lose
	 * the bounds of a 64-bit one passed as the helper's size. */
	len = want & ARG_MASK;
	barrier_var(len);
	if (len && bpf_probe_read_user(&data[off & OFF_MASK], len & ARG_MASK, (void *)ptr)) {
		*flags |= VIGIL_ARG_ERROR;
		return 0;
	}
	return len & ARG_MASK;
}

/* Copies the buffers of the user struct iovec array `iov` (`cnt` entries,
 * at most VIGIL_IOVEC_MAX looked at) one after the other to data[off...],
 * at most `limit` bytes and VIGIL_ARG_DATA_MAX - 1; returns the number copied.
 * Each write position is masked on its own so that the verifier can bound it. */
static __always_inline __u32 copy_user_iovec(char *data, __u32 off, __u64 iov, __u64 cnt,
					     __u64 limit, __u8 *flags)
{
	struct iovec v;
	__u64 n, total = 0, pos;
	__u32 chunk;

	if (limit > ARG_MASK)
		limit = ARG_MASK;
	for (int k = 0; k < VIGIL_IOVEC_MAX; k++) {
		if (k >= cnt || total >= limit)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(iov + k * sizeof(v)))) {
			*flags |= VIGIL_ARG_ERROR;
			break;
		}
		n = v.iov_len;
		if (n > limit - total) {
			n = limit - total;
			*flags |= VIGIL_ARG_TRUNCATED;
		}
		pos = off + total;
		if (pos > OFF_MASK) {
			*flags |= VIGIL_ARG_TRUNCATED;
			break;
		}
		/* As in copy_user_buf: a 32-bit size, masked after a barrier. */
		chunk = n & ARG_MASK;
		barrier_var(chunk);
		if (chunk &&
		    bpf_probe_read_user(&data[pos & OFF_MASK], chunk & ARG_MASK, v.iov_base)) {
			*flags |= VIGIL_ARG_ERROR;
			break;
		}
		total += chunk;
	}
	if (cnt > VIGIL_IOVEC_MAX && total < limit)
		*flags |= VIGIL_ARG_TRUNCATED;
	return total & ARG_MASK;
}

/* key->data = the last `len` bytes of src, reversed (at most the key's room);
 * `mask` bounds indexes into src for the verifier. */
static __always_inline void reverse_into(struct vigil_string_key *key, const char *src, __u32 len,
					 __u32 mask)
{
	__u32 n = len > VIGIL_MATCH_STRING_MAX ? VIGIL_MATCH_STRING_MAX : len;

	for (int j = 0; j < VIGIL_MATCH_STRING_MAX; j++) {
		if (j >= n)
			break;
		key->data[j] = src[(len - 1 - j) & mask];
	}
	key->prefixlen = KEY_BITS(n);
}

/* Copies the resolved `path` to dst; returns its length. */
static __always_inline int read_path(char *dst, struct path *path, __u8 *flags)
{
	struct path_buf *pb = path_buffer();
	struct path_result res;

	if (!pb || !path) {
		*flags |= VIGIL_ARG_ERROR;
		return 0;
	}
	res = path_resolve(pb, path);
	if (res.truncated)
		*flags |= VIGIL_ARG_TRUNCATED;
	return path_copy(dst, pb, res);
}

static __always_inline int read_file_path(char *dst, struct file *file, __u8 *flags)
{
	struct path path;

	if (!file || BPF_CORE_READ_INTO(&path, file, f_path)) {
		*flags |= VIGIL_ARG_ERROR;
		return 0;
	}
	return read_path(dst, &path, flags);
}

static __always_inline int read_dentry_path(char *dst, struct dentry *dentry, __u8 *flags)
{
	struct path_buf *pb = path_buffer();
	struct path_result res;

	if (!pb || !dentry) {
		*flags |= VIGIL_ARG_ERROR;
		return 0;
	}
	res = path_resolve_dentry(pb, dentry);
	if (res.truncated)
		*flags |= VIGIL_ARG_TRUNCATED;
	return path_copy(dst, pb, res);
}

static __always_inline void read_user_ns(struct vigil_arg_user_ns *out, struct user_namespace *ns)
{
	out->level = BPF_CORE_READ(ns, level);
	out->uid = BPF_CORE_READ(ns, owner.val);
	out->gid = BPF_CORE_READ(ns, group.val);
	out->inum = BPF_CORE_READ(ns, ns.inum);
}

static __always_inline void read_bpf_attr(struct vigil_arg_bpf_attr *out, union bpf_attr *attr)
{
	out->prog_type = BPF_CORE_READ(attr, prog_type);
	out->insn_cnt = BPF_CORE_READ(attr, insn_cnt);
	BPF_CORE_READ_INTO(&out->prog_name, attr, prog_name);
}

static __always_inline void read_bpf_map(struct vigil_arg_bpf_map *out, struct bpf_map *map)
{
	out->map_type = BPF_CORE_READ(map, map_type);
	out->key_size = BPF_CORE_READ(map, key_size);
	out->value_size = BPF_CORE_READ(map, value_size);
	out->max_entries = BPF_CORE_READ(map, max_entries);
	BPF_CORE_READ_INTO(&out->map_name, map, name);
}

static __always_inline void read_perf_event(struct vigil_arg_perf_event *out,
					    struct perf_event *event)
{
	char pmu[8] = {};

	out->perf_type = BPF_CORE_READ(event, attr.type);
	out->config = BPF_CORE_READ(event, attr.config);
	/* config1 and config2 are a function name (a user pointer, still the
	 * caller's while the event is set up) and an offset only for the
	 * kprobe PMU; other PMUs give them other meanings. */
	bpf_probe_read_kernel_str(pmu, sizeof(pmu), BPF_CORE_READ(event, pmu, name));
	if (pmu[0] != 'k' || pmu[1] != 'p' || pmu[2] != 'r' || pmu[3] != 'o' || pmu[4] != 'b' ||
	    pmu[5] != 'e' || pmu[6])
		return;
	out->probe_offset = BPF_CORE_READ(event, attr.probe_offset);
	bpf_probe_read_user_str(out->kprobe_func, sizeof(out->kprobe_func),
				(void *)BPF_CORE_READ(event, attr.kprobe_func));
}

/* BPF and perf objects, read straight into the event: read_arg's stack,
 * with its callers', stays within the 512 bytes 6.1's verifier allows.
 * Returns the bytes written. */
static __always_inline __u32 read_bpf_perf_object(char *dst, __u8 type, __u64 raw, __u8 *flags)
{
	if (!raw) {
		*flags |= VIGIL_ARG_ERROR;
		return 0;
	}
	switch (type) {
	case VIGIL_ARG_BPF_ATTR:
		__builtin_memset(dst, 0, sizeof(struct vigil_arg_bpf_attr));
		read_bpf_attr((struct vigil_arg_bpf_attr *)dst, (union bpf_attr *)raw);
		return sizeof(struct vigil_arg_bpf_attr);
	case VIGIL_ARG_BPF_MAP:
		__builtin_memset(dst, 0, sizeof(struct vigil_arg_bpf_map));
		read_bpf_map((struct vigil_arg_bpf_map *)dst, (struct bpf_map *)raw);
		return sizeof(struct vigil_arg_bpf_map);
	}
	__builtin_memset(dst, 0, sizeof(struct vigil_arg_perf_event));
	read_perf_event((struct vigil_arg_perf_event *)dst, (struct perf_event *)raw);
	return sizeof(struct vigil_arg_perf_event);
}

/* Kernel objects copied whole into the event; returns the bytes written. */
static __always_inline __u32 read_kernel_object(char *dst, __u8 type, __u64 raw, __u8 *flags)
{
	union {
		struct vigil_arg_user_ns user_ns;
		struct vigil_arg_cred cred;
	} obj = {};
	__u32 size;

	if (!raw) {
		*flags |= VIGIL_ARG_ERROR;
		return 0;
	}
	if (type == VIGIL_ARG_USER_NS) {
		read_user_ns(&obj.user_ns, (struct user_namespace *)raw);
		size = sizeof(obj.user_ns);
	} else {
		read_creds(&obj.cred.creds, (struct cred *)raw);
		read_user_ns(&obj.cred.user_ns, BPF_CORE_READ((struct cred *)raw, user_ns));
		size = sizeof(obj.cred);
	}
	bpf_probe_read_kernel(dst, size, &obj);
	return size;
}

static __always_inline int read_fd_path(char *dst, __u64 fd, __u8 *flags)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		goto fail;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		goto fail;
	return read_file_path(dst, file, flags);
fail:
	*flags |= VIGIL_ARG_ERROR;
	return 0;
}

/* A struct sockaddr (user or kernel memory) as the selectors see it: its
 * address and port in saddr and sport. */
static __always_inline void read_sockaddr(struct vigil_sock_arg *t, __u64 ptr, int user,
					  __u8 *flags)
{
	struct sockaddr_in6 sa = {};
	long err;

	__builtin_memset(t, 0, sizeof(*t));
	err = user ? bpf_probe_read_user(&sa, sizeof(sa), (void *)ptr) :
		     bpf_probe_read_kernel(&sa, sizeof(sa), (void *)ptr);
	/* A sockaddr_in may end right before an unmapped page. */
	if (err)
		err = user ? bpf_probe_read_user(&sa, sizeof(struct sockaddr_in), (void *)ptr) :
			     bpf_probe_read_kernel(&sa, sizeof(struct sockaddr_in), (void *)ptr);
	if (err) {
		*flags |= VIGIL_ARG_ERROR;
		return;
	}
	t->family = sa.sin6_family;
	if (t->family == VIGIL_AF_INET) {
		t->sport = bpf_ntohs(sa.sin6_port);
		__builtin_memcpy(t->saddr, &((struct sockaddr_in *)&sa)->sin_addr, 4);
	} else if (t->family == VIGIL_AF_INET6) {
		t->sport = bpf_ntohs(sa.sin6_port);
		__builtin_memcpy(t->saddr, &sa.sin6_addr, 16);
	}
}

/* A struct sock: its common part, read with CO-RE. */
static __always_inline void read_sock(struct vigil_sock_arg *t, struct sock *sk, __u8 *flags)
{
	__builtin_memset(t, 0, sizeof(*t));
	if (!sk) {
		*flags |= VIGIL_ARG_ERROR;
		return;
	}
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	t->sock_type = BPF_CORE_READ(sk, sk_type);
	t->protocol = BPF_CORE_READ(sk, sk_protocol);
	t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	t->mark = BPF_CORE_READ(sk, sk_mark);
	t->priority = BPF_CORE_READ(sk, sk_priority);
	if (t->family == VIGIL_AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memcpy(t->saddr, &a, 4);
		a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(t->daddr, &a, 4);
	} else if (t->family == VIGIL_AF_INET6) {
		BPF_CORE_READ_INTO(&t->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&t->daddr, sk, __sk_common.skc_v6_daddr);
	}
}

/* A packet as the selectors see it: family, addresses and protocol from its
 * IP header, ports from its TCP, UDP or SCTP header (the headers must be in
 * place: hook functions on the IP layer and below), mark and priority. */
static __always_inline void read_skb(struct vigil_sock_arg *t, struct sk_buff *skb, __u8 *flags)
{
	unsigned char *head, *l3, *l4;
	/* The IP header's first byte: version and (IPv4) header length. */
	__u8 first = 0, protocol = 0;
	__be16 ports[2];

	__builtin_memset(t, 0, sizeof(*t));
	if (!skb) {
		*flags |= VIGIL_ARG_ERROR;
		return;
	}
	t->mark = BPF_CORE_READ(skb, mark);
	t->priority = BPF_CORE_READ(skb, priority);
	head = BPF_CORE_READ(skb, head);
	l3 = head + BPF_CORE_READ(skb, network_header);
	if (bpf_probe_read_kernel(&first, 1, l3)) {
		*flags |= VIGIL_ARG_ERROR;
		return;
	}
	/* Field by field at their offsets in the IP headers (RFC 791, RFC
	 * 8200), into the state: whole headers would not fit on the stack. */
	if (first >> 4 == 4) {
		if (bpf_probe_read_kernel(&protocol, 1, l3 + 9) ||
		    bpf_probe_read_kernel(t->saddr, 4, l3 + 12) ||
		    bpf_probe_read_kernel(t->daddr, 4, l3 + 16))
			return;
		t->family = VIGIL_AF_INET;
		l4 = l3 + (first & 0xf) * 4;
	} else if (first >> 4 == 6) {
		if (bpf_probe_read_kernel(&protocol, 1, l3 + 6) ||
		    bpf_probe_read_kernel(t->saddr, 16, l3 + 8) ||
		    bpf_probe_read_kernel(t->daddr, 16, l3 + 24))
			return;
		t->family = VIGIL_AF_INET6;
		/* Extension headers are not followed. */
		l4 = l3 + 40;
	} else {
		return;
	}
	t->protocol = protocol;
	switch (protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
		if (!bpf_probe_read_kernel(ports, sizeof(ports), l4)) {
			t->sport = bpf_ntohs(ports[0]);
			t->dport = bpf_ntohs(ports[1]);
		}
	}
}

/* Reads a sock, sockaddr or skb argument into s->sock[i]; 0 for other types. */
static __always_inline int read_net_arg(struct generic_state *s, __u64 i, __u8 type, __u64 raw,
					__u8 *flags)
{
	if (i >= VIGIL_HOOK_ARGS_MAX)
		return 0;
	switch (type) {
	case VIGIL_ARG_SOCKADDR:
	case VIGIL_ARG_SOCKADDR_KERNEL:
		read_sockaddr(&s->sock[i], raw, type == VIGIL_ARG_SOCKADDR, flags);
		return 1;
	case VIGIL_ARG_SOCK:
		read_sock(&s->sock[i], (struct sock *)raw, flags);
		return 1;
	case VIGIL_ARG_SKB:
		read_skb(&s->sock[i], (struct sk_buff *)raw, flags);
		return 1;
	}
	return 0;
}

/* Reads argument i of the current hook into the event; a bpf_loop callback. */
static long read_arg(__u64 i, void *unused)
{
	struct generic_state *s = state();
	struct vigil_hook_config *cfg;
	struct vigil_arg_config *a;
	struct vigil_arg_desc *d;
	__u32 off, len = 0;
	__u64 raw, v;
	char *dst;
	long n;

	if (!s)
		return 1;
	cfg = bpf_map_lookup_elem(&hook_configs, &s->hook);
	/* Checked right before use, then pinned (see check_selector). */
	if (!cfg || i >= VIGIL_HOOK_ARGS_MAX)
		return 1;
	barrier_var(i);
	a = &cfg->args[i];
	d = &s->ev.msg.args[i];
	d->type = a->type;
	d->flags = 0;
	off = s->off & OFF_MASK;
	dst = &s->ev.data[off];
	raw = s->regs[a->index & 7];

	if (a->flags & VIGIL_ARG_AT_RETURN) {
		/* Only the pointer and count now; the bytes once the call has
		 * filled them (finish_return). */
		v = a->size_index ? s->regs[(a->size_index - 1) & 7] : VIGIL_ARG_DATA_MAX;
		s->ev.msg.copy_ptr = raw;
		s->ev.msg.copy_count = v > VIGIL_ARG_DATA_MAX ? VIGIL_ARG_DATA_MAX : v;
		d->flags |= VIGIL_ARG_AT_RETURN;
		d->len = 0;
		return 0;
	}

	switch (a->type) {
	case VIGIL_ARG_INT:
		v = (__s64)(__s32)raw;
		goto integer;
	case VIGIL_ARG_UINT:
		v = (__u32)raw;
		goto integer;
	case VIGIL_ARG_LONG:
	case VIGIL_ARG_ULONG:
	case VIGIL_ARG_SIZE:
		v = raw;
integer:
		__builtin_memcpy(dst, &v, sizeof(v));
		s->arg_val[i] = v;
		len = sizeof(v);
		break;
	case VIGIL_ARG_STRING:
		n = bpf_probe_read_user_str(dst, VIGIL_ARG_DATA_MAX, (void *)raw);
		if (n <= 0) {
			d->flags |= VIGIL_ARG_ERROR;
		} else {
			len = (n - 1) & ARG_MASK;
			if (n == VIGIL_ARG_DATA_MAX)
				d->flags |= VIGIL_ARG_TRUNCATED;
		}
		break;
	case VIGIL_ARG_FD:
		len = read_fd_path(dst, raw, &d->flags) & ARG_MASK;
		break;
	case VIGIL_ARG_FILE:
		len = read_file_path(dst, (struct file *)raw, &d->flags) & ARG_MASK;
		break;
	case VIGIL_ARG_PATH: {
		struct path p;

		if (!raw || bpf_probe_read_kernel(&p, sizeof(p), (void *)raw))
			d->flags |= VIGIL_ARG_ERROR;
		else
			len = read_path(dst, &p, &d->flags) & ARG_MASK;
		break;
	}
	case VIGIL_ARG_DENTRY:
		len = read_dentry_path(dst, (struct dentry *)raw, &d->flags) & ARG_MASK;
		break;
	case VIGIL_ARG_LINUX_BINPRM:
		len = read_file_path(dst, BPF_CORE_READ((struct linux_binprm *)raw, file), &d->flags) &
		      ARG_MASK;
		break;
	case VIGIL_ARG_CAPABILITY:
		v = (__u32)raw;
		goto integer;
	case VIGIL_ARG_KERNEL_CAP:
		v = raw ? read_caps((kernel_cap_t *)raw) : 0;
		goto integer;
	case VIGIL_ARG_USER_NS:
	case VIGIL_ARG_CRED:
		len = read_kernel_object(dst, a->type, raw, &d->flags);
		break;
	case VIGIL_ARG_BPF_ATTR:
	case VIGIL_ARG_BPF_MAP:
	case VIGIL_ARG_PERF_EVENT:
		len = read_bpf_perf_object(dst, a->type, raw, &d->flags);
		break;
	case VIGIL_ARG_SOCKADDR:
	case VIGIL_ARG_SOCKADDR_KERNEL: {
		struct vigil_sockaddr_arg out = {};

		read_net_arg(s, i, a->type, raw, &d->flags);
		out.family = s->sock[i].family;
		out.port = s->sock[i].sport;
		__builtin_memcpy(out.addr, s->sock[i].saddr, sizeof(out.addr));
		__builtin_memcpy(dst, &out, sizeof(out));
		len = sizeof(out);
		break;
	}
	case VIGIL_ARG_SOCK:
		read_net_arg(s, i, a->type, raw, &d->flags);
		__builtin_memcpy(dst, &s->sock[i], sizeof(s->sock[i]));
		len = sizeof(s->sock[i]);
		break;
	case VIGIL_ARG_SKB: {
		/* Written in place, not on the stack (see read_bpf_perf_object). */
		struct vigil_arg_skb *out = (struct vigil_arg_skb *)dst;
		struct vigil_sock_arg *t = &s->sock[i];

		read_net_arg(s, i, a->type, raw, &d->flags);
		__builtin_memset(out, 0, sizeof(*out));
		if (raw) {
			out->hash = BPF_CORE_READ((struct sk_buff *)raw, hash);
			out->len = BPF_CORE_READ((struct sk_buff *)raw, len);
			out->proto = bpf_ntohs(BPF_CORE_READ((struct sk_buff *)raw, protocol));
		}
		out->priority = t->priority;
		out->mark = t->mark;
		out->family = t->family;
		out->protocol = t->protocol;
		out->sport = t->sport;
		out->dport = t->dport;
		__builtin_memcpy(out->saddr, t->saddr, sizeof(out->saddr));
		__builtin_memcpy(out->daddr, t->daddr, sizeof(out->daddr));
		len = sizeof(*out);
		break;
	}
	case VIGIL_ARG_CHAR_BUF:
		v = a->size_index ? s->regs[(a->size_index - 1) & 7] : 0;
		len = copy_user_buf(s->ev.data, off, raw, v, &d->flags);
		break;
	case VIGIL_ARG_CHAR_IOVEC:
		v = a->size_index ? s->regs[(a->size_index - 1) & 7] : 0;
		len = copy_user_iovec(s->ev.data, off, raw, v, ARG_MASK, &d->flags);
		break;
	default:
		break;
	}
	d->len = len;
	s->off = off + len;
	/* With FILTER_FIRST the selectors already have their keys (filter_arg). */
	if (a->filter_len && !(cfg->flags & VIGIL_HOOK_FILTER_FIRST)) {
		s->arg_len[i] = len;
		/* A fixed-size copy: the prefix length bounds what the trie compares. */
		bpf_probe_read_kernel(s->fwd[i].key.data, sizeof(s->fwd[i].key.data), dst);
		if (a->flags & VIGIL_ARG_NEED_REVERSED)
			reverse_into(&s->rev[i], dst, len, ARG_MASK);
	}
	return 0;
}

/* What the selectors need of the arguments, without touching the event: the
 * value of an integer, the first filter_len bytes of a string. For hooks
 * with VIGIL_HOOK_FILTER_FIRST. A plain bounded loop, not bpf_loop: it runs
 * on every call of a hooked function, and each bpf_loop callback would look
 * the state and the configuration up again. */
static __always_inline void filter_args(struct generic_state *s, struct vigil_hook_config *cfg)
{
	struct vigil_arg_config *a;
	__u8 unused_flags = 0;
	__u32 size;
	__u64 raw;
	long n;

	for (int i = 0; i < VIGIL_HOOK_ARGS_MAX; i++) {
		if (i >= cfg->nargs)
			break;
		a = &cfg->args[i];
		raw = s->regs[a->index & 7];
		switch (a->type) {
		case VIGIL_ARG_INT:
			s->arg_val[i] = (__s64)(__s32)raw;
			break;
		case VIGIL_ARG_UINT:
			s->arg_val[i] = (__u32)raw;
			break;
		case VIGIL_ARG_LONG:
		case VIGIL_ARG_ULONG:
		case VIGIL_ARG_SIZE:
			s->arg_val[i] = raw;
			break;
		case VIGIL_ARG_CAPABILITY:
			s->arg_val[i] = (__u32)raw;
			break;
		case VIGIL_ARG_KERNEL_CAP:
			s->arg_val[i] = raw ? read_caps((kernel_cap_t *)raw) : 0;
			break;
		case VIGIL_ARG_STRING:
			size = a->filter_len & FILTER_LEN_MASK;
			if (!size)
				break;
			barrier_var(size);
			n = bpf_probe_read_user_str(s->fwd[i].key.data, size & FILTER_LEN_MASK,
						    (void *)raw);
			/* An unreadable string is the empty string, as in the full read. */
			s->arg_len[i] = n > 0 ? n - 1 : 0;
			break;
		default:
			read_net_arg(s, i, a->type, raw, &unused_flags);
			break;
		}
	}
}

/* Looks key's string up under match_id; NULL when no stored string is a prefix of it. */
static __always_inline __u32 *string_lookup(struct vigil_string_key *key, __u32 match_id)
{
	key->match_id = match_id;
	return bpf_map_lookup_elem(&string_match, key);
}

static __always_inline int string_matches(__u8 op, __u32 match_id, __u32 len,
					  struct vigil_string_key *fwd,
					  struct vigil_string_key *rev)
{
	__u32 *found;

	switch (op) {
	case VIGIL_OP_STR_EQ:
	case VIGIL_OP_STR_NEQ:
		fwd->prefixlen = KEY_BITS(len > VIGIL_MATCH_STRING_MAX ? VIGIL_MATCH_STRING_MAX : len);
		found = string_lookup(fwd, match_id);
		return (found && *found == len) == (op == VIGIL_OP_STR_EQ);
	case VIGIL_OP_STR_PREFIX:
	case VIGIL_OP_STR_NOT_PREFIX:
		fwd->prefixlen = KEY_BITS(len > VIGIL_MATCH_STRING_MAX ? VIGIL_MATCH_STRING_MAX : len);
		found = string_lookup(fwd, match_id);
		return !!found == (op == VIGIL_OP_STR_PREFIX);
	case VIGIL_OP_STR_POSTFIX:
	case VIGIL_OP_STR_NOT_POSTFIX:
		found = string_lookup(rev, match_id);
		return !!found == (op == VIGIL_OP_STR_POSTFIX);
	}
	return 0;
}

static __always_inline int int_matches(struct vigil_match_arg *m, __u64 v)
{
	__u32 n = m->nvalues;
	int hit = 0;

	switch (m->op) {
	case VIGIL_OP_INT_EQ:
	case VIGIL_OP_INT_NEQ:
		for (int k = 0; k < VIGIL_MATCH_VALUES_MAX; k++)
			if (k < n && m->values[k] == v)
				hit = 1;
		return hit == (m->op == VIGIL_OP_INT_EQ);
	case VIGIL_OP_INT_GT:
		return (__s64)v > (__s64)m->values[0];
	case VIGIL_OP_INT_LT:
		return (__s64)v < (__s64)m->values[0];
	case VIGIL_OP_INT_MASK:
		for (int k = 0; k < VIGIL_MATCH_VALUES_MAX; k++)
			if (k < n && (m->values[k] & v))
				hit = 1;
		return hit;
	case VIGIL_OP_INT_IN_RANGE:
	case VIGIL_OP_INT_NOT_IN_RANGE:
		for (int k = 0; k + 1 < VIGIL_MATCH_VALUES_MAX; k += 2)
			if (k + 1 < n && (__s64)v >= (__s64)m->values[k] &&
			    (__s64)v <= (__s64)m->values[k + 1])
				hit = 1;
		return hit == (m->op == VIGIL_OP_INT_IN_RANGE);
	}
	return 0;
}

/* Whether the sock/sockaddr's source or destination address is in the
 * entry's addresses and CIDRs (the `addr_match` trie under its match id). */
static __always_inline int addr_matches(struct vigil_match_arg *m, struct vigil_sock_arg *t)
{
	struct vigil_addr_key key = { .match_id = m->match_id, .family = t->family };
	int found;

	if (t->family == VIGIL_AF_INET)
		key.prefixlen = 64 + 32;
	else if (t->family == VIGIL_AF_INET6)
		key.prefixlen = 64 + 128;
	else
		return m->op == VIGIL_OP_ADDR_NOT_IN;
	if (m->field == VIGIL_FIELD_SADDR)
		__builtin_memcpy(key.addr, t->saddr, sizeof(key.addr));
	else
		__builtin_memcpy(key.addr, t->daddr, sizeof(key.addr));
	found = bpf_map_lookup_elem(&addr_match, &key) != NULL;
	return found == (m->op == VIGIL_OP_ADDR_IN);
}

static __always_inline __u64 sock_field(struct vigil_sock_arg *t, __u8 field)
{
	switch (field) {
	case VIGIL_FIELD_FAMILY:
		return t->family;
	case VIGIL_FIELD_PROTOCOL:
		return t->protocol;
	case VIGIL_FIELD_STATE:
		return t->state;
	case VIGIL_FIELD_SPORT:
		return t->sport;
	case VIGIL_FIELD_DPORT:
		return t->dport;
	}
	return 0;
}

static __always_inline int match_arg_matches(struct generic_state *s, struct vigil_match_arg *m)
{
	__u32 i = m->arg;

	/* Return values are compared at the return (return_matches). */
	if (i == VIGIL_MATCH_RETURN_ARG)
		return 1;
	if (i >= VIGIL_HOOK_ARGS_MAX)
		return 0;
	barrier_var(i);
	if (m->op == VIGIL_OP_ADDR_IN || m->op == VIGIL_OP_ADDR_NOT_IN)
		return addr_matches(m, &s->sock[i]);
	if (m->op >= VIGIL_OP_INT_EQ)
		return int_matches(m, m->field ? sock_field(&s->sock[i], m->field) : s->arg_val[i]);
	return string_matches(m->op, m->match_id, s->arg_len[i], &s->fwd[i].key, &s->rev[i]);
}

/* The caller's namespace of one kind (enum vigil_ns_kind). */
static __always_inline __u32 current_ns(__u8 kind)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);

	switch (kind) {
	case VIGIL_NS_UTS:
		return BPF_CORE_READ(nsp, uts_ns, ns.inum);
	case VIGIL_NS_IPC:
		return BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	case VIGIL_NS_MNT:
		return BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	case VIGIL_NS_PID:
		return active_pid_ns(task);
	case VIGIL_NS_PID_FOR_CHILDREN:
		return BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	case VIGIL_NS_NET:
		return BPF_CORE_READ(nsp, net_ns, ns.inum);
	case VIGIL_NS_TIME:
		return bpf_core_field_exists(nsp->time_ns) ? BPF_CORE_READ(nsp, time_ns, ns.inum) : 0;
	case VIGIL_NS_TIME_FOR_CHILDREN:
		return bpf_core_field_exists(nsp->time_ns_for_children) ?
			       BPF_CORE_READ(nsp, time_ns_for_children, ns.inum) : 0;
	case VIGIL_NS_CGROUP:
		return BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	case VIGIL_NS_USER:
		return BPF_CORE_READ(task, cred, user_ns, ns.inum);
	}
	return 0;
}

static __always_inline int ns_matches(struct vigil_match_ns *m)
{
	__u32 inum = current_ns(m->ns);
	int hit = 0;

	for (int k = 0; k < VIGIL_MATCH_NS_VALUES_MAX; k++)
		if (k < m->nvalues && m->values[k] == inum)
			hit = 1;
	return hit != m->not_in;
}

/* user space sets this to the host's user namespace (isNamespaceCapability). */
const volatile __u32 host_user_ns = 0;

static __always_inline int caps_match(struct vigil_match_caps *m)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);
	__u64 caps;

	if (m->ns_cap && BPF_CORE_READ(cred, user_ns, ns.inum) == host_user_ns)
		return 0;
	switch (m->set) {
	case VIGIL_CAP_INHERITABLE:
		caps = read_caps(&cred->cap_inheritable);
		break;
	case VIGIL_CAP_PERMITTED:
		caps = read_caps(&cred->cap_permitted);
		break;
	default:
		caps = read_caps(&cred->cap_effective);
		break;
	}
	return !!(caps & m->mask) != m->not_in;
}

/* The caller's process id as its own pid namespace numbers it. */
static __always_inline __u32 pid_in_own_ns(void)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid *upid = (void *)pid + bpf_core_field_offset(struct pid, numbers) +
			    (level & 31) * bpf_core_type_size(struct upid);

	return BPF_CORE_READ(upid, nr);
}

static __always_inline int pid_listed(struct vigil_selector_config *sel, __u32 pid)
{
	int hit = 0;

	for (int k = 0; k < VIGIL_MATCH_PIDS_MAX; k++)
		if (k < sel->npids && sel->pids[k] == pid)
			hit = 1;
	return hit;
}

/* matchPIDs: the caller's pid is listed, or with followForks one of its
 * ancestors' (walked through the process table, whose parent keys are
 * host pids). */
static __always_inline int pids_match(struct vigil_selector_config *sel)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct proc_entry *e;
	int hit;

	hit = pid_listed(sel, sel->pid_in_ns ? pid_in_own_ns() : pid);
	if (!hit && sel->pid_follow_forks && !sel->pid_in_ns) {
		for (int depth = 0; depth < VIGIL_ANCESTORS_WALK; depth++) {
			e = bpf_map_lookup_elem(&procs, &pid);
			if (!e || !e->parent.pid || e->parent.pid == pid)
				break;
			pid = e->parent.pid;
			if (pid_listed(sel, pid)) {
				hit = 1;
				break;
			}
		}
	}
	return hit == (sel->pid_op == VIGIL_OP_PID_IN);
}

static __always_inline __u32 ns_of(struct vigil_namespaces *ns, __u32 kind)
{
	switch (kind) {
	case VIGIL_NS_UTS:
		return ns->uts;
	case VIGIL_NS_IPC:
		return ns->ipc;
	case VIGIL_NS_MNT:
		return ns->mnt;
	case VIGIL_NS_PID:
		return ns->pid;
	case VIGIL_NS_PID_FOR_CHILDREN:
		return ns->pid_for_children;
	case VIGIL_NS_NET:
		return ns->net;
	case VIGIL_NS_TIME:
		return ns->time;
	case VIGIL_NS_TIME_FOR_CHILDREN:
		return ns->time_for_children;
	case VIGIL_NS_CGROUP:
		return ns->cgroup;
	case VIGIL_NS_USER:
		return ns->user;
	}
	return 0;
}

/* matchNamespaceChanges / matchCapabilityChanges: compare the caller with
 * what the process table recorded at its exec. A process the table does not
 * know has no baseline: these filters do not match it. */
static __always_inline int changes_match(struct vigil_selector_config *sel)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_entry *e = bpf_map_lookup_elem(&procs, &tgid);

	if (!e)
		return 0;
	if (sel->ns_change_mask) {
		int changed = 0;

		for (__u32 kind = 0; kind < VIGIL_NS_KINDS; kind++)
			if ((sel->ns_change_mask & (1 << kind)) &&
			    current_ns(kind) != ns_of(&e->ns, kind))
				changed = 1;
		if (changed == sel->ns_change_not_in)
			return 0;
	}
	if (sel->caps_change_on) {
		struct task_struct *task = (void *)bpf_get_current_task();
		const struct cred *cred = BPF_CORE_READ(task, cred);
		struct vigil_match_caps *m = &sel->caps_change;
		__u64 now, then;

		if (m->ns_cap && BPF_CORE_READ(cred, user_ns, ns.inum) == host_user_ns)
			return 0;
		switch (m->set) {
		case VIGIL_CAP_INHERITABLE:
			now = read_caps(&cred->cap_inheritable);
			then = e->cap_inheritable;
			break;
		case VIGIL_CAP_PERMITTED:
			now = read_caps(&cred->cap_permitted);
			then = e->cap_permitted;
			break;
		default:
			now = read_caps(&cred->cap_effective);
			then = e->cap_effective;
			break;
		}
		if (!!((now ^ then) & m->mask) == m->not_in)
			return 0;
	}
	return 1;
}

static __always_inline __u32 binary_keys(struct proc_entry *e, struct vigil_string_key *fwd,
					 struct vigil_string_key *rev, int reversed)
{
	__u32 len = e->binary_len;

	if (len > PROC_BINARY_MAX)
		len = PROC_BINARY_MAX;
	__builtin_memcpy(fwd->data, e->binary, sizeof(fwd->data));
	if (reversed)
		reverse_into(rev, e->binary, len, PROC_BINARY_MAX - 1);
	return len;
}

/* matchBinaries with followChildren: the binary of the caller or of one of
 * its ancestors (through the process table; an ancestor whose pid was
 * reused ends the walk) is listed (In), or none of them is (NotIn). */
static __always_inline int lineage_binary_matches(struct generic_state *s,
						  struct vigil_selector_config *sel)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, len;
	struct proc_entry *e, *parent;
	int hit = s->bin_len && string_matches(VIGIL_OP_STR_EQ, sel->binary_match_id, s->bin_len,
					       &s->bin, &s->bin_rev);

	e = bpf_map_lookup_elem(&procs, &pid);
	for (int depth = 0; depth < VIGIL_ANCESTORS_WALK && !hit; depth++) {
		if (!e || !e->parent.pid || e->parent.pid == pid)
			break;
		pid = e->parent.pid;
		parent = bpf_map_lookup_elem(&procs, &pid);
		if (!parent || parent->key.ktime != e->parent.ktime)
			break;
		len = binary_keys(parent, &s->ancestor_bin, &s->ancestor_bin, 0);
		hit = len && string_matches(VIGIL_OP_STR_EQ, sel->binary_match_id, len,
					    &s->ancestor_bin, &s->ancestor_bin);
		e = parent;
	}
	return hit == (sel->binary_op == VIGIL_OP_STR_EQ);
}

static __always_inline int selector_matches(struct generic_state *s, struct vigil_selector_config *sel)
{
	if (sel->pid_op && !pids_match(sel))
		return 0;
	if ((sel->ns_change_mask || sel->caps_change_on) && !changes_match(sel))
		return 0;
	for (int k = 0; k < VIGIL_MATCH_NS_MAX; k++) {
		if (k >= sel->nmatch_ns)
			break;
		if (!ns_matches(&sel->match_ns[k]))
			return 0;
	}
	for (int k = 0; k < VIGIL_MATCH_CAPS_MAX; k++) {
		if (k >= sel->nmatch_caps)
			break;
		if (!caps_match(&sel->match_caps[k]))
			return 0;
	}
	if (sel->binary_follow_children) {
		if (!lineage_binary_matches(s, sel))
			return 0;
	} else if (sel->binary_op &&
		   /* A process missing from the table has no known binary: no
		    * binary selector matches it. */
		   (!s->bin_len || !string_matches(sel->binary_op, sel->binary_match_id, s->bin_len,
						   &s->bin, &s->bin_rev))) {
		return 0;
	}
	if (sel->parent_binary_op &&
	    (!s->parent_bin_len ||
	     !string_matches(sel->parent_binary_op, sel->parent_binary_match_id, s->parent_bin_len,
			     &s->parent_bin, &s->parent_bin_rev)))
		return 0;
	for (int k = 0; k < VIGIL_MATCH_ARGS_MAX; k++) {
		if (k >= sel->nmatch_args)
			break;
		if (!match_arg_matches(s, &sel->match_args[k]))
			return 0;
	}
	return 1;
}

/* Evaluates selector i + 1 of the current hook; stops at the first match. A
 * bpf_loop callback over the selectors after the first (find_selector). */
static long check_later_selector(__u64 i, void *unused)
{
	struct generic_state *s = state();
	struct vigil_hook_config *cfg;
	__u64 sel = i + 1;

	if (!s)
		return 1;
	cfg = bpf_map_lookup_elem(&hook_configs, &s->hook);
	/* Checked right before use, then pinned: the compiler would otherwise
	 * reload an unchecked spilled copy, whose bounds 6.1 does not know. */
	if (!cfg || sel >= VIGIL_SELECTORS_MAX)
		return 1;
	barrier_var(sel);
	if (selector_matches(s, &cfg->selectors[sel])) {
		s->matched = sel;
		return 1;
	}
	return 0;
}

/* The first matching selector of the current hook into s->matched
 * (VIGIL_SELECTORS_MAX: none). The first selector, often the only one, is
 * checked in line: a bpf_loop costs as much as the rest of a quiet call. */
static __always_inline void find_selector(struct generic_state *s, struct vigil_hook_config *cfg)
{
	if (selector_matches(s, &cfg->selectors[0])) {
		s->matched = 0;
		return;
	}
	s->matched = VIGIL_SELECTORS_MAX;
	if (cfg->nselectors > 1)
		bpf_loop(cfg->nselectors - 1, check_later_selector, NULL, 0);
}

/* The selector keys of a process table entry's binary; returns its length. */
static __always_inline void load_binary(struct generic_state *s, __u32 flags)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_entry *e = bpf_map_lookup_elem(&procs, &tgid);
	struct proc_entry *parent;

	s->bin_len = 0;
	s->parent_bin_len = 0;
	if (!e)
		return;
	if (flags & VIGIL_HOOK_NEED_BINARY)
		s->bin_len = binary_keys(e, &s->bin, &s->bin_rev,
					 flags & VIGIL_HOOK_NEED_BINARY_REVERSED);
	if (!(flags & VIGIL_HOOK_NEED_PARENT_BINARY))
		return;
	tgid = e->parent.pid;
	parent = bpf_map_lookup_elem(&procs, &tgid);
	/* The parent's pid may have been reused by a later process: check its start. */
	if (parent && parent->key.ktime == e->parent.ktime)
		s->parent_bin_len = binary_keys(parent, &s->parent_bin, &s->parent_bin_rev,
						flags & VIGIL_HOOK_NEED_PARENT_BINARY_REVERSED);
}

/* Post rateLimit: whether this event is the first of its key within the
 * selector's interval (and if so, starts a new interval). */
static __always_inline int rate_allows(struct generic_state *s, struct vigil_selector_config *sel,
				       __u32 nargs)
{
	struct rate_key *k = &s->rate;
	__u64 now = bpf_ktime_get_ns(), *last;
	__u32 off = 0, len;

	__builtin_memset(k, 0, sizeof(*k));
	k->hook = s->hook;
	k->selector = s->matched;
	if (sel->rate_scope == VIGIL_RATE_THREAD)
		k->scope = bpf_get_current_pid_tgid();
	else if (sel->rate_scope == VIGIL_RATE_PROCESS)
		k->scope = bpf_get_current_pid_tgid() >> 32;
	for (int i = 0; i < VIGIL_HOOK_ARGS_MAX; i++) {
		if (i >= nargs)
			break;
		len = s->ev.msg.args[i].len;
		if (len > VIGIL_RATE_KEY_ARG_BYTES)
			len = VIGIL_RATE_KEY_ARG_BYTES;
		if (len)
			bpf_probe_read_kernel(&k->args[i * VIGIL_RATE_KEY_ARG_BYTES], len,
					      &s->ev.data[off & OFF_MASK]);
		off += s->ev.msg.args[i].len;
	}
	last = bpf_map_lookup_elem(&rate_limits, k);
	if (last && now - *last < sel->rate_limit_ns)
		return 0;
	bpf_map_update_elem(&rate_limits, k, &now, BPF_ANY);
	return 1;
}

/* Reads every argument of the current hook into a fresh event. */
/* TrackSock (track) / UntrackSock on the socket at `sk`. A global
 * function: verified once, not once per path through the selectors. */
__noinline int track_sock(__u64 sk, int track)
{
	struct vigil_proc_key owner;
	int derived;

	if (!sk)
		return 0;
	if (!track)
		return bpf_map_delete_elem(&tracked_socks, &sk);
	owner = proc_key_of((void *)bpf_get_current_task(), &derived);
	return bpf_map_update_elem(&tracked_socks, &sk, &owner, BPF_ANY);
}

static __always_inline void read_event_args(struct generic_state *s, struct vigil_hook_config *cfg)
{
	s->off = 0;
	__builtin_memset(&s->ev.msg, 0, sizeof(s->ev.msg));
	bpf_loop(cfg->nargs, read_arg, NULL, 0);
}

/* Sends the event in the state for hook `hook`: to the ring buffer, or,
 * for hooks that report the return value, to `pending` until the return.
 * A global function: verified once. */
__noinline int post_event(__u32 hook)
{
	struct generic_state *s = state();
	struct vigil_hook_config *cfg = bpf_map_lookup_elem(&hook_configs, &hook);
	__u32 size;

	if (!s || !cfg)
		return 0;
	if (cfg->flags & VIGIL_HOOK_RETURN) {
		struct pending_key pk = { .pid_tgid = bpf_get_current_pid_tgid(), .hook = hook };

		if (bpf_map_update_elem(&pending, &pk, &s->ev, BPF_ANY))
			stat_inc(VIGIL_STAT_LOST_KPROBE);
		return 0;
	}
	size = event_size(s->off);
	if (bpf_ringbuf_output(&events, &s->ev, size, ring_flags(size)))
		stat_inc(VIGIL_STAT_LOST_KPROBE);
	else
		hook_stat_inc(hook, VIGIL_HOOK_STAT_POSTED);
	return 0;
}

/* Sends the event run_hook built and returns what the hook returns. Post
 * imaHash leaves the event in `pending` for the hook's sleepable program
 * (bpf/generic/kprobe.bpf.c), which the kernel runs right after this one:
 * it was attached first, and a hook's BPF-LSM programs run newest first.
 * That program appends the hash, posts the event and returns the Override
 * error, because an LSM program returning an error ends the hook's program
 * list. Without room in `pending` the event is lost, the error still
 * applies. A global function: the branch on the action stays out of
 * run_hook's paths, which the verifier would otherwise tell apart by it. */
__noinline int send_event(__u32 hook, int error)
{
	struct generic_state *s = state();
	struct pending_key pk = { .hook = hook };

	if (!s)
		return error;
	if (!(s->ev.msg.action & VIGIL_ACTION_IMA_HASH)) {
		post_event(hook);
		return error;
	}
	pk.pid_tgid = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&pending, &pk, &s->ev, BPF_ANY)) {
		stat_inc(VIGIL_STAT_LOST_KPROBE);
		return error;
	}
	return 0;
}

/* Whether the caller's cgroup is one scoped hook `hook` applies to. Cgroup
 * socket-address programs have no scope (their policies are refused). */
static __always_inline int in_scope(__u32 hook)
{
#ifdef VIGIL_UNSCOPED
	return 0;
#else
	struct vigil_scope_key key = { .hook = hook, .cgroup_id = bpf_get_current_cgroup_id() };

	return bpf_map_lookup_elem(&hook_scope, &key) != NULL;
#endif
}

/*
 * Runs hook `hook` on the current call (arguments in state()->regs): finds
 * the first matching selector, acts, and posts (now, or at the return for
 * hooks that report the return value). Returns the error the operation is
 * to fail with (a selector's Override, BPF-LSM only), else 0. A global
 * function: verified once.
 */
__noinline int run_hook(__u32 hook)
{
	struct generic_state *s = state();
	struct vigil_hook_config *cfg = bpf_map_lookup_elem(&hook_configs, &hook);
	struct vigil_msg_kprobe *m;
	struct task_struct *task;
	__u32 matched, actions, signal = 0, flags = 0;
	int derived, filter_first, error = 0;

	if (!s || !cfg || !(cfg->flags & VIGIL_HOOK_LIVE))
		return 0;
	s->stacks_pending = 0;
	if ((cfg->flags & VIGIL_HOOK_SCOPED) && !in_scope(hook))
		return 0;
	s->hook = hook;
	filter_first = cfg->flags & VIGIL_HOOK_FILTER_FIRST;
	if (filter_first)
		filter_args(s, cfg);
	else
		read_event_args(s, cfg);

	s->matched = 0;
	s->sock_owner.pid = 0;
	if (cfg->sock_arg) {
		__u64 sk = s->regs[(cfg->sock_arg - 1) & 7];
		struct vigil_proc_key *owner = bpf_map_lookup_elem(&tracked_socks, &sk);

		if (owner)
			s->sock_owner = *owner;
	}
	actions = VIGIL_ACTION_POST;
	if (cfg->nselectors) {
		if (cfg->flags & (VIGIL_HOOK_NEED_BINARY | VIGIL_HOOK_NEED_PARENT_BINARY))
			load_binary(s, cfg->flags);
		find_selector(s, cfg);
		matched = s->matched;
		if (matched >= VIGIL_SELECTORS_MAX)
			return 0;
		actions = cfg->selectors[matched].actions;
		signal = cfg->selectors[matched].signal;
		if (actions & (VIGIL_ACTION_TRACK_SOCK | VIGIL_ACTION_UNTRACK_SOCK))
			track_sock(s->regs[cfg->selectors[matched].arg_sock & 7],
				   actions & VIGIL_ACTION_TRACK_SOCK);
		if (actions & VIGIL_ACTION_OVERRIDE) {
			if (cfg->flags & VIGIL_HOOK_ENFORCE) {
				error = cfg->selectors[matched].override_error;
				hook_stat_inc(hook, VIGIL_HOOK_STAT_ENFORCED);
			} else {
				flags |= VIGIL_KPROBE_MONITORED;
				hook_stat_inc(hook, VIGIL_HOOK_STAT_MONITORED);
			}
		}
	}

	if (actions & VIGIL_ACTION_SIGNAL) {
		if (!(cfg->flags & VIGIL_HOOK_ENFORCE)) {
			flags |= VIGIL_KPROBE_MONITORED;
			hook_stat_inc(hook, VIGIL_HOOK_STAT_MONITORED);
		} else if (send_signal(signal)) {
			flags |= VIGIL_KPROBE_SIGNAL_FAILED;
		} else {
			hook_stat_inc(hook, VIGIL_HOOK_STAT_ENFORCED);
		}
	}
	/* No branch on `flags` below: the verifier would then tell apart paths
	 * by its value, and the hook's paths multiply. */
	if (!(actions & VIGIL_ACTION_POST)) {
		if (!(cfg->flags & (VIGIL_HOOK_RETURN_TRACK_SOCK | VIGIL_HOOK_RETURN_UNTRACK_SOCK)))
			return error;
		/* Only the return's socket action is wanted: no arguments read. */
		s->off = 0;
		flags |= VIGIL_KPROBE_NO_POST;
	} else {
		if (filter_first)
			read_event_args(s, cfg);
		matched = s->matched;
		if (cfg->nselectors && matched < VIGIL_SELECTORS_MAX) {
			barrier_var(matched);
			if (cfg->selectors[matched].rate_limit_ns &&
			    !rate_allows(s, &cfg->selectors[matched], cfg->nargs)) {
				hook_stat_inc(hook, VIGIL_HOOK_STAT_RATE_LIMITED);
				return error;
			}
		}
	}
	m = &s->ev.msg;
	task = (void *)bpf_get_current_task();
	m->key = proc_key_of(task, &derived);
	m->tid = (__u32)bpf_get_current_pid_tgid();
	if (s->sock_owner.pid) {
		m->key = s->sock_owner;
		m->tid = s->sock_owner.pid;
		flags |= VIGIL_KPROBE_SOCK_OWNER;
	}
	m->action = actions;
	m->signal = signal;
	m->flags = flags;
	m->hdr.kind = VIGIL_MSG_KPROBE;
	m->hdr.ktime = bpf_ktime_get_ns();
	m->hook = hook;
	m->selector = s->matched;
	m->hdr.size = event_size(s->off);
	if (actions & (VIGIL_ACTION_KERNEL_STACK | VIGIL_ACTION_USER_STACK)) {
		/* Only the front-end has the context the stack helper needs; the
		 * stacks are taken for posted events only, so the map holds no
		 * stack of a call the selectors filtered out. */
		s->stacks_pending = 1;
		return error;
	}
	return send_event(hook, error);
}

/* Takes the stacks the event run_hook left pending asks for, from the
 * program context `ctx`, and sends it. A user stack from kernel context
 * is the walk of the caller's saved user registers, so every program type
 * gets both. A stack that cannot be stored is counted, the event sent
 * without it. */
static __always_inline void post_with_stacks(void *ctx, struct generic_state *s)
{
	struct vigil_msg_kprobe *m = &s->ev.msg;
	long id;

	if (!s->stacks_pending)
		return;
	s->stacks_pending = 0;
	if (m->action & VIGIL_ACTION_KERNEL_STACK) {
		id = bpf_get_stackid(ctx, &stack_traces, 0);
		if (id >= 0) {
			m->kernel_stack = id;
			m->flags |= VIGIL_KPROBE_KERNEL_STACK;
		} else {
			stat_inc(VIGIL_STAT_LOST_STACK);
		}
	}
	if (m->action & VIGIL_ACTION_USER_STACK) {
		id = bpf_get_stackid(ctx, &stack_traces, BPF_F_USER_STACK);
		if (id >= 0) {
			m->user_stack = id;
			m->flags |= VIGIL_KPROBE_USER_STACK;
		} else {
			stat_inc(VIGIL_STAT_LOST_STACK);
		}
	}
	post_event(m->hook);
}

/* Runs hook `hook` with the program context `ctx` (for its stacks);
 * returns the hook's Override error (0: none). */
static __always_inline int run_hook_ctx(void *ctx, struct generic_state *s, __u32 hook)
{
	int error = run_hook(hook);

	post_with_stacks(ctx, s);
	return error;
}

/* Runs every hook of one hook point (a system call). */
static __always_inline void run_hooks(void *ctx, struct generic_state *s,
				      struct vigil_syscall_hooks *hooks)
{
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= hooks->count)
			break;
		run_hook_ctx(ctx, s, hooks->hooks[i]);
	}
}

/* Whether the return value matches the matchReturnArgs of selector `sel`. */
static __always_inline int return_matches(struct generic_state *s,
					  struct vigil_selector_config *sel, __u64 ret, __u32 len)
{
	struct vigil_match_arg *m;

	for (int k = 0; k < VIGIL_MATCH_ARGS_MAX; k++) {
		if (k >= sel->nmatch_args)
			break;
		m = &sel->match_args[k];
		if (m->arg != VIGIL_MATCH_RETURN_ARG)
			continue;
		if (m->op >= VIGIL_OP_INT_EQ) {
			if (!int_matches(m, ret))
				return 0;
		} else if (!string_matches(m->op, m->match_id, len, &s->ret_fwd.key, &s->ret_rev)) {
			return 0;
		}
	}
	return 1;
}

/* returnCopy: reads the argument the call filled, as much as it returned
 * (a char_buf also at most its size argument), after the other arguments. */
static __always_inline void copy_at_return(struct generic_event *ev, struct vigil_hook_config *cfg,
					   __s64 ret)
{
	__u32 i = cfg->copy_arg - 1, off = ev->msg.hdr.size - sizeof(ev->msg), len;
	struct vigil_arg_desc *d;
	__u64 limit = ret;

	if (i >= VIGIL_HOOK_ARGS_MAX || ret <= 0)
		return;
	d = &ev->msg.args[i];
	if (off > OFF_MASK) {
		d->flags |= VIGIL_ARG_TRUNCATED;
		return;
	}
	if (cfg->args[i].type == VIGIL_ARG_CHAR_IOVEC) {
		len = copy_user_iovec(ev->data, off, ev->msg.copy_ptr, ev->msg.copy_count, limit,
				      &d->flags);
	} else {
		if (limit > ev->msg.copy_count)
			limit = ev->msg.copy_count;
		len = copy_user_buf(ev->data, off, ev->msg.copy_ptr, limit, &d->flags);
	}
	d->len = len;
	ev->msg.hdr.size = event_size(off + len);
}

/*
 * At the return of a call hook `hook` saw: completes its pending event
 * with the return value (a string return is read from user memory and
 * appended after the arguments), checks the matching selector's
 * matchReturnArgs, and posts. A global function: verified once.
 */
__noinline int finish_return(__u32 hook, __s64 ret)
{
	struct pending_key pk = { .pid_tgid = bpf_get_current_pid_tgid(), .hook = hook };
	struct vigil_hook_config *cfg = bpf_map_lookup_elem(&hook_configs, &hook);
	struct generic_event *ev = bpf_map_lookup_elem(&pending, &pk);
	struct generic_state *s = state();
	__u32 off, len = 0, selector, size;
	__u64 value = ret;
	long n;

	if (!ev)
		return 0;
	/* A removed hook's slot is inert here too: its event is dropped. */
	if (!cfg || !s || !(cfg->flags & VIGIL_HOOK_LIVE))
		goto done;
	if (cfg->flags & (VIGIL_HOOK_RETURN_TRACK_SOCK | VIGIL_HOOK_RETURN_UNTRACK_SOCK))
		track_sock(ret, cfg->flags & VIGIL_HOOK_RETURN_TRACK_SOCK);
	if (ev->msg.flags & VIGIL_KPROBE_NO_POST)
		goto done;
	ev->msg.ret = ret;
	if (cfg->ret_type)
		ev->msg.flags |= VIGIL_KPROBE_HAS_RETURN;
	if (cfg->copy_arg)
		copy_at_return(ev, cfg, ret);
	switch (cfg->ret_type) {
	case VIGIL_ARG_INT:
		value = (__s64)(__s32)ret;
		break;
	case VIGIL_ARG_UINT:
		value = (__u32)ret;
		break;
	case VIGIL_ARG_STRING:
		off = ev->msg.hdr.size - sizeof(ev->msg);
		/* Past the last argument's room: the return string is dropped. */
		if (off > OFF_MASK)
			break;
		n = bpf_probe_read_user_str(&ev->data[off & OFF_MASK], VIGIL_ARG_DATA_MAX, (void *)ret);
		if (n <= 1)
			break;
		len = (n - 1) & ARG_MASK;
		ev->msg.hdr.size = event_size(off + len);
		bpf_probe_read_kernel(s->ret_fwd.key.data, sizeof(s->ret_fwd.key.data),
				      &ev->data[off & OFF_MASK]);
		reverse_into(&s->ret_rev, &ev->data[off & OFF_MASK], len, ARG_MASK);
		break;
	}
	selector = ev->msg.selector;
	if (cfg->nselectors && selector < VIGIL_SELECTORS_MAX &&
	    !return_matches(s, &cfg->selectors[selector], value, len))
		goto done;
	size = event_size(ev->msg.hdr.size - sizeof(ev->msg));
	if (bpf_ringbuf_output(&events, ev, size, ring_flags(size)))
		stat_inc(VIGIL_STAT_LOST_KPROBE);
	else
		hook_stat_inc(hook, VIGIL_HOOK_STAT_POSTED);
done:
	bpf_map_delete_elem(&pending, &pk);
	return 0;
}

/* At the return of a hooked call: posts the pending events of its hooks with `ret`. */
static __always_inline void post_pending(struct vigil_syscall_hooks *hooks, __s64 ret)
{
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= hooks->count)
			break;
		finish_return(hooks->hooks[i], ret);
	}
}

#endif
