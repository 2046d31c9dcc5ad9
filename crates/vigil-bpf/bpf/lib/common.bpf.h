/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by every vigil BPF program: the event ring, loss counters, config. */
#ifndef VIGIL_COMMON_BPF_H
#define VIGIL_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "intf.h"

/* Resized by the loader (--rb-size) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

const volatile struct vigil_process_config vigil_config = {
	.wakeup_bytes = 256 << 10,
};

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

/*
 * A wakeup per event costs about as much as the rest of the program, so the
 * reader polls on a short timer and is woken early only by the record that
 * takes the backlog past wakeup_bytes. Not by every record past it: each
 * wakeup is an interrupt (in a VM, an exit to the hypervisor), and a reader
 * that is already awake does not need another.
 */
static __always_inline __u64 ring_flags(__u64 size)
{
	__u64 backlog = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	if (backlog < vigil_config.wakeup_bytes && backlog + size >= vigil_config.wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Sends `size` bytes of `msg`; a full ring is counted under `lost_stat`. */
static __always_inline void emit(void *msg, __u64 size, __u32 lost_stat)
{
	if (bpf_ringbuf_output(&events, msg, size, ring_flags(size)))
		stat_inc(lost_stat);
}

#endif
