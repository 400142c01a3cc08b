// SPDX-License-Identifier: GPL-2.0-only
/*
 * probes.c - the tracepoints falconet.ko attaches to, and what each probe records.
 *
 *   raw_syscalls:sys_exit       every syscall of interest, arguments and result together
 *   sched:sched_process_exec    successful execve/execveat (the new image's identity)
 *   sched:sched_process_fork    PROC_FORK, in the parent
 *   sched:sched_process_exit    PROC_EXIT
 *
 * sys_enter is deliberately not used: arguments are read at exit from the saved registers,
 * so one probe per syscall instead of two (see kmod/README.md, "Why exit only").
 *
 * The tracepoints are not exported to modules, so they are found by name with
 * for_each_kernel_tracepoint() at init.  They are registered on START and unregistered on
 * STOP; tracepoint_synchronize_unregister() then waits for probes still running, after
 * which nothing of ours runs in tracepoint context.  Before 3.15 (FNET_TP_BY_NAME in
 * compat.h) tracepoints are registered by their name string and there is nothing to look up.
 */
#include <linux/tracepoint.h>
#include <linux/sched.h>
#include <linux/binfmts.h>
#include <linux/string.h>
#include <linux/err.h>
#include <asm/syscall.h>
#include "falconet.h"
#include "compat.h"

static void fnet_count_compat(void)
{
	struct fnet_ring *ring;

	preempt_disable();
	ring = fnet_ring_of(smp_processor_id());
	if (ring)
		ring->prod->drops_compat++;
	preempt_enable();
}

static void fnet_probe_sys_exit(void *data, struct pt_regs *regs, long ret)
{
	long nr = syscall_get_nr(current, regs);
	const struct fnet_sc *sc;
	unsigned long a[6];
	struct fnet_rec r;

	if (unlikely(nr < 0))
		return;	/* not a syscall (e.g. -1 after a signal restart): nothing to record */
	if (unlikely(fnet_compat_syscall(nr))) {
		fnet_count_compat();	/* other numbers, other layouts: never misread */
		return;
	}
	sc = fnet_sc_lookup(nr);
	if (!sc || !fnet_interested(sc->ev))
		return;
	switch (sc->ev) {
	case FNET_EV_EXECVE:
	case FNET_EV_EXECVEAT:
		if (ret == 0)
			return;	/* success is recorded by sched_process_exec */
		break;
	case FNET_EV_CLONE:
	case FNET_EV_CLONE3:
	case FNET_EV_FORK:
	case FNET_EV_VFORK:
		if (ret == 0)
			return;	/* the child's return: the parent's exit has the record */
		break;
	}
	fnet_syscall_args(regs, a);
	if (!fnet_rec_begin(&r, sc->ev, ret))
		return;
	sc->fill(&r, a, ret);
	fnet_rec_commit(&r);
}

static void fnet_probe_exec(void *data, struct task_struct *p, pid_t old_pid,
			    struct linux_binprm *bprm)
{
	struct fnet_rec r;
	u16 ev = FNET_EV_EXECVE;

#ifdef __NR_execveat
	if (syscall_get_nr(current, task_pt_regs(current)) == __NR_execveat)
		ev = FNET_EV_EXECVEAT;
#endif
	if (!fnet_interested(ev) || !fnet_rec_begin(&r, ev, 0))
		return;
	fnet_fill_exec_ok(&r, bprm);
	fnet_rec_commit(&r);
}

static void fnet_probe_fork(void *data, struct task_struct *parent, struct task_struct *child)
{
	struct fnet_rec r;

	if (!fnet_interested(FNET_EV_PROC_FORK) || !fnet_rec_begin(&r, FNET_EV_PROC_FORK, 0))
		return;
	fnet_fill_fork(&r, parent, child);
	fnet_rec_commit(&r);
}

static void fnet_probe_exit(void *data, struct task_struct *p)
{
	struct fnet_rec r;

	if (!fnet_interested(FNET_EV_PROC_EXIT) || !fnet_rec_begin(&r, FNET_EV_PROC_EXIT, 0))
		return;
	fnet_fill_exit(&r, p);
	fnet_rec_commit(&r);
}

static struct fnet_tp {
	const char *name;
	void *probe;
	struct tracepoint *tp;
	bool registered;
} fnet_tps[] = {
	{ "sys_exit", fnet_probe_sys_exit },
	{ "sched_process_exec", fnet_probe_exec },
	{ "sched_process_fork", fnet_probe_fork },
	{ "sched_process_exit", fnet_probe_exit },
};

#ifdef FNET_TP_BY_NAME
/* < 3.15: registration is by name, and an unknown name is accepted (kept pending for a
 * module that may define it later), so a missing tracepoint cannot be detected here; a
 * kernel without syscall tracepoints then simply records nothing. */
int fnet_probes_init(void)
{
	return 0;
}
#else
static void fnet_tp_lookup(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(fnet_tps); i++)
		if (!strcmp(tp->name, fnet_tps[i].name))
			fnet_tps[i].tp = tp;
}

int fnet_probes_init(void)
{
	int i;

	for_each_kernel_tracepoint(fnet_tp_lookup, NULL);
	for (i = 0; i < ARRAY_SIZE(fnet_tps); i++) {
		if (!fnet_tps[i].tp) {
			pr_err(FNET_NAME ": kernel tracepoint %s not found (needs "
			       "CONFIG_HAVE_SYSCALL_TRACEPOINTS and CONFIG_TRACEPOINTS)\n",
			       fnet_tps[i].name);
			return -ENOENT;
		}
	}
	return 0;
}
#endif

void fnet_probes_unregister(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(fnet_tps); i++) {
		if (fnet_tps[i].registered)
			fnet_tp_unregister(fnet_tps[i].tp, fnet_tps[i].name, fnet_tps[i].probe);
		fnet_tps[i].registered = false;
	}
	/* Wait for every probe that may still be running on another CPU. */
	tracepoint_synchronize_unregister();
}

int fnet_probes_register(void)
{
	int i, err;

	for (i = 0; i < ARRAY_SIZE(fnet_tps); i++) {
		err = fnet_tp_register(fnet_tps[i].tp, fnet_tps[i].name, fnet_tps[i].probe);
		if (err) {
			pr_err(FNET_NAME ": cannot attach to tracepoint %s: %d\n",
			       fnet_tps[i].name, err);
			fnet_probes_unregister();
			return err;
		}
		fnet_tps[i].registered = true;
	}
	return 0;
}
