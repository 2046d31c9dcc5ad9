/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Absolute path of a `struct path`, built by walking dentries and crossing
 * mount points. bpf_d_path() is refused outside LSM/iterators, so event
 * programs walk by hand. The path is written right to left into a per-CPU
 * scratch buffer twice the path limit long, so that every write stays inside
 * it whatever the verifier assumes about the offset.
 */
#ifndef VIGIL_PATH_BPF_H
#define VIGIL_PATH_BPF_H

#include "common.bpf.h"

#define PATH_MASK (VIGIL_PATH_MAX - 1)
#define NAME_MASK 255
#define PATH_MAX_COMPONENTS 256

struct path_buf {
	char data[VIGIL_PATH_MAX * 2];
	/* Walk state lives here, not on the stack, so the verifier treats it as
	 * an unknown value and checks the loop body once. */
	__u32 off;
	__u32 truncated;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_scratch SEC(".maps");

struct path_result {
	/* The path is data[off .. VIGIL_PATH_MAX). */
	__u32 off;
	int truncated;
};

static __always_inline struct path_buf *path_buffer(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&path_scratch, &zero);
}

/* Prepends "/name"; returns 0 when there is no room left. Sizes are masked
 * again right before each read: older verifiers lose the bound otherwise. */
static __always_inline int path_prepend(struct path_buf *buf, __u32 *off, const struct qstr *q)
{
	const unsigned char *name = BPF_CORE_READ(q, name);
	__u32 len = BPF_CORE_READ(q, len) & NAME_MASK;

	if (len + 1 >= *off)
		return 0;
	*off -= len;
	barrier_var(len);
	bpf_probe_read_kernel(&buf->data[*off & PATH_MASK], len & NAME_MASK, name);
	*off -= 1;
	buf->data[*off & PATH_MASK] = '/';
	return 1;
}

struct path_walk {
	struct dentry *dentry;
	struct mount *mnt;
	struct dentry *mnt_root;
};

/* One step up the tree; returns 1 to stop. A bpf_loop callback, so the
 * verifier checks it once rather than once per iteration. */
static long path_walk_step(__u64 i, struct path_walk *w)
{
	struct path_buf *buf = path_buffer();
	struct dentry *dentry = w->dentry;
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct mount *mnt = w->mnt;

	if (!buf)
		return 1;
	if (dentry == w->mnt_root || dentry == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

		if (dentry == w->mnt_root && mnt != mnt_parent) {
			w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			w->mnt = mnt_parent;
			w->mnt_root = BPF_CORE_READ(mnt_parent, mnt.mnt_root);
			return 0;
		}
		/* The global root, or the root of an internal mount (memfd, pipe). */
		if (dentry != w->mnt_root && !path_prepend(buf, &buf->off, &dentry->d_name))
			buf->truncated = 1;
		return 1;
	}
	if (!path_prepend(buf, &buf->off, &dentry->d_name)) {
		buf->truncated = 1;
		return 1;
	}
	w->dentry = parent;
	return 0;
}

/* Walks up from w's dentry, writing the path right to left into buf. */
static __always_inline struct path_result path_walk(struct path_buf *buf, struct path_walk *w)
{
	struct path_result res;

	buf->off = VIGIL_PATH_MAX;
	buf->truncated = 0;
	if (bpf_loop(PATH_MAX_COMPONENTS, path_walk_step, w, 0) >= PATH_MAX_COMPONENTS)
		buf->truncated = 1;
	res.off = buf->off;
	res.truncated = buf->truncated;
	if (res.off >= VIGIL_PATH_MAX || res.off == 0) {
		res.off = VIGIL_PATH_MAX - 1;
		buf->data[res.off & PATH_MASK] = '/';
	}
	return res;
}

static __always_inline struct path_result path_resolve(struct path_buf *buf, struct path *path)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(path, mnt);
	struct path_walk w = {
		.dentry = BPF_CORE_READ(path, dentry),
		.mnt = container_of(vfsmnt, struct mount, mnt),
		.mnt_root = BPF_CORE_READ(vfsmnt, mnt_root),
	};

	return path_walk(buf, &w);
}

/* The path of `dentry` from the root of its own file system (a dentry alone
 * does not say which mount it was reached through). */
static __always_inline struct path_result path_resolve_dentry(struct path_buf *buf,
							       struct dentry *dentry)
{
	struct path_walk w = {
		.dentry = dentry,
		.mnt = NULL,
		.mnt_root = BPF_CORE_READ(dentry, d_sb, s_root),
	};

	return path_walk(buf, &w);
}

/* Copies a resolved path to dst (at most VIGIL_PATH_MAX bytes); returns its length. */
static __always_inline __u32 path_copy(void *dst, struct path_buf *buf, struct path_result res)
{
	__u32 len = (VIGIL_PATH_MAX - res.off) & PATH_MASK;

	if (len == 0)
		len = 1;
	barrier_var(len);
	bpf_probe_read_kernel(dst, len & PATH_MASK, &buf->data[res.off & PATH_MASK]);
	return len;
}

#endif
