/* SPDX-License-Identifier: MIT */
/*
 * intern.c - open-addressing hash table from byte strings to dense ids (see intern.h).
 *
 * Thread-safe: one mutex per table (decoder, state engine and Python threads share one).
 * Strings are copied into an append-only arena of chunks (pointers stay valid while the
 * table lives), each behind its 4-byte id; the index is a power-of-two array of (string,
 * hash tag, length) slots with linear probing, grown at 50% load, so a lookup that hits
 * touches two lines: its slot and the string (with its id in front).  Hash: word-at-a-time
 * multiply-fold with a per-table secret seed, plus a final mix (strtab_hash).
 */
#include <pthread.h>
#include <sys/auxv.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"

#define ARENA_CHUNK (1u << 20)

struct str_ent {
	const uint8_t *p;
	uint32_t len;
	uint32_t hlo;	/* low half of the hash: the slot index, kept for growing */
};

/* The high half of the hash and the length filter out nearly every non-matching entry
 * before the string is touched; the id is read from in front of the string. */
struct slot {
	const uint8_t *p;	/* the string in the arena, NULL = empty slot */
	uint32_t tag;		/* high half of the hash */
	uint32_t len;
};

static inline uint32_t arena_id(const uint8_t *p)
{
	uint32_t id;

	memcpy(&id, p - 4, 4);
	return id;
}

struct chunk {
	struct chunk *next;
	size_t used, cap;
	uint8_t data[];
};

struct fnet_strtab {
	pthread_mutex_t lock;	/* every public function but the _locked ones takes it */
	struct str_ent *ents;
	uint32_t count, ents_cap;
	uint64_t bytes;		/* sum of the strings' lengths */
	struct slot *slots;
	uint32_t mask;
	struct chunk *arena;
	uint64_t seed;		/* secret per table (table_seed) */
};

/* 8 bytes per step, then a final avalanche: strings here are paths, names and socket
 * addresses of 4..200 bytes, where byte-at-a-time FNV-1a spent most of the decoder's time.
 *
 * The names are chosen by the monitored users, so the hash must not let them pick names that
 * share one probe chain (every lookup of them would walk it: the decoder slows down until
 * the rings overflow).  A per-word xor-multiply does: a difference in a word's top bit
 * survives the multiply unchanged, whatever the seed, and the next word cancels it.  So each
 * word goes through a 64x64->128 multiply folded back (high half xor low half), whose output
 * difference depends on the carries, hence on the secret state, and the state starts from a
 * secret per-table seed.  tests/test_intern_hash.py holds the crafted names. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ULL;
	h ^= h >> 32;
	return h;
}

#define HASH_K 0x9e3779b97f4a7c15ULL

static inline __attribute__((always_inline)) uint64_t
strtab_hash(uint64_t seed, const uint8_t *p, uint32_t len)
{
	uint64_t h = seed ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
	uint64_t w;

	if (len >= 8) {
		/* whole words, then the last 8 bytes, overlapping the previous word when the
		 * length is not a multiple of 8 (every byte is covered once or twice, and the
		 * length is in the seed) */
		for (uint32_t i = 0; i + 8 < len; i += 8) {
			memcpy(&w, p + i, 8);
			h = fold_mul(h ^ w, HASH_K);
		}
		memcpy(&w, p + len - 8, 8);
	} else if (len >= 4) { /* two overlapping 4-byte loads */
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + len - 4, 4);
		w = (uint64_t)lo | ((uint64_t)hi << 32);
	} else {
		w = len ? (uint64_t)p[0] | ((uint64_t)p[len >> 1] << 8) | ((uint64_t)p[len - 1] << 16) : 0;
	}
	h = fold_mul(h ^ w, HASH_K);
	return mix64(h) | 1; /* never 0 */
}

/* A seed no one outside the process can know: the kernel's 16 random bytes given to every
 * exec (AT_RANDOM, also behind the stack protector's canary), mixed with the table's address
 * and a counter so that tables differ. */
static uint64_t table_seed(const void *t)
{
	static uint64_t tables;
	const uint8_t *r = (const uint8_t *)getauxval(AT_RANDOM);
	uint64_t a = 0, b = 0;

	if (r) {
		memcpy(&a, r, 8);
		memcpy(&b, r + 8, 8);
	}
	a ^= (uint64_t)(uintptr_t)t;
	b += __atomic_add_fetch(&tables, 1, __ATOMIC_RELAXED) * HASH_K;
	return fold_mul(a ^ HASH_K, b | 1) ^ mix64(a + b);
}

/* Copy a string into the arena behind its id; its address there. */
static const uint8_t *arena_copy(struct fnet_strtab *t, const uint8_t *p, uint32_t len,
				 uint32_t id)
{
	struct chunk *c = t->arena;

	if (!c || c->cap - c->used < (size_t)len + 8) {
		size_t cap = (size_t)len + 8 > ARENA_CHUNK ? (size_t)len + 8 : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = t->arena;
		c->used = 0;
		c->cap = cap;
		t->arena = c;
	}
	uint8_t *dst = c->data + c->used + 4;

	memcpy(dst - 4, &id, 4);
	if (len)
		memcpy(dst, p, len);
	c->used = (c->used + 4 + len + 3) & ~(size_t)3;	/* the next id stays aligned */
	return dst;
}

static int strtab_grow(struct fnet_strtab *t)
{
	uint32_t ncap = (t->mask + 1) * 2;
	struct slot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -1;
	for (uint32_t i = 0; i <= t->mask; i++) {
		struct slot s = t->slots[i];

		if (!s.p)
			continue;
		uint32_t j = t->ents[arena_id(s.p)].hlo & (ncap - 1);

		while (ns[j].p)
			j = (j + 1) & (ncap - 1);
		ns[j] = s;
	}
	free(t->slots);
	t->slots = ns;
	t->mask = ncap - 1;
	return 0;
}

static inline __attribute__((always_inline)) uint32_t
strtab_find(const struct fnet_strtab *t, const uint8_t *p, uint32_t len,
	    uint64_t h, uint32_t *slot_out)
{
	uint32_t j = (uint32_t)h & t->mask;

	for (;;) {
		const struct slot *s = &t->slots[j];

		if (!s->p) {
			*slot_out = j;
			return 0;
		}
		if (s->tag == (uint32_t)(h >> 32) && s->len == len && fnet_bytes_eq(s->p, p, len))
			return arena_id(s->p);
		j = (j + 1) & t->mask;
	}
}

struct fnet_strtab *fnet_strtab_new(void)
{
	struct fnet_strtab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return NULL;
	}
	t->seed = table_seed(t);
	t->ents_cap = 1024;
	t->ents = calloc(t->ents_cap, sizeof(*t->ents));
	t->mask = 2047;
	t->slots = calloc(t->mask + 1, sizeof(*t->slots));
	if (!t->ents || !t->slots) {
		fnet_strtab_free(t);
		return NULL;
	}
	t->count = 1; /* id 0: absent */
	if (fnet_strtab_intern(t, (const uint8_t *)"", 0) != 1) {
		fnet_strtab_free(t);
		return NULL;
	}
	return t;
}

void fnet_strtab_free(struct fnet_strtab *t)
{
	if (!t)
		return;
	while (t->arena) {
		struct chunk *c = t->arena;

		t->arena = c->next;
		free(c);
	}
	free(t->ents);
	free(t->slots);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* The lock guards the index and the entry array (both move when they grow); the arena
 * never moves, so bytes returned by fnet_strtab_get stay valid without it. */
static inline pthread_mutex_t *strtab_mutex(const struct fnet_strtab *t)
{
	return (pthread_mutex_t *)&t->lock;
}

void fnet_strtab_lock(struct fnet_strtab *t)
{
	pthread_mutex_lock(&t->lock);
}

void fnet_strtab_unlock(struct fnet_strtab *t)
{
	pthread_mutex_unlock(&t->lock);
}

uint32_t fnet_strtab_intern(struct fnet_strtab *t, const uint8_t *p, uint32_t len)
{
	uint32_t id;

	pthread_mutex_lock(&t->lock);
	id = fnet_strtab_intern_locked(t, p, len);
	pthread_mutex_unlock(&t->lock);
	return id;
}

uint32_t fnet_strtab_intern_locked(struct fnet_strtab *t, const uint8_t *p, uint32_t len)
{
	uint64_t h = strtab_hash(t->seed, p, len);
	uint32_t slot = 0;
	uint32_t id = strtab_find(t, p, len, h, &slot);

	if (id)
		return id;
	if ((uint64_t)(t->count + 1) * 8 > (uint64_t)(t->mask + 1) * 7)
		return 0; /* growing failed for long: out of memory */
	if (t->count == t->ents_cap) {
		uint32_t ncap = t->ents_cap * 2;
		struct str_ent *ne = realloc(t->ents, ncap * sizeof(*ne));

		if (!ne)
			return 0;
		t->ents = ne;
		t->ents_cap = ncap;
	}
	const uint8_t *copy = arena_copy(t, p, len, t->count);

	if (!copy)
		return 0;
	id = t->count++;
	t->bytes += len;
	t->ents[id].p = copy;
	t->ents[id].len = len;
	t->ents[id].hlo = (uint32_t)h;
	t->slots[slot].p = copy;
	t->slots[slot].tag = (uint32_t)(h >> 32);
	t->slots[slot].len = len;
	if ((uint64_t)t->count * 2 > t->mask + 1 && strtab_grow(t) < 0) {
		/* The entry is stored; the index just stays denser until the next attempt
		 * (inserts are refused above 7/8 load, so probing always ends). */
	}
	return id;
}

void fnet_strtab_intern_many(struct fnet_strtab *t, const uint8_t *blob, const uint64_t *off,
			     uint32_t n, uint32_t *out)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < n; i++)
		out[i] = fnet_strtab_intern_locked(t, blob + off[i],
						   (uint32_t)(off[i + 1] - off[i]));
	pthread_mutex_unlock(&t->lock);
}

uint32_t fnet_strtab_lookup(const struct fnet_strtab *t, const uint8_t *p, uint32_t len)
{
	uint64_t h = strtab_hash(t->seed, p, len);
	uint32_t slot, id;

	pthread_mutex_lock(strtab_mutex(t));
	id = strtab_find(t, p, len, h, &slot);
	pthread_mutex_unlock(strtab_mutex(t));
	return id;
}

uint32_t fnet_strtab_count(const struct fnet_strtab *t)
{
	uint32_t n;

	pthread_mutex_lock(strtab_mutex(t));
	n = t->count;
	pthread_mutex_unlock(strtab_mutex(t));
	return n;
}

uint64_t fnet_strtab_nbytes(const struct fnet_strtab *t)
{
	uint64_t n;

	pthread_mutex_lock(strtab_mutex(t));
	n = t->bytes;
	pthread_mutex_unlock(strtab_mutex(t));
	return n;
}

uint32_t fnet_strtab_max_probe(const struct fnet_strtab *t)
{
	uint32_t worst = 0;

	pthread_mutex_lock(strtab_mutex(t));
	for (uint32_t j = 0; j <= t->mask; j++) {
		const struct slot *s = &t->slots[j];

		if (s->p) {
			uint32_t d = (j - t->ents[arena_id(s->p)].hlo) & t->mask;

			worst = d > worst ? d : worst;
		}
	}
	pthread_mutex_unlock(strtab_mutex(t));
	return worst;
}

const uint8_t *fnet_strtab_get(const struct fnet_strtab *t, uint32_t id, uint32_t *len)
{
	const uint8_t *p = NULL;

	*len = 0;
	pthread_mutex_lock(strtab_mutex(t));
	if (id != 0 && id < t->count) {
		*len = t->ents[id].len;
		p = t->ents[id].p;
	}
	pthread_mutex_unlock(strtab_mutex(t));
	return p;
}
