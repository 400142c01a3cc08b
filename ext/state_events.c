/* SPDX-License-Identifier: MIT */
/*
 * state_events.c - the per-event transitions of the state engine, applied in event order
 * (see state.h for the model, collector/state/pure.py for the pure twin of every rule here).
 *
 *   procfork / clone / fork / vfork   child process (copy of the parent, fds shared by refcount)
 *                                     or thread of the same process
 *   execve / execveat (ret 0)         new identity from the record; close-on-exec fds closed
 *   procexit                          thread removed; the process too when a0 says "last"
 *   setuid family, capset             credentials / capabilities (user.uid is the euid)
 *   setsid, setpgid                   session / process group
 *   chdir, fchdir                     cwd (Falco style: with a trailing '/')
 *   open family, creat, memfd_create  new fd (failed opens: a one-event fd with the name)
 *   socket, socketpair, accept*       new socket fd
 *   connect, bind, sendto/recvfrom    socket tuple (a change makes a new fd info)
 *   dup*, fcntl(F_DUPFD*)             fd shares the old fd's info
 *   close                             fd removed after the event
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"

enum kind {
	K_NONE, K_OPEN, K_OPENAT, K_CREAT, K_CLOSE, K_DUP, K_DUP23, K_FCNTL, K_FDARG, K_CHDIR,
	K_FCHDIR, K_EXEC, K_CLONE, K_FORKSYS, K_PROCFORK, K_PROCEXIT, K_SETSID, K_SETPGID,
	K_SETUID, K_SETGID, K_SETREUID, K_SETREGID, K_SETRESUID, K_SETRESGID, K_CAPSET,
	K_SOCKET, K_SOCKETPAIR, K_CONNECT, K_ACCEPT, K_BIND, K_SENDRECV, K_MEMFD,
};

static const uint8_t kind_of[FNET_NUM_EVENT_TYPES] = {
	[FNET_EV_OPEN] = K_OPEN, [FNET_EV_OPENAT] = K_OPENAT, [FNET_EV_OPENAT2] = K_OPENAT,
	[FNET_EV_CREAT] = K_CREAT, [FNET_EV_CLOSE] = K_CLOSE, [FNET_EV_DUP] = K_DUP,
	[FNET_EV_DUP2] = K_DUP23, [FNET_EV_DUP3] = K_DUP23, [FNET_EV_FCNTL] = K_FCNTL,
	[FNET_EV_FCHMOD] = K_FDARG, [FNET_EV_FCHOWN] = K_FDARG, [FNET_EV_IOCTL] = K_FDARG,
	[FNET_EV_FINIT_MODULE] = K_FDARG, [FNET_EV_SETNS] = K_FDARG, [FNET_EV_LISTEN] = K_FDARG,
	[FNET_EV_SHUTDOWN] = K_FDARG, [FNET_EV_GETSOCKOPT] = K_FDARG,
	[FNET_EV_CHDIR] = K_CHDIR, [FNET_EV_FCHDIR] = K_FCHDIR,
	[FNET_EV_EXECVE] = K_EXEC, [FNET_EV_EXECVEAT] = K_EXEC,
	[FNET_EV_CLONE] = K_CLONE, [FNET_EV_CLONE3] = K_CLONE,
	[FNET_EV_FORK] = K_FORKSYS, [FNET_EV_VFORK] = K_FORKSYS,
	[FNET_EV_PROC_FORK] = K_PROCFORK, [FNET_EV_PROC_EXIT] = K_PROCEXIT,
	[FNET_EV_SETSID] = K_SETSID, [FNET_EV_SETPGID] = K_SETPGID,
	[FNET_EV_SETUID] = K_SETUID, [FNET_EV_SETGID] = K_SETGID,
	[FNET_EV_SETREUID] = K_SETREUID, [FNET_EV_SETREGID] = K_SETREGID,
	[FNET_EV_SETRESUID] = K_SETRESUID, [FNET_EV_SETRESGID] = K_SETRESGID,
	[FNET_EV_CAPSET] = K_CAPSET, [FNET_EV_SOCKET] = K_SOCKET,
	[FNET_EV_SOCKETPAIR] = K_SOCKETPAIR, [FNET_EV_CONNECT] = K_CONNECT,
	[FNET_EV_ACCEPT] = K_ACCEPT, [FNET_EV_ACCEPT4] = K_ACCEPT, [FNET_EV_BIND] = K_BIND,
	[FNET_EV_SENDTO] = K_SENDRECV, [FNET_EV_SENDMSG] = K_SENDRECV,
	[FNET_EV_RECVFROM] = K_SENDRECV, [FNET_EV_RECVMSG] = K_SENDRECV,
	[FNET_EV_MEMFD_CREATE] = K_MEMFD,
};


static uint32_t new_fd(struct fnet_state *s, struct proc *p, int64_t fd, struct fnet_fver *f,
		       int cloexec);

/* Replace fd's info by *f when it differs; returns the fd version to report and sets
 * *changed when the name changed. */
static uint32_t fd_replace(struct fnet_state *s, struct proc *p, int64_t fd, uint32_t old,
			   struct fnet_fver *f, uint8_t *changed)
{
	if (old && memcmp(&s->fdi[old].v, f, sizeof(*f)) == 0)
		return fd_version(s, old);
	if (old && name_differs(&s->fdi[old].v, f))
		*changed = 1;
	int cloexec = p && fd >= 0 && (uint64_t)fd < p->fdcap && (p->fds[fd] & FNET_FD_CLOEXEC);

	return new_fd(s, p, fd, f, cloexec);
}

/* ---- threads and processes ------------------------------------------------------------------ */

static inline void tcache_forget(struct fnet_state *s, int64_t tid)
{
	struct tcache_ent *c = &s->tcache[(uint64_t)tid & (FNET_TCACHE - 1)];

	if (c->tid == tid)
		c->pi = 0;
}

/* thread_set(), also saying whether the thread table holds tid -> pid afterwards (not at
 * the threads cap or out of memory). */
static uint32_t thread_enter(struct fnet_state *s, int64_t tid, int64_t pid, int *in_table)
{
	uint32_t pi = proc_lookup(s, pid);

	*in_table = 0;
	if (!pi) {
		pi = proc_add(s, pid);
		if (!pi)
			return 0;
		s->st.procs_unknown++;
	}
	uint32_t cur = hm_get(&s->tidmap, (uint64_t)tid);

	if (cur != (uint32_t)(pid + 1)) {
		if (cur) {
			uint32_t oi = proc_lookup(s, (int64_t)cur - 1);

			if (oi && s->procs[oi].nthreads)
				s->procs[oi].nthreads--;
			tcache_forget(s, tid);
		} else if (s->tidmap.count >= s->opts.max_threads) {
			s->st.threads_cap_hit++;
			return pi;
		}
		if (hm_put(&s->tidmap, (uint64_t)tid, (uint32_t)(pid + 1)) < 0) {
			s->oom = 1;
			return pi;
		}
		s->procs[pi].nthreads++;
	}
	*in_table = 1;
	return pi;
}

uint32_t thread_set(struct fnet_state *s, int64_t tid, int64_t pid)
{
	int in_table;

	return thread_enter(s, tid, pid, &in_table);
}

static uint32_t resolve(struct fnet_state *s, int64_t tid, int64_t pid)
{
	struct tcache_ent *c = &s->tcache[(uint64_t)tid & (FNET_TCACHE - 1)];

	if (c->tid == tid && c->pid == pid && c->pi && c->sgen == (uint32_t)s->sgen &&
	    s->procs[c->pi].serial == c->serial && s->procs[c->pi].live)
		return c->pi;
	int in_table;
	uint32_t pi = thread_enter(s, tid, pid, &in_table);
	/* a thread the table could not take (threads cap) is not cached: tried again */
	uint32_t keep = in_table ? pi : 0;

	c->tid = tid;
	c->pid = pid;
	c->pi = keep;
	c->serial = keep ? s->procs[keep].serial : 0;
	c->sgen = (uint32_t)s->sgen;
	return pi;
}

static void fork_child(struct fnet_state *s, uint32_t ppi, int64_t ppid_ev, int64_t ctid,
		       int64_t cpid, uint64_t flags, uint64_t start, uint32_t comm)
{
	struct fnet_pver pv;
	uint32_t pfdcap = 0;

	uint64_t pser = ppi ? s->procs[ppi].serial : 0;

	if (ppi)
		pv = s->procs[ppi].v;
	else
		memset(&pv, 0, sizeof(pv));
	uint32_t ci = proc_add(s, cpid);

	if (!ci)
		return;
	struct proc *c = &s->procs[ci];
	struct proc *p = ppi ? &s->procs[ppi] : NULL;	/* re-read: proc_add may move the slab */

	if (p && (!p->live || p->serial != pser))
		p = NULL;	/* the parent was replaced (same pid) */
	if (p) {
		c->v = pv;
		c->v.pid = cpid;
		if (!(flags & CLONE_PARENT_)) {
			c->v.ppid = ppid_ev;
			c->v.flags |= FNET_PV_PPID;
		}
		pfdcap = p->fdcap;
		if (pfdcap) {
			uint32_t hi = p->fdhi;

			c->fds = malloc(pfdcap * sizeof(*c->fds));
			if (c->fds) {
				memcpy(c->fds, p->fds, hi * sizeof(*c->fds));
				memset(c->fds + hi, 0, (pfdcap - hi) * sizeof(*c->fds));
				c->fdcap = pfdcap;
				c->fdhi = hi;
				for (uint32_t i = 0; i < hi; i++)
					if (c->fds[i])
						s->fdi[c->fds[i] & ~FNET_FD_CLOEXEC].refs++;
			}
		}
	} else {
		c->v.ppid = ppid_ev;
		c->v.flags = FNET_PV_PPID;
	}
	c->v.start_ts = start;
	if (!is_empty(s, comm) && (c->v.flags & FNET_PV_KNOWN)) {
		c->v.name = comm;
		c->v.cmdline = make_cmdline(s, comm, c->v.args);
	} else if (!is_empty(s, comm) && !c->v.name) {
		c->v.name = comm;
	}
	child_link(s, c, +1);
	thread_set(s, ctid, cpid);
}

static void do_exec(struct fnet_state *s, uint32_t pi, const struct fnet_state_in *in, uint32_t i)
{
	struct proc *p = &s->procs[pi];
	struct fnet_pver *v = &p->v;
	uint64_t a0 = (uint64_t)in->a[0][i], a1 = (uint64_t)in->a[1][i];
	uint32_t lu = (uint32_t)in->a[2][i];
	uint64_t tty = (uint64_t)in->a[3][i];
	int64_t ppid = in->a[4][i];
	uint32_t filename = in->v[0][i], argv = in->v[1][i], cwd = in->v[2][i];
	uint32_t comm = in->v[3][i], exepath = in->v[4][i], cgroup = in->v[5][i];

	if (!(v->flags & FNET_PV_PPID) || v->ppid != ppid) {
		child_link(s, p, -1);
		v->ppid = ppid;
		v->flags |= FNET_PV_PPID;
		child_link(s, p, +1);
	}
	v->uid = (uint32_t)a0;
	v->gid = (uint32_t)(a0 >> 32);
	v->euid = (uint32_t)a1;
	v->egid = (uint32_t)(a1 >> 32);
	v->loginuid = lu == UNSET32 ? -1 : (int64_t)lu;
	if (tty) {
		uint32_t major = (uint32_t)(tty >> 20), minor = (uint32_t)(tty & 0xfffff);

		v->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
	} else {
		v->tty = 0;
	}
	v->cap_eff = (uint64_t)in->a[5][i];
	if (!is_empty(s, argv)) {
		uint32_t len, k = 0;
		const uint8_t *a = st_get(s, argv, &len);

		while (k < len && a[k])
			k++;
		v->exe = st_intern(s, a, k);
		if (k + 1 < len) {
			uint32_t rl = len - k - 1;

			memcpy(s->scratch, a + k + 1, rl);
			for (uint32_t j = 0; j < rl; j++)
				if (!s->scratch[j])
					s->scratch[j] = ' ';
			v->args = st_intern(s, s->scratch, rl);
		} else {
			v->args = FNET_EMPTY_ID;
		}
	} else {
		v->exe = filename ? filename : FNET_EMPTY_ID;
		v->args = FNET_EMPTY_ID;
	}
	v->name = is_empty(s, comm) ? v->exe : comm;
	v->exepath = is_empty(s, exepath) ? (filename ? filename : FNET_EMPTY_ID) : exepath;
	if (!is_empty(s, cwd))
		v->cwd = cwd_slash(s, cwd);
	if (!is_empty(s, cgroup) || !v->container_id)
		v->container_id = container_of(s, cgroup);
	v->cmdline = make_cmdline(s, v->name, v->args);
	v->flags = (v->flags & ~FNET_PV_EXE_MEMFD) | FNET_PV_KNOWN | FNET_PV_PPID | FNET_PV_CAPEFF |
		   exe_flags(s, v->exepath);
	fd_close_all(s, p, 1);
	if (p->nchildren)
		s->gen++;
	p->vgen = 0;
}

static int is_unset(int64_t x)
{
	return (uint32_t)x == UNSET32;
}

static void set_ids(struct proc *p, int k, int64_t a0, int64_t a1)
{
	struct fnet_pver *v = &p->v;
	int gid = (k == K_SETGID || k == K_SETREGID || k == K_SETRESGID);
	uint32_t *r = gid ? &v->gid : &v->uid, *e = gid ? &v->egid : &v->euid;

	if (k == K_SETUID || k == K_SETGID) {
		if (*e == 0)
			*r = (uint32_t)a0;
		*e = (uint32_t)a0;
	} else {
		if (!is_unset(a0))
			*r = (uint32_t)a0;
		if (!is_unset(a1))
			*e = (uint32_t)a1;
	}
	p->vgen = 0;
}

static uint32_t new_fd(struct fnet_state *s, struct proc *p, int64_t fd, struct fnet_fver *f,
		       int cloexec)
{
	uint32_t fi;

	if (!p || fd < 0 || fd > s->opts.max_fd_num) {
		if (p && fd > s->opts.max_fd_num)
			s->st.fd_num_too_big++;
		return fver_push(s, f);
	}
	fi = fdinfo_new(s, f);
	if (!fi)
		return fver_push(s, f);
	fd_install(s, p, fd, fi, cloexec);
	struct fdinfo *e = &s->fdi[fi];

	if (!e->refs)		/* not installed (out of memory): already freed */
		return fver_push(s, f);
	/* its first version of the batch, made from the caller's copy (hot) */
	e->vid = fver_push(s, f);
	e->vgen = s->gen;
	return e->vid;
}

/* ---- the batch loop --------------------------------------------------------------------------- */

static uint32_t fd_ev(struct fnet_state *s, struct proc *p, int64_t fd)
{
	uint32_t fi = p ? fd_lookup(p, fd) : 0;

	if (!fi) {
		s->st.fds_unknown++;
		return 0;
	}
	return fd_version(s, fi);
}

int fnet_state_process(struct fnet_state *s, const struct fnet_state_in *in,
		       const struct fnet_state_out *out)
{
	if (state_begin_batch(s) < 0)
		return -1;
	for (uint32_t i = 0; i < in->n; i++) {
		uint32_t t = in->type[i];
		int k = t < FNET_NUM_EVENT_TYPES ? kind_of[t] : K_NONE;
		int64_t tid = in->tid[i], pid = in->pid[i], ret = in->ret[i];
		uint32_t pi = resolve(s, tid, pid);
		struct proc *p = pi ? &s->procs[pi] : NULL;
		uint64_t serial = p ? p->serial : 0;
		uint32_t fv = 0, fi;
		int64_t fdnum = FNET_NO_FD;
		uint8_t evf = 0;
		int exiting = 0;
		struct fnet_fver f;
		struct saddr ra, la;
		int64_t a0 = in->a[0][i], a1 = in->a[1][i], a2 = in->a[2][i];

		memset(&f, 0, sizeof(f));
		switch (k) {
		case K_OPEN: case K_OPENAT: case K_CREAT: {
			int64_t flags = (k == K_OPENAT) ? a1 : a0;
			int64_t dirfd = (k == K_OPENAT) ? a0 : AT_FDCWD_;

			if (k == K_CREAT)
				flags |= 01101;	/* O_CREAT | O_WRONLY | O_TRUNC */
			fdnum = ret >= 0 ? ret : -1;	/* libsinsp: a failed open has fd -1 */
			f.type = ((flags & O_DIRECTORY_) && !(flags & O_TMPFILE_)) ? FNET_FD_DIRECTORY
										: FNET_FD_FILE;
			f.nameraw = in->v[0][i];
			f.name = is_empty(s, in->v[1][i]) ? resolve_path(s, p, dirfd, in->v[0][i])
							  : in->v[1][i];
			f.oflags = (uint32_t)flags;
			split_dir(s, &f);
			fv = ret >= 0 ? new_fd(s, p, ret, &f, (flags & O_CLOEXEC_) != 0) : fver_push(s, &f);
			break;
		}
		case K_MEMFD:
			fdnum = ret;
			if (ret >= 0) {
				f.type = FNET_FD_MEMFD;
				f.name = f.nameraw = in->v[0][i];
				f.oflags = (uint32_t)a0;
				fv = new_fd(s, p, ret, &f, a0 & 1);
			}
			break;
		case K_CLOSE:
			fdnum = a0;
			fv = fd_ev(s, p, a0);
			if (ret >= 0 && p)
				fd_install(s, p, a0, 0, 0);
			break;
		case K_DUP: case K_DUP23:
			fdnum = ret;
			if (ret >= 0 && p) {
				fi = fd_lookup(p, a0);
				if (ret != a0)
					fd_install(s, p, ret, fi, k == K_DUP23 && (a2 & O_CLOEXEC_));
				fv = fi ? fd_version(s, fi) : 0;
			}
			break;
		case K_FCNTL:
			fdnum = a0;
			fv = fd_ev(s, p, a0);
			if ((a1 == 0 || a1 == 1030) && ret >= 0 && p)
				fd_install(s, p, ret, fd_lookup(p, a0), a1 == 1030);
			break;
		case K_FDARG:
			fdnum = a0;
			fv = fd_ev(s, p, a0);
			break;
		case K_CHDIR:
			if (ret == 0 && p) {
				p->v.cwd = cwd_slash(s, resolve_path(s, p, AT_FDCWD_, in->v[0][i]));
				p->vgen = 0;
			}
			break;
		case K_FCHDIR:
			fdnum = a0;
			fv = fd_ev(s, p, a0);
			fi = p ? fd_lookup(p, a0) : 0;
			if (ret == 0 && fi && !is_empty(s, s->fdi[fi].v.name)) {
				p->v.cwd = cwd_slash(s, s->fdi[fi].v.name);
				p->vgen = 0;
			}
			break;
		case K_EXEC:
			if (ret == 0 && p)
				do_exec(s, pi, in, i);
			break;
		case K_CLONE: case K_FORKSYS:
			if (ret > 0 && !hm_get(&s->tidmap, (uint64_t)ret)) {
				uint64_t fl = k == K_CLONE ? (uint64_t)a0 : 0;

				if (fl & CLONE_THREAD_)
					thread_set(s, ret, pid);
				else
					fork_child(s, pi, pid, ret, ret, fl, in->ts[i], 0);
			}
			break;
		case K_PROCFORK:
			if (a0 == a1)
				fork_child(s, pi, pid, a0, a1, (uint64_t)a2, (uint64_t)in->a[3][i], in->v[0][i]);
			else
				thread_set(s, a0, a1);
			break;
		case K_PROCEXIT:
			exiting = 1;
			break;
		case K_SETSID:
			if (ret > 0 && p) {
				p->v.sid = p->v.vpgid = ret;
				p->v.flags |= FNET_PV_SID | FNET_PV_VPGID;
				p->vgen = 0;
				if (p->nchildren)
					s->gen++;
			}
			break;
		case K_SETPGID:
			if (ret == 0) {
				int64_t target = a0 ? a0 : pid;
				uint32_t ti = proc_lookup(s, target);

				if (ti) {
					s->procs[ti].v.vpgid = a1 ? a1 : target;
					s->procs[ti].v.flags |= FNET_PV_VPGID;
					s->procs[ti].vgen = 0;
					if (s->procs[ti].nchildren)
						s->gen++;
				}
			}
			break;
		case K_SETUID: case K_SETGID: case K_SETREUID: case K_SETREGID:
		case K_SETRESUID: case K_SETRESGID:
			if (ret == 0 && p)
				set_ids(p, k, a0, a1);
			break;
		case K_CAPSET:
			if (ret == 0 && p) {
				p->v.cap_inh = (uint64_t)a0;
				p->v.cap_prm = (uint64_t)a1;
				p->v.cap_eff = (uint64_t)a2;
				p->v.flags |= FNET_PV_CAPS | FNET_PV_CAPEFF;
				p->vgen = 0;
			}
			break;
		case K_SOCKET:
			fdnum = ret;
			if (ret >= 0) {
				f.type = fdtype_of_family((uint32_t)a0);
				f.family = (uint8_t)a0;
				f.l4proto = l4_of(a0, a1, a2);
				f.name = FNET_EMPTY_ID;
				fv = new_fd(s, p, ret, &f, (a1 & SOCK_CLOEXEC_) != 0);
			}
			break;
		case K_SOCKETPAIR:
			fdnum = in->a[3][i];
			if (ret == 0) {
				f.type = fdtype_of_family((uint32_t)a0);
				f.family = (uint8_t)a0;
				f.l4proto = l4_of(a0, a1, a2);
				f.name = FNET_EMPTY_ID;
				fv = new_fd(s, p, in->a[3][i], &f, (a1 & SOCK_CLOEXEC_) != 0);
				new_fd(s, p, in->a[4][i], &f, (a1 & SOCK_CLOEXEC_) != 0);
			}
			break;
		case K_CONNECT: case K_BIND: case K_SENDRECV: {
			fdnum = a0;
			fi = p ? fd_lookup(p, a0) : 0;
			int has = get_saddr(s, in->v[0][i], &ra);
			int upd;

			if (fi)
				f = s->fdi[fi].v;
			else
				s->st.fds_unknown++;
			if (k == K_CONNECT)
				upd = has;
			else if (k == K_BIND)
				upd = has && ret == 0;
			else
				upd = has && ret >= 0 && !(f.flags & FNET_FV_CONNECTED) &&
				      (ra.family == FNET_AF_INET || ra.family == FNET_AF_INET6) &&
				      (!fi || f.type == FNET_FD_IPV4 || f.type == FNET_FD_IPV6);
			if (!upd) {
				fv = fi ? fd_version(s, fi) : 0;
				break;
			}
			if (!fi) {
				f.type = fdtype_of_family(ra.family);
				f.family = (uint8_t)ra.family;
			}
			if (k == K_BIND) {
				f.sip = ra.text;
				f.sport = ra.port;
				f.flags |= FNET_FV_SERVER;
			} else {
				f.sip = ra.text;
				f.sport = ra.port;
				f.flags &= ~FNET_FV_SERVER;
				if (k == K_CONNECT && get_saddr(s, in->v[1][i], &la)) {
					f.cip = la.text;
					f.cport = la.port;
				}
				if (k == K_CONNECT && (ret == 0 || ret == -EINPROGRESS_))
					f.flags |= FNET_FV_CONNECTED;
			}
			sock_name_later(s, &f);
			fv = fd_replace(s, p, a0, fi, &f, &evf);
			break;
		}
		case K_ACCEPT:
			fdnum = ret;
			if (ret >= 0) {
				uint32_t lf = p ? fd_lookup(p, a0) : 0;
				int hr = get_saddr(s, in->v[0][i], &ra), hl = get_saddr(s, in->v[1][i], &la);
				uint32_t fam = hr ? ra.family : (hl ? la.family : (lf ? s->fdi[lf].v.family : 0));

				f.type = lf ? s->fdi[lf].v.type : fdtype_of_family(fam);
				if (hr || hl)
					f.type = fdtype_of_family(fam);
				f.family = (uint8_t)fam;
				f.l4proto = lf ? s->fdi[lf].v.l4proto : l4_of(fam, 1, 0);
				if (hr) {
					f.cip = ra.text;
					f.cport = ra.port;
				}
				if (hl) {
					f.sip = la.text;
					f.sport = la.port;
				}
				f.flags = FNET_FV_SERVER | FNET_FV_CONNECTED;
				f.name = FNET_EMPTY_ID;
				sock_name_later(s, &f);
				fv = new_fd(s, p, ret, &f, k == K_ACCEPT && (a1 & SOCK_CLOEXEC_) &&
							   t == FNET_EV_ACCEPT4);
			}
			break;
		default:
			break;
		}
		p = pi ? &s->procs[pi] : NULL;	/* forks may have moved the slab */
		if (p && (!p->live || p->serial != serial))
			p = NULL;	/* the event's process went away (or its slot was reused) */
		out->pv[i] = p ? proc_version(s, pi) : 0;
		out->fv[i] = fv;
		out->fdnum[i] = fdnum;
		out->evflags[i] = evf;
		if (exiting) {
			if (hm_get(&s->tidmap, (uint64_t)tid)) {
				hm_del(&s->tidmap, (uint64_t)tid);
				if (p && p->nthreads)
					p->nthreads--;
				tcache_forget(s, tid);
			}
			if (p && a0 == 1)
				proc_remove(s, pi);
		}
	}
	s->st.events += in->n;
	return s->oom ? -1 : 0;
}
