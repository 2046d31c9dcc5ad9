/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The in-kernel process table, keyed by tgid: what policy selectors read
 * (binary, parent, namespaces, capabilities) without asking user space.
 * Entries are allocated on use (no preallocation); the loader sets the
 * capacity (--execve-map-entries).
 */
#ifndef VIGIL_PROCESS_TABLE_BPF_H
#define VIGIL_PROCESS_TABLE_BPF_H

#include "common.bpf.h"

#define PROC_BINARY_MAX 256

struct proc_entry {
	struct vigil_proc_key key;
	struct vigil_proc_key parent;
	__u32 flags;
	__u32 binary_len;
	struct vigil_namespaces ns;
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
	/* The last PROC_BINARY_MAX bytes of the binary's path. */
	char binary[PROC_BINARY_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct proc_entry);
} procs SEC(".maps");

/* Scratch for building an entry: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proc_entry);
} proc_entry_scratch SEC(".maps");

static __always_inline struct proc_entry *proc_entry_buffer(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&proc_entry_scratch, &zero);
}

/*
 * The key of the process image that `task` currently runs. A task missing
 * from the table (it began before vigil and the start scan has not reached
 * it) gets the key the start scan will give it: its start time.
 */
static __always_inline struct vigil_proc_key proc_key_of(struct task_struct *task, int *derived)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct proc_entry *e = bpf_map_lookup_elem(&procs, &tgid);
	struct vigil_proc_key key = { .pid = tgid };

	if (e) {
		key.ktime = e->key.ktime;
		*derived = 0;
	} else {
		key.ktime = BPF_CORE_READ(task, group_leader, start_time);
		*derived = 1;
	}
	return key;
}

static __always_inline void proc_table_update(__u32 tgid, struct proc_entry *e)
{
	if (bpf_map_update_elem(&procs, &tgid, e, BPF_ANY))
		stat_inc(VIGIL_STAT_PROC_TABLE_FULL);
}

#endif
