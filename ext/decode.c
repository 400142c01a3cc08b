/* SPDX-License-Identifier: MIT */
/*
 * decode.c - ABI records -> column buffers in one pass (see decode.h for the contract).
 *
 * The loop reads each fixed header once (a 96-byte memcpy the compiler turns into vector
 * moves, so unaligned buffers are fine), checks the framing, scatters the fixed fields into
 * the columns and interns the variable parts in slot order.  The per-type "which v-slots are
 * named" table is generated from FNET_EVENT_TABLE, so it cannot drift from the header.
 */
#include <string.h>

#include "falconet_abi.h"
#include "decode.h"
#include "intern.h"

/* sizeof("") == 1: a slot is named when its string literal is not empty. */
#define SLOT_(s, bit) ((sizeof(s) > 1) ? (1u << (bit)) : 0u)
#define EV_INFO_(name, num, falco, cat, a0, a1, a2, a3, a4, a5, v0, v1, v2, v3, v4, v5) \
	[num] = 0x80u | SLOT_(v0, 0) | SLOT_(v1, 1) | SLOT_(v2, 2) | SLOT_(v3, 3) | \
		SLOT_(v4, 4) | SLOT_(v5, 5),

static const uint8_t ev_info[FNET_NUM_EVENT_TYPES] = {
	FNET_EVENT_TABLE(EV_INFO_)
};

uint8_t fnet_event_info(uint32_t type)
{
	return type < FNET_NUM_EVENT_TYPES ? ev_info[type] : 0;
}

uint64_t fnet_decode_layout_hash(void)
{
	return fnet_layout_hash();
}

uint32_t fnet_decode_abi_version(void)
{
	return FALCONET_ABI_VERSION;
}

static uint32_t bad_reason(const struct fnet_event_hdr *h, size_t left)
{
	if (left < FNET_HDR_SIZE)
		return FNET_BAD_SHORT;
	if (h->len < FNET_HDR_SIZE)
		return FNET_BAD_LEN_SMALL;
	if (h->len & 7)
		return FNET_BAD_LEN_UNALIGNED;
	if (h->len > left)
		return FNET_BAD_LEN_BEYOND;
	return FNET_BAD_VLEN;
}

uint32_t fnet_decode(const uint8_t *buf, size_t size, uint64_t first_num,
		     struct fnet_strtab *strings, const struct fnet_columns *c,
		     struct fnet_decode_stats *st)
{
	/* Local copies of the column pointers: stores through them may not alias `c`, so the
	 * compiler need not reload 20 pointers after every store. */
	uint64_t *restrict num = c->num, *restrict ts = c->ts;
	uint16_t *restrict cpu = c->cpu, *restrict type = c->type, *restrict flags = c->flags;
	int64_t *restrict tid = c->tid, *restrict pid = c->pid, *restrict ret = c->ret;
	int64_t *restrict a0 = c->a[0], *restrict a1 = c->a[1], *restrict a2 = c->a[2],
		*restrict a3 = c->a[3], *restrict a4 = c->a[4], *restrict a5 = c->a[5];
	uint32_t *restrict v0 = c->v[0], *restrict v1 = c->v[1], *restrict v2 = c->v[2],
		 *restrict v3 = c->v[3], *restrict v4 = c->v[4], *restrict v5 = c->v[5];
	uint32_t *const vcol[FNET_NUM_VARS] = { v0, v1, v2, v3, v4, v5 };
	const uint32_t cap = c->cap;
	struct fnet_event_hdr h;
	struct {
		const uint8_t *p;
		uint32_t len, id;
	} last[FNET_NUM_VARS] = { { 0 } }; /* within this buffer only: p points into it */
	uint64_t bytes = 0, unknown = 0, unknown_bytes = 0;
	size_t off = 0;
	uint32_t n = 0;

	memset(st, 0, sizeof(*st));
	st->bad_offset = -1;
	fnet_strtab_lock(strings); /* once per buffer, not per string (intern.h) */
	while (off < size) {
		const uint8_t *p = buf + off;
		size_t left = size - off;
		uint32_t vsum;

		if (left < FNET_HDR_SIZE)
			goto bad;
		memcpy(&h, p, sizeof(h));
		vsum = (uint32_t)h.vlen[0] + h.vlen[1] + h.vlen[2] + h.vlen[3] + h.vlen[4] +
		       h.vlen[5];
		if (h.len < FNET_HDR_SIZE || (h.len & 7) || h.len > left ||
		    FNET_HDR_SIZE + vsum > h.len)
			goto bad;

		uint32_t info = h.type < FNET_NUM_EVENT_TYPES ? ev_info[h.type] : 0;

		if (!info) {
			unknown++;
			unknown_bytes += h.len;
			off += h.len;
			continue;
		}
		if (n == cap)
			break;
		num[n] = first_num + n;
		ts[n] = h.ts;
		cpu[n] = h.cpu;
		tid[n] = h.tid;
		pid[n] = h.pid;
		type[n] = h.type;
		flags[n] = h.flags;
		ret[n] = h.ret;
		a0[n] = (int64_t)h.arg[0];
		a1[n] = (int64_t)h.arg[1];
		a2[n] = (int64_t)h.arg[2];
		a3[n] = (int64_t)h.arg[3];
		a4[n] = (int64_t)h.arg[4];
		a5[n] = (int64_t)h.arg[5];

		/* Defaults first (named slot: empty = 1, unused: absent = 0), then the parts. */
		v0[n] = info & 1u;
		v1[n] = (info >> 1) & 1u;
		v2[n] = (info >> 2) & 1u;
		v3[n] = (info >> 3) & 1u;
		v4[n] = (info >> 4) & 1u;
		v5[n] = (info >> 5) & 1u;
		if (vsum) {
			const uint8_t *vp = p + FNET_HDR_SIZE;
			const uint8_t *prev_p = NULL;
			uint32_t prev_l = 0, prev_id = 0;

			for (int i = 0; i < FNET_NUM_VARS; i++) {
				uint32_t l = h.vlen[i], id;

				if (!l)
					continue;
				/* Two cheap shortcuts before the table: the record's previous part
				 * (openat's name == fullpath for absolute paths) and this slot's
				 * value in the previous record (a process repeating itself). */
				if (l == prev_l && fnet_bytes_eq(vp, prev_p, l))
					id = prev_id;
				else if (l == last[i].len && fnet_bytes_eq(vp, last[i].p, l))
					id = last[i].id;
				else
					id = fnet_strtab_intern_locked(strings, vp, l);
				last[i].p = vp;
				last[i].len = l;
				last[i].id = id;
				prev_p = vp;
				prev_l = l;
				prev_id = id;
				vcol[i][n] = id;
				vp += l;
			}
		}
		n++;
		off += h.len;
		bytes += h.len;
	}
	st->consumed = off;
	goto out;

bad:
	st->bad_length = 1;
	st->bad_length_bytes = size - off;
	st->bad_offset = (int64_t)off;
	st->bad_reason = bad_reason(&h, size - off);
	st->consumed = size;
out:
	fnet_strtab_unlock(strings);
	st->records = n;
	st->bytes = bytes;
	st->unknown_type = unknown;
	st->unknown_type_bytes = unknown_bytes;
	return n;
}
