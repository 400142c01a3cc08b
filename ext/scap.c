/* SPDX-License-Identifier: MIT */
/*
 * scap.c - event blocks of a .scap capture -> Falconet columns (see scap.h).
 *
 * Written from shared/reference/scap-format.md.  Every length read from the file is checked
 * against what contains it before use: the block against the buffer, the event against its
 * block, the parameter-length array and the parameters against the event.  A check that
 * fails stops the walk with FNET_SCAP_ERROR and the offset; the rows converted before it stay
 * in the columns, so the caller delivers them first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"
#include "scap.h"

/* must match collector/sources/scap_convert.py */
enum { K_SKIP, K_RET, K_INT, K_OFLAGS, K_CLONEFLAGS, K_LO32, K_HI32, K_STR, K_BYTES, K_EXE,
       K_ARGS, K_SOCKADDR, K_TUPLE_OUT, K_TUPLE_IN };
enum { F_ENTER = 1, F_LARGE = 2, F_PAIR = 4, F_PIDSRC = 8, F_EXIT_THREAD = 16, F_GENERIC = 32,
       F_FORKX = 64 };
#define NO_SLOT 15
#define NO_CODE 0xFFFF
#define RET_BIT (1u << 12)
#define HDR_V1 22
#define HDR_V2 26
#define MAX_NPARAMS 1024
#define NOTIFICATION_E 280
#define INFRASTRUCTURE_EVENT_E 286

struct thread {
	int64_t tid;
	int64_t pid;        /* -1 unknown */
	uint16_t pcode;     /* pending enter event code, NO_CODE if none */
	uint16_t pmask;     /* slots the pending enter set */
	uint32_t used;
	int64_t a[6];
	uint32_t v[6];
};

struct fnet_scap {
	struct fnet_scap_spec spec;   /* arrays below are private copies */
	uint16_t *fnet;
	uint8_t *flags, *nparams;
	int8_t *procparam;
	uint32_t *action;
	uint8_t pt_signed[64];
	uint16_t *generic;
	uint32_t *flagmap;
	struct fnet_strtab *strings;
	struct thread *tab;
	uint32_t tab_mask, tab_count;
	uint8_t *scratch;
	size_t scratch_cap;
	struct fnet_scap_counters cnt;
};

struct row {
	int64_t ret;
	int64_t a[6];
	uint32_t v[6];
	uint32_t mask;
	const uint8_t *exe;
	uint32_t exe_len;
};

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* --- thread table: linear probing, backward-shift deletion --------------------------------- */

static inline uint32_t tid_hash(int64_t tid)
{
	uint64_t h = (uint64_t)tid * 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(h >> 32);
}

static struct thread *thread_find(struct fnet_scap *s, int64_t tid)
{
	uint32_t i = tid_hash(tid) & s->tab_mask;

	while (s->tab[i].used) {
		if (s->tab[i].tid == tid)
			return &s->tab[i];
		i = (i + 1) & s->tab_mask;
	}
	return NULL;
}

static int thread_grow(struct fnet_scap *s)
{
	uint32_t n = (s->tab_mask + 1) * 2, i;
	struct thread *old = s->tab, *t;
	uint32_t old_n = s->tab_mask + 1;

	t = calloc(n, sizeof(*t));
	if (t == NULL)
		return -1;
	s->tab = t;
	s->tab_mask = n - 1;
	for (i = 0; i < old_n; i++) {
		if (old[i].used) {
			uint32_t j = tid_hash(old[i].tid) & s->tab_mask;
			while (t[j].used)
				j = (j + 1) & s->tab_mask;
			t[j] = old[i];
		}
	}
	free(old);
	return 0;
}

static struct thread *thread_get(struct fnet_scap *s, int64_t tid)
{
	struct thread *t = thread_find(s, tid);
	uint32_t i;

	if (t != NULL)
		return t;
	if (s->tab_count >= s->spec.max_threads) {
		s->cnt.threads_full++;
		return NULL;
	}
	if ((s->tab_count + 1) * 2 > s->tab_mask + 1 && thread_grow(s) < 0) {
		s->cnt.threads_full++;
		return NULL;
	}
	i = tid_hash(tid) & s->tab_mask;
	while (s->tab[i].used)
		i = (i + 1) & s->tab_mask;
	t = &s->tab[i];
	memset(t, 0, sizeof(*t));
	t->used = 1;
	t->tid = tid;
	t->pid = -1;
	t->pcode = NO_CODE;
	s->tab_count++;
	return t;
}

static void thread_del(struct fnet_scap *s, struct thread *t)
{
	uint32_t i = (uint32_t)(t - s->tab), j = i, k;

	s->tab[i].used = 0;
	s->tab_count--;
	for (;;) {
		j = (j + 1) & s->tab_mask;
		if (!s->tab[j].used)
			return;
		k = tid_hash(s->tab[j].tid) & s->tab_mask;
		/* move j back to the hole i unless its home k lies cyclically in (i, j] */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			s->tab[i] = s->tab[j];
			s->tab[j].used = 0;
			i = j;
		}
	}
}

/* --- lifecycle ------------------------------------------------------------------------------ */

struct fnet_scap *fnet_scap_new(const struct fnet_scap_spec *spec)
{
	struct fnet_scap *s = calloc(1, sizeof(*s));
	uint32_t n = spec->ntypes;

	if (s == NULL)
		return NULL;
	s->spec = *spec;
	s->fnet = malloc(n * sizeof(uint16_t));
	s->flags = malloc(n);
	s->nparams = malloc(n);
	s->procparam = malloc((size_t)n * 3);
	s->action = malloc((size_t)n * FNET_SCAP_MAXP * sizeof(uint32_t));
	s->generic = calloc(spec->ngeneric + 1, sizeof(uint16_t));
	s->flagmap = calloc((size_t)spec->nflagmap * 3 + 1, sizeof(uint32_t));
	s->strings = fnet_strtab_new();
	s->tab = calloc(1024, sizeof(struct thread));
	s->tab_mask = 1023;
	if (!s->fnet || !s->flags || !s->nparams || !s->procparam || !s->action || !s->strings ||
	    !s->tab || !s->generic || !s->flagmap) {
		fnet_scap_free(s);
		return NULL;
	}
	memcpy(s->fnet, spec->fnet, n * sizeof(uint16_t));
	memcpy(s->flags, spec->flags, n);
	memcpy(s->nparams, spec->nparams, n);
	memcpy(s->procparam, spec->procparam, (size_t)n * 3);
	memcpy(s->action, spec->action, (size_t)n * FNET_SCAP_MAXP * sizeof(uint32_t));
	memcpy(s->pt_signed, spec->pt_signed, 64);
	if (spec->ngeneric)
		memcpy(s->generic, spec->generic, spec->ngeneric * sizeof(uint16_t));
	if (spec->nflagmap)
		memcpy(s->flagmap, spec->flagmap, (size_t)spec->nflagmap * 3 * sizeof(uint32_t));
	return s;
}

void fnet_scap_free(struct fnet_scap *s)
{
	if (s == NULL)
		return;
	free(s->fnet);
	free(s->flags);
	free(s->nparams);
	free(s->procparam);
	free(s->action);
	free(s->generic);
	free(s->flagmap);
	free(s->tab);
	free(s->scratch);
	if (s->strings)
		fnet_strtab_free(s->strings);
	free(s);
}

struct fnet_strtab *fnet_scap_strings(struct fnet_scap *s)
{
	return s->strings;
}

uint32_t fnet_scap_seed(struct fnet_scap *s, const int64_t *tid, const int64_t *pid, uint32_t n)
{
	uint32_t i, refused = 0;

	for (i = 0; i < n; i++) {
		struct thread *t = thread_get(s, tid[i]);
		if (t == NULL)
			refused++;
		else
			t->pid = pid[i];
	}
	return refused;
}

void fnet_scap_get_counters(struct fnet_scap *s, struct fnet_scap_counters *out)
{
	*out = s->cnt;
	out->threads = s->tab_count;
}

/* --- parameter conversion ------------------------------------------------------------------- */

static int read_num(const struct fnet_scap *s, const uint8_t *p, uint32_t len, uint32_t pt,
		    int64_t *out)
{
	int sg = s->pt_signed[pt & 63];

	switch (len) {
	case 1: *out = sg ? (int64_t)(int8_t)p[0] : (int64_t)p[0]; return 0;
	case 2: *out = sg ? (int64_t)(int16_t)rd16(p) : (int64_t)rd16(p); return 0;
	case 4: *out = sg ? (int64_t)(int32_t)rd32(p) : (int64_t)rd32(p); return 0;
	case 8: *out = (int64_t)rd64(p); return 0;
	}
	return -1;
}

/* Flags in the driver's PPM_* encoding -> the kernel's values, by the spec's table of
 * (kind, PPM bits, kernel value) rows: kind 0 open flags, 1 clone flags. */
static int64_t map_flags(const struct fnet_scap *s, uint32_t kind, int64_t v)
{
	int64_t out = 0;
	uint32_t i;

	for (i = 0; i < s->spec.nflagmap; i++)
		if (s->flagmap[3 * i] == kind && (v & s->flagmap[3 * i + 1]))
			out |= s->flagmap[3 * i + 2];
	if (kind == 0 && (v & 3) == 3)          /* PPM_O_RDWR is RDONLY|WRONLY: O_RDWR */
		out = (out & ~(int64_t)3) | 2;
	return out;
}

static uint8_t *scratch(struct fnet_scap *s, size_t n)
{
	if (n > s->scratch_cap) {
		uint8_t *p = realloc(s->scratch, n);
		if (p == NULL)
			return NULL;
		s->scratch = p;
		s->scratch_cap = n;
	}
	return s->scratch;
}

/* struct fnet_sockaddr bytes: u16 family, u16 port, 16 addr bytes (unix: path after 4 bytes) */
static uint32_t put_sockaddr(uint8_t *out, uint16_t fam, uint16_t port, const uint8_t *addr,
			     uint32_t alen)
{
	memset(out, 0, 20);
	memcpy(out, &fam, 2);
	memcpy(out + 2, &port, 2);
	if (fam == 1) {
		memcpy(out + 4, addr, alen);
		return 4 + alen;
	}
	if (alen)
		memcpy(out + 4, addr, alen);
	return 20;
}

static uint32_t strlen_n(const uint8_t *p, uint32_t len)
{
	const uint8_t *z = memchr(p, 0, len);
	return z ? (uint32_t)(z - p) : len;
}

static uint32_t intern(struct fnet_scap *s, const uint8_t *p, uint32_t len)
{
	return fnet_strtab_intern(s->strings, p, len);
}

static void set_v(struct row *r, uint32_t slot, uint32_t id)
{
	if (slot < 6 && id != 0) {
		r->v[slot] = id;
		r->mask |= 1u << (6 + slot);
	}
}

static void set_a(struct row *r, uint32_t slot, int64_t val)
{
	if (slot < 6) {
		r->a[slot] = val;
		r->mask |= 1u << slot;
	}
}

/* One parameter -> row; returns -1 for a parameter whose length is impossible (counted). */
static int convert_param(struct fnet_scap *s, struct row *r, uint32_t act, const uint8_t *p,
			 uint32_t len)
{
	uint32_t kind = act & 0xFF, slot = (act >> 8) & 15, slot2 = (act >> 12) & 15;
	uint32_t pt = act >> 16;
	int64_t val;
	uint8_t *buf, *sa, *sb;
	uint32_t n, n2;

	switch (kind) {
	case K_RET: case K_INT: case K_OFLAGS: case K_CLONEFLAGS: case K_LO32: case K_HI32:
		if (read_num(s, p, len, pt, &val) < 0)
			return -1;
		if (kind == K_RET) {
			r->ret = val;
			r->mask |= RET_BIT;
		} else if (kind == K_OFLAGS) {
			set_a(r, slot, map_flags(s, 0, val));
		} else if (kind == K_CLONEFLAGS) {
			set_a(r, slot, map_flags(s, 1, val));
		} else if (kind == K_LO32) {
			set_a(r, slot, (r->a[slot] & ~(int64_t)0xFFFFFFFF) | (val & 0xFFFFFFFF));
		} else if (kind == K_HI32) {
			set_a(r, slot, (r->a[slot] & 0xFFFFFFFF) | (int64_t)((uint64_t)val << 32));
		} else {
			set_a(r, slot, val);
		}
		return 0;
	case K_STR:
		set_v(r, slot, intern(s, p, strlen_n(p, len)));
		return 0;
	case K_BYTES:
		set_v(r, slot, intern(s, p, (len && p[len - 1] == 0) ? len - 1 : len));
		return 0;
	case K_EXE:
		r->exe = p;
		r->exe_len = strlen_n(p, len);
		return 0;
	case K_ARGS:
		n = (len && p[len - 1] == 0) ? len - 1 : len;
		if (r->exe == NULL) {
			set_v(r, slot, intern(s, p, n));
			return 0;
		}
		buf = scratch(s, (size_t)r->exe_len + 1 + n);
		if (buf == NULL)
			return -1;
		memcpy(buf, r->exe, r->exe_len);
		buf[r->exe_len] = 0;
		memcpy(buf + r->exe_len + 1, p, n);
		set_v(r, slot, intern(s, buf, r->exe_len + (n ? 1 + n : 0)));
		return 0;
	case K_SOCKADDR:
		if (len < 1 || (sa = scratch(s, (size_t)len + 20)) == NULL)
			return -1;
		if (p[0] == 2 && len == 7)
			n = put_sockaddr(sa, 2, rd16(p + 5), p + 1, 4);
		else if (p[0] == 10 && len == 19)
			n = put_sockaddr(sa, 10, rd16(p + 17), p + 1, 16);
		else if (p[0] == 1)
			n = put_sockaddr(sa, 1, 0, p + 1, strlen_n(p + 1, len - 1));
		else if (p[0] == 2 || p[0] == 10)
			return -1;
		else
			n = put_sockaddr(sa, p[0], 0, NULL, 0) - 16;
		set_v(r, slot, intern(s, sa, n));
		return 0;
	case K_TUPLE_OUT: case K_TUPLE_IN: {
		/* src / dst as sockaddrs; OUT: peer = dst, IN: peer = src */
		if (len < 1 || (sa = scratch(s, (size_t)len + 40)) == NULL)
			return -1;
		sb = sa + len + 20;
		if (p[0] == 2 && len == 13) {
			n = put_sockaddr(sa, 2, rd16(p + 5), p + 1, 4);            /* src */
			n2 = put_sockaddr(sb, 2, rd16(p + 11), p + 7, 4);          /* dst */
		} else if (p[0] == 10 && len == 37) {
			n = put_sockaddr(sa, 10, rd16(p + 17), p + 1, 16);
			n2 = put_sockaddr(sb, 10, rd16(p + 35), p + 19, 16);
		} else if (p[0] == 1 && len >= 17) {
			n = put_sockaddr(sa, 1, 0, p + 17, strlen_n(p + 17, len - 17));
			set_v(r, slot, intern(s, sa, n));
			return 0;
		} else {
			return -1;
		}
		if (kind == K_TUPLE_OUT) {
			set_v(r, slot, intern(s, sb, n2));
			if (slot2 != NO_SLOT)
				set_v(r, slot2, intern(s, sa, n));
		} else {
			set_v(r, slot, intern(s, sa, n));
			if (slot2 != NO_SLOT)
				set_v(r, slot2, intern(s, sb, n2));
		}
		return 0;
	}
	}
	return 0;
}

/* One row of the columns; the pid is the thread's as the table knows it now, else the tid. */
static void put_row(struct fnet_scap *s, struct fnet_scap_cols *c, uint32_t k, uint64_t num,
		    uint64_t ts, uint16_t cpu, int64_t tid, uint16_t type, const struct row *r,
		    uint8_t dir, uint16_t code)
{
	struct thread *t = thread_find(s, tid);
	size_t cap = c->cap, i;

	c->num[k] = num;
	c->ts[k] = ts;
	c->cpu[k] = cpu;
	c->tid[k] = tid;
	c->pid[k] = t != NULL && t->pid > 0 ? t->pid : tid;
	c->type[k] = type;
	c->flags[k] = 0;
	c->ret[k] = r->ret;
	for (i = 0; i < 6; i++) {
		c->a[i * cap + k] = r->a[i];
		c->v[i * cap + k] = r->v[i];
	}
	c->dir[k] = dir;
	c->code[k] = code;
	c->argmask[k] = (uint16_t)(r->mask & (0x3F | RET_BIT));
}

/* Parameter k of an event as a 64-bit number, INT64_MIN if absent or not 8 bytes long. */
static int64_t param_i64(const uint8_t *buf, uint64_t parr, uint32_t nparams, uint32_t lsz,
			 const uint32_t *lens, int k)
{
	uint64_t q = parr + (uint64_t)nparams * lsz;
	int i;

	if (k < 0 || (uint32_t)k >= nparams || k >= FNET_SCAP_MAXP || lens[k] != 8)
		return INT64_MIN;
	for (i = 0; i < k; i++)
		q += lens[i];
	return (int64_t)rd64(buf + q);
}

/* --- the walk ------------------------------------------------------------------------------- */

static int ev_block(uint32_t code, int *v2, int *has_flags, int *large)
{
	switch (code) {
	case 0x204: case 0x8010ABCD: *v2 = 0; *has_flags = 0; *large = 0; return 1;
	case 0x216: *v2 = 1; *has_flags = 0; *large = 0; return 1;
	case 0x221: *v2 = 1; *has_flags = 0; *large = 1; return 1;
	case 0x208: *v2 = 0; *has_flags = 1; *large = 0; return 1;
	case 0x217: *v2 = 1; *has_flags = 1; *large = 0; return 1;
	case 0x222: *v2 = 1; *has_flags = 1; *large = 1; return 1;
	}
	return 0;
}

#define FAIL(off, ...) do { \
		res->status = FNET_SCAP_ERROR; res->err_offset = (off); res->consumed = pos; \
		snprintf(res->err, sizeof(res->err), __VA_ARGS__); goto out; } while (0)

int fnet_scap_walk(struct fnet_scap *s, const uint8_t *buf, uint64_t len, uint64_t first_num,
		   struct fnet_scap_cols *cols, uint32_t row0, uint64_t *skipped,
		   struct fnet_scap_result *res)
{
	uint64_t pos = 0;
	uint32_t rows = row0, cap = cols->cap;

	memset(res, 0, sizeof(*res));
	for (;;) {
		uint32_t code, total, elen, etype, nparams, lsz, hdr, i, fl;
		uint32_t lens[FNET_SCAP_MAXP];
		uint64_t sum, end, p, ts, tidu, parr, pv;
		uint16_t cpu, ftype;
		int v2, has_flags, large, state_only = 0, modelled;
		struct row r;
		struct thread *t;

		if (len - pos < 8) {
			res->status = FNET_SCAP_NEED_MORE;
			res->need = 8;
			break;
		}
		code = rd32(buf + pos);
		total = rd32(buf + pos + 4);
		if (!ev_block(code, &v2, &has_flags, &large)) {
			res->status = FNET_SCAP_OTHER_BLOCK;
			break;
		}
		hdr = v2 ? HDR_V2 : HDR_V1;
		if (total < 8 + 2 + (has_flags ? 4 : 0) + hdr + 4)
			FAIL(pos + 4, "event block length %u is smaller than an event header", total);
		if ((!large && total - 8 > 65536) || (large && total > s->spec.max_event))
			FAIL(pos + 4, "event block length %u exceeds the %s limit of %u bytes", total,
			     large ? "large-block" : "event-block", large ? s->spec.max_event : 65544);
		if (total > len - pos) {
			res->status = FNET_SCAP_NEED_MORE;
			res->need = total;
			break;
		}
		if (rows + 1 >= cap) {
			res->status = FNET_SCAP_FULL;
			break;
		}
		end = pos + total - 4;
		if (rd32(buf + end) != total)
			FAIL(end, "event block trailer %u does not repeat its length %u",
			     rd32(buf + end), total);
		p = pos + 8;
		cpu = rd16(buf + p);
		p += 2;
		if (has_flags) {
			state_only = rd32(buf + p) & 1;
			p += 4;
		}
		ts = rd64(buf + p);
		tidu = rd64(buf + p + 8);
		elen = rd32(buf + p + 16);
		etype = rd16(buf + p + 20);
		if (elen < hdr || elen > end - p)
			FAIL(p + 16, "event length %u does not fit in its block (%llu bytes)", elen,
			     (unsigned long long)(end - p));
		if (etype >= s->spec.ntypes) {
			skipped[s->spec.ntypes]++;
			res->events++;
			pos += total;
			continue;
		}
		fl = s->flags[etype];
		lsz = (fl & F_LARGE) ? 4 : 2;
		parr = p + hdr;
		if (v2) {
			nparams = rd32(buf + p + 22);
			if (nparams > MAX_NPARAMS || (uint64_t)nparams * lsz > elen - hdr)
				FAIL(p + 22, "event of type %u claims %u parameters, which do not fit in "
				     "its %u bytes", etype, nparams, elen);
			sum = 0;
			for (i = 0; i < nparams; i++)
				sum += lsz == 4 ? rd32(buf + parr + 4 * i) : rd16(buf + parr + 2 * i);
			if (hdr + (uint64_t)nparams * lsz + sum > elen)
				FAIL(parr, "parameters of an event of type %u add up to %llu bytes, more "
				     "than its length %u", etype,
				     (unsigned long long)(hdr + nparams * lsz + sum), elen);
		} else {
			/* v1: no count; the largest n whose lengths add up to the event length */
			int found = 0, n = s->nparams[etype];
			uint32_t want = elen;
			if (etype == NOTIFICATION_E || etype == INFRASTRUCTURE_EVENT_E)
				want = elen >= 3 ? elen - 3 : elen;
			for (; n >= 0 && !found; n--) {
				if ((uint64_t)hdr + (uint64_t)n * lsz > elen)
					continue;
				sum = 0;
				for (i = 0; i < (uint32_t)n; i++)
					sum += lsz == 4 ? rd32(buf + parr + 4 * i) : rd16(buf + parr + 2 * i);
				if (hdr + (uint64_t)n * lsz + sum == want || hdr + (uint64_t)n * lsz + sum == elen) {
					found = 1;
					nparams = (uint32_t)n;
				}
			}
			if (!found)
				FAIL(p + 16, "event of type %u: no parameter count matches its length %u",
				     etype, elen);
		}
		res->events++;
		ftype = s->fnet[etype];
		if ((fl & F_GENERIC) && nparams >= 1 &&
		    (lsz == 4 ? rd32(buf + parr) : rd16(buf + parr)) == 2) {
			uint32_t sc = rd16(buf + parr + (uint64_t)nparams * lsz);
			ftype = sc < s->spec.ngeneric ? s->generic[sc] : 0;
		}
		modelled = ftype != 0 && !state_only;
		if (state_only && ftype != 0)
			s->cnt.state_only++;
		else if (!modelled)
			skipped[etype]++;
		memset(&r, 0, sizeof(r));
		pv = parr + (uint64_t)nparams * lsz;
		for (i = 0; i < nparams && i < FNET_SCAP_MAXP; i++) {
			lens[i] = lsz == 4 ? rd32(buf + parr + 4 * i) : rd16(buf + parr + 2 * i);
			if (modelled && lens[i] != 0 &&
			    convert_param(s, &r, s->action[etype * FNET_SCAP_MAXP + i], buf + pv,
					  lens[i]) < 0)
				s->cnt.bad_params++;
			pv += lens[i];
		}
		t = NULL;
		if (fl & F_PIDSRC) {
			int64_t pid = param_i64(buf, parr, nparams, lsz, lens, s->procparam[etype * 3]);
			if (pid > 0 && (t = thread_get(s, (int64_t)tidu)) != NULL)
				t->pid = pid;
		}
		if (fl & F_PAIR) {
			if (fl & F_ENTER) {
				t = thread_get(s, (int64_t)tidu);
				if (t != NULL) {
					t->pcode = (uint16_t)etype;
					t->pmask = modelled ? (uint16_t)(r.mask & 0xFFF) : 0;
					memcpy(t->a, r.a, sizeof(r.a));
					memcpy(t->v, r.v, sizeof(r.v));
				}
			} else {
				t = thread_find(s, (int64_t)tidu);
				if (t != NULL) {
					if (modelled && t->pcode == etype - 1 && t->pmask) {
						uint32_t miss = t->pmask & ~r.mask;
						for (i = 0; i < 6; i++) {
							if (miss & (1u << i))
								r.a[i] = t->a[i];
							if (miss & (1u << (6 + i)))
								r.v[i] = t->v[i];
						}
						r.mask |= miss;
						s->cnt.paired++;
					}
					t->pcode = NO_CODE;
				}
			}
		}
		if (modelled && (fl & F_FORKX) && (r.mask & RET_BIT) && r.ret == 0 &&
		    param_i64(buf, parr, nparams, lsz, lens, s->procparam[etype * 3 + 1]) != INT64_MIN) {
			/* the child's clone exit: the PROC_FORK record of the live driver first */
			int64_t ptid = param_i64(buf, parr, nparams, lsz, lens, s->procparam[etype * 3 + 1]);
			int64_t cpid = param_i64(buf, parr, nparams, lsz, lens, s->procparam[etype * 3]);
			int ci = s->procparam[etype * 3 + 2];
			uint32_t comm = 0;
			struct row f;
			if (ci >= 0 && (uint32_t)ci < nparams && lens[ci] != 0) {
				uint64_t q = parr + (uint64_t)nparams * lsz;
				for (i = 0; i < (uint32_t)ci; i++)
					q += lens[i];
				comm = intern(s, buf + q, strlen_n(buf + q, lens[ci]));
			}
			memset(&f, 0, sizeof(f));
			f.a[0] = (int64_t)tidu;
			f.a[1] = cpid > 0 ? cpid : (int64_t)tidu;
			f.a[2] = (ftype == s->spec.clone_type || ftype == s->spec.clone3_type) ? r.a[0] : 0;
			f.a[3] = (int64_t)ts;
			f.v[0] = comm;
			f.mask = 0xF | RET_BIT;
			put_row(s, cols, rows++, first_num + res->events - 1, ts, cpu, ptid,
				s->spec.procfork_type, &f, 0, (uint16_t)etype);
		}
		if (modelled)
			put_row(s, cols, rows++, first_num + res->events - 1, ts, cpu, (int64_t)tidu, ftype,
				&r, (fl & F_ENTER) ? 1 : 0, (uint16_t)etype);
		if (fl & F_EXIT_THREAD) {
			t = thread_find(s, (int64_t)tidu);
			if (t != NULL)
				thread_del(s, t);
		}
		pos += total;
	}
	res->consumed = pos;
out:
	res->rows = rows;
	return res->status;
}
