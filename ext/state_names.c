/* SPDX-License-Identifier: MIT */
/*
 * state_names.c - the pure functions of the state engine over interned strings: cmdline and
 * cwd rendering, container ids from cgroup paths, path resolution and normalisation,
 * dirname/basename, socket address text and fd names (memoised per string id), and the
 * fd.name_changed test.  collector/state/pure.py has the same rules in Python.
 */
#include <arpa/inet.h>
#include <string.h>

#include "state_int.h"

/* ---- string helpers (identical rules in collector/state/pure.py) ------------------------- */


uint32_t make_cmdline(struct fnet_state *s, uint32_t comm, uint32_t args)
{
	uint32_t cl, al;
	const uint8_t *c, *a;

	if (!comm)
		return 0;
	if (is_empty(s, args))
		return comm;
	c = st_get(s, comm, &cl);
	a = st_get(s, args, &al);
	if ((size_t)cl + 1 + al > sizeof(s->scratch))
		return comm;
	memcpy(s->scratch, c, cl);
	s->scratch[cl] = ' ';
	memcpy(s->scratch + cl + 1, a, al);
	return st_intern(s, s->scratch, (size_t)cl + 1 + al);
}

uint32_t cwd_slash(struct fnet_state *s, uint32_t cwd)
{
	uint32_t len;
	const uint8_t *p;

	if (is_empty(s, cwd))
		return 0;
	p = st_get(s, cwd, &len);
	if (p[len - 1] == '/' || len + 1 > sizeof(s->scratch))
		return cwd;
	memcpy(s->scratch, p, len);
	s->scratch[len] = '/';
	return st_intern(s, s->scratch, len + 1);
}

static int ishex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

uint32_t fnet_container_id(const uint8_t *cg, uint32_t len, uint8_t *out12)
{
	uint32_t run = 0, found = 0;

	for (uint32_t i = 0; i <= len; i++) {
		if (i < len && ishex(cg[i])) {
			run++;
			continue;
		}
		if (run == 64) {
			memcpy(out12, cg + i - 64, 12);
			found = 1;
		}
		run = 0;
	}
	return found;
}

uint32_t container_of(struct fnet_state *s, uint32_t cgroup)
{
	uint32_t len;
	uint8_t id[12];
	const uint8_t *p;

	if (is_empty(s, cgroup))
		return s->host_id;
	p = st_get(s, cgroup, &len);
	if (fnet_container_id(p, len, id))
		return st_intern(s, id, 12);
	return s->host_id;
}

uint32_t exe_flags(struct fnet_state *s, uint32_t exepath)
{
	uint32_t len;
	const uint8_t *p;

	if (is_empty(s, exepath))
		return 0;
	p = st_get(s, exepath, &len);
	return (len >= 7 && memcmp(p, "/memfd:", 7) == 0) ? FNET_PV_EXE_MEMFD : 0;
}

/* Lexical normalisation of an absolute path: "//", "." and ".." resolved. */
static size_t normalize(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0, i = 0;

	while (i < n) {
		while (i < n && in[i] == '/')
			i++;
		size_t st = i;

		while (i < n && in[i] != '/')
			i++;
		size_t cl = i - st;

		if (cl == 0 || (cl == 1 && in[st] == '.'))
			continue;
		if (cl == 2 && in[st] == '.' && in[st + 1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, in + st, cl);
		o += cl;
	}
	if (o == 0)
		out[o++] = '/';
	return o;
}

/* The absolute name of `name` joined to the directory name `base` (an id; 0 = unknown),
 * normalised; `name` unchanged when it is relative and the base is unknown or not absolute. */
static uint32_t join_path(struct fnet_state *s, uint32_t base, uint32_t name)
{
	uint32_t nl, bl;
	const uint8_t *np, *bp;
	uint8_t *tmp = s->scratch + 65536 + 32;

	np = st_get(s, name, &nl);
	if (nl > 65535)
		return name;
	if (nl > 0 && np[0] == '/')
		return st_intern(s, s->scratch, normalize(np, nl, s->scratch));
	if (is_empty(s, base))
		return name;
	bp = st_get(s, base, &bl);
	if (bl > 65535 || bp[0] != '/')
		return name;
	memcpy(tmp, bp, bl);
	tmp[bl] = '/';
	memcpy(tmp + bl + 1, np, nl);
	return st_intern(s, s->scratch, normalize(tmp, (size_t)bl + 1 + nl, s->scratch));
}

/* The absolute name of `name` for the process: as is when absolute, else joined to the cwd
 * (dirfd AT_FDCWD) or to dirfd's name; unchanged when the base is unknown.  A pure function
 * of the two ids, so memoised: a process opening relative names again and again (a build, a
 * shell loop) costs a lookup, not a join and an intern. */
uint32_t resolve_path(struct fnet_state *s, struct proc *p, int64_t dirfd, uint32_t name)
{
	uint32_t base = 0, out;

	if (!name)
		return 0;
	if (p && dirfd == AT_FDCWD_) {
		base = p->v.cwd;
	} else if (p) {
		uint32_t fi = fd_lookup(p, dirfd);

		base = fi ? s->fdi[fi].v.name : 0;
	}
	struct memo_path *m = &s->mpath[((name * 2654435761u) ^ (base * 0x85ebca6bu)) >> 20 &
					 (FNET_MEMO - 1)];

	if (m->name == name && m->base == base)
		return m->out;
	out = join_path(s, base, name);
	if (out) {		/* 0: out of memory, not a result to keep */
		m->name = name;
		m->base = base;
		m->out = out;
	}
	return out;
}

/* fd.directory / fd.filename of a file or directory fd. */
void split_dir(struct fnet_state *s, struct fnet_fver *f)
{
	uint32_t len;
	const uint8_t *p;

	f->directory = f->filename = 0;
	if (f->type == FNET_FD_DIRECTORY) {
		f->directory = f->name;
		return;
	}
	if (f->type != FNET_FD_FILE || is_empty(s, f->name))
		return;
	struct memo_dir *m = &s->mdir[(f->name * 2654435761u) >> 20 & (FNET_MEMO - 1)];

	if (m->name == f->name) {
		f->directory = m->dir;
		f->filename = m->file;
		return;
	}
	p = st_get(s, f->name, &len);
	uint32_t k = len;

	while (k > 0 && p[k - 1] != '/')
		k--;
	f->filename = st_intern(s, p + k, len - k);
	if (k > 0)
		f->directory = st_intern(s, p, k == 1 ? 1 : k - 1);
	m->name = f->name;
	m->dir = f->directory;
	m->file = f->filename;
}

/* ---- sockets ------------------------------------------------------------------------------- */


int get_saddr(struct fnet_state *s, uint32_t id, struct saddr *a)
{
	uint32_t len;
	const uint8_t *p;
	char buf[64];

	memset(a, 0, sizeof(*a));
	if (id <= FNET_EMPTY_ID)
		return 0;
	struct memo_addr *m = &s->maddr[(id * 2654435761u) >> 20 & (FNET_MEMO - 1)];

	if (m->id == id) {
		a->family = m->family;
		a->port = m->port;
		a->text = m->text;
		return 1;
	}
	p = st_get(s, id, &len);
	if (len < 4)
		return 0;
	memcpy(&a->family, p, 2);
	memcpy(&a->port, p + 2, 2);
	if (a->family == FNET_AF_INET && len >= 8) {
		inet_ntop(2, p + 4, buf, sizeof(buf));
		a->text = st_intern(s, buf, strlen(buf));
	} else if (a->family == FNET_AF_INET6 && len >= 20) {
		inet_ntop(10, p + 4, buf, sizeof(buf));
		a->text = st_intern(s, buf, strlen(buf));
	} else if (a->family == FNET_AF_UNIX) {
		uint32_t pl = len - 4;

		if (pl > 0 && p[4] == 0) {	/* abstract: shown with '@' */
			s->scratch[0] = '@';
			memcpy(s->scratch + 1, p + 5, pl - 1);
			a->text = st_intern(s, s->scratch, pl);
		} else {
			a->text = st_intern(s, p + 4, pl);
		}
	} else {
		return 0;
	}
	m->id = id;
	m->family = a->family;
	m->port = a->port;
	m->text = a->text;
	return 1;
}

uint8_t fdtype_of_family(uint32_t fam)
{
	switch (fam) {
	case FNET_AF_INET: return FNET_FD_IPV4;
	case FNET_AF_INET6: return FNET_FD_IPV6;
	case FNET_AF_UNIX: return FNET_FD_UNIX;
	case 16: return FNET_FD_NETLINK;
	default: return FNET_FD_OTHER;
	}
}

static int sprintf_port(uint8_t *o, uint16_t port)
{
	char d[8];
	int n = 0, k = 0;

	o[k++] = ':';
	do {
		d[n++] = (char)('0' + port % 10);
		port /= 10;
	} while (port);
	while (n)
		o[k++] = (uint8_t)d[--n];
	return k;
}

static size_t put_ep(struct fnet_state *s, uint8_t *o, uint32_t ip, uint16_t port, int v6)
{
	uint32_t len;
	const uint8_t *p;
	size_t n;

	if (ip) {
		p = st_get(s, ip, &len);
		memcpy(o, p, len);
		n = len;
	} else {
		n = v6 ? 2 : 7;
		memcpy(o, v6 ? "::" : "0.0.0.0", n);
	}
	n += (size_t)sprintf_port(o + n, port);
	return n;
}

/* the socket's fd.name: "cip:cport->sip:sport", "sip:sport" for a bound server without a
 * peer, the path for unix sockets */
void sock_name(struct fnet_state *s, struct fnet_fver *f)
{
	uint8_t *o = s->scratch;
	size_t n;
	int v6 = f->type == FNET_FD_IPV6;

	if (f->type == FNET_FD_UNIX) {
		f->name = f->sip ? f->sip : (f->cip ? f->cip : FNET_EMPTY_ID);
		return;
	}
	if (f->type != FNET_FD_IPV4 && f->type != FNET_FD_IPV6)
		return;
	int bound = (f->flags & FNET_FV_SERVER) && !(f->flags & FNET_FV_CONNECTED);
	uint64_t k1 = f->cip | (uint64_t)f->sip << 32;
	uint64_t k2 = f->cport | (uint64_t)f->sport << 16 | (uint64_t)f->type << 32 |
		      (uint64_t)bound << 40 | 1ULL << 48;
	struct memo_sock *m = &s->msock[((k1 ^ k2 * 0x9E3779B97F4A7C15ULL) * 0x9E3779B97F4A7C15ULL)
					>> 50 & (FNET_MEMO - 1)];

	if (m->k1 == k1 && m->k2 == k2) {
		f->name = m->name;
		return;
	}
	if (bound) {
		n = put_ep(s, o, f->sip, f->sport, v6);
	} else {
		n = put_ep(s, o, f->cip, f->cport, v6);
		memcpy(o + n, "->", 2);
		n += 2;
		n += put_ep(s, o + n, f->sip, f->sport, v6);
	}
	f->name = st_intern(s, o, n);
	m->k1 = k1;
	m->k2 = k2;
	m->name = f->name;
}

/* Inet socket names are made only when a rule reads fd.name (fnet_state_sock_names): most
 * tuples carry an ephemeral port, so making one per connect would intern a new string per
 * connection.  Name 0 = "to be made from the tuple". */
void sock_name_later(struct fnet_state *s, struct fnet_fver *f)
{
	if (f->type == FNET_FD_IPV4 || f->type == FNET_FD_IPV6)
		f->name = 0;
	else
		sock_name(s, f);
}

static int bound_form(const struct fnet_fver *f)
{
	return (f->flags & FNET_FV_SERVER) && !(f->flags & FNET_FV_CONNECTED);
}

/* fd.name_changed: the name the tuple renders to changed (compared without rendering). */
int name_differs(const struct fnet_fver *a, const struct fnet_fver *b)
{
	if ((a->type == FNET_FD_IPV4 || a->type == FNET_FD_IPV6) && a->name == 0 &&
	    b->type == a->type && b->name == 0)
		return a->cip != b->cip || a->cport != b->cport || a->sip != b->sip ||
		       a->sport != b->sport || bound_form(a) != bound_form(b);
	return a->name != b->name || a->type != b->type ||
	       ((b->type == FNET_FD_IPV4 || b->type == FNET_FD_IPV6) && b->name == 0);
}

void fnet_state_sock_names(struct fnet_state *s, struct fnet_fver *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i].name == 0 && (v[i].type == FNET_FD_IPV4 || v[i].type == FNET_FD_IPV6))
			sock_name(s, &v[i]);
}

uint8_t l4_of(int64_t domain, int64_t type, int64_t proto)
{
	if (domain != FNET_AF_INET && domain != FNET_AF_INET6)
		return FNET_L4_NONE;
	switch (type & 0xf) {
	case 1: return FNET_L4_TCP;
	case 2: return (proto == 1 || proto == 58) ? FNET_L4_ICMP : FNET_L4_UDP;
	case 3: return FNET_L4_RAW;
	default: return FNET_L4_NONE;
	}
}
