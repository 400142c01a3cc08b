/* SPDX-License-Identifier: MIT */
/*
 * ring_producer.c - a userspace producer writing the module's ring layout into memfd shared
 * memory (see ring.h): tests and benchmarks of the reader on any machine.  One producer per
 * CPU ring; records are published with a store-release of producer_pos, space is reused
 * after a load-acquire of consumer_pos, the reader is woken through a pipe when a ring
 * crosses its watermark (as the module does), and closing the pipe means "gone".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "falconet_abi.h"
#include "ring.h"
#include "ring_int.h"

struct uring {
	struct fnet_ring_producer *prod;	/* RW on this side */
	struct fnet_ring_consumer *cons;
	uint8_t *data;
	uint64_t pos;
};

struct fnet_uprod {
	int memfd;
	int wake[2];
	uint32_t nr_cpus;
	uint64_t size;
	size_t page;
	struct uring *rings;
};

void fnet_uprod_free(struct fnet_uprod *p)
{
	if (!p)
		return;
	for (uint32_t c = 0; p->rings && c < p->nr_cpus; c++) {
		struct uring *g = &p->rings[c];

		if (g->prod)
			munmap(g->prod, p->page);
		if (g->cons)
			munmap(g->cons, p->page);
		if (g->data)
			munmap(g->data, 2 * p->size);
	}
	free(p->rings);
	if (p->memfd >= 0)
		close(p->memfd);
	if (p->wake[0] >= 0)
		close(p->wake[0]);
	if (p->wake[1] >= 0)
		close(p->wake[1]);
	free(p);
}

struct fnet_uprod *fnet_uprod_new(uint32_t nr_cpus, uint64_t data_size, int *err)
{
	struct fnet_uprod *p = calloc(1, sizeof(*p));

	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	p->memfd = p->wake[0] = p->wake[1] = -1;
	p->page = (size_t)sysconf(_SC_PAGESIZE);
	p->nr_cpus = nr_cpus;
	p->size = data_size;
	if (nr_cpus == 0 || nr_cpus > FNET_RING_MAX_CPUS || !valid_size(data_size, p->page)) {
		*err = -EINVAL;
		goto fail;
	}
	p->rings = calloc(nr_cpus, sizeof(*p->rings));
	p->memfd = memfd_create("falconet-rings", MFD_CLOEXEC);
	if (!p->rings || p->memfd < 0 || pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    ftruncate(p->memfd, cpu_base(nr_cpus, data_size, p->page)) < 0) {
		*err = errno ? -errno : -ENOMEM;
		goto fail;
	}
	for (uint32_t c = 0; c < nr_cpus; c++) {
		struct uring *g = &p->rings[c];
		off_t base = cpu_base(c, data_size, p->page);
		void *m;

		m = mmap(NULL, p->page, PROT_READ | PROT_WRITE, MAP_SHARED, p->memfd, base);
		g->prod = m == MAP_FAILED ? NULL : m;
		m = mmap(NULL, p->page, PROT_READ, MAP_SHARED, p->memfd, base + p->page);
		g->cons = m == MAP_FAILED ? NULL : m;
		g->data = map_twice(p->memfd, base + 2 * p->page, data_size, PROT_READ | PROT_WRITE);
		if (!g->prod || !g->cons || !g->data) {
			*err = -ENOMEM;
			goto fail;
		}
		g->prod->data_size = data_size;
		g->prod->cpu = c;
		g->prod->online = 1;
	}
	return p;
fail:
	fnet_uprod_free(p);
	return NULL;
}

int fnet_uprod_memfd(struct fnet_uprod *p)
{
	return p->memfd;
}

int fnet_uprod_wake_fd(struct fnet_uprod *p)
{
	return p->wake[0];
}

void fnet_uprod_wake(struct fnet_uprod *p)
{
	if (p->wake[1] >= 0) {
		ssize_t n = write(p->wake[1], "w", 1);

		(void)n;	/* a full pipe already means "wake" */
	}
}

void fnet_uprod_hangup(struct fnet_uprod *p)
{
	if (p->wake[1] >= 0) {
		close(p->wake[1]);
		p->wake[1] = -1;
	}
}

int fnet_uprod_write(struct fnet_uprod *p, uint32_t cpu, const uint8_t *rec, uint32_t len)
{
	struct uring *g = &p->rings[cpu];
	uint64_t cons = LOAD_ACQ(&g->cons->consumer_pos);
	uint64_t wm = g->cons->watermark;

	if (g->pos - cons + len > p->size) {
		g->prod->drops_full++;
		return -1;
	}
	memcpy(g->data + (g->pos & (p->size - 1)), rec, len);
	g->pos += len;
	g->prod->events++;
	STORE_REL(&g->prod->producer_pos, g->pos);
	/* wake only when crossing the watermark, as the module does */
	if (g->pos - len - cons < (wm ? wm : 1) && g->pos - cons >= (wm ? wm : 1))
		fnet_uprod_wake(p);
	return 0;
}

uint64_t fnet_uprod_write_buf(struct fnet_uprod *p, uint32_t cpu, const uint8_t *buf,
			      uint64_t size, int block)
{
	uint64_t off = 0, n = 0;

	while (off + FNET_HDR_SIZE <= size) {
		uint32_t len = ((const struct fnet_event_hdr *)(buf + off))->len;

		if (len < FNET_HDR_SIZE || off + len > size)
			break;
		while (fnet_uprod_write(p, cpu, buf + off, len) < 0) {
			if (!block)
				return n;
			p->rings[cpu].prod->drops_full--;	/* retried, not dropped */
			fnet_uprod_wake(p);
			sched_yield();
		}
		off += len;
		n++;
	}
	return n;
}
