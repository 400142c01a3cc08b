/* SPDX-License-Identifier: MIT */
/*
 * state_io.c - the state engine's boundary with Python: seeding from a snapshot, the
 * version tables of the last batch, snapshot dumps, counters, and the one-pass gather of
 * per-version columns to events (see state.h).
 */
#include <stdlib.h>
#include <string.h>

#include "state_int.h"

/* ---- seeding ---------------------------------------------------------------------------------- */

int fnet_state_seed_proc(struct fnet_state *s, const struct fnet_seed_proc *sp)
{
	uint32_t pi = proc_add(s, sp->pid);

	if (!pi)
		return -1;
	struct fnet_pver *v = &s->procs[pi].v;

	v->ppid = sp->ppid;
	v->sid = sp->sid;
	v->vpgid = sp->vpgid;
	v->loginuid = sp->loginuid;
	v->start_ts = sp->start_ts;
	v->cap_eff = sp->cap_eff;
	v->cap_prm = sp->cap_prm;
	v->cap_inh = sp->cap_inh;
	v->name = sp->comm;
	v->exe = sp->exe;
	v->exepath = sp->exepath;
	v->args = sp->args;
	v->cmdline = make_cmdline(s, sp->comm, sp->args);
	v->cwd = cwd_slash(s, sp->cwd);
	v->container_id = container_of(s, sp->cgroup);
	v->uid = sp->uid;
	v->gid = sp->gid;
	v->euid = sp->euid;
	v->egid = sp->egid;
	v->tty = sp->tty;
	v->flags = (sp->flags & ~FNET_PV_EXE_MEMFD) | exe_flags(s, sp->exepath);
	return 0;
}

int fnet_state_seed_thread(struct fnet_state *s, int64_t tid, int64_t pid)
{
	return thread_set(s, tid, pid) ? 0 : -1;
}

int fnet_state_seed_fd(struct fnet_state *s, int64_t pid, int64_t fd, const struct fnet_fver *f,
		       int cloexec)
{
	uint32_t pi = proc_lookup(s, pid);

	if (!pi)
		return -1;
	uint32_t fi = fdinfo_new(s, f);

	if (!fi)
		return -1;
	fd_install(s, &s->procs[pi], fd, fi, cloexec);
	return 0;
}

void fnet_state_seed_done(struct fnet_state *s)
{
	for (uint32_t i = 1; i < s->procs_used; i++)
		s->procs[i].nchildren = 0;
	for (uint32_t i = 1; i < s->procs_used; i++)
		if (s->procs[i].live)
			child_link(s, &s->procs[i], +1);
	s->gen++;
	s->sgen++;
}

const struct fnet_pver *fnet_state_pvers(const struct fnet_state *s, uint32_t *count)
{
	*count = s->npv;
	return s->pvt;
}

const struct fnet_fver *fnet_state_fvers(const struct fnet_state *s, uint32_t *count)
{
	*count = s->nfv;
	return s->fvt;
}

uint32_t fnet_state_dump(struct fnet_state *s, uint32_t *pv_out, uint32_t cap)
{
	uint32_t n = 0;

	tables_reset(s);
	for (uint32_t i = 1; i < s->procs_used && n < cap; i++)
		if (s->procs[i].live)
			pv_out[n++] = proc_version(s, i);
	return n;
}

uint32_t fnet_state_nfds(const struct fnet_state *s)
{
	return s->nfds;
}

uint32_t fnet_state_dump_fds(struct fnet_state *s, int64_t *out4, uint32_t cap)
{
	uint32_t n = 0;

	for (uint32_t i = 1; i < s->procs_used; i++) {
		struct proc *p = &s->procs[i];

		if (!p->live)
			continue;
		for (uint32_t fd = 0; fd < p->fdhi && n < cap; fd++) {
			uint32_t e = p->fds[fd];

			if (!e)
				continue;
			out4[4 * n] = p->v.pid;
			out4[4 * n + 1] = fd;
			out4[4 * n + 2] = fd_version(s, e & ~FNET_FD_CLOEXEC);
			out4[4 * n + 3] = (e & FNET_FD_CLOEXEC) ? 1 : 0;
			n++;
		}
	}
	return n;
}

uint32_t fnet_state_dump_threads(const struct fnet_state *s, int64_t *out2, uint32_t cap)
{
	uint32_t n = 0;

	for (uint32_t j = 0; j <= s->tidmap.mask && n < cap; j++) {
		if (!s->tidmap.keys[j])
			continue;
		out2[2 * n] = (int64_t)(s->tidmap.keys[j] - 1);
		out2[2 * n + 1] = (int64_t)s->tidmap.vals[j] - 1;
		n++;
	}
	return n;
}

void fnet_state_get_stats(const struct fnet_state *s, struct fnet_state_stats *out)
{
	*out = s->st;
	out->procs = s->nprocs;
	out->threads = s->tidmap.count;
	out->fds = s->nfds;
	out->pversions = s->npv ? s->npv - 1 : 0;
	out->fversions = s->nfv ? s->nfv - 1 : 0;
}

/* ---- gathers ---------------------------------------------------------------------------------- */

#define GATHER_BLOCK 256	/* events per block: columns stay hot, indices are read once */

void fnet_gather(uint32_t n, const uint32_t *idx, uint32_t ncols,
		 const struct fnet_gather_col *cols)
{
	for (uint32_t b = 0; b < n; b += GATHER_BLOCK) {
		uint32_t e = n - b < GATHER_BLOCK ? n : b + GATHER_BLOCK;

		for (uint32_t k = 0; k < ncols; k++) {
			const struct fnet_gather_col *c = &cols[k];

			switch (c->width) {
			case 1:
				for (uint32_t i = b; i < e; i++)
					c->dst[i] = c->src[idx[i]];
				break;
			case 2:
				for (uint32_t i = b; i < e; i++)
					((uint16_t *)c->dst)[i] = ((const uint16_t *)c->src)[idx[i]];
				break;
			case 4:
				for (uint32_t i = b; i < e; i++)
					((uint32_t *)c->dst)[i] = ((const uint32_t *)c->src)[idx[i]];
				break;
			case 8:
				for (uint32_t i = b; i < e; i++)
					((uint64_t *)c->dst)[i] = ((const uint64_t *)c->src)[idx[i]];
				break;
			default: {
				uint32_t w = c->width / 4;	/* 2-D rows: words */
				const uint32_t *src = (const uint32_t *)c->src;
				uint32_t *dst = (uint32_t *)c->dst;

				for (uint32_t i = b; i < e; i++) {
					const uint32_t *r = src + (size_t)idx[i] * w;
					uint32_t *o = dst + (size_t)i * w;

					for (uint32_t j = 0; j < w; j++)
						o[j] = r[j];
				}
			}
			}
		}
	}
}
