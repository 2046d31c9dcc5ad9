// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The kernel function front-end of the generic hook: TracingPolicy kprobes
 * with `syscall: false` (security_file_open, ...), lsmhooks (file_open,
 * ...), and system calls where the kernel has trampolines (their function
 * __x64_sys_NAME, by fentry, fmod_ret for Override, or a kprobe with
 * bpf_override_return). The loader opens this object once per hooked function, sets the
 * attach target and the function's hooks (read-only data) before load,
 * keeps only the programs it attaches with (lsm for LSM hooks; fentry where
 * the kernel has trampolines, else kprobe; fmod_ret for Override; fexit or
 * kretprobe for return values; for an LSM hook whose selectors Post
 * imaHash, also the sleepable lsm.s program of its first argument's type)
 * and reuses the system call object's maps: events, counters, process
 * table, hook configurations and selector strings. The hook logic itself
 * is lib/generic.bpf.h.
 *
 * One more instance serves the kernel-function kprobes of a policy that
 * hooks many functions: kprobe.multi (kretprobe.multi for return values),
 * one program verified once and attached to all of them, where each
 * function's attach cookie names its hooks.
 */
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: the hooks on this instance's function. */
const volatile struct vigil_syscall_hooks func_hooks = {};

/* Largest argument position a policy may name (arg_config in compile.rs). */
#define FUNC_ARGS 6

/* Runs the function's hooks (state `s`, program context `ctx` for their
 * stacks); returns the first Override error (0: none).
 * Reads func_hooks directly: through a non-volatile pointer the compiler
 * may fold the reads to the initializer (no hooks). */
static __always_inline int run_func_hooks(void *ctx, struct generic_state *s)
{
	int error = 0, ret;

	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= func_hooks.count)
			break;
		ret = run_hook_ctx(ctx, s, func_hooks.hooks[i]);
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

/* The state, or NULL for the agent's own calls. */
static __always_inline struct generic_state *caller_state(void)
{
	if (is_agent())
		return NULL;
	return state();
}

/* A system call's function (__x64_sys_NAME) takes one argument, the
 * caller's saved user registers: the call's arguments are read from those,
 * in the system call convention (r10 holds the fourth, not cx). A
 * trampoline program gets that pointer typed by the kernel's BTF, so it
 * loads the registers directly (no helper call per register). */
static __always_inline struct generic_state *syscall_args(void *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)((__u64 *)ctx)[0];
	struct generic_state *s = caller_state();

	if (!s)
		return NULL;
	s->regs[0] = regs->di;
	s->regs[1] = regs->si;
	s->regs[2] = regs->dx;
	s->regs[3] = regs->r10;
	s->regs[4] = regs->r8;
	s->regs[5] = regs->r9;
	return s;
}

/* The same from a kprobe, whose first argument is a plain address. */
static __always_inline struct generic_state *syscall_args_kprobe(struct pt_regs *regs)
{
	struct generic_state *s = caller_state();

	if (!s)
		return NULL;
	s->regs[0] = BPF_CORE_READ(regs, di);
	s->regs[1] = BPF_CORE_READ(regs, si);
	s->regs[2] = BPF_CORE_READ(regs, dx);
	s->regs[3] = BPF_CORE_READ(regs, r10);
	s->regs[4] = BPF_CORE_READ(regs, r8);
	s->regs[5] = BPF_CORE_READ(regs, r9);
	return s;
}

/* Override errors a function may return (newer verifiers check the range). */
#define MAX_ERRNO 4095

/* What an fmod_ret or LSM program returns for the hooks' verdict: the
 * selector's error, or 0 (the function runs) for anything else. */
static __always_inline int verdict_error(int error)
{
	return error < -MAX_ERRNO || error > 0 ? 0 : error;
}

/* A system call hooked at its function's entry: cheaper than its
 * tracepoints, which run the tracing machinery on every hooked call. */
SEC("fentry")
int vigil_syscall_fentry(void *ctx)
{
	struct generic_state *s = syscall_args(ctx);

	if (s)
		run_func_hooks(ctx, s);
	return 0;
}

/* A system call whose selectors Override: the kernel lets every
 * __x64_sys_NAME return an error without running (error injection list),
 * so the call fails before it does anything. */
SEC("fmod_ret")
int vigil_syscall_fmod_ret(void *ctx)
{
	struct generic_state *s = syscall_args(ctx);

	if (!s)
		return 0;
	return verdict_error(run_func_hooks(ctx, s));
}

/* The same where the kernel refuses fmod_ret but has kprobes and
 * bpf_override_return (CONFIG_BPF_KPROBE_OVERRIDE): the kprobe on
 * __x64_sys_NAME returns to the caller with the error instead. */
SEC("kprobe")
int vigil_syscall_kprobe_override(struct pt_regs *ctx)
{
	struct generic_state *s = syscall_args_kprobe((struct pt_regs *)ctx->di);
	int error;

	if (!s)
		return 0;
	error = verdict_error(run_func_hooks(ctx, s));
	if (error)
		bpf_override_return(ctx, error);
	return 0;
}

SEC("fentry")
int vigil_fentry(void *ctx)
{
	struct generic_state *s = trampoline_args(ctx);

	if (s)
		run_func_hooks(ctx, s);
	return 0;
}

/* An LSM hook: a selector's Override makes the operation fail. */
SEC("lsm")
int vigil_lsm(void *ctx)
{
	struct generic_state *s = trampoline_args(ctx);

	if (!s)
		return 0;
	return verdict_error(run_func_hooks(ctx, s));
}

/*
 * Post imaHash: posts the events vigil_lsm left in `pending` for this call
 * (see send_event) with the IMA hash of `file` appended, and returns the
 * first matching selector's Override error. bpf_ima_file_hash may read and
 * hash the whole file, so it may sleep: only a sleepable program may call it, and those cannot use the selectors' tries and
 * per-CPU state, hence this second program.
 */
static __always_inline int post_with_ima(struct file *file)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	int error = 0;

	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		struct pending_key pk = { .pid_tgid = pid_tgid };
		struct vigil_hook_config *cfg;
		struct generic_event *ev;
		struct vigil_ima_hash *h;
		__u32 off, size, sel;

		if (i >= func_hooks.count)
			break;
		pk.hook = func_hooks.hooks[i];
		ev = bpf_map_lookup_elem(&pending, &pk);
		if (!ev)
			continue;
		cfg = bpf_map_lookup_elem(&hook_configs, &pk.hook);
		/* A removed hook's slot is inert: its event is dropped. */
		if (!cfg || !(cfg->flags & VIGIL_HOOK_LIVE))
			goto done;
		sel = ev->msg.selector;
		if (!error && (ev->msg.action & VIGIL_ACTION_OVERRIDE) &&
		    !(ev->msg.flags & VIGIL_KPROBE_MONITORED) && sel < VIGIL_SELECTORS_MAX) {
			barrier_var(sel);
			error = cfg->selectors[sel].override_error;
		}
		off = ev->msg.hdr.size - sizeof(ev->msg);
		if (off <= DATA_SIZE - sizeof(*h)) {
			h = (void *)&ev->data[off];
			h->algo = bpf_ima_file_hash(file, h->digest, sizeof(h->digest));
			ev->msg.flags |= VIGIL_KPROBE_IMA_HASH;
			ev->msg.hdr.size = event_size(off + sizeof(*h));
		}
		size = event_size(ev->msg.hdr.size - sizeof(ev->msg));
		if (bpf_ringbuf_output(&events, ev, size, ring_flags(size)))
			stat_inc(VIGIL_STAT_LOST_KPROBE);
		else
			hook_stat_inc(pk.hook, VIGIL_HOOK_STAT_POSTED);
done:
		bpf_map_delete_elem(&pending, &pk);
	}
	return verdict_error(error);
}

/* Post imaHash on a hook whose first argument is a struct file. The
 * verifier types the argument by the hook's BTF. */
SEC("lsm.s")
int vigil_lsm_ima_file(__u64 *ctx)
{
	return post_with_ima((struct file *)ctx[0]);
}

/* The same for a struct linux_binprm: the hash of the file being executed. */
SEC("lsm.s")
int vigil_lsm_ima_bprm(__u64 *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[0];

	return post_with_ima(bprm->file);
}

SEC("kprobe")
int vigil_kprobe(struct pt_regs *ctx)
{
	struct generic_state *s = state_from_regs(ctx);

	if (s)
		run_func_hooks(ctx, s);
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
	struct generic_state *s = trampoline_args(ctx);

	if (!s)
		return 0;
	return verdict_error(run_func_hooks(ctx, s));
}

/* The id of the `i`th hook a kprobe.multi cookie names, or -1: no more. */
static __always_inline int cookie_hook(__u64 cookie, int i)
{
	__u32 packed = (cookie >> (i * VIGIL_MULTI_ID_BITS)) & ((1 << VIGIL_MULTI_ID_BITS) - 1);

	return packed ? (int)packed - 1 : -1;
}

/* A function among the many of one kprobe.multi link: its hooks come
 * from its attach cookie, not from read-only data. */
SEC("kprobe.multi")
int vigil_multi_kprobe(struct pt_regs *ctx)
{
	struct generic_state *s = state_from_regs(ctx);
	__u64 cookie;
	int hook;

	if (!s)
		return 0;
	cookie = bpf_get_attach_cookie(ctx);
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		hook = cookie_hook(cookie, i);
		if (hook < 0)
			break;
		run_hook_ctx(ctx, s, hook);
	}
	return 0;
}

SEC("kretprobe.multi")
int vigil_multi_kretprobe(struct pt_regs *ctx)
{
	__u64 cookie;
	int hook;

	if (is_agent())
		return 0;
	cookie = bpf_get_attach_cookie(ctx);
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		hook = cookie_hook(cookie, i);
		if (hook < 0)
			break;
		finish_return(hook, ctx->ax);
	}
	return 0;
}
