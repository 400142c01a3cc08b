/* SPDX-License-Identifier: MIT */
/*
 * ring.h - the per-CPU ring reader (consumer) of kmod/include/falconet_abi.h section 2, and a
 * userspace producer writing the same layout into memfd shared memory, so the reader is
 * tested and benchmarked without the kernel module.
 *
 * Reader.  fnet_reader_read() snapshots every CPU's producer_pos (load-acquire), walks the
 * complete records each CPU published, and merges them by timestamp into the caller's buffer
 * (ties: lower CPU first).  To keep the order across batches too, it only emits records up to
 * the *cutoff* = the smallest "last published timestamp" among the CPUs that had data: a
 * record newer than that could still be preceded by one another busy CPU has not published
 * yet; it stays in its ring for the next call.  Space is released once per call per CPU
 * (store-release of consumer_pos), never per record.
 *
 * Idle CPUs.  The module stamps a record when it reserves it and publishes it after the
 * fillers ran, so a CPU that had published nothing when its position was read may still
 * publish a record stamped slightly earlier.  With a holdback (the device's default:
 * FNET_READER_HOLDBACK_NS; memfd rings: none, their timestamps need not be the boot
 * clock), an idle CPU bounds the cutoff to (CLOCK_BOOTTIME read before any position) -
 * holdback, and fnet_reader_wait() sleeps until held-back records are due instead of
 * spinning.  Set it to 0 once capture has stopped (nothing can be in flight) to drain.
 *
 * fnet_reader_decode() takes the records in the same order and decodes each where it lies
 * in the ring (decode.h's columns and rules, decode_int.h), without copying it into a
 * buffer: the live collector's path.  A record whose parts overrun its length is skipped
 * and counted (stats bad_length / bad_length_bytes, reader stats corrupt), not decoded.
 * fnet_reader_wait() returns at once when any ring holds data, else poll()s the wake fd
 * (the device, or the memfd producer's pipe); on the device, after a read that took less
 * than half a watermark, it lets the device's poll() decide (a ring at the watermark, or
 * data older than FNET_POLL_FLUSH_NS) rather than read each trickle at once.  Drops are the producer's counters; each read
 * reports the increase since the previous read.  A device that reports POLLHUP/POLLERR, or
 * a producer that vanished (pipe closed), ends the reader with FNET_RING_GONE once the data
 * left in the rings has been read; a broken record (bad length) ends that CPU's data for
 * this call with FNET_RING_CORRUPT counted, never a crash.
 *
 * memfd layout (fnet_uprod_new): per CPU c, at offset c * (2 * page + data_size):
 *   producer page | consumer page | data (data_size), the data mapped twice by each side.
 */
#ifndef FALCONET_RING_H
#define FALCONET_RING_H

#include <stdint.h>

#include "falconet_abi.h"

/* BEGIN CDEF */
#define FNET_RING_GONE -19	/* -ENODEV: the module / producer went away, rings drained */
#define FNET_RING_CORRUPT 1	/* reader stats flag: a broken record was skipped */
#define FNET_RING_MAX_CPUS 1024
#define FNET_READER_HOLDBACK_NS 20000000	/* 20 ms: device readers' default */

struct fnet_ring_reader;
struct fnet_uprod;
struct fnet_strtab;
struct fnet_columns;
struct fnet_decode_stats;

struct fnet_read_info {
	uint64_t records;	/* records written to the buffer */
	uint64_t bytes;
	uint64_t held_back;	/* complete records left for the next call (after the cutoff) */
	uint64_t new_drops;	/* drops (all causes) the producers counted since the last call */
	uint64_t cutoff_ts;
	uint32_t cpus_with_data;
	uint32_t corrupt;	/* CPUs whose data had a broken record this call */
};

struct fnet_reader_stats {
	uint64_t records;
	uint64_t bytes;
	uint64_t reads;
	uint64_t waits;		/* poll() calls made */
	uint64_t corrupt;	/* broken records met (their CPU's remaining data skipped) */
	uint64_t corrupt_bytes;
	uint64_t events;	/* producer counters summed over CPUs */
	uint64_t drops_full;
	uint64_t drops_fault;
	uint64_t drops_toolong;
	uint64_t drops_compat;
	uint32_t nr_cpus;
	uint32_t gone;
};

/* Open /dev/falconet (or another path): FNET_IOC_GET_INFO, ABI check, mmap of every CPU.
 * On failure returns NULL and *err = -errno (-EPROTO: ABI version/layout mismatch). */
struct fnet_ring_reader *fnet_reader_open_dev(const char *path, int *err);
/* The same on a device fd the caller opened (and configured: snaplen, interest, START);
 * the reader keeps its own duplicate of the fd. */
struct fnet_ring_reader *fnet_reader_open_fd(int devfd, int *err);
/* Attach to memfd rings made by fnet_uprod_new (wake_fd: the producer's pipe read end). */
struct fnet_ring_reader *fnet_reader_open_memfd(int memfd, int wake_fd, uint32_t nr_cpus,
						uint64_t data_size, int *err);
void fnet_reader_close(struct fnet_ring_reader *r);
/* Bytes wanted in a ring before the producer wakes us (device: written to consumer pages). */
void fnet_reader_set_watermark(struct fnet_ring_reader *r, uint64_t bytes);
/* 1 = data may be ready, 0 = timeout, FNET_RING_GONE, or -errno. timeout_ms < 0: forever. */
int fnet_reader_wait(struct fnet_ring_reader *r, int timeout_ms);
/* Merge up to cap bytes of records into out; returns bytes written (>= 0), or
 * FNET_RING_GONE when the source is gone and nothing is left.  cap must be at least
 * FNET_MAX_RECORD, or a record larger than cap blocks the rings (order is never broken). */
int64_t fnet_reader_read(struct fnet_ring_reader *r, uint8_t *out, uint64_t cap,
			 struct fnet_read_info *info);
/* The same merge, decoded into cols (at most cols->cap rows and max_bytes of records,
 * interned into strings): returns rows written, or FNET_RING_GONE.  info->records counts
 * every record taken from the rings (rows + unknown types + broken ones). */
int64_t fnet_reader_decode(struct fnet_ring_reader *r, uint64_t max_bytes, uint64_t first_num,
			   struct fnet_strtab *strings, const struct fnet_columns *cols,
			   struct fnet_decode_stats *st, struct fnet_read_info *info);
/* Idle-CPU holdback in ns (see above); 0 turns it off. */
void fnet_reader_set_holdback(struct fnet_ring_reader *r, uint64_t ns);
void fnet_reader_get_stats(struct fnet_ring_reader *r, struct fnet_reader_stats *out);
/* Info from the device (zeroed for memfd rings except nr_cpus/data_size). */
void fnet_reader_info(struct fnet_ring_reader *r, struct fnet_info *out);
int fnet_reader_fd(struct fnet_ring_reader *r);

/* Userspace producer over memfd (tests, benchmarks).  Single producer per CPU. */
struct fnet_uprod *fnet_uprod_new(uint32_t nr_cpus, uint64_t data_size, int *err);
int fnet_uprod_memfd(struct fnet_uprod *p);
int fnet_uprod_wake_fd(struct fnet_uprod *p);	/* read end, for the reader */
/* 0 = written, -1 = no room (drops_full counted). */
int fnet_uprod_write(struct fnet_uprod *p, uint32_t cpu, const uint8_t *rec, uint32_t len);
/* Write the concatenated records of buf (each len from its header) to one CPU; stops at
 * the first that does not fit when `block` is 0, else spins until the reader frees room.
 * Returns records written. */
uint64_t fnet_uprod_write_buf(struct fnet_uprod *p, uint32_t cpu, const uint8_t *buf,
			      uint64_t size, int block);
void fnet_uprod_wake(struct fnet_uprod *p);	/* wake the reader now (flush) */
/* Close the wake pipe's write end: the reader sees the producer gone. */
void fnet_uprod_hangup(struct fnet_uprod *p);
void fnet_uprod_free(struct fnet_uprod *p);
/* END CDEF */

#endif
