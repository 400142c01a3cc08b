// SPDX-License-Identifier: GPL-2.0-only
/*
 * record.c - building one record in place in the current CPU's ring.
 *
 * fnet_rec_begin() disables preemption, checks the free space and writes the header at the
 * producer position; fillers then append variable parts in slot order; fnet_rec_commit()
 * pads to 8 bytes, publishes the record with a store-release of producer_pos and re-enables
 * preemption.  Nothing here sleeps or takes a lock that can sleep.
 *
 * User memory is read with page faults disabled: a page that is not resident fails the copy
 * instead of sleeping.  The part is then left empty (or cut where the fault happened), the
 * record gets FNET_RF_FAULT and the CPU's drops_fault counter is incremented.
 *
 * Limits: every variable part is cut to the snaplen (FNET_RF_TRUNC); a record never exceeds
 * FNET_MAX_RECORD (parts beyond are cut, FNET_RF_TRUNC, counted in drops_toolong); a record
 * that does not fit in the free space of the ring is not written at all (drops_full).
 */
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/smp.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/uaccess.h>
#include <linux/dcache.h>
#include <linux/path.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/file.h>
#include <linux/limits.h>
#include "falconet.h"
#include "compat.h"

bool fnet_rec_begin(struct fnet_rec *r, u16 type, long ret)
{
	struct fnet_ring *ring;
	struct fnet_event_hdr *h;
	u64 avail;

	preempt_disable();
	ring = fnet_ring_of(smp_processor_id());
	if (unlikely(!ring)) {
		preempt_enable();
		return false;
	}
	if (unlikely(ring->busy)) {
		/* Re-entry on this CPU (cannot happen from the tracepoints we use, which all run
		 * in task context; guarded anyway).  Counted as a drop, never silent. */
		ring->prod->drops_full++;
		preempt_enable();
		return false;
	}
	ring->busy = 1;
	r->ring = ring;
	/* Pairs with the reader's smp_store_release(&consumer_pos): once we see the new
	 * position, the reader is done with the bytes before it and we may overwrite them. */
	r->cons = smp_load_acquire(&ring->cons->consumer_pos);
	r->prod = ring->prod->producer_pos;	/* only this CPU writes it */
	avail = r->prod - r->cons;
	avail = avail > ring->mask + 1 ? 0 : ring->mask + 1 - avail;
	r->ring_limited = avail < FNET_MAX_RECORD;
	r->cap = (u32)min_t(u64, avail, FNET_MAX_RECORD) & ~7u;
	if (unlikely(r->cap < FNET_HDR_SIZE)) {
		ring->prod->drops_full++;
		ring->busy = 0;
		preempt_enable();
		return false;
	}
	h = (struct fnet_event_hdr *)(ring->data + (r->prod & ring->mask));
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->cpu = smp_processor_id();
	h->ts = fnet_boot_ns();
	h->tid = current->pid;
	h->pid = current->tgid;
	h->ret = ret;
	r->hdr = h;
	r->used = FNET_HDR_SIZE;
	r->next_slot = 0;
	r->lost = false;
	r->toolong = false;
	return true;
}

static void fnet_rec_end(struct fnet_rec *r)
{
	r->ring->busy = 0;
	preempt_enable();
}

void fnet_rec_abort(struct fnet_rec *r)
{
	fnet_rec_end(r);
}

void fnet_rec_commit(struct fnet_rec *r)
{
	struct fnet_ring *ring = r->ring;
	struct fnet_ring_producer *p = ring->prod;
	u32 len = ALIGN(r->used, 8);
	u64 wm, before, after;

	if (unlikely(r->lost || len > r->cap)) {
		p->drops_full++;
		fnet_rec_end(r);
		return;
	}
	memset((u8 *)r->hdr + r->used, 0, len - r->used);
	r->hdr->len = len;
	if (r->toolong) {
		r->hdr->flags |= FNET_RF_TRUNC;
		p->drops_toolong++;
	}
	if (r->hdr->flags & FNET_RF_FAULT)
		p->drops_fault++;
	p->events++;
	/* Publish: every byte of the record (and the counters above) is visible to a reader
	 * that load-acquires the new producer_pos.  Pairs with the reader's load-acquire. */
	smp_store_release(&p->producer_pos, r->prod + len);

	/* Wake the reader only when this record crosses its watermark (from below), never once
	 * per record; the device's flush timer covers data that stays below it. */
	wm = READ_ONCE(ring->cons->watermark);
	before = r->prod - r->cons;
	after = before + len;
	if (before < wm && after >= wm)
		irq_work_queue(&ring->wakeup);
	fnet_rec_end(r);
}

void fnet_rec_fault(struct fnet_rec *r)
{
	r->hdr->flags |= FNET_RF_FAULT;
}

/* The most a part may take: the snaplen, or what is left of the record if less.
 * *by_left tells which of the two is the bound. */
static u32 fnet_bound(struct fnet_rec *r, int slot, bool *by_left)
{
	u32 left = r->cap - r->used;
	u32 snap = READ_ONCE(fnet.snaplen);

	if (slot < r->next_slot || slot >= FNET_NUM_VARS) {
		WARN_ONCE(1, FNET_NAME ": variable part %d out of order\n", slot);
		*by_left = false;
		return 0;
	}
	*by_left = left < snap;
	return *by_left ? left : snap;
}

/* A part was cut at its bound: by the snaplen (TRUNC), by the record limit (TRUNC, counted
 * as toolong) or by the ring's free space (the whole record is dropped at commit). */
static void fnet_cut(struct fnet_rec *r, bool by_left)
{
	if (!by_left)
		r->hdr->flags |= FNET_RF_TRUNC;
	else if (r->ring_limited)
		r->lost = true;
	else
		r->toolong = true;
}

static u32 fnet_room(struct fnet_rec *r, int slot, u32 want)
{
	bool by_left;
	u32 bound = fnet_bound(r, slot, &by_left);

	if (want > bound) {
		fnet_cut(r, by_left);
		want = bound;
	}
	return want;
}

static void fnet_part_done(struct fnet_rec *r, int slot, u32 n)
{
	r->hdr->vlen[slot] = n;
	r->used += n;
	r->next_slot = slot + 1;
}

static u8 *fnet_cursor(struct fnet_rec *r)
{
	return (u8 *)r->hdr + r->used;
}

void fnet_put_kbytes(struct fnet_rec *r, int slot, const void *p, u32 len)
{
	u32 n = fnet_room(r, slot, len);

	memcpy(fnet_cursor(r), p, n);
	fnet_part_done(r, slot, n);
}

void fnet_put_kstr(struct fnet_rec *r, int slot, const char *s)
{
	fnet_put_kbytes(r, slot, s, strnlen(s, FNET_MAX_SNAPLEN));
}

/* Bounded copy of user memory that never sleeps; 0 on success, -EFAULT otherwise. */
int fnet_copy_user(void *dst, unsigned long src, unsigned long len)
{
	unsigned long left;

	if (!fnet_access_ok((const void __user *)src, len))
		return -EFAULT;
	pagefault_disable();
	left = __copy_from_user_inatomic(dst, (const void __user *)src, len);
	pagefault_enable();
	return left ? -EFAULT : 0;
}

/* A user string without its NUL; NULL pointer = empty part. */
void fnet_put_ustr(struct fnet_rec *r, int slot, unsigned long uptr)
{
	bool by_left;
	u32 room = fnet_bound(r, slot, &by_left);
	long n = 0;

	if (uptr && room) {
		pagefault_disable();
		n = strncpy_from_user((char *)fnet_cursor(r), (const char __user *)uptr, room);
		pagefault_enable();
		if (n < 0) {
			fnet_rec_fault(r);
			n = 0;
		} else if (n == room) {
			fnet_cut(r, by_left);
		}
	}
	fnet_part_done(r, slot, n);
}

/* argv from a user array of string pointers: NUL-separated words, no trailing NUL. */
void fnet_put_uargv(struct fnet_rec *r, int slot, unsigned long uargv)
{
	bool by_left;
	u32 room = fnet_bound(r, slot, &by_left);
	u8 *dst = fnet_cursor(r);
	u32 n = 0;
	int i;

	for (i = 0; uargv && i < 4096; i++) {
		unsigned long p = 0;
		long k;

		if (fnet_copy_user(&p, uargv + i * sizeof(p), sizeof(p))) {
			fnet_rec_fault(r);
			break;
		}
		if (!p)
			break;
		if (i > 0) {
			if (n >= room) {
				fnet_cut(r, by_left);
				break;
			}
			dst[n++] = 0;
		}
		if (n >= room) {
			fnet_cut(r, by_left);
			break;
		}
		pagefault_disable();
		k = strncpy_from_user((char *)dst + n, (const char __user *)p, room - n);
		pagefault_enable();
		if (k < 0) {
			fnet_rec_fault(r);
			break;
		}
		n += k;
		if (n == room) {
			fnet_cut(r, by_left);
			break;
		}
	}
	fnet_part_done(r, slot, n);
}

/* argv from a process's own argument area [start, end) (already NUL-separated). */
void fnet_put_ubytes_argv(struct fnet_rec *r, int slot, unsigned long start, unsigned long end)
{
	u32 len = end > start ? (u32)min_t(unsigned long, end - start, FNET_MAX_SNAPLEN) : 0;
	u32 n;

	if (len && end - start == len)
		len--;	/* the area ends with the last word's NUL */
	n = fnet_room(r, slot, len);
	if (n && fnet_copy_user(fnet_cursor(r), start, n)) {
		fnet_rec_fault(r);
		n = 0;
	}
	fnet_part_done(r, slot, n);
}

/* d_path() of a path into the part; the scratch buffer is per CPU (preemption is off). */
void fnet_put_path(struct fnet_rec *r, int slot, const struct path *p)
{
	char *buf = this_cpu_ptr(fnet.scratch);
	char *s = d_path(p, buf, PATH_MAX);

	if (IS_ERR(s)) {
		r->hdr->flags |= FNET_RF_TRUNC;
		fnet_part_done(r, slot, 0);
		return;
	}
	fnet_put_kbytes(r, slot, s, buf + PATH_MAX - 1 - s);
}

/* The path of an open fd of the current task, with its inode's device and number. */
void fnet_put_fd_path(struct fnet_rec *r, int slot, int fd, u64 *dev, u64 *ino)
{
	struct file *f = fd >= 0 ? fget(fd) : NULL;

	if (!f) {
		fnet_part_done(r, slot, 0);
		return;
	}
	if (dev)
		*dev = file_inode(f)->i_sb->s_dev;
	if (ino)
		*ino = file_inode(f)->i_ino;
	fnet_put_path(r, slot, &f->f_path);
	fput(f);
}

/* The current working directory.  fs->lock (a spinlock) keeps pwd stable without taking a
 * reference, so nothing has to be put (path_put() may sleep).  On PREEMPT_RT that lock is a
 * sleeping lock and a record is written with preemption disabled: the part stays empty there
 * (the ABI says so; userspace keeps the cwd it tracked from the snapshot, fork and chdir). */
void fnet_put_cwd(struct fnet_rec *r, int slot)
{
	struct fs_struct *fs = current->fs;
	struct path pwd;

	if (!fs || IS_ENABLED(CONFIG_PREEMPT_RT)) {
		fnet_part_done(r, slot, 0);
		return;
	}
	spin_lock(&fs->lock);
	pwd = fs->pwd;
	fnet_put_path(r, slot, &pwd);
	spin_unlock(&fs->lock);
}
