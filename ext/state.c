/* SPDX-License-Identifier: MIT */
/*
 * state.c - tables and versioning of the state engine (see state.h for the model): the hash
 * map, the process and fd-info slabs, version making, lifecycle.  Per-event transitions:
 * state_events.c; string rules: state_names.c; seeding, dumps, gathers: state_io.c.
 */
#include <stdlib.h>
#include <string.h>

#include "state_int.h"

/* ---- u64 -> u32 hash map: linear probing, backward-shift deletion -------------------------- */

static inline uint32_t hm_slot(const struct hmap *m, uint64_t key)
{
	return (uint32_t)((key * 0x9E3779B97F4A7C15ULL) >> 32) & m->mask;
}

int hm_init(struct hmap *m, uint32_t cap)
{
	uint32_t n = 16;

	while (n < cap * 2)
		n <<= 1;
	m->keys = calloc(n, sizeof(*m->keys));
	m->vals = calloc(n, sizeof(*m->vals));
	m->mask = n - 1;
	m->count = 0;
	return (m->keys && m->vals) ? 0 : -1;
}

void hm_free(struct hmap *m)
{
	free(m->keys);
	free(m->vals);
}

uint32_t hm_get(const struct hmap *m, uint64_t key)
{
	uint64_t k = key + 1;
	uint32_t j = hm_slot(m, k);

	for (;;) {
		if (m->keys[j] == k)
			return m->vals[j];
		if (!m->keys[j])
			return 0;
		j = (j + 1) & m->mask;
	}
}

static int hm_grow(struct hmap *m)
{
	struct hmap n;

	if (hm_init(&n, (m->mask + 1)) < 0) {
		hm_free(&n);
		return -1;
	}
	for (uint32_t i = 0; i <= m->mask; i++) {
		if (!m->keys[i])
			continue;
		uint32_t j = hm_slot(&n, m->keys[i]);

		while (n.keys[j])
			j = (j + 1) & n.mask;
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
	}
	n.count = m->count;
	hm_free(m);
	*m = n;
	return 0;
}

int hm_put(struct hmap *m, uint64_t key, uint32_t val)
{
	uint64_t k = key + 1;
	uint32_t j;

	if ((m->count + 1) * 2 > m->mask + 1 && hm_grow(m) < 0)
		return -1;
	j = hm_slot(m, k);
	while (m->keys[j] && m->keys[j] != k)
		j = (j + 1) & m->mask;
	if (!m->keys[j])
		m->count++;
	m->keys[j] = k;
	m->vals[j] = val;
	return 0;
}

void hm_del(struct hmap *m, uint64_t key)
{
	uint64_t k = key + 1;
	uint32_t j = hm_slot(m, k);

	while (m->keys[j] != k) {
		if (!m->keys[j])
			return;
		j = (j + 1) & m->mask;
	}
	/* backward shift: move later members of the cluster into the hole when allowed */
	uint32_t hole = j;

	for (;;) {
		j = (j + 1) & m->mask;
		if (!m->keys[j])
			break;
		uint32_t home = hm_slot(m, m->keys[j]);

		if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
			m->keys[hole] = m->keys[j];
			m->vals[hole] = m->vals[j];
			hole = j;
		}
	}
	m->keys[hole] = 0;
	m->vals[hole] = 0;
	m->count--;
}

/* ---- strings ------------------------------------------------------------------------------ */

uint32_t st_intern(struct fnet_state *s, const void *p, size_t len)
{
	if (len > 0xffffffffu)
		len = 0xffffffffu;
	return fnet_strtab_intern(s->strings, (const uint8_t *)p, (uint32_t)len);
}

const uint8_t *st_get(const struct fnet_state *s, uint32_t id, uint32_t *len)
{
	if (id == FNET_EMPTY_ID) {
		*len = 0;
		return (const uint8_t *)"";
	}
	return fnet_strtab_get(s->strings, id, len);
}

/* ---- version tables ---------------------------------------------------------------------- */

/* Like grow(), for slabs of 64-byte aligned structs (realloc keeps only 16). */
static void *grow_aligned(void *p, uint32_t *cap, uint32_t used, size_t elem)
{
	uint32_t ncap = *cap ? *cap * 2 : 1024;
	void *n = aligned_alloc(64, (size_t)ncap * elem);

	if (!n)
		return NULL;
	if (p)
		memcpy(n, p, (size_t)used * elem);
	free(p);
	*cap = ncap;
	return n;
}

static void *grow(void *p, uint32_t *cap, size_t elem)
{
	uint32_t ncap = *cap ? *cap * 2 : 1024;
	void *n = realloc(p, (size_t)ncap * elem);

	if (n)
		*cap = ncap;
	return n;
}

uint32_t fver_push_grow(struct fnet_state *s, const struct fnet_fver *v)
{
	void *n = grow(s->fvt, &s->fvcap, sizeof(*s->fvt));

	if (!n) {
		s->oom = 1;
		return 0;
	}
	s->fvt = n;
	return fver_push(s, v);
}

static uint32_t pver_push(struct fnet_state *s, const struct fnet_pver *v)
{
	if (s->npv == s->pvcap) {
		void *n = grow(s->pvt, &s->pvcap, sizeof(*s->pvt));

		if (!n) {
			s->oom = 1;
			return 0;
		}
		s->pvt = n;
	}
	s->pvt[s->npv] = *v;
	return s->npv++;
}

void tables_reset(struct fnet_state *s)
{
	static const struct fnet_pver zp;
	static const struct fnet_fver zf;

	s->npv = 0;
	s->nfv = 0;
	pver_push(s, &zp);
	fver_push(s, &zf);
	s->gen++;
}

uint32_t fd_version_new(struct fnet_state *s, uint32_t fi)
{
	struct fdinfo *f = &s->fdi[fi];

	f->vid = fver_push(s, &f->v);
	f->vgen = s->gen;
	return f->vid;
}

/* Name (and exe) of the process with pid `leader`, else of the eldest ancestor of p whose
 * `key` (sid or vpgid) equals it.  Mirrors libsinsp's proc.sname / proc.vpgid.name. */
static uint32_t leader_of(struct fnet_state *s, const struct proc *p, int use_sid, uint32_t *exe)
{
	int64_t key = use_sid ? p->v.sid : p->v.vpgid;
	uint32_t li = proc_lookup(s, key);
	const struct proc *best = p;

	if (li) {
		*exe = s->procs[li].v.exe;
		return s->procs[li].v.name;
	}
	for (int d = 0; d < FNET_MAX_CHAIN; d++) {
		if (!(best->v.flags & FNET_PV_PPID))
			break;
		uint32_t pi = proc_lookup(s, best->v.ppid);

		if (!pi || pi == (uint32_t)(best - s->procs))
			break;
		const struct proc *q = &s->procs[pi];
		uint32_t need = use_sid ? FNET_PV_SID : FNET_PV_VPGID;

		if (!(q->v.flags & need) || (use_sid ? q->v.sid : q->v.vpgid) != key)
			break;
		best = q;
	}
	*exe = best->v.exe;
	return best->v.name;
}

static uint32_t parent_index(struct fnet_state *s, uint32_t pi)
{
	const struct proc *p = &s->procs[pi];

	if (!(p->v.flags & FNET_PV_PPID) || p->v.ppid <= 0 || p->v.ppid == p->v.pid)
		return 0;
	return proc_lookup(s, p->v.ppid);
}

/* The current version of process pi, made (with its missing ancestors) if needed. */
uint32_t proc_version_new(struct fnet_state *s, uint32_t pi)
{
	uint32_t chain[FNET_MAX_CHAIN];
	int n = 0;
	uint32_t cur = pi;

	while (cur && n < FNET_MAX_CHAIN && s->procs[cur].vgen != s->gen) {
		int seen = 0;

		for (int k = 0; k < n; k++)
			seen |= chain[k] == cur;
		if (seen)
			break;
		chain[n++] = cur;
		cur = parent_index(s, cur);
	}
	for (int k = n - 1; k >= 0; k--) {
		struct proc *p = &s->procs[chain[k]];
		struct fnet_pver v = p->v;
		uint32_t par = parent_index(s, chain[k]);

		v.parent = (par && s->procs[par].vgen == s->gen) ? s->procs[par].vid : 0;
		v.sname = v.vpgid_name = v.vpgid_exe = 0;
		if (v.flags & FNET_PV_SID) {
			uint32_t dummy;

			v.sname = leader_of(s, p, 1, &dummy);
		}
		if (v.flags & FNET_PV_VPGID)
			v.vpgid_name = leader_of(s, p, 0, &v.vpgid_exe);
		p->vid = pver_push(s, &v);
		p->vgen = s->gen;
	}
	return s->procs[pi].vgen == s->gen ? s->procs[pi].vid : 0;
}

/* ---- processes and fd infos -------------------------------------------------------------- */

uint32_t proc_lookup(struct fnet_state *s, int64_t pid)
{
	return hm_get(&s->pidmap, (uint64_t)pid);
}

uint32_t fdinfo_new(struct fnet_state *s, const struct fnet_fver *v)
{
	uint32_t fi;

	if (s->nfds >= s->opts.max_fds) {
		s->st.fds_cap_hit++;
		return 0;
	}
	if (s->fdi_free) {
		fi = s->fdi_free;
		s->fdi_free = s->fdi[fi].next_free;
	} else {
		if (s->fdi_used >= s->fdi_cap) {
			void *n = grow_aligned(s->fdi, &s->fdi_cap, s->fdi_used, sizeof(*s->fdi));

			if (!n) {
				s->oom = 1;
				return 0;
			}
			s->fdi = n;
		}
		fi = s->fdi_used++;
	}
	struct fdinfo *e = &s->fdi[fi];

	e->v = *v;
	e->refs = e->vid = e->next_free = 0;
	e->vgen = 0;
	s->nfds++;
	return fi;
}

static void fdinfo_put(struct fnet_state *s, uint32_t fi)
{
	struct fdinfo *f = &s->fdi[fi];

	if (--f->refs == 0) {
		f->vgen = 0;
		f->next_free = s->fdi_free;
		s->fdi_free = fi;
		s->nfds--;
	}
}

/* Install info fi (may be 0 = untracked) as fd `fd` of p, releasing what was there. */
void fd_install(struct fnet_state *s, struct proc *p, int64_t fd, uint32_t fi, int cloexec)
{
	if (fd < 0 || fd > s->opts.max_fd_num) {
		if (fd > s->opts.max_fd_num)
			s->st.fd_num_too_big++;
		goto unused;
	}
	if ((uint64_t)fd >= p->fdcap) {
		if (!fi)
			return;
		uint32_t ncap = p->fdcap ? p->fdcap : 16;

		while (ncap <= (uint64_t)fd)
			ncap *= 2;
		uint32_t *n = realloc(p->fds, ncap * sizeof(*n));

		if (!n) {
			s->oom = 1;
			goto unused;
		}
		memset(n + p->fdcap, 0, (ncap - p->fdcap) * sizeof(*n));
		p->fds = n;
		p->fdcap = ncap;
	}
	uint32_t old = p->fds[fd] & ~FNET_FD_CLOEXEC;

	if (fi)
		s->fdi[fi].refs++;
	p->fds[fd] = fi ? (fi | (cloexec ? FNET_FD_CLOEXEC : 0)) : 0;
	if (fi && (uint32_t)fd >= p->fdhi)
		p->fdhi = (uint32_t)fd + 1;
	if (old)
		fdinfo_put(s, old);
	return;
unused:
	if (fi && s->fdi[fi].refs == 0) {	/* never installed: back to the free list */
		s->fdi[fi].refs = 1;
		fdinfo_put(s, fi);
	}
}

void fd_close_all(struct fnet_state *s, struct proc *p, int only_cloexec)
{
	for (uint32_t i = 0; i < p->fdhi; i++) {
		uint32_t e = p->fds[i];

		if (e && (!only_cloexec || (e & FNET_FD_CLOEXEC))) {
			p->fds[i] = 0;
			fdinfo_put(s, e & ~FNET_FD_CLOEXEC);
		}
	}
	if (!only_cloexec)
		p->fdhi = 0;
}

/* A new process slot for pid (replacing a stale one with the same pid); 0 at the cap. */
uint32_t proc_add(struct fnet_state *s, int64_t pid)
{
	uint32_t pi = proc_lookup(s, pid);

	if (pi)
		proc_remove(s, pi);
	if (s->nprocs >= s->opts.max_procs) {
		s->st.procs_cap_hit++;
		return 0;
	}
	if (s->proc_free) {
		pi = s->proc_free;
		s->proc_free = s->procs[pi].next_free;
	} else {
		if (s->procs_used >= s->procs_cap) {
			void *n = grow_aligned(s->procs, &s->procs_cap, s->procs_used,
					       sizeof(*s->procs));

			if (!n) {
				s->oom = 1;
				return 0;
			}
			s->procs = n;
		}
		pi = s->procs_used++;
	}
	memset(&s->procs[pi], 0, sizeof(s->procs[pi]));
	s->procs[pi].v.pid = pid;
	s->procs[pi].v.loginuid = -1;
	s->procs[pi].live = 1;
	s->procs[pi].serial = ++s->serial;
	if (hm_put(&s->pidmap, (uint64_t)pid, pi) < 0) {
		s->oom = 1;
		return 0;
	}
	s->nprocs++;
	s->st.procs_added++;
	return pi;
}

void child_link(struct fnet_state *s, struct proc *p, int delta)
{
	if (!(p->v.flags & FNET_PV_PPID))
		return;
	uint32_t par = proc_lookup(s, p->v.ppid);

	if (par && &s->procs[par] != p) {
		if (delta < 0 && s->procs[par].nchildren == 0)
			return;
		s->procs[par].nchildren += delta;
	}
}

void proc_remove(struct fnet_state *s, uint32_t pi)
{
	struct proc *p = &s->procs[pi];
	int64_t pid = p->v.pid;

	if (!p->live)
		return;
	fd_close_all(s, p, 0);
	free(p->fds);
	p->fds = NULL;
	p->fdcap = p->fdhi = 0;
	child_link(s, p, -1);
	hm_del(&s->pidmap, (uint64_t)pid);
	if (p->nchildren) {
		/* Orphans go to init (pid 1) as the kernel does without a subreaper. */
		uint32_t init = proc_lookup(s, 1);

		for (uint32_t i = 1; i < s->procs_used; i++) {
			struct proc *c = &s->procs[i];

			if (!c->live || !(c->v.flags & FNET_PV_PPID) || c->v.ppid != pid)
				continue;
			c->v.ppid = init ? 1 : 0;
			if (!init)
				c->v.flags &= ~FNET_PV_PPID;
			else
				s->procs[init].nchildren++;
			c->vgen = 0;
		}
		s->gen++;
	}
	p->live = 0;
	p->vgen = 0;
	p->next_free = s->proc_free;
	s->proc_free = pi;
	s->nprocs--;
	s->st.procs_removed++;	/* tid cache entries of this slot fail their serial check */
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

struct fnet_state *fnet_state_new(struct fnet_strtab *strings, const struct fnet_state_opts *opts)
{
	struct fnet_state *s = aligned_alloc(64, sizeof(*s));	/* the tid cache is aligned */

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->strings = strings;
	s->opts.max_procs = 65536;
	s->opts.max_threads = 262144;
	s->opts.max_fds = 1048576;
	s->opts.max_fd_num = 65535;
	if (opts && opts->size >= sizeof(*opts)) {
		if (opts->max_procs)
			s->opts.max_procs = opts->max_procs;
		if (opts->max_threads)
			s->opts.max_threads = opts->max_threads;
		if (opts->max_fds)
			s->opts.max_fds = opts->max_fds;
		if (opts->max_fd_num)
			s->opts.max_fd_num = opts->max_fd_num;
	}
	s->procs_used = 1;	/* slot 0: none */
	s->fdi_used = 1;
	s->host_id = st_intern(s, "host", 4);
	if (hm_init(&s->pidmap, 1024) < 0 || hm_init(&s->tidmap, 1024) < 0) {
		fnet_state_free(s);
		return NULL;
	}
	tables_reset(s);
	return s;
}

void fnet_state_free(struct fnet_state *s)
{
	if (!s)
		return;
	for (uint32_t i = 1; i < s->procs_used; i++)
		free(s->procs[i].fds);
	free(s->procs);
	free(s->fdi);
	free(s->pvt);
	free(s->fvt);
	hm_free(&s->pidmap);
	hm_free(&s->tidmap);
	free(s);
}

int state_begin_batch(struct fnet_state *s)
{
	tables_reset(s);
	return s->oom ? -1 : 0;
}
