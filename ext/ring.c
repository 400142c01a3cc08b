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

#include "falconet_abi.h"
#include "ring.h"
#include "ring_int.h"


struct ring {
	struct fnet_ring_producer *prod;
	struct fnet_ring_consumer *cons;
	uint8_t *data;		/* 2 * size bytes: the data pages twice */
	uint64_t size;
	uint64_t pos;		/* our consumer position (== cons->consumer_pos) */
	uint64_t drops_seen;
	/* this call's walk */
	uint32_t n, at, cap;
	uint32_t *off;		/* record offsets (pos & mask) */
	uint64_t *ts;
	uint64_t end;		/* position after the last walked record */
	uint64_t block_ts;	/* ts of the first record not walked for lack of budget */
	int blocked;
};

struct fnet_ring_reader {
	int fd;			/* device fd, or -1 */
	int wake_fd;		/* fd to poll */
	int own_wake;
	int gone;
	uint32_t nr_cpus;
	size_t page;
	struct ring *rings;
	struct fnet_info info;
	struct fnet_reader_stats st;
	uint32_t *heap;
};

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
		g->pos = LOAD_ACQ(&g->cons->consumer_pos);
	}
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
		g->pos = LOAD_ACQ(&g->cons->consumer_pos);
	}
	return r;
fail:
	fnet_reader_close(r);
	return NULL;
}

void fnet_reader_set_watermark(struct fnet_ring_reader *r, uint64_t bytes)
{
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

static int any_data(struct fnet_ring_reader *r)
{
	for (uint32_t c = 0; c < r->nr_cpus; c++)
		if (LOAD_ACQ(&r->rings[c].prod->producer_pos) != r->rings[c].pos)
			return 1;
	return 0;
}

int fnet_reader_wait(struct fnet_ring_reader *r, int timeout_ms)
{
	struct pollfd pfd;
	int n;

	if (any_data(r))
		return 1;
	if (r->gone)
		return FNET_RING_GONE;
	if (r->wake_fd < 0)
		return 0;
	pfd.fd = r->wake_fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	r->st.waits++;
	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return any_data(r);
	if (pfd.revents & POLLIN) {
		if (r->fd < 0) {	/* the memfd producer's pipe: drain the wake bytes */
			char buf[256];

			while (read(r->wake_fd, buf, sizeof(buf)) > 0)
				;
		}
	}
	if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
		r->gone = 1;
		r->st.gone = 1;
		return any_data(r) ? 1 : FNET_RING_GONE;
	}
	return 1;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int grow_walk(struct ring *g)
{
	uint32_t ncap = g->cap ? g->cap * 2 : 4096;
	uint32_t *no = realloc(g->off, ncap * sizeof(*no));

	if (!no)
		return -1;
	g->off = no;
	uint64_t *nt = realloc(g->ts, ncap * sizeof(*nt));

	if (!nt)
		return -1;
	g->ts = nt;
	g->cap = ncap;
	return 0;
}

/* Walk the complete records of one ring from g->pos, at most `budget` bytes (the first
 * record whatever its size, if it fits in the caller's cap). */
static int walk(struct fnet_ring_reader *r, struct ring *g, uint64_t budget, uint64_t cap)
{
	uint64_t prod = LOAD_ACQ(&g->prod->producer_pos);
	uint64_t p = g->pos, mask = g->size - 1;
	int corrupt = 0;

	g->n = g->at = 0;
	g->blocked = 0;
	if (prod - p > g->size) {	/* impossible positions: resync */
		corrupt = 1;
		r->st.corrupt_bytes += prod - p;
		g->pos = g->end = prod;
		return corrupt;
	}
	while (p < prod && p - g->pos < budget) {
		const struct fnet_event_hdr *h = (const void *)(g->data + (p & mask));
		uint64_t len = h->len;

		if (len < FNET_HDR_SIZE || (len & 7) || len > prod - p) {
			corrupt = 1;
			r->st.corrupt_bytes += prod - p;
			if (g->n == 0)
				g->pos = prod;	/* nothing before it: skip the rest now */
			else
				prod = p;	/* emit what came before, skip the rest next call */
			break;
		}
		if (p - g->pos + len > budget && (g->n > 0 || len > cap)) {
			/* still bounds the cutoff: nothing newer may pass this record */
			g->blocked = 1;
			g->block_ts = h->ts;
			break;
		}
		if (g->n == g->cap && grow_walk(g) < 0)
			break;
		g->off[g->n] = (uint32_t)(p & mask);
		g->ts[g->n] = h->ts;
		g->n++;
		p += len;
	}
	g->end = p;
	return corrupt;
}

static inline int before(struct fnet_ring_reader *r, uint32_t a, uint32_t b)
{
	struct ring *x = &r->rings[a], *y = &r->rings[b];
	uint64_t ta = x->ts[x->at], tb = y->ts[y->at];

	return ta < tb || (ta == tb && a < b);
}

static void sift_down(struct fnet_ring_reader *r, uint32_t *h, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;

		if (l < n && before(r, h[l], h[m]))
			m = l;
		if (l + 1 < n && before(r, h[l + 1], h[m]))
			m = l + 1;
		if (m == i)
			return;
		uint32_t t = h[i];

		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

int64_t fnet_reader_read(struct fnet_ring_reader *r, uint8_t *out, uint64_t cap,
			 struct fnet_read_info *info)
{
	uint64_t cutoff = UINT64_MAX, w = 0, recs = 0, held = 0, drops = 0;
	uint32_t nh = 0, with = 0, corrupt = 0;
	uint32_t *h = r->heap;

	/* Walk about cap / (busy CPUs) per CPU: the merge emits at most cap in all, and whatever
	 * is walked but not emitted would be walked again by the next call. */
	uint32_t busy = 0;
	uint64_t budget;

	for (uint32_t c = 0; c < r->nr_cpus; c++)
		busy += LOAD_ACQ(&r->rings[c].prod->producer_pos) != r->rings[c].pos;
	budget = busy > 1 ? cap / busy : cap;
	if (budget < FNET_MAX_RECORD + 8 && cap >= FNET_MAX_RECORD + 8)
		budget = FNET_MAX_RECORD + 8;	/* always room for one record of any size */
	for (uint32_t c = 0; c < r->nr_cpus; c++) {
		struct ring *g = &r->rings[c];

		if (walk(r, g, budget, cap)) {
			corrupt++;
			r->st.corrupt++;
		}
		if (g->n) {
			with++;
			if (g->ts[g->n - 1] < cutoff)
				cutoff = g->ts[g->n - 1];
		} else if (g->blocked && g->block_ts < cutoff) {
			cutoff = g->block_ts;
		}
		uint64_t d = g->prod->drops_full + g->prod->drops_fault + g->prod->drops_toolong +
			     g->prod->drops_compat;

		drops += d - g->drops_seen;
		g->drops_seen = d;
	}
	for (uint32_t c = 0; c < r->nr_cpus; c++)
		if (r->rings[c].n)
			h[nh++] = c;
	for (int i = (int)nh / 2 - 1; i >= 0; i--)
		sift_down(r, h, nh, (uint32_t)i);
	while (nh) {
		struct ring *g = &r->rings[h[0]];
		const uint8_t *rec = g->data + g->off[g->at];
		uint64_t len = ((const struct fnet_event_hdr *)rec)->len;

		if (g->ts[g->at] > cutoff || w + len > cap) {
			if (w + len > cap)
				break;
			h[0] = h[--nh];	/* this CPU is past the cutoff: done with it */
			sift_down(r, h, nh, 0);
			continue;
		}
		memcpy(out + w, rec, len);
		w += len;
		recs++;
		g->pos += len;
		if (++g->at == g->n) {
			h[0] = h[--nh];
		}
		sift_down(r, h, nh, 0);
	}
	for (uint32_t c = 0; c < r->nr_cpus; c++) {
		struct ring *g = &r->rings[c];

		held += g->n - g->at;
		STORE_REL(&g->cons->consumer_pos, g->pos);	/* one release per CPU per batch */
	}
	r->st.records += recs;
	r->st.bytes += w;
	r->st.reads++;
	if (info) {
		info->records = recs;
		info->bytes = w;
		info->held_back = held;
		info->new_drops = drops;
		info->cutoff_ts = with ? cutoff : 0;
		info->cpus_with_data = with;
		info->corrupt = corrupt;
	}
	if (w == 0 && r->gone && !any_data(r))
		return FNET_RING_GONE;
	return (int64_t)w;
}

void fnet_reader_get_stats(struct fnet_ring_reader *r, struct fnet_reader_stats *out)
{
	*out = r->st;
	out->events = out->drops_full = out->drops_fault = out->drops_toolong = 0;
	out->drops_compat = 0;
	for (uint32_t c = 0; c < r->nr_cpus; c++) {
		const struct fnet_ring_producer *p = r->rings[c].prod;

		out->events += p->events;
		out->drops_full += p->drops_full;
		out->drops_fault += p->drops_fault;
		out->drops_toolong += p->drops_toolong;
		out->drops_compat += p->drops_compat;
	}
}
