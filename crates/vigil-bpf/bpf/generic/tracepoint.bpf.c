// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The classic tracepoint front-end of the generic hook: TracingPolicy
 * tracepoints. The loader opens this object once per hooked tracepoint,
 * sets its hooks and each hook's argument fields (read-only data, located
 * from tracefs) before load, and reuses the system call object's maps.
 * Neither attach cookies (Linux 6.2+ for tracepoints) nor the record's
 * common_type (overwritten for BPF) can tell tracepoints apart at run time.
 * The hook logic itself is lib/generic.bpf.h.
 */
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: the hooks on this instance's tracepoint, and the
 * fields of each hook's arguments (by position in tp_hooks). */
const volatile struct vigil_syscall_hooks tp_hooks = {};
const volatile struct vigil_tp_fields tp_fields[VIGIL_HOOKS_PER_SYSCALL] = {};

/* Fills the state's argument slots with the fields of hook slot `slot`.
 * Reads the read-only data directly: through a non-volatile pointer the
 * compiler may fold the reads to the initializer. */
static __always_inline void load_fields(void *ctx, int slot, struct generic_state *s)
{
	for (int i = 0; i < VIGIL_HOOK_ARGS_MAX; i++) {
		__u32 size = tp_fields[slot].fields[i].size;
		__u32 offset = tp_fields[slot].fields[i].offset;
		__u8 flags = tp_fields[slot].fields[i].flags;
		__u64 v = 0;

		if (size > sizeof(v))
			size = sizeof(v);
		/* Read, not context access: fields lie at offsets the loader found. */
		bpf_probe_read_kernel(&v, size, ctx + offset);
		if ((flags & VIGIL_TP_FIELD_SIGNED) && size && size < sizeof(v)) {
			__u32 shift = 64 - size * 8;

			v = (__u64)((__s64)(v << shift) >> shift);
		}
		s->regs[i] = v;
	}
}

SEC("tracepoint")
int vigil_tracepoint(void *ctx)
{
	struct generic_state *s;

	if (is_agent())
		return 0;
	s = state();
	if (!s)
		return 0;
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= tp_hooks.count)
			break;
		load_fields(ctx, i, s);
		run_hook_ctx(ctx, s, tp_hooks.hooks[i]);
	}
	return 0;
}
