// SPDX-License-Identifier: GPL-2.0-only
/*
 * fill_proc.c - fillers for processes and credentials (FNET_CAT_PROC, FNET_CAT_CRED), and
 * the lifecycle records written from the sched_process_{fork,exec,exit} tracepoints.
 *
 * Packing of the execve identity slots (the header says "cred-like values as u32"):
 *   uid_gid   = uid  | (u64)gid  << 32      (real ids, in the initial user namespace)
 *   euid_egid = euid | (u64)egid << 32
 *   loginuid  = u32, 0xffffffff when unset;  tty = kernel dev_t (0 = none)
 *
 * The `cgroup` slot (v5) holds one cgroup path, from the root of its hierarchy (not from the
 * task's cgroup namespace: a containerised task must still show its container's cgroup),
 * e.g. "/system.slice/docker-<64 hex>.scope" -- what the third field of the matching
 * /proc/<pid>/cgroup line shows to a reader in the initial cgroup namespace, so live and
 * /proc snapshots give userspace the same container id (the last run of 64 hex digits,
 * ext/state_names.c).  Which hierarchy: the cpuset controller's (memory's if there is no
 * cpuset) when it is mounted as a v1 hierarchy and the task is not in its root there, else
 * the task's cgroup v2 (default hierarchy) cgroup.  So v2 hosts and hybrid hosts (systemd's
 * unified tree + v1 controllers) use the v2 path, v1-only hosts (docker's cgroupfs driver)
 * the cpuset path.  The deepest FNET_CGROUP_LEVELS levels are kept; a longer path, or one cut
 * to the snaplen, keeps its end (where the container's id is) and sets FNET_RF_TRUNC.
 * Empty on kernels without CONFIG_CGROUPS and on PREEMPT_RT, where the kernfs lock that
 * guards cgroup names sleeps.
 */
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/cred.h>
#include <linux/audit.h>
#include <linux/tty.h>
#include <linux/binfmts.h>
#include <linux/mm_types.h>
#include <linux/rcupdate.h>
#include <linux/uidgid.h>
#include <linux/sched/task.h>
#include <linux/string.h>
#include <linux/percpu.h>
#include <linux/limits.h>
#include "falconet.h"
#include "compat.h"

#define FD(x) ((u64)(s64)(int)(x))
#define A(i, v) (r->hdr->arg[i] = (u64)(v))

static u32 fnet_uid(kuid_t k)
{
	return from_kuid_munged(&init_user_ns, k);
}

static u32 fnet_gid(kgid_t k)
{
	return from_kgid_munged(&init_user_ns, k);
}

static u64 fnet_tty(void)
{
	struct tty_struct *tty = READ_ONCE(current->signal->tty);

	if (!tty || !tty->driver)
		return 0;
	return MKDEV(tty->driver->major, tty->driver->minor_start) + tty->index;
}

/* Numeric identity slots a0..a5 of EXECVE/EXECVEAT, from the current task. */
static void fnet_exec_ids(struct fnet_rec *r)
{
	const struct cred *c = current_cred();	/* our own creds: no reference needed */
	u32 loginuid = (u32)-1;

#ifdef CONFIG_AUDIT
	loginuid = from_kuid(&init_user_ns, audit_get_loginuid(current));
#endif
	A(0, fnet_uid(c->uid) | (u64)fnet_gid(c->gid) << 32);
	A(1, fnet_uid(c->euid) | (u64)fnet_gid(c->egid) << 32);
	A(2, loginuid);
	A(3, fnet_tty());
	rcu_read_lock();
	A(4, task_tgid_nr(rcu_dereference(current->real_parent)));
	rcu_read_unlock();
	A(5, fnet_cap_u64(c->cap_effective));
}

/* v2 cwd, v3 comm. */
static void fnet_exec_cwd_comm(struct fnet_rec *r)
{
	char comm[TASK_COMM_LEN];

	fnet_put_cwd(r, 2);
	get_task_comm(comm, current);
	fnet_put_kstr(r, 3, comm);
}

#if defined(CONFIG_CGROUPS) && !defined(CONFIG_PREEMPT_RT)
/* A kernel string into a part, keeping its END when it must be cut (to the snaplen or to
 * what is left of the record), with the same flags and counters as fnet_put_kbytes(), which
 * keeps the start.  A cut forced by the ring's free space still drops the record (left to
 * fnet_put_kbytes()). */
static void fnet_put_ktail(struct fnet_rec *r, int slot, const char *s, u32 len)
{
	u32 snap = READ_ONCE(fnet.snaplen);
	u32 left = r->cap - r->used;
	bool by_left = left < snap;
	u32 bound = by_left ? left : snap;

	if (len > bound && !(by_left && r->ring_limited)) {
		s += len - bound;
		len = bound;
		if (by_left)
			r->toolong = true;
		else
			r->hdr->flags |= FNET_RF_TRUNC;
	}
	fnet_put_kbytes(r, slot, s, len);
}
#endif

/* v5: the current task's cgroup path (see the top of this file).  Runs inside the record:
 * preemption is disabled, so the per-CPU scratch buffer is ours until the commit. */
static void fnet_exec_cgroup(struct fnet_rec *r)
{
#if defined(CONFIG_CGROUPS) && !defined(CONFIG_PREEMPT_RT)
	char *buf = this_cpu_ptr(fnet.scratch);
	const char *p = NULL;
	struct cgroup *dfl, *v1;
	bool cut = false;

	rcu_read_lock();
	dfl = fnet_task_dfl_cgroup(current);
	v1 = fnet_task_v1_cgroup(current);
	if (v1 && (!dfl || v1->root != dfl->root)) {
		p = fnet_cgroup_path(v1, buf, PATH_MAX, &cut);
		if (p && dfl && p[0] == '/' && !p[1])
			p = NULL;	/* the root of the v1 hierarchy: the v2 path says more */
	}
	if (!p && dfl)
		p = fnet_cgroup_path(dfl, buf, PATH_MAX, &cut);
	rcu_read_unlock();
	if (p) {
		if (cut)
			r->hdr->flags |= FNET_RF_TRUNC;
		fnet_put_ktail(r, 5, p, strnlen(p, PATH_MAX));
		return;
	}
#endif
	fnet_put_kbytes(r, 5, "", 0);
}

/* Failed execve/execveat, at sys_exit: the arguments as the caller passed them. */
FNET_FILLER(execve)
{
	fnet_exec_ids(r);
	fnet_put_ustr(r, 0, a[0]);
	fnet_put_uargv(r, 1, a[1]);
	fnet_exec_cwd_comm(r);
	fnet_exec_cgroup(r);
}

FNET_FILLER(execveat)
{
	fnet_exec_ids(r);
	fnet_put_ustr(r, 0, a[1]);
	fnet_put_uargv(r, 1, a[2]);
	fnet_exec_cwd_comm(r);
	fnet_exec_cgroup(r);
}

/* Successful exec, from sched_process_exec: the new image is in place. */
void fnet_fill_exec_ok(struct fnet_rec *r, struct linux_binprm *bprm)
{
	struct mm_struct *mm = current->mm;

	fnet_exec_ids(r);
	fnet_put_kstr(r, 0, bprm->filename);
	if (mm)
		fnet_put_ubytes_argv(r, 1, mm->arg_start, mm->arg_end);
	fnet_exec_cwd_comm(r);
	if (bprm->file)
		fnet_put_path(r, 4, &bprm->file->f_path);
	fnet_exec_cgroup(r);
}

/* sched_process_fork, in the parent. */
void fnet_fill_fork(struct fnet_rec *r, struct task_struct *parent, struct task_struct *child)
{
	u64 flags = 0;

	if (child->tgid == parent->tgid)
		flags |= CLONE_THREAD;
	if (child->mm && child->mm == parent->mm)
		flags |= CLONE_VM;
	if (child->files && child->files == parent->files)
		flags |= CLONE_FILES;
	if (child->fs && child->fs == parent->fs)
		flags |= CLONE_FS;
	if (child->sighand == parent->sighand)
		flags |= CLONE_SIGHAND;
	r->hdr->tid = parent->pid;
	r->hdr->pid = parent->tgid;
	A(0, child->pid);
	A(1, child->tgid);
	A(2, flags);
	A(3, fnet_task_start_ns(child));
	fnet_put_kbytes(r, 0, child->comm, strnlen(child->comm, TASK_COMM_LEN));
}

/* sched_process_exit: ret = raw exit status, a0 = 1 when the thread group is gone. */
void fnet_fill_exit(struct fnet_rec *r, struct task_struct *p)
{
	r->hdr->ret = p->exit_code;
	A(0, atomic_read(&p->signal->live) == 0);
}

FNET_FILLER(clone)
{
	A(0, a[0]);
}

FNET_FILLER(clone3)
{
	u64 flags = 0;	/* struct clone_args starts with the u64 flags */

	if (a[0] && fnet_copy_user(&flags, a[0], sizeof(flags)))
		fnet_rec_fault(r);
	A(0, flags);
}

FNET_FILLER(none)
{
}

FNET_FILLER(ptrace)
{
	A(0, a[0]);
	A(1, (s64)(int)a[1]);
	A(2, a[2]);
	A(3, a[3]);
}

/* kill(pid, sig), tkill(tid, sig), setpgid(pid, pgid): two signed ints. */
FNET_FILLER(two_ints)
{
	A(0, (s64)(int)a[0]);
	A(1, (s64)(int)a[1]);
}

FNET_FILLER(tgkill)
{
	A(0, (s64)(int)a[0]);
	A(1, (s64)(int)a[1]);
	A(2, (s64)(int)a[2]);
}

/* prctl(option, arg2), setns(fd, nstype), unshare(flags) */
FNET_FILLER(prctl)
{
	A(0, a[0]);
	A(1, a[1]);
}

FNET_FILLER(setns)
{
	A(0, FD(a[0]));
	A(1, a[1]);
}

FNET_FILLER(flags0)
{
	A(0, a[0]);
}

/* setuid family: n ids as u32 (-1 = "unchanged" stays 0xffffffff). */
#define FNET_IDS(name, n)					\
FNET_FILLER(name)						\
{								\
	int i;							\
	for (i = 0; i < (n); i++)				\
		A(i, (u32)a[i]);				\
}
FNET_IDS(ids1, 1)
FNET_IDS(ids2, 2)
FNET_IDS(ids3, 3)

/* capset: the capability sets in force after the call. */
FNET_FILLER(capset)
{
	const struct cred *c = current_cred();

	A(0, fnet_cap_u64(c->cap_inheritable));
	A(1, fnet_cap_u64(c->cap_permitted));
	A(2, fnet_cap_u64(c->cap_effective));
}
