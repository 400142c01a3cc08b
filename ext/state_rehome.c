/* SPDX-License-Identifier: MIT */
/*
 * state_rehome.c - moving the state engine onto a fresh string table (string table rollover).
 *
 * The intern table never evicts, so a long-running live source replaces it with a new, empty
 * one once it is over its cap (collector/native.py CDecoder, collector/sources/live.py).  Old
 * batches keep their table; the state engine follows when it is first handed a batch of the
 * new table: fnet_state_rehome() re-interns every string id the state still holds (live
 * processes, live fd infos, the "host" id) into the new table through one old id -> new id
 * array, clears the memo caches of pure functions of ids (state_int.h: mdir, maddr, msock,
 * mpath),
 * invalidates the versions (gen) and from then on interns into the new table.  The pure
 * twin is collector/state/pure.py rehome().
 */
#include <stdlib.h>
#include <string.h>

#include "state_int.h"

struct idmap {
	struct fnet_strtab *old, *nt;
	uint32_t *map;		/* old id -> new id; 0 = not translated yet */
	uint32_t n;		/* ids in the old table */
	uint32_t added;		/* distinct strings carried over */
	int oom;
};

/* The new id of old id `id` (0 and 1 are the same in every table). */
static uint32_t tr(struct idmap *m, uint32_t id)
{
	uint32_t len, nid;
	const uint8_t *p;

	if (id <= FNET_EMPTY_ID)
		return id;
	if (id >= m->n)
		return 0;	/* not an id of the old table: never happens, stays absent */
	if (m->map[id])
		return m->map[id];
	p = fnet_strtab_get(m->old, id, &len);
	if (!p)
		return 0;
	nid = fnet_strtab_intern(m->nt, p, len);
	if (!nid) {
		m->oom = 1;
		return 0;
	}
	m->map[id] = nid;
	m->added++;
	return nid;
}

#define PV_STR(X) X(name) X(exe) X(exepath) X(args) X(cmdline) X(cwd) X(container_id) \
	X(sname) X(vpgid_name) X(vpgid_exe)
#define FV_STR(X) X(name) X(nameraw) X(directory) X(filename) X(cip) X(sip)

/* Pass 1 (apply = 0) interns every id into the new table and fills the map, touching no
 * state, so a failure leaves the state as it was; pass 2 (apply = 1) rewrites the ids.
 * Slots on the free lists are cleared (their ids would belong to no table). */
static void walk(struct fnet_state *s, struct idmap *m, int apply)
{
	static const struct fnet_fver zf;

	for (uint32_t i = 1; i < s->procs_used; i++) {
		struct fnet_pver *v = &s->procs[i].v;

		if (!s->procs[i].live) {
			if (apply) {
#define CLR(f) v->f = 0;
				PV_STR(CLR)
#undef CLR
			}
			continue;
		}
#define TR(f) { uint32_t x = tr(m, v->f); if (apply) v->f = x; }
		PV_STR(TR)
#undef TR
	}
	for (uint32_t i = 1; i < s->fdi_used; i++) {
		struct fnet_fver *v = &s->fdi[i].v;

		if (!s->fdi[i].refs) {
			if (apply)
				*v = zf;
			continue;
		}
#define TR(f) { uint32_t x = tr(m, v->f); if (apply) v->f = x; }
		FV_STR(TR)
#undef TR
	}
	{
		uint32_t h = tr(m, s->host_id);

		if (apply)
			s->host_id = h;
	}
}

int fnet_state_rehome(struct fnet_state *s, struct fnet_strtab *nt)
{
	struct idmap m;

	if (!nt)
		return -1;
	if (nt == s->strings)
		return 0;
	memset(&m, 0, sizeof(m));
	m.old = s->strings;
	m.nt = nt;
	m.n = fnet_strtab_count(m.old);
	m.map = calloc(m.n ? m.n : 1, sizeof(*m.map));
	if (!m.map)
		return -1;
	walk(s, &m, 0);
	if (m.oom) {
		free(m.map);
		return -1;
	}
	walk(s, &m, 1);
	free(m.map);
	/* per-id memo caches: their keys and values are ids of the old table */
	memset(s->mdir, 0, sizeof(s->mdir));
	memset(s->maddr, 0, sizeof(s->maddr));
	memset(s->msock, 0, sizeof(s->msock));
	memset(s->mpath, 0, sizeof(s->mpath));
	s->strings = nt;
	/* versions made so far hold old ids: start new tables (gen bumped) */
	tables_reset(s);
	return s->oom ? -1 : (int)(m.added & 0x7fffffff);
}
