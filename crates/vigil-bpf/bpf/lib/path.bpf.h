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
#define PATH_MAX_COMPONENTS 128

struct path_buf {
	char data[VIGIL_PATH_MAX * 2];
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

/* Prepends "/name"; returns 0 when there is no room left. */
static __always_inline int path_prepend(struct path_buf *buf, __u32 *off, const struct qstr *q)
{
	const unsigned char *name = BPF_CORE_READ(q, name);
	__u32 len = BPF_CORE_READ(q, len) & NAME_MASK;

	if (len + 1 >= *off)
		return 0;
	*off -= len;
	bpf_probe_read_kernel(&buf->data[*off & PATH_MASK], len, name);
	*off -= 1;
	buf->data[*off & PATH_MASK] = '/';
	return 1;
}

static __always_inline struct path_buf *path_buffer(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&path_scratch, &zero);
}

static __always_inline struct path_result path_resolve(struct path_buf *buf, struct path *path)
{
	struct path_result res = { .off = VIGIL_PATH_MAX, .truncated = 0 };
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(path, mnt);
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);

	for (int i = 0; i < PATH_MAX_COMPONENTS; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);

		if (dentry == mnt_root || dentry == parent) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

			if (dentry == mnt_root && mnt != mnt_parent) {
				dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
				mnt = mnt_parent;
				mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
				continue;
			}
			/* The global root, or the root of an internal mount (memfd, pipe). */
			if (dentry != mnt_root && !path_prepend(buf, &res.off, &dentry->d_name))
				res.truncated = 1;
			goto done;
		}
		if (!path_prepend(buf, &res.off, &dentry->d_name)) {
			res.truncated = 1;
			goto done;
		}
		dentry = parent;
	}
	res.truncated = 1;
done:
	if (res.off == VIGIL_PATH_MAX) {
		res.off = VIGIL_PATH_MAX - 1;
		buf->data[res.off & PATH_MASK] = '/';
	}
	return res;
}

/* Copies a resolved path to dst (at most VIGIL_PATH_MAX bytes); returns its length. */
static __always_inline __u32 path_copy(void *dst, struct path_buf *buf, struct path_result res)
{
	__u32 len = (VIGIL_PATH_MAX - res.off) & PATH_MASK;

	if (len == 0)
		len = 1;
	bpf_probe_read_kernel(dst, len, &buf->data[res.off & PATH_MASK]);
	return len;
}

#endif
