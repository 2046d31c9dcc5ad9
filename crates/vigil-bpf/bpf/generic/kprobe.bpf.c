// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The kernel function front-end of the generic hook: TracingPolicy kprobes
 * with `syscall: false` (security_file_open, ...) and lsmhooks (file_open,
 * ...). The loader opens this object once per hooked function, sets the
 * attach target and the function's hooks (read-only data) before load,
 * keeps only the programs it attaches with (lsm for LSM hooks; fentry where
 * the kernel has trampolines, else kprobe; fmod_ret for Override; fexit or
 * kretprobe for return values)
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

/* Runs the function's hooks; returns the first Override error (0: none).
 * Reads func_hooks directly: through a non-volatile pointer the compiler
 * may fold the reads to the initializer (no hooks). */
static __always_inline int run_func_hooks(void)
{
	int error = 0, ret;

	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= func_hooks.count)
			break;
		ret = run_hook(func_hooks.hooks[i]);
		if (!error)
			error = ret;
	}
	return error;
}

/* Copies the function's arguments (trampoline programs) into the state. */
static __always_inline struct generic_state *trampoline_args(void *ctx)
{
	struct generic_state *s;

	if (is_agent())
		return NULL;
	s = state();
	if (!s)
		return NULL;
	for (int i = 0; i < FUNC_ARGS; i++) {
		__u64 v = 0;

		/* Fails (and leaves 0) past the function's own arguments. */
		bpf_get_func_arg(ctx, i, &v);
		s->regs[i] = v;
	}
	return s;
}

SEC("fentry")
int vigil_fentry(void *ctx)
{
	if (trampoline_args(ctx))
		run_func_hooks();
	return 0;
}

/* Errors an LSM program may return (newer verifiers check the range). */
#define MAX_ERRNO 4095

/* An LSM hook: a selector's Override makes the operation fail. */
SEC("lsm")
int vigil_lsm(void *ctx)
{
	int error;

	if (!trampoline_args(ctx))
		return 0;
	error = run_func_hooks();
	if (error < -MAX_ERRNO || error > 0)
		return 0;
	return error;
}

SEC("kprobe")
int vigil_kprobe(struct pt_regs *ctx)
{
	if (!state_from_regs(ctx))
		return 0;
	run_func_hooks();
	return 0;
}

/* Posts the pending events of the function's hooks with its return value. */
static __always_inline void finish_func_returns(__s64 ret)
{
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= func_hooks.count)
			break;
		finish_return(func_hooks.hooks[i], ret);
	}
}

SEC("fexit")
int vigil_fexit(void *ctx)
{
	__u64 ret = 0;

	if (is_agent())
		return 0;
	bpf_get_func_ret(ctx, &ret);
	finish_func_returns(ret);
	return 0;
}

SEC("kretprobe")
int vigil_kretprobe(struct pt_regs *ctx)
{
	if (!is_agent())
		finish_func_returns(ctx->ax);
	return 0;
}

/* A function allowed for error injection (or a security_* hook): a
 * selector's Override makes it return its error without running. */
SEC("fmod_ret")
int vigil_fmod_ret(void *ctx)
{
	int error;

	if (!trampoline_args(ctx))
		return 0;
	error = run_func_hooks();
	if (error < -MAX_ERRNO || error > 0)
		return 0;
	return error;
}
