/* SPDX-License-Identifier: MIT */
/*
 * ring_int.h - the reader's structures (shared by ring.c: mapping and waiting, and
 * ring_read.c: walking, merging, reading and decoding) and helpers shared with the memfd
 * producer (ring_producer.c).  Not part of the cffi API.
 */
#ifndef FALCONET_RING_INT_H
#define FALCONET_RING_INT_H

#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>

#include "falconet_abi.h"
#include "ring.h"

#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Map `size` bytes of fd at off twice, back to back, so a record never wraps. */
static inline void *map_twice(int fd, off_t off, uint64_t size, int prot)
{
	uint8_t *base = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	if (mmap(base, size, prot, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, off) == MAP_FAILED ||
	    mmap(base + size, size, prot, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, off) ==
	    MAP_FAILED) {
		munmap(base, 2 * size);
		return NULL;
	}
	return base;
}

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

struct heap_ent {
	uint64_t ts;		/* the CPU's next record: compared without chasing the ring */
	uint32_t cpu;
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
	struct heap_ent *heap;
	uint64_t holdback_ns;	/* idle CPUs bound the cutoff to now - holdback_ns (0: off) */
	uint64_t hold_until;	/* CLOCK_BOOTTIME ns when held-back records become due */
	int holding;		/* the last read held records back */
	uint64_t watermark;	/* what the producer waits for before waking us */
	int last_small;		/* device: the last read took less than half a watermark */
};

static inline uint64_t boot_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_BOOTTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static inline int any_data(struct fnet_ring_reader *r)
{
	for (uint32_t c = 0; c < r->nr_cpus; c++)
		if (LOAD_ACQ(&r->rings[c].prod->producer_pos) != r->rings[c].pos)
			return 1;
	return 0;
}

static inline int valid_size(uint64_t size, size_t page)
{
	return size >= page && (size & (size - 1)) == 0 && size <= (1ULL << 40);
}

/* memfd layout: per CPU, producer page | consumer page | data */
static inline off_t cpu_base(uint32_t cpu, uint64_t size, size_t page)
{
	return (off_t)cpu * (off_t)(2 * page + size);
}

#endif
