// SPDX-License-Identifier: GPL-2.0-only
/*
 * ring.c - per-CPU ring buffers.
 *
 * Each ring owns three kinds of pages, allocated on the ring's NUMA node:
 *   - one producer page (struct fnet_ring_producer): written only by the kernel, mapped
 *     read-only into the reader;
 *   - one consumer page (struct fnet_ring_consumer): the only page userspace may write;
 *   - data_size / PAGE_SIZE data pages, vmap()ed twice back to back in the kernel (and
 *     mapped twice by device.c in userspace), so a record that runs past the end of the
 *     buffer simply continues into the second copy and is never split.
 *
 * Rings are allocated for every *possible* CPU on the first open of the device and kept
 * until the module is unloaded, so a CPU coming online needs no allocation (hotplug only
 * flips the `online` flag) and counters survive reader restarts until the next START.
 */
#include <linux/vmalloc.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/cpumask.h>
#include <linux/topology.h>
#include "falconet.h"
#include "compat.h"

static void fnet_ring_wakeup(struct irq_work *w)
{
	/* irq_work: the producer may run where taking the waitqueue lock is not allowed
	 * (inside scheduler tracepoints), so the wakeup is deferred to here. */
	wake_up_interruptible(&fnet.wq);
}

static void fnet_ring_free(struct fnet_ring *r)
{
	unsigned long i;

	if (!r)
		return;
	irq_work_sync(&r->wakeup);
	if (r->data)
		vunmap(r->data);
	if (r->pages) {
		for (i = 0; i < r->nr_pages; i++)
			if (r->pages[i])
				__free_page(r->pages[i]);
		fnet_kvfree(r->pages);
	}
	if (r->prod_page)
		__free_page(r->prod_page);
	if (r->cons_page)
		__free_page(r->cons_page);
	kfree(r);
}

static struct fnet_ring *fnet_ring_alloc(int cpu, u64 size)
{
	int node = cpu_to_node(cpu);
	gfp_t gfp = GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN;
	struct page **map = NULL;
	struct fnet_ring *r;
	unsigned long i;

	r = kzalloc_node(sizeof(*r), GFP_KERNEL, node);
	if (!r)
		return NULL;
	r->cpu = cpu;
	r->nr_pages = size >> PAGE_SHIFT;
	r->mask = size - 1;
	init_irq_work(&r->wakeup, fnet_ring_wakeup);

	r->prod_page = alloc_pages_node(node, gfp, 0);
	r->cons_page = alloc_pages_node(node, gfp, 0);
	r->pages = fnet_kvcalloc(r->nr_pages, sizeof(*r->pages), GFP_KERNEL);
	if (!r->prod_page || !r->cons_page || !r->pages)
		goto fail;
	for (i = 0; i < r->nr_pages; i++) {
		r->pages[i] = alloc_pages_node(node, gfp, 0);
		if (!r->pages[i])
			goto fail;
	}
	/* The kernel view of the data: the same pages twice in a row. */
	map = fnet_kvcalloc(2 * r->nr_pages, sizeof(*map), GFP_KERNEL);
	if (!map)
		goto fail;
	for (i = 0; i < 2 * r->nr_pages; i++)
		map[i] = r->pages[i % r->nr_pages];
	r->data = vmap(map, 2 * r->nr_pages, VM_MAP, PAGE_KERNEL);
	fnet_kvfree(map);
	if (!r->data)
		goto fail;

	r->prod = page_address(r->prod_page);
	r->cons = page_address(r->cons_page);
	r->prod->data_size = size;
	r->prod->cpu = cpu;
	r->prod->online = cpu_online(cpu);
	/* Default watermark: an eighth of the ring, capped at 1 MiB; readers set their own. */
	r->cons->watermark = min_t(u64, size / 8, 1 << 20);
	return r;
fail:
	fnet_ring_free(r);
	return NULL;
}

/* Called with fnet.lock held. */
int fnet_rings_alloc(void)
{
	struct fnet_ring **rings;
	int cpu;

	if (fnet.rings)
		return 0;
	rings = kcalloc(nr_cpu_ids, sizeof(*rings), GFP_KERNEL);
	if (!rings)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		rings[cpu] = fnet_ring_alloc(cpu, fnet.data_size);
		if (!rings[cpu]) {
			pr_err(FNET_NAME ": cannot allocate %llu bytes of ring for CPU %d; "
			       "load with a smaller ring_bytes=\n", fnet.data_size, cpu);
			for_each_possible_cpu(cpu)
				fnet_ring_free(rings[cpu]);
			kfree(rings);
			return -ENOMEM;
		}
	}
	fnet.rings = rings;
	return 0;
}

/* Module exit only: no probe can run (unregistered + synchronized), no file is open. */
void fnet_rings_free(void)
{
	int cpu;

	if (!fnet.rings)
		return;
	for_each_possible_cpu(cpu)
		fnet_ring_free(fnet.rings[cpu]);
	kfree(fnet.rings);
	fnet.rings = NULL;
}

/* START with the probes unregistered: discard unread data and zero the counters.  The
 * consumer position is moved to the producer's, a store-release so that a reader which
 * reads it afterwards sees an empty ring. */
void fnet_rings_reset(void)
{
	struct fnet_ring_producer *p;
	int cpu;

	if (!fnet.rings)
		return;
	for_each_possible_cpu(cpu) {
		p = fnet.rings[cpu]->prod;
		p->events = 0;
		p->drops_full = 0;
		p->drops_fault = 0;
		p->drops_toolong = 0;
		p->drops_compat = 0;
		smp_store_release(&fnet.rings[cpu]->cons->consumer_pos, p->producer_pos);
	}
}

void fnet_ring_set_online(int cpu, bool online)
{
	if (fnet.rings && fnet.rings[cpu])
		WRITE_ONCE(fnet.rings[cpu]->prod->online, online);
}

struct fnet_ring *fnet_ring_of(int cpu)
{
	if (!fnet.rings || cpu < 0 || cpu >= nr_cpu_ids)
		return NULL;
	return fnet.rings[cpu];
}

/* Bytes written and not yet released.  consumer_pos comes from userspace: a value that makes
 * no sense (ahead of the producer, or more than a ring behind) is reported as a full ring. */
u64 fnet_ring_pending(struct fnet_ring *r)
{
	/* Pairs with the reader's smp_store_release() of consumer_pos. */
	u64 cons = smp_load_acquire(&r->cons->consumer_pos);
	u64 prod = READ_ONCE(r->prod->producer_pos);
	u64 pending = prod - cons;

	return pending > r->mask + 1 ? r->mask + 1 : pending;
}
