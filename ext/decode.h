/* SPDX-License-Identifier: MIT */
/*
 * decode.h - one pass over a buffer of ABI records (kmod/include/falconet_abi.h, section 1)
 * into caller-owned column buffers, the C half of collector.native.Decoder.
 *
 * Columns (one row per decoded record, see collector/batch.py for their meaning):
 *   num = first_num + row, ts, cpu, tid, pid, type, flags, ret, a0..a5 (arg[i] as int64),
 *   v0..v5 = string ids in the intern table (intern.h):
 *     vlen[i] > 0                      -> id of the bytes (interned in record order, v0..v5)
 *     vlen[i] == 0, slot named by type -> 1 (empty string)
 *     vlen[i] == 0, slot unused        -> 0 (absent)
 *
 * What is skipped, never guessed at (counted in struct fnet_decode_stats):
 *   - a well-framed record whose type is not in FNET_EVENT_TABLE: skipped, decoding goes on
 *     at the next record (unknown_type, unknown_type_bytes);
 *   - a record whose framing is broken (fewer than FNET_HDR_SIZE bytes left, len below the
 *     header size, len not a multiple of 8, len beyond the buffer, or the vlen[] sum beyond
 *     len): no later record boundary can be trusted, so decoding stops there and the rest of
 *     the buffer is counted (bad_length = 1, bad_length_bytes, bad_offset, bad_reason).
 * The framing checks come before the type check: a record of unknown type with a broken
 * vlen[] sum is a bad length.
 *
 * The columns must hold at least `size / FNET_HDR_SIZE` rows to take a whole buffer; with
 * fewer, decoding stops before the first record that does not fit and `consumed` says where
 * (call again with the rest).
 */
#ifndef FALCONET_DECODE_H
#define FALCONET_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "intern.h"

/* BEGIN CDEF */
struct fnet_strtab;
#define FNET_BAD_NONE 0
#define FNET_BAD_SHORT 1
#define FNET_BAD_LEN_SMALL 2
#define FNET_BAD_LEN_UNALIGNED 3
#define FNET_BAD_LEN_BEYOND 4
#define FNET_BAD_VLEN 5

struct fnet_columns {
	uint64_t *num;
	uint64_t *ts;
	uint16_t *cpu;
	int64_t *tid;
	int64_t *pid;
	uint16_t *type;
	uint16_t *flags;
	int64_t *ret;
	int64_t *a[6];
	uint32_t *v[6];
	uint32_t cap;			/* rows every column can hold */
};

struct fnet_decode_stats {
	uint64_t records;		/* rows written */
	uint64_t bytes;			/* bytes of the records written */
	uint64_t unknown_type;		/* well-framed records of an unknown type, skipped */
	uint64_t unknown_type_bytes;
	uint64_t bad_length;		/* 1 if the framing broke in this buffer, else 0 */
	uint64_t bad_length_bytes;	/* bytes from the broken record to the end of the buffer */
	int64_t bad_offset;		/* offset of the broken record, -1 if none */
	uint32_t bad_reason;		/* FNET_BAD_* */
	uint32_t _pad;
	uint64_t consumed;		/* bytes examined; < size only if the columns filled up */
};

/* Decode `size` bytes at `buf`; returns the number of rows written (= stats->records).
 * `stats` is overwritten, not accumulated. */
uint32_t fnet_decode(const uint8_t *buf, size_t size, uint64_t first_num,
		     struct fnet_strtab *strings, const struct fnet_columns *cols,
		     struct fnet_decode_stats *stats);

/* fnet_layout_hash() and FALCONET_ABI_VERSION as this extension was compiled (checked
 * against collector.abi and, on attach, the module's fnet_info). */
uint64_t fnet_decode_layout_hash(void);
uint32_t fnet_decode_abi_version(void);

/* 0x80 | bit i set when v-slot i is named, for a known type; 0 for an unknown type. */
uint8_t fnet_event_info(uint32_t type);
/* END CDEF */

#endif
