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
#include "path.bpf.h"
#include "process_table.bpf.h"

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

/* Per-CPU state of the hook being evaluated: too large for the stack, and
 * shared with the bpf_loop callbacks. */
struct generic_state {
	struct generic_event ev;
	/* The hooked function's arguments; eight slots so that a masked index stays inside. */
	__u64 regs[8];
	__u64 arg_val[VIGIL_HOOK_ARGS_MAX];
	/* Length of each string argument as the selectors see it. */
	__u32 arg_len[VIGIL_HOOK_ARGS_MAX];
	__u32 off;
	__u32 hook;
	__u32 matched;
	__u32 bin_len;
	struct vigil_string_key bin;
	struct vigil_string_key bin_rev;
	/* The start of each string argument (selector keys) and its reversed end. */
	struct arg_key fwd[VIGIL_HOOK_ARGS_MAX];
	struct vigil_string_key rev[VIGIL_HOOK_ARGS_MAX];
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

static __always_inline struct generic_state *state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&generic_scratch, &zero);
}

static __always_inline int is_agent(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == agent_tgid;
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
	case VIGIL_ARG_CHAR_BUF:
		v = a->size_index ? s->regs[(a->size_index - 1) & 7] : 0;
		if (v > ARG_MASK) {
			v = ARG_MASK;
			d->flags |= VIGIL_ARG_TRUNCATED;
		}
		len = v & ARG_MASK;
		barrier_var(len);
		if (len && bpf_probe_read_user(dst, len & ARG_MASK, (void *)raw)) {
			d->flags |= VIGIL_ARG_ERROR;
			len = 0;
		}
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

/* What the selectors need of argument i, without touching the event: the
 * value of an integer, the first filter_len bytes of a string. A bpf_loop
 * callback, for hooks with VIGIL_HOOK_FILTER_FIRST. */
static long filter_arg(__u64 i, void *unused)
{
	struct generic_state *s = state();
	struct vigil_hook_config *cfg;
	struct vigil_arg_config *a;
	__u32 size;
	__u64 raw;
	long n;

	if (!s)
		return 1;
	cfg = bpf_map_lookup_elem(&hook_configs, &s->hook);
	if (!cfg || i >= VIGIL_HOOK_ARGS_MAX)
		return 1;
	barrier_var(i);
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
	case VIGIL_ARG_STRING:
		size = a->filter_len & FILTER_LEN_MASK;
		if (!size)
			break;
		barrier_var(size);
		n = bpf_probe_read_user_str(s->fwd[i].key.data, size & FILTER_LEN_MASK, (void *)raw);
		/* An unreadable string is the empty string, as in the full read. */
		s->arg_len[i] = n > 0 ? n - 1 : 0;
		break;
	default:
		break;
	}
	return 0;
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

static __always_inline int match_arg_matches(struct generic_state *s, struct vigil_match_arg *m)
{
	__u32 i = m->arg;

	if (i >= VIGIL_HOOK_ARGS_MAX)
		return 0;
	barrier_var(i);
	if (m->op >= VIGIL_OP_INT_EQ)
		return int_matches(m, s->arg_val[i]);
	return string_matches(m->op, m->match_id, s->arg_len[i], &s->fwd[i].key, &s->rev[i]);
}

static __always_inline int selector_matches(struct generic_state *s, struct vigil_selector_config *sel)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (sel->pid_op) {
		int hit = 0;

		for (int k = 0; k < VIGIL_MATCH_PIDS_MAX; k++)
			if (k < sel->npids && sel->pids[k] == tgid)
				hit = 1;
		if (hit != (sel->pid_op == VIGIL_OP_PID_IN))
			return 0;
	}
	/* A process missing from the table has no known binary: no binary selector matches it. */
	if (sel->binary_op && (!s->bin_len || !string_matches(sel->binary_op, sel->binary_match_id,
							      s->bin_len, &s->bin, &s->bin_rev)))
		return 0;
	for (int k = 0; k < VIGIL_MATCH_ARGS_MAX; k++) {
		if (k >= sel->nmatch_args)
			break;
		if (!match_arg_matches(s, &sel->match_args[k]))
			return 0;
	}
	return 1;
}

/* Evaluates selector i of the current hook; stops at the first match. A bpf_loop callback. */
static long check_selector(__u64 i, void *unused)
{
	struct generic_state *s = state();
	struct vigil_hook_config *cfg;

	if (!s)
		return 1;
	cfg = bpf_map_lookup_elem(&hook_configs, &s->hook);
	/* Checked right before use, then pinned: the compiler would otherwise
	 * reload an unchecked spilled copy, whose bounds 6.1 does not know. */
	if (!cfg || i >= VIGIL_SELECTORS_MAX)
		return 1;
	barrier_var(i);
	if (selector_matches(s, &cfg->selectors[i])) {
		s->matched = i;
		return 1;
	}
	return 0;
}

static __always_inline void load_binary(struct generic_state *s, __u32 flags)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_entry *e = bpf_map_lookup_elem(&procs, &tgid);
	__u32 len;

	s->bin_len = 0;
	if (!e)
		return;
	len = e->binary_len;
	if (len > PROC_BINARY_MAX)
		len = PROC_BINARY_MAX;
	s->bin_len = len;
	__builtin_memcpy(s->bin.data, e->binary, sizeof(s->bin.data));
	if (flags & VIGIL_HOOK_NEED_BINARY_REVERSED)
		reverse_into(&s->bin_rev, e->binary, len, PROC_BINARY_MAX - 1);
}

/* Reads every argument of the current hook into a fresh event. */
static __always_inline void read_event_args(struct generic_state *s, struct vigil_hook_config *cfg)
{
	s->off = 0;
	__builtin_memset(&s->ev.msg, 0, sizeof(s->ev.msg));
	bpf_loop(cfg->nargs, read_arg, NULL, 0);
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
	s->hook = hook;
	filter_first = cfg->flags & VIGIL_HOOK_FILTER_FIRST;
	if (filter_first)
		bpf_loop(cfg->nargs, filter_arg, NULL, 0);
	else
		read_event_args(s, cfg);

	s->matched = 0;
	actions = VIGIL_ACTION_POST;
	if (cfg->nselectors) {
		s->matched = VIGIL_SELECTORS_MAX;
		if (cfg->flags & VIGIL_HOOK_NEED_BINARY)
			load_binary(s, cfg->flags);
		bpf_loop(cfg->nselectors, check_selector, NULL, 0);
		matched = s->matched;
		if (matched >= VIGIL_SELECTORS_MAX)
			return 0;
		actions = cfg->selectors[matched].actions;
		signal = cfg->selectors[matched].signal;
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
		} else if (bpf_send_signal(signal)) {
			flags |= VIGIL_KPROBE_SIGNAL_FAILED;
		} else {
			hook_stat_inc(hook, VIGIL_HOOK_STAT_ENFORCED);
		}
	}
	if (!(actions & VIGIL_ACTION_POST))
		return error;

	if (filter_first)
		read_event_args(s, cfg);
	m = &s->ev.msg;
	m->action = actions;
	m->signal = signal;
	m->flags = flags;
	task = (void *)bpf_get_current_task();
	m->hdr.kind = VIGIL_MSG_KPROBE;
	m->hdr.ktime = bpf_ktime_get_ns();
	m->key = proc_key_of(task, &derived);
	m->tid = (__u32)bpf_get_current_pid_tgid();
	m->hook = hook;
	m->selector = s->matched;
	m->hdr.size = event_size(s->off);
	if (cfg->flags & VIGIL_HOOK_RETURN) {
		struct pending_key pk = { .pid_tgid = bpf_get_current_pid_tgid(), .hook = hook };

		if (bpf_map_update_elem(&pending, &pk, &s->ev, BPF_ANY))
			stat_inc(VIGIL_STAT_LOST_KPROBE);
		return error;
	}
	if (bpf_ringbuf_output(&events, &s->ev, event_size(s->off), ring_flags()))
		stat_inc(VIGIL_STAT_LOST_KPROBE);
	else
		hook_stat_inc(hook, VIGIL_HOOK_STAT_POSTED);
	return error;
}

/* Runs every hook of one hook point (a system call). */
static __always_inline void run_hooks(struct vigil_syscall_hooks *hooks)
{
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= hooks->count)
			break;
		run_hook(hooks->hooks[i]);
	}
}

/* At the return of a hooked call: posts the pending events of its hooks with `ret`. */
static __always_inline void post_pending(struct vigil_syscall_hooks *hooks, __s64 ret)
{
	struct pending_key pk = { .pid_tgid = bpf_get_current_pid_tgid() };
	struct generic_event *ev;

	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= hooks->count)
			break;
		pk.hook = hooks->hooks[i];
		ev = bpf_map_lookup_elem(&pending, &pk);
		if (!ev)
			continue;
		ev->msg.ret = ret;
		ev->msg.flags |= VIGIL_KPROBE_HAS_RETURN;
		if (bpf_ringbuf_output(&events, ev, event_size(ev->msg.hdr.size - sizeof(ev->msg)),
				       ring_flags()))
			stat_inc(VIGIL_STAT_LOST_KPROBE);
		else
			hook_stat_inc(pk.hook, VIGIL_HOOK_STAT_POSTED);
		bpf_map_delete_elem(&pending, &pk);
	}
}

#endif
