/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * compat.h - every kernel-version difference falconet.ko cares about, in one place.
 *
 * Each shim names the kernel version that changed the API (and the commit when known).
 * Built against: Debian 6.1 and 6.12, generic/cloud/PREEMPT_RT (kmod/build_matrix.sh).  The
 * other branches, down to 3.10 (RHEL/CentOS 7), are written from the kernel's history and
 * have never been compiled (see kmod/README.md, "Kernels").
 *
 * RHEL kernels keep an old LINUX_VERSION_CODE (RHEL 7 = 3.10, RHEL 8 = 4.18) and backport
 * newer APIs into it, so a version test can misfire there.  Each shim therefore either tests
 * a feature (#ifndef of a macro), uses a name of our own (fnet_*) so that a backported kernel
 * definition cannot collide with ours, or, where a backport is known to change an API,
 * also tests RHEL_RELEASE_CODE (defined by RHEL's <linux/version.h>).
 *
 * For 6.x every shim resolves to the plain kernel API: what 6.1/6.12 compile is unchanged.
 */
#ifndef FNET_COMPAT_H
#define FNET_COMPAT_H

#include <linux/version.h>
#include <linux/uaccess.h>
#include <linux/timer.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/sched.h>
#include <linux/cred.h>
#include <linux/poll.h>
#include <asm/syscall.h>

#ifdef RHEL_RELEASE_CODE
#define FNET_RHEL_GE(major, minor) (RHEL_RELEASE_CODE >= RHEL_RELEASE_VERSION(major, minor))
#else
#define FNET_RHEL_GE(major, minor) 0
#endif

/* 3.17 (commit 8b094cd03b4a "time: Consolidate the time accessor prototypes") created
 * <linux/timekeeping.h>; 3.10 declares ktime_get_boottime() in <linux/hrtimer.h>. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(3, 17, 0)
#include <linux/timekeeping.h>
#else
#include <linux/hrtimer.h>
#endif

/* 4.11 (Ingo Molnar's <linux/sched.h> split, e.g. commit 68db0cf10678 for task_stack.h,
 * 3f07c0144132 for signal.h, 299300258d1b for task.h, and mm.h alike): task_pt_regs,
 * signal_struct, get/put_task_struct and the mm helpers moved to <linux/sched/...>.  Before,
 * <linux/sched.h> (above) declared all of it.  Files that include these headers by name
 * (fill_proc.c) find empty stand-ins in compat-include/ on those kernels (see Kbuild). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 11, 0)
#include <linux/sched/task_stack.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/mm.h>
#endif

/* 3.19 (commit 230fa253df63): READ_ONCE(); WRITE_ONCE() came with it as ASSIGN_ONCE and got
 * its name in 43239cbe79fc.  Before: ACCESS_ONCE(), enough for the scalars and pointers the
 * module reads this way.  A feature test, so a 3.10 that has them backported (RHEL 7
 * updates may) keeps its own. */
#ifndef READ_ONCE
#define READ_ONCE(x) ACCESS_ONCE(x)
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, val) (ACCESS_ONCE(x) = (val))
#endif

/* 3.14 (commit 47933ad41a86 "arch: Introduce smp_load_acquire(), smp_store_release()").
 * Before: a full barrier after the load / before the store gives at least the same order
 * (the ring positions are u64, single-copy atomic on the 64-bit kernels we support).
 * A feature test (they are macros), so a backport, if the kernel has one, is used. */
#ifndef smp_load_acquire
#define smp_load_acquire(p) ({ typeof(*(p)) ___fnet_v = ACCESS_ONCE(*(p)); smp_mb(); ___fnet_v; })
#endif
#ifndef smp_store_release
#define smp_store_release(p, v) do { smp_mb(); ACCESS_ONCE(*(p)) = (v); } while (0)
#endif

/* 5.0 (commit 96d4f267e40f): access_ok() lost its VERIFY_READ/VERIFY_WRITE argument.
 * RHEL 8.1 (4.18) backported that change, hence the RHEL test. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 0, 0) || FNET_RHEL_GE(8, 1)
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

/* 5.3 (commit 9285ec4c8b61): ktime_get_boot_ns() renamed ktime_get_boottime_ns(); 3.17
 * introduced the former.  RHEL 8.2 (4.18) backported the rename.  3.10: ktime_get_boottime()
 * (a seqcount read of the timekeeper, never a lock, so fine in a tracepoint), converted. */
static inline u64 fnet_boot_ns(void)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 3, 0) || FNET_RHEL_GE(8, 2)
	return ktime_get_boottime_ns();
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(3, 17, 0)
	return ktime_get_boot_ns();
#else
	return ktime_to_ns(ktime_get_boottime());
#endif
}

/* Task start time in ns since boot: 5.5 task->start_boottime (commit cf25e24db61c);
 * 3.17 .. 5.4 real_start_time as u64 ns (commit ccbf62d8a284 "sched: Make task->start_time
 * nanoseconds based"); 3.10 real_start_time was a struct timespec (RHEL 7 too). */
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

/* 4.15 (commit 686fef928bba "timer: Prepare to change timer callback argument type"):
 * timer_setup()/from_timer() replace setup_timer(), and the callback gets the timer_list
 * instead of an unsigned long.  Declare a callback with FNET_TIMER_FN(name) and set it up
 * with fnet_timer_setup().  setup_timer() (2.6.15 .. 4.14) is used below 4.15 even where a
 * RHEL kernel has backported timer_setup(): both exist there.  6.16 renamed from_timer() to
 * timer_container_of(); 6.2 renamed del_timer_sync() to timer_delete_sync(). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 15, 0)
#define FNET_TIMER_FN(name) void name(struct timer_list *fnet_timer_arg)
#define fnet_timer_setup(t, fn) timer_setup(t, fn, 0)
#else
#define FNET_TIMER_FN(name) void name(unsigned long fnet_timer_arg)
#define fnet_timer_setup(t, fn) setup_timer(t, fn, 0)
#endif
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

/* 3.17: nsecs_to_jiffies() exported to modules (it existed, unexported, since 2.6.37).
 * Before: usecs_to_jiffies(), exported for ever; our periods are whole microseconds. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(3, 17, 0)
#define fnet_nsecs_to_jiffies(ns) nsecs_to_jiffies(ns)
#else
#define fnet_nsecs_to_jiffies(ns) usecs_to_jiffies((unsigned int)((ns) / NSEC_PER_USEC))
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

/* 3.15 (commit de7b2973903c "tracepoint: Use struct pointer instead of name hash for
 * reg/unreg tracepoints"): tracepoints are registered by struct tracepoint *, found with
 * for_each_kernel_tracepoint() (same series); before, tracepoint_probe_register() and
 * _unregister() took the name string (with the data argument since 2.6.35), and a name
 * with no tracepoint behind it was accepted silently (kept for a module loaded later).
 * RHEL 7 (3.10) has the string form.  fnet_tp_register/unregister take both; probes.c
 * looks the structs up only when !FNET_TP_BY_NAME. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(3, 15, 0)
#define FNET_TP_BY_NAME 1
#define fnet_tp_register(tp, name, probe) tracepoint_probe_register(name, probe, NULL)
#define fnet_tp_unregister(tp, name, probe) tracepoint_probe_unregister(name, probe, NULL)
#else
#define fnet_tp_register(tp, name, probe) tracepoint_probe_register(tp, probe, NULL)
#define fnet_tp_unregister(tp, name, probe) tracepoint_probe_unregister(tp, probe, NULL)
#endif

/* 4.10 (commit 530e9b76ae8f "cpu/hotplug: Remove obsolete cpu hotplug register/unregister
 * functions" ended the notifiers; the state machine with CPUHP_AP_ONLINE_DYN dates from
 * 4.6/4.7): main.c uses cpuhp_setup_state_nocalls() from 4.10 on, CPU notifiers
 * (register_hotcpu_notifier, CPU_ONLINE / CPU_DEAD) below.  RHEL 7 has only notifiers. */
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

/* Arrays that may be large (page pointers of a ring): 4.18 kvcalloc() (commit 1c542f38ab8d);
 * 4.12 kvmalloc_array() (commit 752ade68cbd8, kvmalloc() itself a7c3e901a46f); before 4.12,
 * kmalloc without retrying or warning for what fits in a costly order, else vzalloc() (our
 * callers always pass GFP_KERNEL).  kvfree(): 3.15 (commit 39f1f78d53b9); before, vfree() or
 * kfree() by address.  Our own names: RHEL 7 backported some of these, never all. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 18, 0)
#define fnet_kvcalloc(n, size, gfp) kvcalloc(n, size, gfp)
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(4, 12, 0)
#define fnet_kvcalloc(n, size, gfp) kvmalloc_array(n, size, (gfp) | __GFP_ZERO)
#else
static inline void *fnet_kvcalloc(size_t n, size_t size, gfp_t gfp)
{
	void *p = NULL;

	if (size && n > SIZE_MAX / size)
		return NULL;
	if (n * size <= (PAGE_SIZE << PAGE_ALLOC_COSTLY_ORDER))
		p = kmalloc(n * size, gfp | __GFP_ZERO | __GFP_NOWARN | __GFP_NORETRY);
	return p ? p : vzalloc(n * size);
}
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(3, 15, 0)
#define fnet_kvfree(p) kvfree(p)
#else
static inline void fnet_kvfree(const void *p)
{
	if (is_vmalloc_addr(p))
		vfree(p);
	else
		kfree(p);
}
#endif

/* 4.16 (commit e6c8adb20ae2 and its series): ->poll() returns __poll_t and the EPOLL*
 * constants are of that type.  Before: unsigned int and POLL*.  Our own names, so a RHEL
 * backport of __poll_t cannot collide with a typedef of ours. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 16, 0)
#define fnet_poll_t __poll_t
#define FNET_POLLIN EPOLLIN
#define FNET_POLLRDNORM EPOLLRDNORM
#define FNET_POLLHUP EPOLLHUP
#else
#define fnet_poll_t unsigned int
#define FNET_POLLIN POLLIN
#define FNET_POLLRDNORM POLLRDNORM
#define FNET_POLLHUP POLLHUP
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
