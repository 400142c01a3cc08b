/* SPDX-License-Identifier: MIT */
/*
 * ring_read.c - taking records out of the rings (see ring.h): walk each CPU's published
 * records, merge them by timestamp up to the cutoff, and either copy them into the
 * caller's buffer (fnet_reader_read: captures keep the raw records) or decode them where
 * they lie, straight into columns (fnet_reader_decode: the live collector, one pass over
 * each record while it is in cache, no intermediate buffer).  Space is released once per
 * CPU per call.
 */
#include <stdlib.h>
#include <string.h>

#include "decode_int.h"
#include "ring_int.h"

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

static inline int ent_before(const struct heap_ent *a, const struct heap_ent *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->cpu < b->cpu);
}

static inline void sift_down(struct heap_ent *h, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;

		if (l < n && ent_before(&h[l], &h[m]))
			m = l;
		if (l + 1 < n && ent_before(&h[l + 1], &h[m]))
			m = l + 1;
		if (m == i)
			return;
		struct heap_ent t = h[i];

		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

#define FNET_MERGE_SCAN 8

/* Index of the smallest (ts, cpu) among n heads kept in CPU order: strict < keeps the
 * lower CPU on a tie; conditional moves, no unpredictable branch. */
static inline uint32_t scan_min(const struct heap_ent *h, uint32_t n)
{
	uint32_t best = 0;
	uint64_t bt = h[0].ts;

	for (uint32_t j = 1; j < n; j++) {
		int lt = h[j].ts < bt;

		best = lt ? j : best;
		bt = lt ? h[j].ts : bt;
	}
	return best;
}

/* Remove head k: shifting keeps CPU order for the scan; the heap moves its last up. */
static inline void drop_head(struct heap_ent *h, uint32_t *n, uint32_t k, int small)
{
	if (small) {
		memmove(&h[k], &h[k + 1], (*n - k - 1) * sizeof(*h));
		--*n;
	} else {
		h[0] = h[--*n];
		sift_down(h, *n, 0);
	}
}

/* Walk every ring, then take records in (ts, cpu) order up to the cutoff and at most `cap`
 * bytes: copied to `out`, or decoded by `d` when d is not NULL (then also at most its
 * rows).  Inlined twice with d constant, so neither loop tests the other's case. */
static inline __attribute__((always_inline)) int64_t
merge(struct fnet_ring_reader *r, uint8_t *out, uint64_t cap, struct fnet_dec_run *d,
      struct fnet_read_info *info)
{
	uint64_t cutoff = UINT64_MAX, w = 0, recs = 0, held = 0, drops = 0;
	uint64_t first_held = UINT64_MAX;
	uint32_t nh = 0, with = 0, corrupt = 0;
	struct heap_ent *h = r->heap;
	/* Read the clock before any producer position: a record an idle CPU commits after
	 * its position was read was stamped at most holdback_ns before this instant. */
	uint64_t now = (r->holdback_ns && !r->gone) ? boot_ns() : 0;
	uint64_t idle_bound = now > r->holdback_ns ? now - r->holdback_ns : 0;

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
			h[nh].ts = g->ts[0];
			h[nh++].cpu = c;
		} else if (g->blocked) {
			if (g->block_ts < cutoff)
				cutoff = g->block_ts;
		} else if (now && idle_bound < cutoff) {
			cutoff = idle_bound;
		}
		uint64_t dr = g->prod->drops_full + g->prod->drops_fault + g->prod->drops_toolong +
			      g->prod->drops_compat;

		drops += dr - g->drops_seen;
		g->drops_seen = dr;
	}
	/* Few CPUs with data (the common case): the heads stay in CPU order and the next is a
	 * branch-free scan, which beats a heap whose compares mispredict on interleaved CPUs.
	 * Many: a binary heap. */
	int small = nh <= FNET_MERGE_SCAN;

	if (!small)
		for (int i = (int)nh / 2 - 1; i >= 0; i--)
			sift_down(h, nh, (uint32_t)i);
	while (nh) {
		uint32_t k = small ? scan_min(h, nh) : 0;
		struct ring *g = &r->rings[h[k].cpu];

		if (h[k].ts > cutoff) {
			drop_head(h, &nh, k, small);	/* this CPU is past the cutoff: done with it */
			continue;
		}
		const uint8_t *rec = g->data + g->off[g->at];
		uint64_t len = ((const struct fnet_event_hdr *)rec)->len;

		if (w + len > cap)
			break;
		if (d) {
			struct fnet_event_hdr hd;

			memcpy(&hd, rec, sizeof(hd));
			int rc = fnet_dec_one(d, rec, &hd);

			if (rc == FNET_DEC_FULL)
				break;
			if (rc == FNET_DEC_BAD) {	/* framed, but its parts overrun it */
				r->st.corrupt++;
				r->st.corrupt_bytes += len;
				corrupt++;
			}
		} else {
			memcpy(out + w, rec, len);
		}
		w += len;
		recs++;
		g->pos += len;
		if (++g->at == g->n) {
			drop_head(h, &nh, k, small);
			continue;
		}
		h[k].ts = g->ts[g->at];
		/* the walk touched this CPU's headers long ago (a whole budget per CPU since):
		 * fetch the next-but-one record while the others are merged */
		if (g->at + 1 < g->n) {
			const uint8_t *nx = g->data + g->off[g->at + 1];

			__builtin_prefetch(nx);
			__builtin_prefetch(nx + 64);
			__builtin_prefetch(nx + 128);
		}
		if (!small)
			sift_down(h, nh, 0);
	}
	for (uint32_t c = 0; c < r->nr_cpus; c++) {
		struct ring *g = &r->rings[c];

		held += g->n - g->at;
		if (g->at < g->n && g->ts[g->at] < first_held)
			first_held = g->ts[g->at];
		STORE_REL(&g->cons->consumer_pos, g->pos);	/* one release per CPU per batch */
	}
	r->holding = held != 0;
	r->last_small = r->fd >= 0 && w < r->watermark / 2;
	r->hold_until = first_held == UINT64_MAX ? 0 : first_held + r->holdback_ns;
	r->st.records += recs;
	r->st.bytes += w;
	r->st.reads++;
	if (info) {
		info->records = recs;
		info->bytes = w;
		info->held_back = held;
		info->new_drops = drops;
		info->cutoff_ts = (with && cutoff != UINT64_MAX) ? cutoff : 0;
		info->cpus_with_data = with;
		info->corrupt = corrupt;
	}
	if (w == 0 && r->gone && !any_data(r))
		return FNET_RING_GONE;
	return (int64_t)w;
}

int64_t fnet_reader_read(struct fnet_ring_reader *r, uint8_t *out, uint64_t cap,
			 struct fnet_read_info *info)
{
	return merge(r, out, cap, NULL, info);
}

int64_t fnet_reader_decode(struct fnet_ring_reader *r, uint64_t max_bytes, uint64_t first_num,
			   struct fnet_strtab *strings, const struct fnet_columns *cols,
			   struct fnet_decode_stats *st, struct fnet_read_info *info)
{
	struct fnet_dec_run d;
	uint64_t bad0 = r->st.corrupt_bytes, bad_recs0 = r->st.corrupt;
	int64_t w;

	fnet_dec_start(&d, cols, strings, first_num);
	fnet_strtab_lock(strings);	/* once per call, not per string (intern.h) */
	w = merge(r, NULL, max_bytes, &d, info);
	fnet_strtab_unlock(strings);
	memset(st, 0, sizeof(*st));
	st->records = d.n;
	st->bytes = d.bytes;
	st->unknown_type = d.unknown;
	st->unknown_type_bytes = d.unknown_bytes;
	st->bad_offset = -1;
	st->bad_length = r->st.corrupt - bad_recs0;
	st->bad_length_bytes = r->st.corrupt_bytes - bad0;
	st->bad_reason = st->bad_length ? FNET_BAD_VLEN : FNET_BAD_NONE;
	st->consumed = w > 0 ? (uint64_t)w : 0;
	return w == FNET_RING_GONE ? FNET_RING_GONE : (int64_t)d.n;
}

void fnet_reader_set_holdback(struct fnet_ring_reader *r, uint64_t ns)
{
	r->holdback_ns = ns;
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
