/* SPDX-License-Identifier: MIT */
/*
 * decode_int.h - one record -> one row of the columns, shared by the buffer decoder
 * (decode.c: fnet_decode) and the ring reader's fused path (ring_read.c:
 * fnet_reader_decode, which decodes records where they lie in the rings, in merged order,
 * without copying them into a buffer first).  Not part of the cffi API.
 *
 * The caller checks the framing it is responsible for (the buffer decoder: len against what
 * is left; the ring walk: len against what the producer published) and holds the string
 * table's lock for the whole run (fnet_strtab_lock, once per call, not per string).
 */
#ifndef FALCONET_DECODE_INT_H
#define FALCONET_DECODE_INT_H

#include <stdint.h>
#include <string.h>

#include "falconet_abi.h"
#include "decode.h"
#include "intern.h"

/* 0x80 | bit i when v-slot i is named; 0 for a type not in FNET_EVENT_TABLE (decode.c). */
extern const uint8_t fnet_ev_info[FNET_NUM_EVENT_TYPES];

struct fnet_dec_run {
	/* A copy of the column pointers: the run lives on the caller's stack and never
	 * escapes, so the compiler knows stores into the columns cannot change them (the
	 * extension is built with -fno-strict-aliasing, under which every store through a
	 * column would otherwise force the pointers to be loaded again). */
	struct fnet_columns c;
	struct fnet_strtab *strings;
	uint64_t first_num;
	uint32_t n;			/* rows written */
	uint64_t bytes, unknown, unknown_bytes;
	struct {
		const uint8_t *p;	/* the previous record's part: valid for the whole run */
		uint32_t len, id;
	} last[FNET_NUM_VARS];
};

enum { FNET_DEC_ROW, FNET_DEC_SKIP, FNET_DEC_BAD, FNET_DEC_FULL };

static inline void fnet_dec_start(struct fnet_dec_run *d, const struct fnet_columns *c,
				  struct fnet_strtab *strings, uint64_t first_num)
{
	memset(d, 0, sizeof(*d));
	d->c = *c;
	d->strings = strings;
	d->first_num = first_num;
}

/* Decode the record at p whose header h the caller has copied and whose h->len bytes are
 * readable.  FNET_DEC_BAD: the vlen[] sum exceeds len (nothing written); FNET_DEC_SKIP: an
 * unknown type (counted); FNET_DEC_FULL: no row left (nothing written). */
static inline int fnet_dec_one(struct fnet_dec_run *d, const uint8_t *p,
			       const struct fnet_event_hdr *h)
{
	const struct fnet_columns *c = &d->c;
	uint32_t vsum = (uint32_t)h->vlen[0] + h->vlen[1] + h->vlen[2] + h->vlen[3] +
			h->vlen[4] + h->vlen[5];
	uint32_t n = d->n;

	if (FNET_HDR_SIZE + vsum > h->len)
		return FNET_DEC_BAD;
	uint32_t info = h->type < FNET_NUM_EVENT_TYPES ? fnet_ev_info[h->type] : 0;

	if (!info) {
		d->unknown++;
		d->unknown_bytes += h->len;
		return FNET_DEC_SKIP;
	}
	if (n == c->cap)
		return FNET_DEC_FULL;
	c->num[n] = d->first_num + n;
	c->ts[n] = h->ts;
	c->cpu[n] = h->cpu;
	c->tid[n] = h->tid;
	c->pid[n] = h->pid;
	c->type[n] = h->type;
	c->flags[n] = h->flags;
	c->ret[n] = h->ret;
#pragma GCC unroll 6
	for (int i = 0; i < FNET_NUM_ARGS; i++)
		c->a[i][n] = (int64_t)h->arg[i];
	/* Each slot: its part's id, else named = empty (1), unused = absent (0).  Two cheap
	 * shortcuts before the table: the record's previous part (openat's name == fullpath
	 * for absolute paths) and this slot's value in the previous record (a process
	 * repeating itself). */
	const uint8_t *vp = p + FNET_HDR_SIZE;
	const uint8_t *prev_p = NULL;
	uint32_t prev_l = 0, prev_id = 0;

#pragma GCC unroll 6
	for (int i = 0; i < FNET_NUM_VARS; i++) {
		uint32_t l = h->vlen[i], id = (info >> i) & 1u;

		if (l) {
			if (l == prev_l && fnet_bytes_eq(vp, prev_p, l))
				id = prev_id;
			else if (l == d->last[i].len && fnet_bytes_eq(vp, d->last[i].p, l))
				id = d->last[i].id;
			else
				id = fnet_strtab_intern_locked(d->strings, vp, l);
			d->last[i].p = vp;
			d->last[i].len = l;
			d->last[i].id = id;
			prev_p = vp;
			prev_l = l;
			prev_id = id;
			vp += l;
		}
		c->v[i][n] = id;
	}
	d->n = n + 1;
	d->bytes += h->len;
	return FNET_DEC_ROW;
}

#endif
