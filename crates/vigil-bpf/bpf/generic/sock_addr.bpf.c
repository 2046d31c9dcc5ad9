// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The cgroup sock_addr front-end of the generic hook: connect(2), UDP send
 * and bind(2) policies whose selectors block (Override) or kill (Sigkill)
 * on kernels where no hook can fail the call (no BPF-LSM, fmod_ret or
 * bpf_override_return). The cgroup/connect, sendmsg and bind programs,
 * link-attached to the cgroup v2 root, run before the kernel acts on the
 * address: the hook's selectors see the address the kernel will really use
 * (its copy, not the caller's buffer), and a selector that enforces makes
 * the call fail. The three operations share one body (sock_addr_hook); the
 * loader loads only the pair of programs of the instance's operation.
 * Signals cannot be sent from cgroup programs: they wait in
 * `deferred_signals` until the system call's exit tracepoint sends them.
 * The loader sets the hook (read-only data) and reuses the system call
 * object's maps. The hook logic itself is lib/generic.bpf.h.
 */
#define VIGIL_DEFERRED_SIGNAL
#define VIGIL_UNSCOPED
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: the hook served by this instance. */
const volatile __u32 sock_hook = 0;
/* The system call whose registers carry the hook's other arguments
 * (connect 42, sendto 44, bind 49, ...). */
const volatile __u32 args_syscall_nr = 0;
/* Argument positions of the kernel's copy of the address and of its length. */
const volatile __u32 addr_arg = 1;
const volatile __u32 addrlen_arg = 2;

#define EPERM 1
#define SIGKILL 9

/* The kernel's copy of the address, in the layout of a struct sockaddr,
 * for the hook's sockaddr argument (VIGIL_ARG_SOCKADDR_KERNEL). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockaddr_in6);
} sock_addr_copy SEC(".maps");

/* The error the current call is to fail with when the hook's matching
 * selector enforces (Override: its error; Sigkill: EPERM), else 0. Other
 * signals do not block: they are only sent when the call returns. */
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

/* The hook's arguments: the system call's registers when the call is
 * args_syscall_nr, and the kernel's copy of the address and its length.
 * From any other call (sendmsg for a sendto hook, io_uring) the fd is
 * unknown and reported as an error. */
static __always_inline int fill_args(struct generic_state *s, struct bpf_sock_addr *ctx,
				     int family)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct sockaddr_in6 *sa;
	__u32 zero = 0;

	sa = bpf_map_lookup_elem(&sock_addr_copy, &zero);
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
	if (BPF_CORE_READ(regs, orig_ax) == args_syscall_nr) {
		s->regs[0] = BPF_CORE_READ(regs, di);
		s->regs[1] = BPF_CORE_READ(regs, si);
		s->regs[2] = BPF_CORE_READ(regs, dx);
		s->regs[3] = BPF_CORE_READ(regs, r10);
		s->regs[4] = BPF_CORE_READ(regs, r8);
		s->regs[5] = BPF_CORE_READ(regs, r9);
	} else {
		s->regs[0] = (__u64)-1;
		s->regs[addrlen_arg & 7] =
			family == VIGIL_AF_INET ? sizeof(struct sockaddr_in) : sizeof(*sa);
	}
	s->regs[addr_arg & 7] = (__u64)sa;
	return 0;
}

/* 1 lets the operation proceed; 0 makes it fail with the error set by bpf_set_retval. */
static __always_inline int sock_addr_hook(struct bpf_sock_addr *ctx, int family)
{
	struct generic_state *s;
	int error;

	if (is_agent())
		return 1;
	s = state();
	if (!s || fill_args(s, ctx, family))
		return 1;
	run_hook(sock_hook);
	error = enforced_error(sock_hook);
	if (!error)
		return 1;
	bpf_set_retval(error);
	return 0;
}

SEC("cgroup/connect4")
int vigil_connect4(struct bpf_sock_addr *ctx)
{
	return sock_addr_hook(ctx, VIGIL_AF_INET);
}

SEC("cgroup/connect6")
int vigil_connect6(struct bpf_sock_addr *ctx)
{
	return sock_addr_hook(ctx, VIGIL_AF_INET6);
}

SEC("cgroup/sendmsg4")
int vigil_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_addr_hook(ctx, VIGIL_AF_INET);
}

SEC("cgroup/sendmsg6")
int vigil_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_addr_hook(ctx, VIGIL_AF_INET6);
}

SEC("cgroup/bind4")
int vigil_bind4(struct bpf_sock_addr *ctx)
{
	return sock_addr_hook(ctx, VIGIL_AF_INET);
}

SEC("cgroup/bind6")
int vigil_bind6(struct bpf_sock_addr *ctx)
{
	return sock_addr_hook(ctx, VIGIL_AF_INET6);
}

/* Sends the signals the cgroup programs left for this thread; attached to
 * the exit tracepoint of each system call the operation comes from. */
SEC("tracepoint")
int vigil_sock_addr_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 *sig = bpf_map_lookup_elem(&deferred_signals, &id);

	if (!sig)
		return 0;
	bpf_send_signal(*sig);
	bpf_map_delete_elem(&deferred_signals, &id);
	return 0;
}
