/* SPDX-License-Identifier: MIT */
/*
 * ring_int.h - helpers shared by the ring reader (ring.c) and the memfd producer
 * (ring_producer.c).  Not part of the cffi API.
 */
#ifndef FALCONET_RING_INT_H
#define FALCONET_RING_INT_H

#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

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
