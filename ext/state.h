/* SPDX-License-Identifier: MIT */
/*
 * state.h - the process/fd state engine: thread table, process table, per-process fd tables,
 * updated in event order from decoded columns, answering "who did this, on what".
 *
 * Model (the pure-numpy twin collector/state/pure.py implements the same model):
 *
 *   threads   tid -> pid                         (hash, capped: max_threads)
 *   processes pid -> struct proc                 (hash + slab, capped: max_procs)
 *               identity (comm, exe, exepath, args, cmdline, cwd, creds, tty, sid, vpgid,
 *               container id, start time, caps), ppid, child count, fd table
 *   fd table  per process: fd -> fd info index | FNET_FD_CLOEXEC   (grown on demand)
 *   fd infos  slab of immutable struct fnet_fver, refcounted (dup and fork share them;
 *             a change such as connect makes a new info), capped: max_fds
 *
 * Output.  fnet_state_process() writes, per event, the *version* ids of the process and of
 * the fd the event refers to.  A version is an immutable copy of a process (struct
 * fnet_pver) or fd info (struct fnet_fver) in a table that lives until the next call;
 * a state change makes the next event of that process get a new version.  Every Falco
 * field is then a numpy gather: proc.name = pver.name[pv], proc.aname[3] follows
 * pver.parent three times (over the small version table), fd.name = fver.name[fv] ...
 * Version 0 is "nothing known" in both tables (all zero: string id 0 = absent).
 *
 * Event semantics follow libsinsp: an event sees the state *after* its own changes
 * (execve: the new image; open/socket/accept/dup: the new fd; setuid: the new uid) except
 * removals, which happen after it (close sees the closed fd, procexit the exiting process).
 */
#ifndef FALCONET_STATE_H
#define FALCONET_STATE_H

#include <stdint.h>

#include "intern.h"

/* BEGIN CDEF */
struct fnet_strtab;
struct fnet_state;

/* struct fnet_pver.flags */
#define FNET_PV_KNOWN 1		/* identity known (exec, snapshot, or fork of a known parent) */
#define FNET_PV_SID 2		/* sid known */
#define FNET_PV_VPGID 4		/* vpgid known */
#define FNET_PV_CAPS 8		/* cap_prm / cap_inh known (capset or snapshot) */
#define FNET_PV_CAPEFF 16	/* cap_eff known */
#define FNET_PV_EXE_MEMFD 32	/* executable is a memfd ("/memfd:..." exepath) */
#define FNET_PV_PPID 64		/* ppid known */

/* struct fnet_fver.type (names and typechars: collector/state/fields.py FD_TYPES) */
#define FNET_FD_UNKNOWN 0
#define FNET_FD_FILE 1
#define FNET_FD_DIRECTORY 2
#define FNET_FD_IPV4 3
#define FNET_FD_IPV6 4
#define FNET_FD_UNIX 5
#define FNET_FD_PIPE 6
#define FNET_FD_EVENT 7
#define FNET_FD_SIGNALFD 8
#define FNET_FD_EVENTPOLL 9
#define FNET_FD_INOTIFY 10
#define FNET_FD_TIMERFD 11
#define FNET_FD_NETLINK 12
#define FNET_FD_MEMFD 13
#define FNET_FD_BPF 14
#define FNET_FD_OTHER 15

/* struct fnet_fver.l4proto */
#define FNET_L4_NONE 0
#define FNET_L4_TCP 1
#define FNET_L4_UDP 2
#define FNET_L4_ICMP 3
#define FNET_L4_RAW 4

/* struct fnet_fver.flags */
#define FNET_FV_SERVER 1	/* the local end is the server (accept, bind) */
#define FNET_FV_CONNECTED 2	/* connect succeeded or accepted */

/* fnet_state_process: fdnum of an event that refers to no fd */
#define FNET_NO_FD -9223372036854775807

struct fnet_pver {
	uint64_t start_ts;
	uint64_t cap_eff;
	uint64_t cap_prm;
	uint64_t cap_inh;
	int64_t pid;
	int64_t ppid;
	int64_t sid;
	int64_t vpgid;
	int64_t loginuid;	/* -1 = unset */
	uint32_t parent;	/* version id of the parent process, 0 = unknown */
	uint32_t name;		/* string ids ... */
	uint32_t exe;
	uint32_t exepath;
	uint32_t args;
	uint32_t cmdline;
	uint32_t cwd;
	uint32_t container_id;
	uint32_t sname;
	uint32_t vpgid_name;
	uint32_t vpgid_exe;
	uint32_t tty;
	uint32_t uid;
	uint32_t gid;
	uint32_t euid;
	uint32_t egid;
	uint32_t flags;		/* FNET_PV_* */
	uint32_t _pad;
};

struct fnet_fver {
	uint32_t name;
	uint32_t nameraw;
	uint32_t directory;
	uint32_t filename;
	uint32_t cip;		/* client address as text (string id), 0 = none */
	uint32_t sip;		/* server address as text */
	uint32_t oflags;	/* open flags */
	uint16_t cport;
	uint16_t sport;
	uint8_t type;		/* FNET_FD_* */
	uint8_t l4proto;	/* FNET_L4_* */
	uint8_t family;		/* FNET_AF_* */
	uint8_t flags;		/* FNET_FV_* */
};

struct fnet_state_opts {
	uint32_t size;		/* sizeof(struct fnet_state_opts) */
	uint32_t max_procs;
	uint32_t max_threads;
	uint32_t max_fds;	/* fd infos in all processes together */
	uint32_t max_fd_num;	/* highest fd number tracked per process */
	uint32_t _pad;
};

struct fnet_state_stats {
	uint64_t events;
	uint64_t procs;		/* live entries */
	uint64_t threads;
	uint64_t fds;
	uint64_t procs_added;
	uint64_t procs_removed;
	uint64_t procs_unknown;		/* events of processes never seen exec/fork/snapshot */
	uint64_t procs_cap_hit;		/* processes not tracked because max_procs was reached */
	uint64_t threads_cap_hit;
	uint64_t fds_cap_hit;
	uint64_t fd_num_too_big;	/* fds above max_fd_num, not tracked */
	uint64_t fds_unknown;		/* events on an fd the table did not hold */
	uint64_t pversions;		/* versions made by the last call */
	uint64_t fversions;
};

/* Input columns of one batch (EventBatch base columns; see collector/batch.py). */
struct fnet_state_in {
	uint32_t n;
	const uint64_t *ts;
	const int64_t *tid;
	const int64_t *pid;
	const uint16_t *type;
	const int64_t *ret;
	const int64_t *a[6];
	const uint32_t *v[6];
};

/* Per-event outputs (arrays of n). */
struct fnet_state_out {
	uint32_t *pv;		/* process version */
	uint32_t *fv;		/* fd version, 0 = none */
	int64_t *fdnum;		/* fd number the event refers to, FNET_NO_FD if none */
	uint8_t *evflags;	/* bit 0: this event changed the fd's name (fd.name_changed) */
};

/* Seed records (from a snapshot). */
struct fnet_seed_proc {
	int64_t pid, ppid, sid, vpgid, loginuid;
	uint64_t start_ts, cap_eff, cap_prm, cap_inh;
	uint32_t comm, exe, exepath, args, cwd, cgroup;	/* string ids; args = argv[1:] joined */
	uint32_t uid, gid, euid, egid, tty, flags;	/* flags: FNET_PV_* known bits */
};

struct fnet_state *fnet_state_new(struct fnet_strtab *strings, const struct fnet_state_opts *opts);
void fnet_state_free(struct fnet_state *s);
/* Returns 0, or -1 when a cap refused it (counted). */
int fnet_state_seed_proc(struct fnet_state *s, const struct fnet_seed_proc *p);
int fnet_state_seed_thread(struct fnet_state *s, int64_t tid, int64_t pid);
int fnet_state_seed_fd(struct fnet_state *s, int64_t pid, int64_t fd, const struct fnet_fver *f,
		       int cloexec);
/* Call once after seeding: counts children, links parents. */
void fnet_state_seed_done(struct fnet_state *s);

/* Apply one batch in order; fills `out`.  Returns 0, -1 on allocation failure. */
int fnet_state_process(struct fnet_state *s, const struct fnet_state_in *in,
		       const struct fnet_state_out *out);
/* The version tables made by the last fnet_state_process / fnet_state_dump. */
const struct fnet_pver *fnet_state_pvers(const struct fnet_state *s, uint32_t *count);
const struct fnet_fver *fnet_state_fvers(const struct fnet_state *s, uint32_t *count);

/* Snapshot: makes a version of every live process (and their fds) and lists them:
 * returns the number of processes; then fnet_state_dump_fds gives (pid, fd, fver id,
 * cloexec) quadruples and fnet_state_dump_threads (tid, pid) pairs. */
uint32_t fnet_state_dump(struct fnet_state *s, uint32_t *pv_out, uint32_t cap);
uint32_t fnet_state_dump_fds(struct fnet_state *s, int64_t *out4, uint32_t cap);
uint32_t fnet_state_dump_threads(const struct fnet_state *s, int64_t *out2, uint32_t cap);
uint32_t fnet_state_nfds(const struct fnet_state *s);

void fnet_state_get_stats(const struct fnet_state *s, struct fnet_state_stats *out);

/* Fill in the names of inet socket versions (made lazily: name 0 until asked). */
void fnet_state_sock_names(struct fnet_state *s, struct fnet_fver *v, uint32_t n);

/* Expand per-version columns to per-event columns in one pass over the events:
 * cols[k].dst[i] = cols[k].src[idx[i]], elements of cols[k].width bytes (1, 2, 4, 8 or a
 * multiple of 4 for 2-D columns).  The numpy twin is one take() per column. */
struct fnet_gather_col {
	const uint8_t *src;
	uint8_t *dst;
	uint32_t width;
	uint32_t _pad;
};
void fnet_gather(uint32_t n, const uint32_t *idx, uint32_t ncols,
		 const struct fnet_gather_col *cols);

/* Helpers shared with tests: container id (12 chars) from a cgroup text, 0 if none. */
uint32_t fnet_container_id(const uint8_t *cg, uint32_t len, uint8_t *out12);

/* String table rollover (state_rehome.c): move the state onto table nt -- every string id it
 * holds re-interned into nt, per-id memo caches cleared, versions invalidated; afterwards it
 * interns into nt.  Returns the number of strings carried over (0 when nt is already the
 * state's table), -1 when out of memory (the state is then unchanged). */
int fnet_state_rehome(struct fnet_state *s, struct fnet_strtab *nt);
/* END CDEF */

#endif
