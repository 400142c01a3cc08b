/* SPDX-License-Identifier: MIT */
/*
 * decode.c - ABI records -> column buffers in one pass (see decode.h for the contract).
 *
 * The loop reads each fixed header once (a 96-byte memcpy the compiler turns into vector
 * moves, so unaligned buffers are fine) and checks the framing; decode_int.h's
 * fnet_dec_one() (shared with the ring reader's fused path) scatters the fixed fields into
 * the columns and interns the variable parts in slot order.  The per-type "which v-slots are
 * named" table is generated from FNET_EVENT_TABLE, so it cannot drift from the header.
 */
#include <string.h>

#include "falconet_abi.h"
#include "decode.h"
#include "decode_int.h"
#include "intern.h"

/* sizeof("") == 1: a slot is named when its string literal is not empty. */
#define SLOT_(s, bit) ((sizeof(s) > 1) ? (1u << (bit)) : 0u)
#define EV_INFO_(name, num, falco, cat, a0, a1, a2, a3, a4, a5, v0, v1, v2, v3, v4, v5) \
	[num] = 0x80u | SLOT_(v0, 0) | SLOT_(v1, 1) | SLOT_(v2, 2) | SLOT_(v3, 3) | \
		SLOT_(v4, 4) | SLOT_(v5, 5),

const uint8_t fnet_ev_info[FNET_NUM_EVENT_TYPES] = {
	FNET_EVENT_TABLE(EV_INFO_)
};

uint8_t fnet_event_info(uint32_t type)
{
	return type < FNET_NUM_EVENT_TYPES ? fnet_ev_info[type] : 0;
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
	struct fnet_dec_run d;
	struct fnet_event_hdr h;
	size_t off = 0;

	memset(st, 0, sizeof(*st));
	st->bad_offset = -1;
	fnet_dec_start(&d, c, strings, first_num);
	fnet_strtab_lock(strings); /* once per buffer, not per string (intern.h) */
	while (off < size) {
		const uint8_t *p = buf + off;
		size_t left = size - off;
		int rc;

		if (left < FNET_HDR_SIZE)
			goto bad;
		memcpy(&h, p, sizeof(h));
		if (h.len < FNET_HDR_SIZE || (h.len & 7) || h.len > left)
			goto bad;
		rc = fnet_dec_one(&d, p, &h);
		if (rc == FNET_DEC_BAD)
			goto bad;
		if (rc == FNET_DEC_FULL)
			break;
		off += h.len;
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
	st->records = d.n;
	st->bytes = d.bytes;
	st->unknown_type = d.unknown;
	st->unknown_type_bytes = d.unknown_bytes;
	return d.n;
}
