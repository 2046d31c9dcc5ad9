// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The user-space front-end of the generic hook: TracingPolicy uprobes and
 * USDT probes. One object serves every one of them: the loader attaches
 * its programs once per hooked symbol, offset or USDT probe with the
 * hook's number as the attach cookie (for USDT libbpf keeps the attach
 * cookie for its own spec id and hands ours over as bpf_usdt_cookie), and
 * reuses the system call object's maps. The hook logic itself is
 * lib/generic.bpf.h.
 */
#include "generic.bpf.h"
#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int vigil_uprobe(struct pt_regs *ctx)
{
	struct generic_state *s = state_from_regs(ctx);

	if (s)
		run_hook_ctx(ctx, s, bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe")
int vigil_uretprobe(struct pt_regs *ctx)
{
	finish_return(bpf_get_attach_cookie(ctx), ctx->ax);
	return 0;
}

/* A USDT probe: its arguments are wherever the probe's note says (a
 * register, memory, a constant); libbpf's spec for this probe site decodes
 * them into the argument slots. */
SEC("usdt")
int vigil_usdt(struct pt_regs *ctx)
{
	struct generic_state *s;
	long value;

	if (is_agent())
		return 0;
	s = state();
	if (!s)
		return 0;
	__builtin_memset(s->regs, 0, sizeof(s->regs));
	for (int i = 0; i < VIGIL_HOOK_ARGS_MAX; i++) {
		if (bpf_usdt_arg(ctx, i, &value))
			break;
		s->regs[i] = value;
	}
	run_hook_ctx(ctx, s, bpf_usdt_cookie(ctx));
	return 0;
}
