// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The raw tracepoint front-end of the generic hook: TracingPolicy
 * tracepoints with `raw: true`, whose arguments are the tracepoint's own
 * (TP_PROTO). One object serves them all: the loader attaches its program
 * once per hook with the hook's number as the attach cookie (raw
 * tracepoint cookies: Linux 6.10+; older kernels refuse the program), and
 * reuses the system call object's maps. The hook logic itself is
 * lib/generic.bpf.h.
 */
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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
	run_hook_ctx(ctx, s, hook);
	return 0;
}
