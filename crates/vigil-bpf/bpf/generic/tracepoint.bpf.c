// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tracepoint front-end of the generic hook: TracingPolicy tracepoints.
 * One object serves them all: the loader attaches its programs once per
 * hook with the hook's number as the attach cookie, and reuses the system
 * call object's maps. A classic tracepoint's arguments are fields of its
 * record, located by the loader from tracefs (`tp_fields`); a raw one's
 * are the tracepoint's own arguments (TP_PROTO). The hook logic itself is
 * lib/generic.bpf.h.
 */
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Puts the wire structs into the object's BTF for the layout test. */
struct vigil_tp_fields wire_tp_fields_layout;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_HOOKS_MAX);
	__type(key, __u32);
	__type(value, struct vigil_tp_fields);
} tp_fields SEC(".maps");

SEC("tracepoint")
int vigil_tracepoint(void *ctx)
{
	__u32 hook = bpf_get_attach_cookie(ctx);
	struct vigil_tp_fields *f = bpf_map_lookup_elem(&tp_fields, &hook);
	struct generic_state *s = state();

	if (!f || !s || is_agent())
		return 0;
	for (int i = 0; i < VIGIL_HOOK_ARGS_MAX; i++) {
		struct vigil_tp_field *field = &f->fields[i];
		__u32 size = field->size;
		__u64 v = 0;

		if (size > sizeof(v))
			size = sizeof(v);
		/* Read, not context access: fields lie at offsets the loader found. */
		bpf_probe_read_kernel(&v, size, ctx + field->offset);
		if ((field->kind & VIGIL_TP_FIELD_SIGNED) && size && size < sizeof(v)) {
			__u32 shift = 64 - size * 8;

			v = (__u64)((__s64)(v << shift) >> shift);
		}
		s->regs[i] = v;
	}
	run_hook(hook);
	return 0;
}

/* Largest argument position a raw tracepoint policy may name (arg_config in compile.rs). */
#define RAW_ARGS 6

SEC("raw_tp")
int vigil_raw_tracepoint(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 hook = bpf_get_attach_cookie(ctx);
	struct generic_state *s = state();

	if (!s || is_agent())
		return 0;
	/* Copied, not read as context: the kernel refuses to attach a program
	 * whose context reads reach past the tracepoint's own arguments. */
	bpf_probe_read_kernel(s->regs, RAW_ARGS * sizeof(__u64), ctx->args);
	run_hook(hook);
	return 0;
}
