// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The cgroup front-end of the generic hook: connect(2) policies whose
 * selectors block (Override) or kill (Sigkill) on kernels where no hook
 * can fail the call (no BPF-LSM, fmod_ret or bpf_override_return).
 * cgroup/connect4 and cgroup/connect6, link-attached to the cgroup v2 root,
 * run before the kernel sends anything: the hook's selectors see the
 * address the kernel will really use (its copy, not the caller's buffer),
 * and a selector that enforces makes connect() fail. Signals cannot be sent
 * from cgroup programs: they wait in `deferred_signals` until
 * syscalls/sys_exit_connect sends them. The loader sets the hooks
 * (read-only data) and reuses the system call object's maps. The hook
 * logic itself is lib/generic.bpf.h.
 */
#define VIGIL_DEFERRED_SIGNAL
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: the connect(2) hooks served here. */
const volatile struct vigil_syscall_hooks connect_hooks = {};

#define EPERM 1
#define SIGKILL 9
#define NR_CONNECT 42
/* Position of connect(2)'s address argument. */
#define ADDR_ARG 1

/* The kernel's copy of the address, in the layout of a struct sockaddr,
 * for the hook's sockaddr argument (VIGIL_ARG_SOCKADDR_KERNEL). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockaddr_in6);
} connect_addr SEC(".maps");

/* The error the current call is to fail with when hook's matching selector
 * enforces (Override: its error; Sigkill: EPERM), else 0. Other signals do
 * not block: they are only sent when the call returns. */
static __always_inline int enforced_error(__u32 hook)
{
	struct generic_state *s = state();
	struct vigil_hook_config *cfg = bpf_map_lookup_elem(&hook_configs, &hook);
	struct vigil_selector_config *sel;
	__u32 matched;

	if (!s || !cfg || !cfg->nselectors || !(cfg->flags & VIGIL_HOOK_ENFORCE))
		return 0;
	matched = s->matched;
	if (matched >= VIGIL_SELECTORS_MAX)
		return 0;
	sel = &cfg->selectors[matched];
	if (sel->actions & VIGIL_ACTION_OVERRIDE)
		return sel->override_error;
	if ((sel->actions & VIGIL_ACTION_SIGNAL) && sel->signal == SIGKILL)
		return -EPERM;
	return 0;
}

/* The connect(2) arguments: the system call's registers (fd, addrlen), and
 * the kernel's copy of the address. Outside connect(2) (io_uring) the fd is
 * unknown and reported as an error. */
static __always_inline int fill_args(struct generic_state *s, struct bpf_sock_addr *ctx,
				     int family)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct sockaddr_in6 *sa;
	__u32 zero = 0;

	sa = bpf_map_lookup_elem(&connect_addr, &zero);
	if (!sa)
		return -1;
	__builtin_memset(sa, 0, sizeof(*sa));
	sa->sin6_family = family;
	sa->sin6_port = (__be16)ctx->user_port;
	if (family == VIGIL_AF_INET) {
		((struct sockaddr_in *)sa)->sin_addr.s_addr = ctx->user_ip4;
	} else {
		sa->sin6_addr.in6_u.u6_addr32[0] = ctx->user_ip6[0];
		sa->sin6_addr.in6_u.u6_addr32[1] = ctx->user_ip6[1];
		sa->sin6_addr.in6_u.u6_addr32[2] = ctx->user_ip6[2];
		sa->sin6_addr.in6_u.u6_addr32[3] = ctx->user_ip6[3];
	}
	__builtin_memset(s->regs, 0, sizeof(s->regs));
	if (BPF_CORE_READ(regs, orig_ax) == NR_CONNECT) {
		s->regs[0] = BPF_CORE_READ(regs, di);
		s->regs[2] = BPF_CORE_READ(regs, dx);
	} else {
		s->regs[0] = (__u64)-1;
		s->regs[2] = family == VIGIL_AF_INET ? sizeof(struct sockaddr_in) : sizeof(*sa);
	}
	s->regs[ADDR_ARG] = (__u64)sa;
	return 0;
}

/* 1 lets the connect proceed; 0 makes it fail with the error set by bpf_set_retval. */
static __always_inline int connect_hook(struct bpf_sock_addr *ctx, int family)
{
	struct generic_state *s;
	int error = 0, e;

	if (is_agent())
		return 1;
	s = state();
	if (!s || fill_args(s, ctx, family))
		return 1;
	for (int i = 0; i < VIGIL_HOOKS_PER_SYSCALL; i++) {
		if (i >= connect_hooks.count)
			break;
		run_hook(connect_hooks.hooks[i]);
		e = enforced_error(connect_hooks.hooks[i]);
		if (!error)
			error = e;
	}
	if (!error)
		return 1;
	bpf_set_retval(error);
	return 0;
}

SEC("cgroup/connect4")
int vigil_connect4(struct bpf_sock_addr *ctx)
{
	return connect_hook(ctx, VIGIL_AF_INET);
}

SEC("cgroup/connect6")
int vigil_connect6(struct bpf_sock_addr *ctx)
{
	return connect_hook(ctx, VIGIL_AF_INET6);
}

/* Sends the signals the connect hooks left for this thread. */
SEC("tracepoint/syscalls/sys_exit_connect")
int vigil_connect_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 *sig = bpf_map_lookup_elem(&deferred_signals, &id);

	if (!sig)
		return 0;
	bpf_send_signal(*sig);
	bpf_map_delete_elem(&deferred_signals, &id);
	return 0;
}
