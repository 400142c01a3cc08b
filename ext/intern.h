/* SPDX-License-Identifier: MIT */
/*
 * intern.h - the string intern table shared by the decoder, the state engine and Python.
 *
 * Byte strings are mapped to dense uint32 ids, first seen first numbered.  Id 0 means
 * "absent" (Falco's <NA>) and id 1 is the empty string; both exist in a new table.  Ids are
 * stable for the table's lifetime, so Python caches per-id results (decoded text, predicate
 * results).  Python's StringTable for the C backend wraps one of these.
 *
 * Thread safety: a table is shared by the reader thread (decoding) and the main thread
 * (state engine, rules, outputs), and cffi releases the GIL during C calls, so every
 * function takes the table's mutex.  A caller interning many strings in a row may instead
 * hold it with fnet_strtab_lock() and call fnet_strtab_intern_locked() (the decoder does,
 * once per buffer).
 */
#ifndef FALCONET_INTERN_H
#define FALCONET_INTERN_H

#include <stdint.h>
#include <string.h>

/* BEGIN CDEF */
struct fnet_strtab;
struct fnet_strtab *fnet_strtab_new(void);
void fnet_strtab_free(struct fnet_strtab *t);
/* Intern len bytes at p; returns the id, or 0 when out of memory (not counted: callers see
 * the part as absent). */
uint32_t fnet_strtab_intern(struct fnet_strtab *t, const uint8_t *p, uint32_t len);
/* Intern n strings at once: string i is blob[off[i]:off[i+1]]; ids go to out[i]. */
void fnet_strtab_intern_many(struct fnet_strtab *t, const uint8_t *blob, const uint64_t *off,
			     uint32_t n, uint32_t *out);
/* Id of the bytes if already interned, else 0; never adds. */
uint32_t fnet_strtab_lookup(const struct fnet_strtab *t, const uint8_t *p, uint32_t len);
/* Number of ids in use (including 0 and 1). */
uint32_t fnet_strtab_count(const struct fnet_strtab *t);
/* Total bytes of the interned strings (the byte cap of a rolling table, batch.py). */
uint64_t fnet_strtab_nbytes(const struct fnet_strtab *t);
/* Longest probe of the index: slots between an entry's home slot and where it sits (a
 * health check of the hash: small for any input, see tests/test_intern_hash.py). */
uint32_t fnet_strtab_max_probe(const struct fnet_strtab *t);
/* Bytes of an id (NULL for 0 or out of range); *len receives the length. */
const uint8_t *fnet_strtab_get(const struct fnet_strtab *t, uint32_t id, uint32_t *len);
/* END CDEF */

/* Equal bytes, for the short strings the decoder and the table compare: 8-byte words and
 * one overlapping load for the tail (never a byte loop), no libc call.  Shared by intern.c
 * and decode_int.h (not part of the cffi interface). */
static inline int fnet_bytes_eq(const uint8_t *a, const uint8_t *b, uint32_t l)
{
	uint64_t x, y;

	if (l >= 8) {
		for (uint32_t i = 0; i + 8 < l; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y)
				return 0;
		}
		memcpy(&x, a + l - 8, 8);
		memcpy(&y, b + l - 8, 8);
		return x == y;
	}
	if (l >= 4) {
		uint32_t x0, y0, x1, y1;

		memcpy(&x0, a, 4);
		memcpy(&y0, b, 4);
		memcpy(&x1, a + l - 4, 4);
		memcpy(&y1, b + l - 4, 4);
		return x0 == y0 && x1 == y1;
	}
	/* 0..3 bytes: the first, middle and last cover them all */
	return !l || (a[0] == b[0] && a[l >> 1] == b[l >> 1] && a[l - 1] == b[l - 1]);
}

void fnet_strtab_lock(struct fnet_strtab *t);
void fnet_strtab_unlock(struct fnet_strtab *t);
/* fnet_strtab_intern for a caller holding the lock. */
uint32_t fnet_strtab_intern_locked(struct fnet_strtab *t, const uint8_t *p, uint32_t len);

#endif
