/* SPDX-License-Identifier: MIT */
/*
 * ring.c - per-CPU ring reader and the memfd userspace producer (see ring.h).
 *
 * Memory ordering (Documentation/core-api/circular-buffers.rst):
 *   producer: write record bytes; store-release producer_pos.
 *   reader:   load-acquire producer_pos; read records; store-release consumer_pos.
 *   producer: load-acquire consumer_pos before reusing space.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_int.h"


/* ---- mapping --------------------------------------------------------------------------------- */


static void unmap_ring(struct ring *g, size_t page)
{
	if (g->prod)
		munmap(g->prod, page);
	if (g->cons)
		munmap(g->cons, page);
	if (g->data)
		munmap(g->data, 2 * g->size);
	free(g->off);
	free(g->ts);
}

static struct fnet_ring_reader *reader_alloc(uint32_t nr_cpus, int *err)
{
	struct fnet_ring_reader *r;

	if (nr_cpus == 0 || nr_cpus > FNET_RING_MAX_CPUS) {
		*err = -EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->rings = calloc(nr_cpus, sizeof(*r->rings))) ||
	    !(r->heap = calloc(nr_cpus, sizeof(*r->heap)))) {
		if (r)
			free(r->rings);
		free(r);
		*err = -ENOMEM;
		return NULL;
	}
	r->fd = r->wake_fd = -1;
	r->nr_cpus = nr_cpus;
	r->st.nr_cpus = nr_cpus;
	r->page = (size_t)sysconf(_SC_PAGESIZE);
	return r;
}

void fnet_reader_close(struct fnet_ring_reader *r)
{
	if (!r)
		return;
	for (uint32_t c = 0; c < r->nr_cpus; c++)
		unmap_ring(&r->rings[c], r->page);
	if (r->fd >= 0)
		close(r->fd);
	if (r->own_wake && r->wake_fd >= 0)
		close(r->wake_fd);
	free(r->rings);
	free(r->heap);
	free(r);
}


struct fnet_ring_reader *fnet_reader_open_dev(const char *path, int *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct fnet_ring_reader *r;

	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	r = fnet_reader_open_fd(fd, err);
	close(fd);
	return r;
}

struct fnet_ring_reader *fnet_reader_open_fd(int devfd, int *err)
{
	int fd = fcntl(devfd, F_DUPFD_CLOEXEC, 0);
	struct fnet_info info;
	struct fnet_ring_reader *r;

	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	if (ioctl(fd, FNET_IOC_GET_INFO, &info) < 0) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	if (info.abi_version != FALCONET_ABI_VERSION || info.layout_hash != fnet_layout_hash()) {
		*err = -EPROTO;
		close(fd);
		return NULL;
	}
	r = reader_alloc(info.nr_cpus, err);
	if (!r) {
		close(fd);
		return NULL;
	}
	r->fd = r->wake_fd = fd;
	r->info = info;
	if (!valid_size(info.data_size, r->page)) {
		*err = -EPROTO;
		goto fail;
	}
	for (uint32_t c = 0; c < info.nr_cpus; c++) {
		struct ring *g = &r->rings[c];
		off_t base = (off_t)((uint64_t)c << FNET_MMAP_CPU_SHIFT) * (off_t)r->page;
		void *p;

		g->size = info.data_size;
		p = mmap(NULL, r->page, PROT_READ, MAP_SHARED, fd, base + FNET_MMAP_PRODUCER * r->page);
		g->prod = p == MAP_FAILED ? NULL : p;
		p = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 base + FNET_MMAP_CONSUMER * r->page);
		g->cons = p == MAP_FAILED ? NULL : p;
		/* the module maps the data pages twice itself */
		p = mmap(NULL, 2 * g->size, PROT_READ, MAP_SHARED, fd, base + FNET_MMAP_DATA * r->page);
		g->data = p == MAP_FAILED ? NULL : p;
		if (!g->prod || !g->cons || !g->data) {
			*err = -errno;
			goto fail;
		}
		g->pos = g->end = LOAD_ACQ(&g->cons->consumer_pos);
	}
	/* the module stamps a record before filling it: an idle CPU may still commit one
	 * older than what busy CPUs published (see ring.h, "Idle CPUs") */
	r->holdback_ns = FNET_READER_HOLDBACK_NS;
	return r;
fail:
	fnet_reader_close(r);
	return NULL;
}


struct fnet_ring_reader *fnet_reader_open_memfd(int memfd, int wake_fd, uint32_t nr_cpus,
						uint64_t data_size, int *err)
{
	struct fnet_ring_reader *r = reader_alloc(nr_cpus, err);

	if (!r)
		return NULL;
	if (!valid_size(data_size, r->page)) {
		*err = -EINVAL;
		goto fail;
	}
	r->wake_fd = wake_fd >= 0 ? fcntl(wake_fd, F_DUPFD_CLOEXEC, 0) : -1;
	r->own_wake = 1;
	r->info.size = sizeof(r->info);
	r->info.nr_cpus = nr_cpus;
	r->info.data_size = data_size;
	for (uint32_t c = 0; c < nr_cpus; c++) {
		struct ring *g = &r->rings[c];
		off_t base = cpu_base(c, data_size, r->page);
		void *p;

		g->size = data_size;
		p = mmap(NULL, r->page, PROT_READ, MAP_SHARED, memfd, base);
		g->prod = p == MAP_FAILED ? NULL : p;
		p = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, base + r->page);
		g->cons = p == MAP_FAILED ? NULL : p;
		g->data = map_twice(memfd, base + 2 * r->page, data_size, PROT_READ);
		if (!g->prod || !g->cons || !g->data) {
			*err = -errno ? -errno : -ENOMEM;
			goto fail;
		}
		g->pos = g->end = LOAD_ACQ(&g->cons->consumer_pos);
	}
	return r;
fail:
	fnet_reader_close(r);
	return NULL;
}

void fnet_reader_set_watermark(struct fnet_ring_reader *r, uint64_t bytes)
{
	r->watermark = bytes;
	for (uint32_t c = 0; c < r->nr_cpus; c++)
		STORE_REL(&r->rings[c].cons->watermark, bytes);
}

int fnet_reader_fd(struct fnet_ring_reader *r)
{
	return r->wake_fd;
}

void fnet_reader_info(struct fnet_ring_reader *r, struct fnet_info *out)
{
	*out = r->info;
}

/* ---- waiting ---------------------------------------------------------------------------------- */

/* 1 when a read would move something: a ring has records not walked yet, or the records
 * the last read held back are due (always, without a holdback: the CPU that bounded them
 * may have gone idle).  Otherwise 0, with *hold_ms the wait until held records are due. */
static int ready(struct fnet_ring_reader *r, int *hold_ms)
{
	int held = 0;

	*hold_ms = -1;
	for (uint32_t c = 0; c < r->nr_cpus; c++) {
		const struct ring *g = &r->rings[c];
		uint64_t prod = LOAD_ACQ(&g->prod->producer_pos);

		if (prod == g->pos)
			continue;
		if (!r->holding || prod != g->end)
			return 1;
		held = 1;
	}
	if (!held)
		return 0;
	if (!r->holdback_ns || r->gone)
		return 1;
	uint64_t now = boot_ns();

	if (now >= r->hold_until)
		return 1;
	*hold_ms = (int)((r->hold_until - now + 999999) / 1000000);
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int fnet_reader_wait(struct fnet_ring_reader *r, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? mono_ms() + timeout_ms : -1;
	/* After a small read, let the device decide when to come back (a ring at the
	 * watermark, or data older than its flush age): reading each trickle at once costs
	 * a read per few records under a steady stream. */
	int lazy = r->last_small && r->fd >= 0;

	for (;;) {
		struct pollfd pfd;
		int n, hold_ms, t;

		if (ready(r, &hold_ms) && !lazy)
			return 1;
		if (r->gone)
			return any_data(r) ? 1 : FNET_RING_GONE;
		if (r->wake_fd < 0)
			return 0;
		t = -1;
		if (deadline >= 0) {
			int64_t left = deadline - mono_ms();

			t = left > 0 ? (int)left : 0;
		}
		if (hold_ms >= 0 && (t < 0 || hold_ms < t))
			t = hold_ms;	/* wake when the held-back records are due */
		pfd.fd = r->wake_fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r->st.waits++;
		n = poll(&pfd, 1, t);
		lazy = 0;
		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		if (n > 0 && (pfd.revents & POLLIN) && r->fd < 0) {
			char buf[256];	/* the memfd producer's pipe: drain the wake bytes */

			while (read(r->wake_fd, buf, sizeof(buf)) > 0)
				;
		}
		if (n > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
			r->gone = 1;
			r->st.gone = 1;
			return any_data(r) ? 1 : FNET_RING_GONE;
		}
		if (ready(r, &hold_ms))
			return 1;
		if (deadline >= 0 && mono_ms() >= deadline)
			return 0;
		/* A wakeup for records already taken, or for held ones not due yet: wait on.
		 * The device's poll is level-triggered (a ring above the watermark stays
		 * readable), so sleep out the holdback rather than spin on it. */
		if (n > 0 && r->fd >= 0 && hold_ms > 0)
			poll(NULL, 0, (t >= 0 && t < hold_ms) ? t : hold_ms);
	}
}
