// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The kernel function front-end of the generic hook: TracingPolicy kprobes
 * with `syscall: false` (security_file_open, ...). The loader opens this
 * object once per hooked function, sets the attach target and the
 * function's hooks (read-only data) before load, keeps only the program
 * it attaches with (fentry where the kernel has trampolines, else kprobe)
 * and reuses the system call object's maps: events, counters, process
 * table, hook configurations and selector strings. The hook logic itself
 * is lib/generic.bpf.h.
 */
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: the hooks on this instance's function. */
const volatile struct vigil_syscall_hooks func_hooks = {};

/* Largest argument position a policy may name (arg_config in compile.rs). */
#define FUNC_ARGS 6

/* Reads func_hooks directly: through a non-volatile pointer the compiler
 * may fold the reads to the initializer (no hooks). */
static __always_inline void run_func_hooks(void)
{
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= func_hooks.count)
			break;
		run_hook(func_hooks.hooks[i]);
	}
}

SEC("fentry")
int vigil_fentry(void *ctx)
{
	struct generic_state *s;

	if (is_agent())
		return 0;
	s = state();
	if (!s)
		return 0;
	for (int i = 0; i < FUNC_ARGS; i++) {
		__u64 v = 0;

		/* Fails (and leaves 0) past the function's own arguments. */
		bpf_get_func_arg(ctx, i, &v);
		s->regs[i] = v;
	}
	run_func_hooks();
	return 0;
}

SEC("kprobe")
int vigil_kprobe(struct pt_regs *ctx)
{
	struct generic_state *s;

	if (is_agent())
		return 0;
	s = state();
	if (!s)
		return 0;
	/* The x86_64 calling convention. */
	s->regs[0] = ctx->di;
	s->regs[1] = ctx->si;
	s->regs[2] = ctx->dx;
	s->regs[3] = ctx->cx;
	s->regs[4] = ctx->r8;
	s->regs[5] = ctx->r9;
	run_func_hooks();
	return 0;
}
