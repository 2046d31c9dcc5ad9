// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The system call front-end of the generic hook: TracingPolicy kprobes on
 * system calls (`syscall: true`). The per-syscall tracepoints
 * (syscalls/sys_enter_NAME, sys_exit_NAME) serve them: one program,
 * attached once per hooked system call, so that other system calls never
 * run it. The raw sys_enter/sys_exit tracepoints serve only system calls
 * without a tracepoint of their own (they would run on every system call).
 * The hook logic itself is lib/generic.bpf.h.
 */
#include "generic.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Puts the wire structs into the object's BTF for the layout test. */
struct vigil_msg_kprobe wire_kprobe_layout;
struct vigil_hook_config wire_hook_config_layout;
struct vigil_syscall_hooks wire_syscall_hooks_layout;
struct vigil_string_key wire_string_key_layout;
struct vigil_addr_key wire_addr_key_layout;
struct vigil_sockaddr_arg wire_sockaddr_arg_layout;
struct vigil_sock_arg wire_sock_arg_layout;
struct vigil_arg_skb wire_arg_skb_layout;
struct vigil_arg_bpf_attr wire_arg_bpf_attr_layout;
struct vigil_arg_bpf_map wire_arg_bpf_map_layout;
struct vigil_arg_perf_event wire_arg_perf_event_layout;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_SYSCALLS_MAX);
	__type(key, __u32);
	__type(value, struct vigil_syscall_hooks);
} syscall_hooks SEC(".maps");

/* The records of the classic syscalls tracepoints (tracefs
 * events/syscalls/sys_enter_NAME/format): the system call number is an int
 * followed by 4 bytes the kernel does not initialize; sys_enter records end
 * after the system call's own arguments. */
struct syscall_enter_record {
	__u64 common;
	__s32 nr;
	__u32 _pad;
	__u64 args[6];
};

struct syscall_exit_record {
	__u64 common;
	__s32 nr;
	__u32 _pad;
	__s64 ret;
};

static __always_inline struct vigil_syscall_hooks *hooks_of(__u32 nr)
{
	struct vigil_syscall_hooks *hooks;

	if (nr >= VIGIL_SYSCALLS_MAX)
		return NULL;
	hooks = bpf_map_lookup_elem(&syscall_hooks, &nr);
	if (!hooks || !hooks->count)
		return NULL;
	return hooks;
}

SEC("tracepoint")
int vigil_syscall_enter(struct syscall_enter_record *ctx)
{
	struct vigil_syscall_hooks *hooks = hooks_of(ctx->nr);
	struct generic_state *s;

	if (!hooks || is_agent())
		return 0;
	s = state();
	if (!s)
		return 0;
	/* Copied, not read as context: the record holds only the system call's
	 * own arguments, and the kernel refuses to attach a program whose
	 * context reads reach past the shortest record it is attached to. */
	bpf_probe_read_kernel(s->regs, sizeof(ctx->args), ctx->args);
	run_hooks(ctx, s, hooks);
	return 0;
}

SEC("tracepoint")
int vigil_syscall_exit(struct syscall_exit_record *ctx)
{
	struct vigil_syscall_hooks *hooks = hooks_of(ctx->nr);

	if (hooks)
		post_pending(hooks, ctx->ret);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(vigil_sys_enter, struct pt_regs *regs, long id)
{
	struct vigil_syscall_hooks *hooks = hooks_of(id);
	struct generic_state *s;

	if (!hooks || !hooks->raw_tp || is_agent())
		return 0;
	s = state();
	if (!s)
		return 0;
	s->regs[0] = BPF_CORE_READ(regs, di);
	s->regs[1] = BPF_CORE_READ(regs, si);
	s->regs[2] = BPF_CORE_READ(regs, dx);
	s->regs[3] = BPF_CORE_READ(regs, r10);
	s->regs[4] = BPF_CORE_READ(regs, r8);
	s->regs[5] = BPF_CORE_READ(regs, r9);
	run_hooks(ctx, s, hooks);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(vigil_sys_exit, struct pt_regs *regs, long ret)
{
	struct vigil_syscall_hooks *hooks = hooks_of(BPF_CORE_READ(regs, orig_ax));

	if (hooks && hooks->raw_tp)
		post_pending(hooks, ret);
	return 0;
}
