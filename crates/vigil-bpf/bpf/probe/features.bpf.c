// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `vigil probe`: one trivial program per hook kind. The prober loads one
 * program at a time (autoload), attaches it, triggers it from its own thread
 * and reads the counters below, so a hook kind the kernel refuses only fails
 * its own load. Every program filters on the prober's tgid (or its own
 * loopback port) so nothing else on the machine is affected.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1
#define EXDEV 18
#define SIGURG 23
#define NAME_LEN 32

/* Set by the prober before load. */
__u32 target_tgid;
__u32 target_tid;
__u16 deny_port;	/* host byte order */
char deny_name[NAME_LEN];
char modret_name[NAME_LEN];

/* Read back by the prober after the trigger. */
__u64 tp_btf_hits;
__u64 raw_tp_hits;
__u64 tracepoint_hits;
__u64 kprobe_hits;
__u64 kretprobe_hits;
__u64 kprobe_multi_hits;
__u64 fentry_hits;
__u64 fexit_hits;
__u64 fmod_ret_hits;
__u64 kprobe_override_hits;
__u64 fmod_ret_syscall_hits;
__u64 lsm_denied;
__u64 uprobe_hits;
__u64 uprobe_multi_hits;
__u64 connect4_denied;
__u64 iter_seen;
__u64 signal_sent;
__s64 signal_ret;
__s64 fexit_ret;
/* bpf_ima_file_hash's result on the prober's file: the algorithm or -errno. */
__s64 ima_algo;
__u8 ima_digest[64];

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_ring SEC(".maps");

static __always_inline bool from_prober(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

/* Whether the opened file's name is `want` (a NUL-terminated .bss string). */
static __always_inline bool file_named(struct file *file, const char *want)
{
	char name[NAME_LEN] = {};
	const unsigned char *p = BPF_CORE_READ(file, f_path.dentry, d_name.name);

	if (bpf_probe_read_kernel_str(name, sizeof(name), p) < 0)
		return false;
	for (int i = 0; i < NAME_LEN; i++) {
		if (name[i] != want[i])
			return false;
		if (!name[i])
			return true;
	}
	return true;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	if (from_prober())
		__sync_fetch_and_add(&tp_btf_hits, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_tp_sys_enter, struct pt_regs *regs, long id)
{
	if (from_prober())
		__sync_fetch_and_add(&raw_tp_hits, 1);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int tracepoint_sys_enter(void *ctx)
{
	if (from_prober())
		__sync_fetch_and_add(&tracepoint_hits, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(ringbuf_sys_enter, struct pt_regs *regs, long id)
{
	__u32 tgid = target_tgid;

	if (from_prober())
		bpf_ringbuf_output(&probe_ring, &tgid, sizeof(tgid), 0);
	return 0;
}

/* Thread-directed so that only the prober's thread, which blocks SIGURG, sees it. */
SEC("tp_btf/sys_enter")
int BPF_PROG(send_signal_sys_enter, struct pt_regs *regs, long id)
{
	if ((__u32)bpf_get_current_pid_tgid() != target_tid || signal_sent)
		return 0;
	signal_sent = 1;
	signal_ret = bpf_send_signal_thread(SIGURG);
	return 0;
}

SEC("kprobe/security_file_open")
int BPF_KPROBE(kprobe_file_open)
{
	if (from_prober())
		__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kretprobe/security_file_open")
int BPF_KRETPROBE(kretprobe_file_open)
{
	if (from_prober())
		__sync_fetch_and_add(&kretprobe_hits, 1);
	return 0;
}

SEC("kprobe.multi/security_file_open")
int BPF_KPROBE(kprobe_multi_file_open)
{
	if (from_prober())
		__sync_fetch_and_add(&kprobe_multi_hits, 1);
	return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(fentry_file_open, struct file *file)
{
	if (from_prober())
		__sync_fetch_and_add(&fentry_hits, 1);
	return 0;
}

SEC("fexit/security_file_open")
int BPF_PROG(fexit_file_open, struct file *file, int ret)
{
	if (from_prober()) {
		__sync_fetch_and_add(&fexit_hits, 1);
		fexit_ret = ret;
	}
	return 0;
}

SEC("fmod_ret/security_file_open")
int BPF_PROG(fmod_ret_file_open, struct file *file)
{
	if (from_prober() && file_named(file, modret_name)) {
		__sync_fetch_and_add(&fmod_ret_hits, 1);
		return -EXDEV;
	}
	return 0;
}

/* Fails the prober thread's first mkdir(2) before the call runs, where the
 * kernel lets system call functions fail (its error injection list). */
SEC("fmod_ret/__x64_sys_mkdir")
int BPF_PROG(fmod_ret_mkdir)
{
	if ((__u32)bpf_get_current_pid_tgid() != target_tid || fmod_ret_syscall_hits)
		return 0;
	fmod_ret_syscall_hits = 1;
	return -EXDEV;
}

/* The same by bpf_override_return from a kprobe. */
SEC("kprobe/__x64_sys_mkdir")
int kprobe_override_mkdir(struct pt_regs *ctx)
{
	if ((__u32)bpf_get_current_pid_tgid() != target_tid || kprobe_override_hits)
		return 0;
	kprobe_override_hits = 1;
	bpf_override_return(ctx, -EXDEV);
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	if (from_prober() && file_named(file, deny_name)) {
		__sync_fetch_and_add(&lsm_denied, 1);
		return -EPERM;
	}
	return 0;
}

/* Post imaHash needs a sleepable LSM program, the helper and IMA. */
SEC("lsm.s/file_open")
int BPF_PROG(ima_file_open, struct file *file)
{
	if (from_prober() && file_named(file, deny_name))
		ima_algo = bpf_ima_file_hash(file, ima_digest, sizeof(ima_digest));
	return 0;
}

/* Attached by function name in the prober's own executable. */
SEC("uprobe")
int BPF_UPROBE(uprobe_target)
{
	if (from_prober())
		__sync_fetch_and_add(&uprobe_hits, 1);
	return 0;
}

SEC("uprobe.multi")
int BPF_UPROBE(uprobe_multi_target)
{
	if (from_prober())
		__sync_fetch_and_add(&uprobe_multi_hits, 1);
	return 0;
}

/* Denies only loopback connects to the prober's chosen port. */
SEC("cgroup/connect4")
int connect4_deny(struct bpf_sock_addr *ctx)
{
	if (ctx->user_ip4 == bpf_htonl(0x7f000001) && ctx->user_port == bpf_htons(deny_port)) {
		__sync_fetch_and_add(&connect4_denied, 1);
		return 0;
	}
	return 1;
}

SEC("iter/task")
int iter_task(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (task && task->tgid == target_tgid)
		__sync_fetch_and_add(&iter_seen, 1);
	return 0;
}
