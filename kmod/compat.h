/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * compat.h - every kernel-version difference falconet.ko cares about, in one place.
 *
 * Each shim names the kernel version that changed the API.  Built against: Debian 6.1.
 * The other branches are written from the kernel's history (see kmod/README.md, "Kernels").
 */
#ifndef FNET_COMPAT_H
#define FNET_COMPAT_H

#include <linux/version.h>
#include <linux/uaccess.h>
#include <linux/timer.h>
#include <linux/timekeeping.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/cred.h>
#include <asm/syscall.h>

/* 5.0 (commit 96d4f267e40f): access_ok() lost its VERIFY_READ/VERIFY_WRITE argument. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 0, 0)
#define fnet_access_ok(p, n) access_ok(p, n)
#else
#define fnet_access_ok(p, n) access_ok(VERIFY_READ, p, n)
#endif

/* 5.1 (commit b35f549df1d7): syscall_get_arguments() lost its (i, n) window arguments. */
static inline void fnet_syscall_args(struct pt_regs *regs, unsigned long *args)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 1, 0)
	syscall_get_arguments(current, regs, args);
#else
	syscall_get_arguments(current, regs, 0, 6, args);
#endif
}

/* 5.3: ktime_get_boot_ns() renamed ktime_get_boottime_ns(); 3.17 introduced the former. */
static inline u64 fnet_boot_ns(void)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 3, 0)
	return ktime_get_boottime_ns();
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(3, 17, 0)
	return ktime_get_boot_ns();
#else
	return ktime_to_ns(ktime_get_boottime());
#endif
}

/* Task start time in ns since boot: 5.5 task->start_boottime; 4.? .. 5.4 real_start_time
 * (u64 ns since 3.17); 3.10 real_start_time was a struct timespec. */
static inline u64 fnet_task_start_ns(struct task_struct *t)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 5, 0)
	return t->start_boottime;
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(3, 17, 0)
	return t->real_start_time;
#else
	return timespec_to_ns(&t->real_start_time);
#endif
}

/* 4.15: timer_setup()/from_timer() replace setup_timer(); 6.16 renamed from_timer()
 * to timer_container_of(); 6.2 renamed del_timer_sync() to timer_delete_sync(). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0)
#define fnet_from_timer(var, t, field) timer_container_of(var, t, field)
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(4, 15, 0)
#define fnet_from_timer(var, t, field) from_timer(var, t, field)
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define fnet_timer_delete_sync(t) timer_delete_sync(t)
#else
#define fnet_timer_delete_sync(t) del_timer_sync(t)
#endif

/* 6.3 (commit bc292ab00f6c): vma->vm_flags became read-only, use vm_flags_set/clear(). */
static inline void fnet_vm_flags_set(struct vm_area_struct *vma, unsigned long set,
				     unsigned long clear)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

/* 3.7 renamed VM_RESERVED to VM_DONTDUMP (3.10 already has the new name). */
#ifndef VM_DONTDUMP
#define VM_DONTDUMP VM_RESERVED
#endif

/* 6.3 (commit f122a08b197d): kernel_cap_t became a single u64 `val`; before, u32 cap[2]. */
static inline u64 fnet_cap_u64(kernel_cap_t c)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	return c.val;
#else
	return (u64)c.cap[0] | ((u64)c.cap[1] << 32);
#endif
}

/* 4.6: in_ia32_syscall(); before, the TS_COMPAT bit of thread_info->status.  x32 syscalls
 * (__X32_SYSCALL_BIT) use a different argument convention too: both are compat for us. */
static inline bool fnet_compat_syscall(long nr)
{
#if defined(CONFIG_X86_64)
#ifdef __X32_SYSCALL_BIT
	if (nr & __X32_SYSCALL_BIT)
		return true;
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 6, 0)
	return in_ia32_syscall();
#else
	return current_thread_info()->status & TS_COMPAT;
#endif
#elif defined(CONFIG_COMPAT)
	return is_compat_task();
#else
	return false;
#endif
}

/* 3.15 (commit de7b2973903c): tracepoints are registered by struct tracepoint *, found with
 * for_each_kernel_tracepoint(); before, tracepoint_probe_register() took the name string.
 * probes.c uses the struct form; FNET_TP_BY_NAME marks kernels that need the string form. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(3, 15, 0)
#define FNET_TP_BY_NAME 1
#endif

/* 4.10: CPU hotplug state machine (cpuhp_setup_state_nocalls) replaced CPU notifiers. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 10, 0)
#define FNET_HAVE_CPUHP 1
#endif

/* 3.13: IPv6 socket addresses moved into struct sock (sk_v6_rcv_saddr / sk_v6_daddr). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(3, 13, 0)
#define fnet_sk_v6_saddr(sk) (&(sk)->sk_v6_rcv_saddr)
#define fnet_sk_v6_daddr(sk) (&(sk)->sk_v6_daddr)
#else
#define fnet_sk_v6_saddr(sk) (&inet6_sk(sk)->rcv_saddr)
#define fnet_sk_v6_daddr(sk) (&inet6_sk(sk)->daddr)
#endif

/* 6.14 (commit a363d27cdbc2 "tracing: Allow system call tracepoints to handle page
 * faults"): raw_syscalls probes run with preemption *enabled*.  The record path therefore
 * always disables preemption itself (see record.c) rather than relying on the tracepoint. */

/* 4.18: kvcalloc(); kvmalloc_array() exists since 4.12. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(4, 18, 0)
#define kvcalloc(n, size, gfp) kvmalloc_array(n, size, (gfp) | __GFP_ZERO)
#endif

/* 4.16: __poll_t and the EPOLL* constants for ->poll(). */
#if LINUX_VERSION_CODE < KERNEL_VERSION(4, 16, 0)
typedef unsigned int __poll_t;
#define EPOLLIN POLLIN
#define EPOLLRDNORM POLLRDNORM
#define EPOLLHUP POLLHUP
#endif

/* ==== cgroup path of a task (EXECVE/EXECVEAT `cgroup` slot, fill_proc.c) ========== */
/*
 * All three run under rcu_read_lock() with preemption disabled and never sleep: no
 * cgroup_mutex, no css_set_lock.  A task's css_set is freed after an RCU grace period
 * (kfree_rcu), a cgroup only after one too (css_free_rwork_fn, queue_rcu_work), and a cgroup
 * holds a reference on its kernfs node and on its parent until then, so what these return
 * stays valid until rcu_read_unlock().  Built here: 6.1 (and 6.12); older branches reasoned.
 */
#ifdef CONFIG_CGROUPS
#include <linux/cgroup.h>
#include <linux/kernfs.h>

/* The task's cgroup on the default (v2) hierarchy: css_set->dfl_cgrp (in every layout from
 * 4.4 on; it came with the unified hierarchy, which was a developer-only mount option until
 * cgroup v2 was declared stable in 4.5).  NULL before 4.4: only v1 hierarchies are used. */
static inline struct cgroup *fnet_task_dfl_cgroup(struct task_struct *t)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 4, 0)
	return task_css_set(t)->dfl_cgrp;
#else
	return NULL;
#endif
}

/* The task's cgroup in the hierarchy of one v1 controller: cpuset (what Falco's scap files
 * name a thread's cgroup after, see collector/sources/scap_meta.py), else memory.  On a v2-only
 * host this is a cgroup of the default hierarchy (the controller is bound there).
 * 3.16 renamed the controller ids <name>_subsys_id -> <name>_cgrp_id; 3.12 added task_css()
 * (before: task_subsys_state()). */
static inline struct cgroup *fnet_task_v1_cgroup(struct task_struct *t)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(3, 16, 0)
#if IS_ENABLED(CONFIG_CPUSETS)
	return task_css(t, cpuset_cgrp_id)->cgroup;
#elif IS_ENABLED(CONFIG_MEMCG)
	return task_css(t, memory_cgrp_id)->cgroup;
#endif
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(3, 12, 0)
#if IS_ENABLED(CONFIG_CPUSETS)
	return task_css(t, cpuset_subsys_id)->cgroup;
#elif IS_ENABLED(CONFIG_MEMCG)
	return task_css(t, mem_cgroup_subsys_id)->cgroup;
#endif
#else
#if IS_ENABLED(CONFIG_CPUSETS)
	return task_subsys_state(t, cpuset_subsys_id)->cgroup;
#elif IS_ENABLED(CONFIG_MEMCG)
	return task_subsys_state(t, mem_cgroup_subsys_id)->cgroup;
#endif
#endif
	return NULL;
}

/* Levels of a cgroup path kept at most (the deepest ones: the container's cgroup is the
 * last or next-to-last component; Kubernetes pods are 4 deep, kind/docker-in-docker ~8). */
#define FNET_CGROUP_LEVELS 32

/* Path of @cg from its hierarchy's root, NUL-terminated in @buf (@size bytes); returns its
 * start (inside @buf), NULL on error.  *@cut is set when the leading part was left out.
 *
 * 4.9+ (kernfs_path*() became strlcpy-like, returning int: char * in 4.8, int in 4.10):
 *   kernfs node names are NOT RCU-protected before 6.15 (kernfs_rename_ns() kfree()s the
 *   old name at once; only a v1 cgroup can be renamed), so names are read by the kernel's
 *   own kernfs_path_from_node(), which holds kernfs_rename_lock (a spinlock taken irqsave,
 *   a read-side rwlock since 6.15; never sleeps on non-RT kernels).  Its cost grows with
 *   the square of the depth, with interrupts off, so it is given an ancestor at most
 *   FNET_CGROUP_LEVELS up as the origin: the result is the deepest levels, "/a/b/c".
 *   The ancestors are found through cgroup_parent() (css->parent, fixed for the cgroup's
 *   life, RCU-safe); a cgroup is never moved to another parent (v1 rename keeps it).
 *   Longer than @size (only with very long names): fewer levels, halving until it fits.
 * 3.15 .. 4.8: cgroups live in kernfs since 3.15 ("cgroup: convert to kernfs");
 *   char *kernfs_path() builds the path from the end under kernfs_rename_lock and returns
 *   NULL if it does not fit; no level bound there.
 * < 3.15: no kernfs; cgroup_path() walks cgroup->parent and the RCU-protected cgroup->name
 *   under rcu_read_lock() itself (int, 0 or -ENAMETOOLONG, path at @buf). */
static inline const char *fnet_cgroup_path(struct cgroup *cg, char *buf, int size, bool *cut)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 9, 0)
	int levels = FNET_CGROUP_LEVELS;

	for (;;) {
		struct cgroup *top = cg;
		int i, n;

		for (i = 0; i < levels && cgroup_parent(top); i++)
			top = cgroup_parent(top);
		*cut = cgroup_parent(top) != NULL;
		n = kernfs_path_from_node(cg->kn, top->kn, buf, size);
		if (n < 0)
			return NULL;
		if (n < size)
			return buf;
		if (levels == 1) {	/* one name longer than @size: keep its start */
			*cut = true;
			return buf;
		}
		levels /= 2;
	}
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(3, 15, 0)
	*cut = false;
	return kernfs_path(cg->kn, buf, size);
#else
	*cut = false;
	return cgroup_path(cg, buf, size) == 0 ? buf : NULL;
#endif
}
#endif /* CONFIG_CGROUPS */
/* ==== end of the cgroup block ==================================================== */

#endif /* FNET_COMPAT_H */
