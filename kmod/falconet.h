/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * falconet.h - declarations shared by the files of falconet.ko (kernel side only).
 *
 *   ring.c       per-CPU ring buffers: allocation, double mapping, reserve/commit, wakeups
 *   record.c     the record builder: header, bounded fault-safe copies into variable parts
 *   device.c     /dev/falconet: open/release/mmap/poll/ioctl, the flush timer
 *   probes.c     tracepoint lookup and (un)registration, sys_exit dispatch, sched probes
 *   syscalls.c   syscall number -> event type and filler table
 *   fill_*.c     per-syscall fillers grouped by family (file, proc, net, sys)
 *   main.c       module parameters, init/exit, CPU hotplug
 */
#ifndef FNET_FALCONET_H
#define FNET_FALCONET_H

#include <linux/types.h>
#include <linux/irq_work.h>
#include <linux/wait.h>
#include <linux/mutex.h>
#include <linux/ptrace.h>
#include "include/falconet_abi.h"

#define FNET_NAME "falconet"

/* One per possible CPU.  Single producer: the probes running on that CPU with preemption
 * disabled.  Single consumer: userspace, through the mmapped pages. */
struct fnet_ring {
	struct fnet_ring_producer *prod;	/* page shared read-only with userspace */
	struct fnet_ring_consumer *cons;	/* page shared read-write with userspace */
	u8 *data;				/* vmap of the data pages, mapped twice */
	struct page *prod_page;
	struct page *cons_page;
	struct page **pages;			/* data_size / PAGE_SIZE data pages */
	unsigned long nr_pages;
	u64 mask;				/* data_size - 1 */
	struct irq_work wakeup;			/* producer -> reader wakeup, any context */
	int busy;				/* re-entrancy guard, touched only on this CPU */
	int cpu;
};

/* Global state of the module; one instance (fnet) in main.c. */
struct fnet_state {
	struct fnet_ring **rings;		/* [nr_cpu_ids], NULL until first open */
	u64 data_size;
	u32 snaplen;
	unsigned long interest[2];		/* bit per enum falconet_event_type */
	bool capturing;				/* probes registered and recording */
	struct mutex lock;			/* open/start/stop/alloc; never on the hot path */
	wait_queue_head_t wq;			/* poll() waiters */
	char __percpu *scratch;			/* PATH_MAX per CPU for d_path() */
};
extern struct fnet_state fnet;

/* ring.c */
int fnet_rings_alloc(void);
void fnet_rings_free(void);
void fnet_rings_reset(void);
void fnet_ring_set_online(int cpu, bool online);
struct fnet_ring *fnet_ring_of(int cpu);
u64 fnet_ring_pending(struct fnet_ring *r);

/* record.c: building one record directly in the ring of the current CPU. */
struct fnet_rec {
	struct fnet_ring *ring;
	struct fnet_event_hdr *hdr;
	u64 prod;		/* producer position at reserve time */
	u64 cons;		/* consumer position seen at reserve time */
	u32 cap;		/* bytes this record may use: min(free space, FNET_MAX_RECORD) */
	u32 used;		/* bytes used so far, header included */
	int next_slot;		/* variable parts must be added in slot order */
	bool ring_limited;	/* cap came from free space, not FNET_MAX_RECORD */
	bool lost;		/* a part did not fit in free space: drop at commit */
	bool toolong;		/* a part was cut to fit FNET_MAX_RECORD */
};

bool fnet_rec_begin(struct fnet_rec *r, u16 type, long ret);
void fnet_rec_commit(struct fnet_rec *r);
void fnet_rec_abort(struct fnet_rec *r);
void fnet_put_ustr(struct fnet_rec *r, int slot, unsigned long uptr);
void fnet_put_uargv(struct fnet_rec *r, int slot, unsigned long uargv);
void fnet_put_ubytes_argv(struct fnet_rec *r, int slot, unsigned long start, unsigned long end);
void fnet_put_kbytes(struct fnet_rec *r, int slot, const void *p, u32 len);
void fnet_put_kstr(struct fnet_rec *r, int slot, const char *s);
int fnet_copy_user(void *dst, unsigned long src, unsigned long len);
void fnet_put_fd_path(struct fnet_rec *r, int slot, int fd, u64 *dev, u64 *ino);
struct path;
void fnet_put_path(struct fnet_rec *r, int slot, const struct path *p);
void fnet_put_cwd(struct fnet_rec *r, int slot);
void fnet_put_usockaddr(struct fnet_rec *r, int slot, unsigned long uaddr, unsigned long ulen);
void fnet_put_sock_ends(struct fnet_rec *r, int slot_peer, int slot_local, int fd);
void fnet_rec_fault(struct fnet_rec *r);

/* syscalls.c */
typedef void (*fnet_filler_t)(struct fnet_rec *r, const unsigned long *a, long ret);
struct fnet_sc {
	u16 ev;
	fnet_filler_t fill;
};
const struct fnet_sc *fnet_sc_lookup(long nr);
void fnet_sc_init(void);

/* fill_*.c: one function per syscall, named fnet_fill_<syscall>. */
#define FNET_FILLER(name) void fnet_fill_##name(struct fnet_rec *r, const unsigned long *a, long ret)

/* Every filler, declared once here for the fill_*.c files that define them and for
 * syscalls.c, which puts them in its table (since 6.8 the kernel builds with
 * -Wmissing-prototypes: a filler defined without a visible prototype is a warning). */
#define F(name) FNET_FILLER(name);
F(open) F(openat) F(openat2) F(creat) F(close) F(dup) F(dup2) F(dup3) F(fcntl)
F(link) F(linkat) F(symlinkat) F(path0) F(unlinkat) F(renameat) F(path_mode)
F(dirfd_path_mode) F(fchmod) F(chown) F(fchown) F(fchownat) F(fchdir) F(mount) F(name_flags)
F(execve) F(execveat) F(clone) F(clone3) F(none) F(ptrace) F(two_ints) F(tgkill) F(prctl)
F(setns) F(flags0) F(ids1) F(ids2) F(ids3) F(capset)
F(socket) F(socketpair) F(connect) F(accept) F(bind) F(listen) F(sendto) F(recvfrom) F(msg)
F(fd_ints)
F(init_module) F(finit_module) F(delete_module) F(ioctl) F(mprotect)
#undef F

/* fill_proc.c: the records written from the sched_process_{exec,fork,exit} probes. */
struct linux_binprm;
struct task_struct;
void fnet_fill_exec_ok(struct fnet_rec *r, struct linux_binprm *bprm);
void fnet_fill_fork(struct fnet_rec *r, struct task_struct *parent, struct task_struct *child);
void fnet_fill_exit(struct fnet_rec *r, struct task_struct *p);

/* probes.c */
int fnet_probes_init(void);
int fnet_probes_register(void);
void fnet_probes_unregister(void);

/* device.c */
int fnet_device_init(void);
void fnet_device_exit(void);
int fnet_capture_start(void);
void fnet_capture_stop(void);

static inline bool fnet_interested(u16 ev)
{
	return ev < FNET_NUM_EVENT_TYPES && test_bit(ev, fnet.interest);
}

#endif /* FNET_FALCONET_H */
