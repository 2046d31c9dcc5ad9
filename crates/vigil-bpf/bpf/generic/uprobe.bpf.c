// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The user-space function front-end of the generic hook: TracingPolicy
 * uprobes. One object serves every uprobe: the loader attaches its
 * programs once per hooked symbol (or offset) with the hook's number as the
 * attach cookie, and reuses the system call object's maps. The hook logic
 * itself is lib/generic.bpf.h.
 */
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int vigil_uprobe(struct pt_regs *ctx)
{
	if (!state_from_regs(ctx))
		return 0;
	run_hook(bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe")
int vigil_uretprobe(struct pt_regs *ctx)
{
	finish_return(bpf_get_attach_cookie(ctx), ctx->ax);
	return 0;
}
