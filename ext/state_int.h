/* SPDX-License-Identifier: MIT */
/*
 * state_int.h - private structures of the state engine, shared by state.c (tables,
 * versions, seeding) and state_events.c (per-event transitions).  Not part of the cffi API.
 */
#ifndef FALCONET_STATE_INT_H
#define FALCONET_STATE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "falconet_abi.h"
#include "intern.h"
#include "state.h"

#define FNET_FD_CLOEXEC 0x80000000u
#define FNET_MAX_CHAIN 64	/* ancestors walked when making versions / finding leaders */
#define FNET_EMPTY_ID 1
#define FNET_TCACHE 1024	/* direct-mapped tid -> process cache */

struct hmap {
	uint64_t *keys;		/* key + 1; 0 = empty */
	uint32_t *vals;
	uint32_t mask;
	uint32_t count;
};

struct proc {
	/* hot: read for every event of the process (the first cache line: the slab is
	 * allocated 64-byte aligned and the struct is 3 lines long) */
	uint64_t vgen;
	uint64_t serial;	/* which process lives in this slot */
	uint32_t *fds;		/* fd -> fd info index | FNET_FD_CLOEXEC, 0 = closed/unknown */
	uint32_t fdcap;
	uint32_t fdhi;		/* fds[fdhi..fdcap) are all 0: loops over fds stop there */
	uint32_t vid;		/* version in the current tables when vgen == state gen */
	uint32_t live;
	union {
		uint32_t nthreads;	/* live slot */
		uint32_t next_free;	/* slot on the free list */
	};
	uint32_t nchildren;
	/* identity; parent/sname/vpgid_* are filled in versions only */
	struct fnet_pver v;
} __attribute__((aligned(64)));

/* 64 bytes: one cache line per fd info (the slab is allocated 64-byte aligned) */
struct fdinfo {
	struct fnet_fver v;
	uint32_t refs;
	uint32_t vid;
	uint32_t next_free;
	uint64_t vgen;
	uint8_t _pad[8];
} __attribute__((aligned(64)));

/* tid -> process slot, valid while the slot still holds the same process (serial, live)
 * and nothing changed this tid's thread entry (thread_set / exit forget the tid's slot);
 * sgen resets it all (seeding replaces the tables).  Batches do not reset it: a batch
 * boundary changes no tid -> process mapping. */
struct tcache_ent {
	int64_t tid;
	int64_t pid;
	uint64_t serial;
	uint32_t pi;
	uint32_t sgen;		/* low half of the state's sgen: the serial check covers a wrap */
} __attribute__((aligned(32)));

/* memo caches of pure functions of string ids (ids are stable for the table's life) */
#define FNET_MEMO 4096
struct memo_dir { uint32_t name, dir, file; };
struct memo_addr { uint32_t id, text; uint16_t family, port; };
struct memo_sock { uint64_t k1, k2; uint32_t name; };
struct memo_path { uint32_t name, base, out; };

struct fnet_state {
	struct fnet_strtab *strings;
	struct fnet_state_opts opts;
	struct fnet_state_stats st;
	uint32_t host_id;
	int oom;

	struct hmap pidmap;	/* pid -> proc index */
	struct hmap tidmap;	/* tid -> pid + 1 */
	struct proc *procs;
	uint32_t procs_used, procs_cap, proc_free, nprocs;
	struct fdinfo *fdi;
	uint32_t fdi_used, fdi_cap, fdi_free, nfds;

	uint64_t gen;		/* versions are valid while their vgen == gen */
	uint64_t sgen;		/* bumped to invalidate the whole tid cache */
	uint64_t serial;	/* processes added so far */
	struct fnet_pver *pvt;
	uint32_t npv, pvcap;
	struct fnet_fver *fvt;
	uint32_t nfv, fvcap;

	struct tcache_ent tcache[FNET_TCACHE] __attribute__((aligned(64)));
	struct memo_dir mdir[FNET_MEMO];
	struct memo_addr maddr[FNET_MEMO];
	struct memo_sock msock[FNET_MEMO];
	struct memo_path mpath[FNET_MEMO];
	uint8_t scratch[3 * 65536 + 64];
};

/* The version of an fd info / a process in this batch's tables: the common case (already
 * made this batch) inline, the first use of the batch out of line (state.c). */
uint32_t fd_version_new(struct fnet_state *s, uint32_t fi);
uint32_t proc_version_new(struct fnet_state *s, uint32_t pi);

static inline uint32_t fd_version(struct fnet_state *s, uint32_t fi)
{
	const struct fdinfo *f = &s->fdi[fi];

	return f->vgen == s->gen ? f->vid : fd_version_new(s, fi);
}

static inline uint32_t proc_version(struct fnet_state *s, uint32_t pi)
{
	if (!pi)
		return 0;
	return s->procs[pi].vgen == s->gen ? s->procs[pi].vid : proc_version_new(s, pi);
}

/* state.c */
int hm_init(struct hmap *m, uint32_t cap);
void hm_free(struct hmap *m);
uint32_t hm_get(const struct hmap *m, uint64_t key);
int hm_put(struct hmap *m, uint64_t key, uint32_t val);
void hm_del(struct hmap *m, uint64_t key);
uint32_t st_intern(struct fnet_state *s, const void *p, size_t len);
const uint8_t *st_get(const struct fnet_state *s, uint32_t id, uint32_t *len);
uint32_t fver_push_grow(struct fnet_state *s, const struct fnet_fver *v);
/* Append a row to this batch's fd version table; its index. */
static inline uint32_t fver_push(struct fnet_state *s, const struct fnet_fver *v)
{
	if (s->nfv == s->fvcap)
		return fver_push_grow(s, v);
	s->fvt[s->nfv] = *v;
	return s->nfv++;
}
uint32_t proc_lookup(struct fnet_state *s, int64_t pid);
uint32_t proc_add(struct fnet_state *s, int64_t pid);
void proc_remove(struct fnet_state *s, uint32_t pi);
void child_link(struct fnet_state *s, struct proc *p, int delta);
uint32_t fdinfo_new(struct fnet_state *s, const struct fnet_fver *v);
void fd_install(struct fnet_state *s, struct proc *p, int64_t fd, uint32_t fi, int cloexec);
static inline uint32_t fd_lookup(const struct proc *p, int64_t fd)
{
	if (fd < 0 || (uint64_t)fd >= p->fdcap)
		return 0;
	return p->fds[fd] & ~FNET_FD_CLOEXEC;
}
void fd_close_all(struct fnet_state *s, struct proc *p, int only_cloexec);
int state_begin_batch(struct fnet_state *s);
void tables_reset(struct fnet_state *s);

#define AT_FDCWD_ (-100)
#define O_DIRECTORY_ 0200000
#define O_TMPFILE_ 020000000
#define O_CLOEXEC_ 02000000
#define SOCK_CLOEXEC_ 02000000
#define CLONE_PARENT_ 0x00008000
#define CLONE_THREAD_ 0x00010000
#define EINPROGRESS_ 115
#define UNSET32 0xffffffffu

/* The intern table gives "" the id 1 and never another: any larger id is non-empty. */
static inline int is_empty(const struct fnet_state *s, uint32_t id)
{
	(void)s;
	return id <= FNET_EMPTY_ID;
}

struct saddr {
	uint16_t family, port;
	uint32_t text;		/* address text id (inet) or path id (unix) */
};

/* state_names.c */
uint32_t resolve_path(struct fnet_state *s, struct proc *p, int64_t dirfd, uint32_t name);
void split_dir(struct fnet_state *s, struct fnet_fver *f);
int get_saddr(struct fnet_state *s, uint32_t id, struct saddr *a);
uint8_t fdtype_of_family(uint32_t fam);
void sock_name(struct fnet_state *s, struct fnet_fver *f);
void sock_name_later(struct fnet_state *s, struct fnet_fver *f);
int name_differs(const struct fnet_fver *a, const struct fnet_fver *b);
uint8_t l4_of(int64_t domain, int64_t type, int64_t proto);

/* state_events.c */
uint32_t thread_set(struct fnet_state *s, int64_t tid, int64_t pid);
/* state_names.c, also used by seeding */
uint32_t make_cmdline(struct fnet_state *s, uint32_t comm, uint32_t args);
uint32_t cwd_slash(struct fnet_state *s, uint32_t cwd);
uint32_t container_of(struct fnet_state *s, uint32_t cgroup);
uint32_t exe_flags(struct fnet_state *s, uint32_t exepath);

#endif
