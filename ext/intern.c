/* SPDX-License-Identifier: MIT */
/*
 * intern.c - open-addressing hash table from byte strings to dense ids (see intern.h).
 *
 * Strings are copied into an append-only arena of chunks (pointers stay valid while the
 * table lives); the index is a power-of-two array of (hash, id) slots with linear probing,
 * grown at 50% load.  Hash: FNV-1a 64-bit (strings here are short paths and names).
 */
#include <stdlib.h>
#include <string.h>

#include "intern.h"

#define ARENA_CHUNK (1u << 20)

struct str_ent {
	const uint8_t *p;
	uint32_t len;
};

struct slot {
	uint64_t hash;
	uint32_t id; /* 0 = empty slot */
};

struct chunk {
	struct chunk *next;
	size_t used, cap;
	uint8_t data[];
};

struct fnet_strtab {
	struct str_ent *ents;
	uint32_t count, ents_cap;
	struct slot *slots;
	uint32_t mask;
	struct chunk *arena;
};

static uint64_t strtab_hash(const uint8_t *p, uint32_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint32_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h | 1; /* never 0, so a zero hash marks nothing special */
}

static const uint8_t *arena_copy(struct fnet_strtab *t, const uint8_t *p, uint32_t len)
{
	struct chunk *c = t->arena;

	if (!c || c->cap - c->used < len) {
		size_t cap = len > ARENA_CHUNK ? len : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = t->arena;
		c->used = 0;
		c->cap = cap;
		t->arena = c;
	}
	uint8_t *dst = c->data + c->used;

	if (len)
		memcpy(dst, p, len);
	c->used += len;
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

		if (!s.id)
			continue;
		uint32_t j = (uint32_t)s.hash & (ncap - 1);

		while (ns[j].id)
			j = (j + 1) & (ncap - 1);
		ns[j] = s;
	}
	free(t->slots);
	t->slots = ns;
	t->mask = ncap - 1;
	return 0;
}

static uint32_t strtab_find(const struct fnet_strtab *t, const uint8_t *p, uint32_t len,
			    uint64_t h, uint32_t *slot_out)
{
	uint32_t j = (uint32_t)h & t->mask;

	for (;;) {
		const struct slot *s = &t->slots[j];

		if (!s->id) {
			*slot_out = j;
			return 0;
		}
		if (s->hash == h) {
			const struct str_ent *e = &t->ents[s->id];

			if (e->len == len && (len == 0 || memcmp(e->p, p, len) == 0))
				return s->id;
		}
		j = (j + 1) & t->mask;
	}
}

struct fnet_strtab *fnet_strtab_new(void)
{
	struct fnet_strtab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
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
	free(t);
}

uint32_t fnet_strtab_intern(struct fnet_strtab *t, const uint8_t *p, uint32_t len)
{
	uint64_t h = strtab_hash(p, len);
	uint32_t slot;
	uint32_t id = strtab_find(t, p, len, h, &slot);

	if (id)
		return id;
	if (t->count == t->ents_cap) {
		uint32_t ncap = t->ents_cap * 2;
		struct str_ent *ne = realloc(t->ents, ncap * sizeof(*ne));

		if (!ne)
			return 0;
		t->ents = ne;
		t->ents_cap = ncap;
	}
	const uint8_t *copy = arena_copy(t, p, len);

	if (!copy)
		return 0;
	id = t->count++;
	t->ents[id].p = copy;
	t->ents[id].len = len;
	t->slots[slot].hash = h;
	t->slots[slot].id = id;
	if ((uint64_t)t->count * 2 > t->mask + 1 && strtab_grow(t) < 0) {
		/* The entry is stored; the index just stays denser until the next attempt. */
	}
	return id;
}

uint32_t fnet_strtab_lookup(const struct fnet_strtab *t, const uint8_t *p, uint32_t len)
{
	uint32_t slot;

	return strtab_find(t, p, len, strtab_hash(p, len), &slot);
}

uint32_t fnet_strtab_count(const struct fnet_strtab *t)
{
	return t->count;
}

const uint8_t *fnet_strtab_get(const struct fnet_strtab *t, uint32_t id, uint32_t *len)
{
	if (id == 0 || id >= t->count) {
		*len = 0;
		return NULL;
	}
	*len = t->ents[id].len;
	return t->ents[id].p;
}
