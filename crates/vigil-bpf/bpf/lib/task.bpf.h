/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reading a task's credentials, namespaces and cgroup, portably (CO-RE). */
#ifndef VIGIL_TASK_BPF_H
#define VIGIL_TASK_BPF_H

#include "common.bpf.h"

/* kernel_cap_t is u32[2] before 6.3 and a u64 after: 8 bytes either way. */
static __always_inline __u64 read_caps(const kernel_cap_t *caps)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), caps);
	return v;
}

static __always_inline void read_creds(struct vigil_creds *out, const struct cred *cred)
{
	out->uid = BPF_CORE_READ(cred, uid.val);
	out->gid = BPF_CORE_READ(cred, gid.val);
	out->euid = BPF_CORE_READ(cred, euid.val);
	out->egid = BPF_CORE_READ(cred, egid.val);
	out->suid = BPF_CORE_READ(cred, suid.val);
	out->sgid = BPF_CORE_READ(cred, sgid.val);
	out->fsuid = BPF_CORE_READ(cred, fsuid.val);
	out->fsgid = BPF_CORE_READ(cred, fsgid.val);
	out->securebits = BPF_CORE_READ(cred, securebits);
	out->cap_permitted = read_caps(&cred->cap_permitted);
	out->cap_effective = read_caps(&cred->cap_effective);
	out->cap_inheritable = read_caps(&cred->cap_inheritable);
}

/* The pid namespace the task lives in (not the one for its children). */
static __always_inline __u32 active_pid_ns(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid *upid = (void *)pid + bpf_core_field_offset(struct pid, numbers) +
			    (level & 31) * bpf_core_type_size(struct upid);

	return BPF_CORE_READ(upid, ns, ns.inum);
}

static __always_inline void read_namespaces(struct vigil_namespaces *out, struct task_struct *task)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);

	if (!nsp)
		return;
	out->uts = BPF_CORE_READ(nsp, uts_ns, ns.inum);
	out->ipc = BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	out->mnt = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	out->pid = active_pid_ns(task);
	out->pid_for_children = BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	out->net = BPF_CORE_READ(nsp, net_ns, ns.inum);
	if (bpf_core_field_exists(nsp->time_ns)) {
		out->time = BPF_CORE_READ(nsp, time_ns, ns.inum);
		out->time_for_children = BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
	}
	out->cgroup = BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	out->user = BPF_CORE_READ(task, cred, user_ns, ns.inum);
}

static __always_inline __u32 read_auid(struct task_struct *task)
{
	if (bpf_core_field_exists(task->loginuid))
		return BPF_CORE_READ(task, loginuid.val);
	return (__u32)-1;
}

/*
 * The cgroup that names the container. On the unified hierarchy that is the
 * task's default cgroup; on hybrid hosts a process can sit in the v2 root
 * while its v1 memory cgroup carries the container's name.
 */
static __always_inline struct cgroup *task_cgroup(struct task_struct *task)
{
	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	struct cgroup *cgrp = BPF_CORE_READ(cset, dfl_cgrp);

	if (BPF_CORE_READ(cgrp, level) > 0)
		return cgrp;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		struct cgroup *v1 = BPF_CORE_READ(cset, subsys[id & 15], cgroup);

		if (v1 && BPF_CORE_READ(v1, level) > 0)
			return v1;
	}
	return cgrp;
}

/* Copies a kernfs node name (at most VIGIL_CGROUP_NAME_MAX bytes); returns its length. */
static __always_inline __u32 read_kn_name(char *dst, struct kernfs_node *kn)
{
	const char *name = BPF_CORE_READ(kn, name);
	long n;

	if (!name)
		return 0;
	n = bpf_probe_read_kernel_str(dst, VIGIL_CGROUP_NAME_MAX, name);
	return n > 0 ? n - 1 : 0;
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	/* Renamed to __parent in 6.15, when it became RCU-protected. */
	struct kernfs_node___old {
		struct kernfs_node *parent;
	} *old = (void *)kn;

	if (bpf_core_field_exists(old->parent))
		return BPF_CORE_READ(old, parent);
	return BPF_CORE_READ(kn, __parent);
}

#endif
