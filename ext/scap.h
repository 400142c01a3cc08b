/* SPDX-License-Identifier: MIT */
/*
 * scap.h - the fast path of the Falco/sysdig .scap reader: event blocks -> Falconet columns.
 *
 * Python (collector/sources/scap*.py) owns the file: it decompresses, walks metadata blocks,
 * builds the snapshot and hands this module a buffer that starts at a block boundary.
 * fnet_scap_walk() then converts consecutive event blocks into the column buffers until the
 * batch is full, a non-event block starts, the buffer holds no complete block, or the data is
 * damaged.  What each event becomes is not decided here: the conversion table
 * (collector/sources/scap_convert.py) arrives once as struct fnet_scap_spec.
 *
 * State kept across calls (and across batches) per thread id, in a bounded hash table:
 * the pending syscall enter event (to give exit rows the enter's parameters, as Falco does
 * for old captures) and the thread's pid (seeded from the process list, updated by
 * clone/fork/execve exits, dropped at procexit; a thread never seen has pid = tid, as in
 * libsinsp).  A child's clone exit (res 0) also makes a PROC_FORK row just before its own
 * (the record the live driver writes at sched_process_fork), so an event makes at most two
 * rows.  Strings go into a private intern table; Python maps its ids onto the pipeline's
 * StringTable once per distinct string.
 */
#ifndef FALCONET_SCAP_H
#define FALCONET_SCAP_H

#include <stdint.h>

/* BEGIN CDEF */
#define FNET_SCAP_MAXP 32
#define FNET_SCAP_NEED_MORE 0
#define FNET_SCAP_FULL 1
#define FNET_SCAP_OTHER_BLOCK 2
#define FNET_SCAP_ERROR 3

struct fnet_scap_spec {
	uint32_t ntypes;
	const uint16_t *fnet;      /* [ntypes] Falconet type, 0 = not modelled */
	const uint8_t *flags;      /* [ntypes] F_* of scap_convert.py */
	const uint8_t *nparams;    /* [ntypes] parameters in today's table */
	const int8_t *procparam;   /* [ntypes * 3] index of pid, ptid, comm parameters or -1 */
	uint16_t procfork_type;    /* Falconet PROC_FORK type (rows made from clone exits) */
	uint16_t clone_type;       /* Falconet CLONE, CLONE3 types (their a0 = clone flags) */
	uint16_t clone3_type;
	const uint32_t *action;    /* [ntypes * FNET_SCAP_MAXP] kind | slot<<8 | slot2<<12 | PT<<16 */
	const uint8_t *pt_signed;  /* [64] */
	const uint16_t *generic;   /* [ngeneric] Falconet type of GENERIC events by PPM_SC code */
	uint32_t ngeneric;
	const uint32_t *flagmap;   /* [nflagmap * 3] (0 open / 1 clone, PPM bits, kernel value) */
	uint32_t nflagmap;
	uint32_t max_threads;      /* bound of the per-thread table */
	uint32_t max_event;        /* largest accepted event block (LARGE blocks) */
};

struct fnet_scap_cols {
	uint32_t cap;
	uint64_t *num;
	uint64_t *ts;
	uint16_t *cpu;
	int64_t *tid;
	int64_t *pid;
	uint16_t *type;
	uint16_t *flags;
	int64_t *ret;
	int64_t *a;      /* 6 * cap, column i at a + i * cap */
	uint32_t *v;     /* 6 * cap, local string ids */
	uint8_t *dir;
	uint16_t *code;  /* the scap event code of each row */
	uint16_t *argmask; /* bits 0..5: a0..a5 present in the event (or its enter); bit 12: ret */
};

struct fnet_scap_result {
	uint64_t consumed;   /* bytes of the buffer fully handled */
	uint64_t need;       /* NEED_MORE: bytes the block at `consumed` needs */
	uint64_t events;     /* event blocks handled in this call (rows or not) */
	uint32_t rows;
	int32_t status;      /* FNET_SCAP_* */
	uint64_t err_offset; /* ERROR: buffer-relative offset of the damage */
	char err[200];
};

struct fnet_scap_counters {
	uint64_t state_only;     /* EVF events flagged "for state tracking only" */
	uint64_t bad_params;     /* parameters with an impossible length, treated as absent */
	uint64_t threads_full;   /* thread-table inserts refused at max_threads */
	uint64_t paired;         /* exit rows that received enter parameters */
	uint64_t threads;        /* threads in the table now */
};

struct fnet_scap;
struct fnet_scap *fnet_scap_new(const struct fnet_scap_spec *spec);
void fnet_scap_free(struct fnet_scap *s);
struct fnet_strtab *fnet_scap_strings(struct fnet_scap *s);
/* Seed thread -> pid from a process list; returns the number refused (table full). */
uint32_t fnet_scap_seed(struct fnet_scap *s, const int64_t *tid, const int64_t *pid, uint32_t n);
/* Convert event blocks of buf[0..len) into cols rows row0.. (res->rows = rows filled in total;
 * an event makes at most 2 rows and none is started once rows >= cap - 1);
 * `skipped` has ntypes + 1 counters (the last for codes beyond the table); event numbers start
 * at first_num.  Returns res->status. */
int fnet_scap_walk(struct fnet_scap *s, const uint8_t *buf, uint64_t len, uint64_t first_num,
		   struct fnet_scap_cols *cols, uint32_t row0, uint64_t *skipped,
		   struct fnet_scap_result *res);
void fnet_scap_get_counters(struct fnet_scap *s, struct fnet_scap_counters *out);
/* END CDEF */

#endif
