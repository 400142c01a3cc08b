// SPDX-License-Identifier: GPL-2.0-only
/*
 * device.c - /dev/falconet: one misc device for all CPUs (the mmap offset selects the CPU,
 * see falconet_abi.h section 2), so a reader opens one file instead of one per CPU.
 *
 * Lifetime: the file holds a reference on the module (fops.owner), and every mapping holds
 * the file, so the module cannot be unloaded while a reader has the device open or mapped:
 * rmmod then fails with EBUSY and nothing is freed under the reader.  Capture started through
 * a file stops when that file is released (reader exit or crash), unregistering the probes.
 */
#include <linux/module.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/uaccess.h>
#include <linux/timer.h>
#include <linux/jiffies.h>
#include "falconet.h"
#include "compat.h"

static struct file *fnet_owner;		/* file that started capture, under fnet.lock */
static struct timer_list fnet_flush_timer;

/* Data older than FNET_POLL_FLUSH_NS makes poll() readable even below the watermark.  The age
 * is that of the oldest unread record, read at consumer_pos.  consumer_pos comes from
 * userspace, but (pos & mask) + header stays inside the double mapping, so a bogus value can
 * only make poll() answer wrongly for that reader, never read outside the ring. */
static bool fnet_ring_readable(struct fnet_ring *r, u64 now)
{
	u64 pending = fnet_ring_pending(r);
	u64 cons, ts;

	if (!pending)
		return false;
	if (pending >= READ_ONCE(r->cons->watermark))
		return true;
	cons = READ_ONCE(r->cons->consumer_pos);
	ts = READ_ONCE(((struct fnet_event_hdr *)(r->data + (cons & r->mask)))->ts);
	return now - ts >= FNET_POLL_FLUSH_NS;
}

static bool fnet_any_readable(void)
{
	u64 now = fnet_boot_ns();
	struct fnet_ring *r;
	int cpu;

	for_each_possible_cpu(cpu) {
		r = fnet_ring_of(cpu);
		if (r && fnet_ring_readable(r, now))
			return true;
	}
	return false;
}

static unsigned long fnet_flush_period(void)
{
	return max_t(unsigned long, 1, fnet_nsecs_to_jiffies(FNET_POLL_FLUSH_NS));
}

static FNET_TIMER_FN(fnet_flush)
{
	if (!READ_ONCE(fnet.capturing))
		return;
	if (fnet_any_readable())
		wake_up_interruptible(&fnet.wq);
	mod_timer(&fnet_flush_timer, jiffies + fnet_flush_period());
}

/* Called with fnet.lock held. */
int fnet_capture_start(void)
{
	int err;

	if (fnet.capturing)
		return 0;
	fnet_rings_reset();
	WRITE_ONCE(fnet.capturing, true);
	err = fnet_probes_register();
	if (err) {
		WRITE_ONCE(fnet.capturing, false);
		return err;
	}
	mod_timer(&fnet_flush_timer, jiffies + fnet_flush_period());
	return 0;
}

/* Called with fnet.lock held.  After it, no probe runs and no wakeup is pending. */
void fnet_capture_stop(void)
{
	int cpu;

	if (!fnet.capturing)
		return;
	fnet_probes_unregister();
	WRITE_ONCE(fnet.capturing, false);
	fnet_timer_delete_sync(&fnet_flush_timer);
	for_each_possible_cpu(cpu)
		if (fnet_ring_of(cpu))
			irq_work_sync(&fnet_ring_of(cpu)->wakeup);
	wake_up_interruptible(&fnet.wq);	/* let a poller see the end */
}

static int fnet_open(struct inode *inode, struct file *f)
{
	int err;

	mutex_lock(&fnet.lock);
	err = fnet_rings_alloc();
	mutex_unlock(&fnet.lock);
	return err;
}

static int fnet_release(struct inode *inode, struct file *f)
{
	mutex_lock(&fnet.lock);
	if (fnet_owner == f) {
		fnet_capture_stop();
		fnet_owner = NULL;
	}
	mutex_unlock(&fnet.lock);
	return 0;
}

static int fnet_map_pages(struct vm_area_struct *vma, struct page **pages, unsigned long n,
			  unsigned long repeat)
{
	unsigned long addr = vma->vm_start, i;
	int err;

	for (i = 0; i < n * repeat; i++, addr += PAGE_SIZE) {
		err = vm_insert_page(vma, addr, pages[i % n]);
		if (err)
			return err;
	}
	return 0;
}

static int fnet_mmap(struct file *f, struct vm_area_struct *vma)
{
	unsigned long cpu = vma->vm_pgoff >> FNET_MMAP_CPU_SHIFT;
	unsigned long region = vma->vm_pgoff & ((1UL << FNET_MMAP_CPU_SHIFT) - 1);
	unsigned long len = vma->vm_end - vma->vm_start;
	struct fnet_ring *r;

	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return -ENXIO;
	r = fnet_ring_of(cpu);
	if (!r)
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;		/* a private copy would never see the producer */
	fnet_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP, 0);
	switch (region) {
	case FNET_MMAP_PRODUCER:
		if (len != PAGE_SIZE)
			return -EINVAL;
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		fnet_vm_flags_set(vma, 0, VM_MAYWRITE);
		return fnet_map_pages(vma, &r->prod_page, 1, 1);
	case FNET_MMAP_CONSUMER:
		if (len != PAGE_SIZE)
			return -EINVAL;
		return fnet_map_pages(vma, &r->cons_page, 1, 1);
	case FNET_MMAP_DATA:
		if (len != 2 * (r->mask + 1))
			return -EINVAL;
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		fnet_vm_flags_set(vma, 0, VM_MAYWRITE);
		return fnet_map_pages(vma, r->pages, r->nr_pages, 2);
	default:
		return -EINVAL;
	}
}

static fnet_poll_t fnet_poll(struct file *f, poll_table *pt)
{
	poll_wait(f, &fnet.wq, pt);
	if (fnet_any_readable())
		return FNET_POLLIN | FNET_POLLRDNORM;
	if (!READ_ONCE(fnet.capturing))
		return FNET_POLLHUP;	/* nothing more will come until START */
	return 0;
}

/* Every ioctl struct starts with its size as the caller knows it.  Accept larger structs
 * from newer userspace (the extra tail is ignored on input, zeroed on output), refuse
 * smaller ones. */
static int fnet_get_size(void __user *arg, u32 min, u32 *size)
{
	if (get_user(*size, (u32 __user *)arg))
		return -EFAULT;
	if (*size < min || *size > PAGE_SIZE)
		return -EINVAL;
	return 0;
}

static long fnet_ioctl_info(void __user *arg)
{
	struct fnet_info info = {};
	u32 size;
	int err = fnet_get_size(arg, sizeof(info), &size);

	if (err)
		return err;
	info.size = sizeof(info);
	info.abi_version = FALCONET_ABI_VERSION;
	info.layout_hash = fnet_layout_hash();
	info.nr_cpus = nr_cpu_ids;
	info.snaplen = READ_ONCE(fnet.snaplen);
	info.data_size = fnet.data_size;
	info.capturing = READ_ONCE(fnet.capturing);
	info.nr_event_types = FNET_NUM_EVENT_TYPES;
	if (size > sizeof(info) && clear_user((u8 __user *)arg + sizeof(info), size - sizeof(info)))
		return -EFAULT;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long fnet_ioctl_stats(void __user *arg)
{
	struct fnet_cpu_stats st = {};
	struct fnet_ring *r;
	u32 size;
	int err = fnet_get_size(arg, sizeof(st), &size);

	if (err)
		return err;
	if (copy_from_user(&st, arg, sizeof(st)))
		return -EFAULT;
	if (st.cpu >= nr_cpu_ids || !cpu_possible(st.cpu))
		return -ENXIO;
	r = fnet_ring_of(st.cpu);
	if (!r)
		return -ENODEV;
	st.size = sizeof(st);
	st.events = READ_ONCE(r->prod->events);
	st.drops_full = READ_ONCE(r->prod->drops_full);
	st.drops_fault = READ_ONCE(r->prod->drops_fault);
	st.drops_toolong = READ_ONCE(r->prod->drops_toolong);
	st.drops_compat = READ_ONCE(r->prod->drops_compat);
	st.bytes = READ_ONCE(r->prod->producer_pos);
	if (size > sizeof(st) && clear_user((u8 __user *)arg + sizeof(st), size - sizeof(st)))
		return -EFAULT;
	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

static long fnet_ioctl(struct file *f, unsigned int cmd, unsigned long uarg)
{
	void __user *arg = (void __user *)uarg;
	long err = 0;
	u32 size;

	switch (cmd) {
	case FNET_IOC_GET_INFO:
		return fnet_ioctl_info(arg);
	case FNET_IOC_GET_STATS:
		return fnet_ioctl_stats(arg);
	case FNET_IOC_START:
		mutex_lock(&fnet.lock);
		if (fnet.capturing && fnet_owner != f) {
			err = -EBUSY;	/* another reader is capturing */
		} else if (!fnet.capturing) {
			err = fnet_capture_start();
			if (!err)
				fnet_owner = f;
		}
		mutex_unlock(&fnet.lock);
		return err;
	case FNET_IOC_STOP:
		mutex_lock(&fnet.lock);
		if (fnet.capturing && fnet_owner != f) {
			err = -EBUSY;
		} else {
			fnet_capture_stop();
			fnet_owner = NULL;
		}
		mutex_unlock(&fnet.lock);
		return err;
	case FNET_IOC_SET_INTEREST: {
		struct fnet_interest in;

		err = fnet_get_size(arg, sizeof(in), &size);
		if (err)
			return err;
		if (copy_from_user(&in, arg, sizeof(in)))
			return -EFAULT;
		/* Word by word; a probe seeing a mix of old and new bits for an instant is fine. */
		WRITE_ONCE(fnet.interest[0], (unsigned long)in.bits[0]);
		WRITE_ONCE(fnet.interest[1], (unsigned long)in.bits[1]);
		return 0;
	}
	case FNET_IOC_SET_SNAPLEN: {
		struct fnet_snaplen sl;

		err = fnet_get_size(arg, sizeof(sl), &size);
		if (err)
			return err;
		if (copy_from_user(&sl, arg, sizeof(sl)))
			return -EFAULT;
		if (sl.snaplen < 1 || sl.snaplen > FNET_MAX_SNAPLEN)
			return -EINVAL;
		WRITE_ONCE(fnet.snaplen, sl.snaplen);
		return 0;
	}
	default:
		return -ENOTTY;
	}
}

static const struct file_operations fnet_fops = {
	.owner = THIS_MODULE,
	.open = fnet_open,
	.release = fnet_release,
	.mmap = fnet_mmap,
	.poll = fnet_poll,
	.unlocked_ioctl = fnet_ioctl,
	.compat_ioctl = fnet_ioctl,	/* all ioctl structs have the same layout in 32 bits */
	.llseek = noop_llseek,
};

static struct miscdevice fnet_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = FNET_NAME,
	.fops = &fnet_fops,
	.mode = 0600,
};

int fnet_device_init(void)
{
	fnet_timer_setup(&fnet_flush_timer, fnet_flush);
	return misc_register(&fnet_misc);
}

void fnet_device_exit(void)
{
	misc_deregister(&fnet_misc);
}
