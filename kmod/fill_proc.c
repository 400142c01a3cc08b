// SPDX-License-Identifier: GPL-2.0-only
/*
 * fill_proc.c - fillers for processes and credentials (FNET_CAT_PROC, FNET_CAT_CRED), and
 * the lifecycle records written from the sched_process_{fork,exec,exit} tracepoints.
 *
 * Packing of the execve identity slots (the header says "cred-like values as u32"):
 *   uid_gid   = uid  | (u64)gid  << 32      (real ids, in the initial user namespace)
 *   euid_egid = euid | (u64)egid << 32
 *   loginuid  = u32, 0xffffffff when unset;  tty = kernel dev_t (0 = none)
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

/* Failed execve/execveat, at sys_exit: the arguments as the caller passed them. */
FNET_FILLER(execve)
{
	fnet_exec_ids(r);
	fnet_put_ustr(r, 0, a[0]);
	fnet_put_uargv(r, 1, a[1]);
	fnet_exec_cwd_comm(r);
}

FNET_FILLER(execveat)
{
	fnet_exec_ids(r);
	fnet_put_ustr(r, 0, a[1]);
	fnet_put_uargv(r, 1, a[2]);
	fnet_exec_cwd_comm(r);
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
