// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The base process sensor: exec, fork and exit, on BTF tracepoints only, so
 * that it runs on every kernel with BTF (no kprobes, no trampolines). Also
 * the start-time scan of existing processes (a task iterator).
 */
#include "common.bpf.h"
#include "path.bpf.h"
#include "task.bpf.h"
#include "process_table.bpf.h"
/* Created here, with the ring buffer, for every policy hook object to share. */
#include "stack.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Puts every wire struct into the object's BTF, so that the layout test can
 * compare the BPF view (skeleton types) with the user-space view (bindgen). */
struct vigil_msg_clone wire_clone_layout;
struct vigil_msg_exit wire_exit_layout;

#define S_ISUID 04000
#define S_ISGID 02000
#define S_IXGRP 00010
/* READ_IMPLIES_EXEC | ADDR_NO_RANDOMIZE | ADDR_COMPAT_LAYOUT | MMAP_PAGE_ZERO */
#define PER_CLEAR_ON_SETID 0x0740000

#define ARGS_MASK (VIGIL_ARGS_MAX - 1)
#define CGROUP_MASK (VIGIL_CGROUP_NAME_MAX - 1)

struct exec_buf {
	struct vigil_msg_exec msg;
	/* filename, cwd, cgroup names, unlinked path, then argv: see intf.h. */
	char data[VIGIL_PATH_MAX * 4 + VIGIL_ARGS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_buf);
} exec_scratch SEC(".maps");

/* A size the verifier knows to be within exec_buf. */
static __always_inline __u32 msg_size(__u32 size)
{
	return size > sizeof(struct exec_buf) ? sizeof(struct exec_buf) : size;
}

/* Offsets in exec_buf.data are masked to their region so the verifier can bound them. */
#define DATA_MASK (VIGIL_PATH_MAX * 4 - 1)

static __always_inline void fill_common(struct exec_buf *buf, struct task_struct *task)
{
	struct vigil_msg_exec *m = &buf->msg;

	m->tid = BPF_CORE_READ(task, pid);
	m->auid = read_auid(task);
	read_creds(&m->creds, BPF_CORE_READ(task, cred));
	read_namespaces(&m->ns, task);
}

/* Appends the cgroup leaf and parent names at *off. */
static __always_inline void fill_cgroup(struct exec_buf *buf, struct task_struct *task, __u32 *off)
{
	struct cgroup *cgrp = task_cgroup(task);
	struct kernfs_node *kn = BPF_CORE_READ(cgrp, kn);
	struct vigil_msg_exec *m = &buf->msg;

	m->cgroup_id = BPF_CORE_READ(kn, id);
	m->cgroup_len = read_kn_name(&buf->data[*off & DATA_MASK], kn);
	*off += m->cgroup_len;
	m->cgroup_parent_len = read_kn_name(&buf->data[*off & DATA_MASK], kn_parent(kn));
	*off += m->cgroup_parent_len;
}

static __always_inline void fill_cwd(struct exec_buf *buf, struct path_buf *pb,
				     struct task_struct *task, __u32 *off)
{
	struct vigil_msg_exec *m = &buf->msg;
	struct path pwd;
	struct path_result res;

	if (BPF_CORE_READ_INTO(&pwd, task, fs, pwd)) {
		m->flags |= VIGIL_PROC_ERROR_CWD;
		return;
	}
	res = path_resolve(pb, &pwd);
	if (res.truncated)
		m->flags |= VIGIL_PROC_TRUNC_CWD;
	m->cwd_len = path_copy(&buf->data[*off & DATA_MASK], pb, res);
	if (m->cwd_len == 1)
		m->flags |= VIGIL_PROC_ROOT_CWD;
	*off += m->cwd_len;
}

/* Whether this exec raised privileges: setuid/setgid bits or file capabilities. */
static __always_inline void fill_privileges(struct vigil_msg_exec *m, struct linux_binprm *bprm,
					    struct inode *inode)
{
	__u16 mode = BPF_CORE_READ(inode, i_mode);
	unsigned int per_clear = BPF_CORE_READ(bprm, per_clear);

	if (!(per_clear & PER_CLEAR_ON_SETID))
		return;
	if ((mode & S_ISUID) && m->creds.euid == m->file_uid)
		m->priv_flags |= VIGIL_PRIV_SETUID;
	if ((mode & S_ISGID) && (mode & S_IXGRP) && m->creds.egid == m->file_gid)
		m->priv_flags |= VIGIL_PRIV_SETGID;
	if (!(m->priv_flags & (VIGIL_PRIV_SETUID | VIGIL_PRIV_SETGID)))
		m->priv_flags |= VIGIL_PRIV_FILE_CAPS;
}

static __always_inline void remember(struct vigil_msg_exec *m, const char *binary, __u32 binary_len)
{
	struct proc_entry *e = proc_entry_buffer();
	__u32 skip = binary_len > PROC_BINARY_MAX ? binary_len - PROC_BINARY_MAX : 0;

	if (!e)
		return;
	e->key = m->key;
	e->parent = m->parent;
	e->flags = m->flags;
	e->ns = m->ns;
	e->cap_permitted = m->creds.cap_permitted;
	e->cap_effective = m->creds.cap_effective;
	e->cap_inheritable = m->creds.cap_inheritable;
	binary_len -= skip;
	e->binary_len = binary_len;
	barrier_var(binary_len);
	bpf_probe_read_kernel(e->binary, binary_len & (PROC_BINARY_MAX - 1), binary + (skip & DATA_MASK));
	proc_table_update(m->key.pid, e);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, off = 0, tgid = BPF_CORE_READ(task, tgid);
	struct exec_buf *buf = bpf_map_lookup_elem(&exec_scratch, &zero);
	struct path_buf *pb = path_buffer();
	struct vigil_msg_exec *m;
	struct proc_entry *prev;
	struct file *file;
	struct inode *inode;
	struct mm_struct *mm;
	unsigned long arg_start, arg_end, args_len;
	const char *filename;
	long n;

	if (!buf || !pb)
		return 0;
	m = &buf->msg;
	__builtin_memset(m, 0, sizeof(*m));
	m->hdr.kind = VIGIL_MSG_EXEC;
	m->hdr.ktime = bpf_ktime_get_ns();
	m->key.pid = tgid;
	m->key.ktime = m->hdr.ktime;
	m->flags = VIGIL_PROC_EXECVE;

	/* Exec in a forked child: the parent is the forker. Exec without fork:
	 * the image this one replaces is the parent. */
	prev = bpf_map_lookup_elem(&procs, &tgid);
	if (prev) {
		m->parent = (prev->flags & VIGIL_PROC_CLONE) ? prev->parent : prev->key;
	} else {
		int derived;

		m->parent = proc_key_of(BPF_CORE_READ(task, real_parent), &derived);
		if (derived)
			m->flags |= VIGIL_PROC_PARENT_DERIVED;
		stat_inc(VIGIL_STAT_PROC_TABLE_MISS);
	}
	fill_common(buf, task);

	filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(&buf->data[0], VIGIL_PATH_MAX, filename);
	if (n <= 0) {
		m->flags |= VIGIL_PROC_ERROR_FILENAME;
		n = 1;
	} else if (n == VIGIL_PATH_MAX) {
		m->flags |= VIGIL_PROC_TRUNC_FILENAME;
	}
	m->filename_len = n - 1;
	off = m->filename_len;

	fill_cwd(buf, pb, task, &off);
	fill_cgroup(buf, task, &off);

	file = BPF_CORE_READ(bprm, file);
	inode = BPF_CORE_READ(file, f_inode);
	m->file_ino = BPF_CORE_READ(inode, i_ino);
	m->file_nlink = BPF_CORE_READ(inode, __i_nlink);
	m->file_uid = BPF_CORE_READ(inode, i_uid.val);
	m->file_gid = BPF_CORE_READ(inode, i_gid.val);
	fill_privileges(m, bprm, inode);
	if (m->file_nlink == 0) {
		struct path fpath;
		struct path_result res;

		m->flags |= VIGIL_PROC_FILE_UNLINKED;
		if (!BPF_CORE_READ_INTO(&fpath, file, f_path)) {
			res = path_resolve(pb, &fpath);
			m->unlinked_path_len = path_copy(&buf->data[off & DATA_MASK], pb, res);
			off += m->unlinked_path_len;
		}
	}

	mm = BPF_CORE_READ(task, mm);
	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	args_len = arg_end - arg_start;
	if (args_len > VIGIL_ARGS_MAX) {
		args_len = VIGIL_ARGS_MAX;
		m->flags |= VIGIL_PROC_TRUNC_ARGS;
	}
	off &= DATA_MASK;
	barrier_var(args_len);
	if (args_len && bpf_probe_read_user(&buf->data[off], args_len & ARGS_MASK, (void *)arg_start)) {
		m->flags |= VIGIL_PROC_ERROR_ARGS;
		args_len = 0;
	}
	m->args_len = args_len & ARGS_MASK;
	off += m->args_len;

	remember(m, buf->data, m->filename_len);
	m->hdr.size = sizeof(*m) + off;
	emit(buf, msg_size(m->hdr.size), VIGIL_STAT_LOST_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 tgid = BPF_CORE_READ(child, tgid);
	struct vigil_msg_clone m = {};
	struct proc_entry *e, *pe;
	int derived;

	/* New threads share their group's entry. */
	if (BPF_CORE_READ(child, pid) != tgid)
		return 0;

	m.hdr.kind = VIGIL_MSG_CLONE;
	m.hdr.size = sizeof(m);
	m.hdr.ktime = bpf_ktime_get_ns();
	m.key.pid = tgid;
	m.key.ktime = BPF_CORE_READ(child, start_time);
	m.parent = proc_key_of(parent, &derived);
	m.tid = tgid;
	m.flags = VIGIL_PROC_CLONE | (derived ? VIGIL_PROC_PARENT_DERIVED : 0);

	e = proc_entry_buffer();
	if (e) {
		__u32 ptgid = m.parent.pid;

		pe = bpf_map_lookup_elem(&procs, &ptgid);
		if (pe)
			__builtin_memcpy(e, pe, sizeof(*e));
		else
			__builtin_memset(e, 0, sizeof(*e));
		e->key = m.key;
		e->parent = m.parent;
		e->flags = m.flags;
		proc_table_update(tgid, e);
	}
	emit(&m, sizeof(m), VIGIL_STAT_LOST_CLONE);
	return 0;
}

/*
 * Thread groups that just ended, by tgid, with their leader's start time.
 * Older kernels pass sched_process_exit no group_dead argument, and threads
 * exiting together can all see live == 0: this map lets only one report.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} recent_exits SEC(".maps");

#define SIGNAL_GROUP_EXIT 0x00000004

/*
 * The process's exit code. After exit_group() or a fatal signal the group's
 * code is the one that counts: a thread racing the last one out (see above)
 * carries its own, possibly 0.
 */
static __always_inline __u32 exit_code(struct task_struct *task)
{
	struct signal_struct *sig = BPF_CORE_READ(task, signal);

	if (BPF_CORE_READ(sig, flags) & SIGNAL_GROUP_EXIT)
		return BPF_CORE_READ(sig, group_exit_code);
	return BPF_CORE_READ(task, exit_code);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u64 leader_start = BPF_CORE_READ(task, group_leader, start_time);
	struct vigil_msg_exit m = {};
	struct proc_entry *e;
	__u64 *reported;

	/* Only the last thread of the group reports the process's end. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;

	m.hdr.kind = VIGIL_MSG_EXIT;
	m.hdr.size = sizeof(m);
	m.hdr.ktime = bpf_ktime_get_ns();
	m.key.pid = tgid;
	m.tid = BPF_CORE_READ(task, pid);
	m.exit_code = exit_code(task);
	e = bpf_map_lookup_elem(&procs, &tgid);
	if (e) {
		m.key.ktime = e->key.ktime;
		m.flags = e->flags;
		bpf_map_update_elem(&recent_exits, &tgid, &leader_start, BPF_ANY);
		/* Of threads racing here, the one that removes the entry reports. */
		if (bpf_map_delete_elem(&procs, &tgid))
			return 0;
	} else {
		reported = bpf_map_lookup_elem(&recent_exits, &tgid);
		if (reported && *reported == leader_start)
			return 0;
		bpf_map_update_elem(&recent_exits, &tgid, &leader_start, BPF_ANY);
		m.key.ktime = leader_start;
		m.flags = VIGIL_PROC_PARENT_DERIVED;
		stat_inc(VIGIL_STAT_PROC_TABLE_MISS);
	}
	emit(&m, sizeof(m), VIGIL_STAT_LOST_EXIT);
	return 0;
}

/*
 * The start-time scan: one record per thread-group leader, and a table entry
 * for each process not already known (an exec may have raced the scan).
 */
SEC("iter/task")
int vigil_snapshot(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	__u32 zero = 0, off = 0, tgid;
	struct exec_buf *buf;
	struct proc_entry *known;
	struct vigil_msg_exec *m;
	struct mm_struct *mm;
	struct file *exe;
	long n;

	if (!task || task->pid != task->tgid)
		return 0;
	buf = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!buf)
		return 0;
	tgid = task->tgid;
	m = &buf->msg;
	__builtin_memset(m, 0, sizeof(*m));
	m->hdr.kind = VIGIL_MSG_SNAPSHOT;
	m->hdr.ktime = bpf_ktime_get_ns();

	known = bpf_map_lookup_elem(&procs, &tgid);
	if (known) {
		m->key = known->key;
		m->parent = known->parent;
		m->flags = known->flags;
	} else {
		int derived;

		m->key.pid = tgid;
		m->key.ktime = task->start_time;
		m->parent = proc_key_of(task->real_parent, &derived);
		m->flags = VIGIL_PROC_PROCFS;
	}
	fill_common(buf, task);

	mm = task->mm;
	exe = mm ? mm->exe_file : NULL;
	if (exe) {
		n = bpf_d_path(&exe->f_path, &buf->data[0], VIGIL_PATH_MAX);
		m->filename_len = n > 0 ? n - 1 : 0;
		if (n <= 0)
			m->flags |= VIGIL_PROC_ERROR_FILENAME;
	}
	off = m->filename_len;
	/* cwd and argv come from /proc: reading another task's memory needs a sleepable program. */
	fill_cgroup(buf, task, &off);

	if (!known)
		remember(m, buf->data, m->filename_len);
	m->hdr.size = sizeof(*m) + off;
	bpf_seq_write(seq, buf, msg_size(m->hdr.size));
	return 0;
}
