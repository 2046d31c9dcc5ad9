// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Stack traces of policy events (Post kernelStackTrace / userStackTrace):
 * one fixed-size map, created with the process sensor and shared by every
 * hook object. User space frees each stack once it has read it; a stack
 * that finds no room is counted (VIGIL_STAT_LOST_STACK). */
#ifndef VIGIL_STACK_BPF_H
#define VIGIL_STACK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "intf.h"

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, VIGIL_STACK_TRACES_MAX);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, VIGIL_STACK_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

#endif
