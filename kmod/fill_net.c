// SPDX-License-Identifier: GPL-2.0-only
/*
 * fill_net.c - fillers for the socket syscalls (FNET_CAT_NET) and the two ways to get a
 * socket address into a record: from a user sockaddr, or from the kernel socket of an fd.
 *
 * Encoding (falconet_abi.h, struct fnet_sockaddr): INET/INET6 = 20 bytes, addresses in
 * network order, port in host order; UNIX = the 4-byte header then the path bytes (no NUL).
 * Unix socket addresses are only taken from user memory: reading another socket's bound
 * address from the kernel needs its lock, which the probe may not take.
 */
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/un.h>
#include <net/sock.h>
#include <net/inet_sock.h>
#include <net/ipv6.h>
#include "falconet.h"
#include "compat.h"

#define FD(x) ((u64)(s64)(int)(x))
#define A(i, v) (r->hdr->arg[i] = (u64)(v))

/* Largest user address we decode: sockaddr_un (110 bytes). */
#define FNET_SA_MAX 128

void fnet_put_usockaddr(struct fnet_rec *r, int slot, unsigned long uaddr, unsigned long ulen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
		u8 raw[FNET_SA_MAX];
	} u;
	u8 out[sizeof(struct fnet_sockaddr) + sizeof(u.un.sun_path)];
	struct fnet_sockaddr *fa = (struct fnet_sockaddr *)out;
	u32 n = 0;

	memset(out, 0, sizeof(struct fnet_sockaddr));
	if (!uaddr || ulen < sizeof(sa_family_t)) {
		fnet_put_kbytes(r, slot, out, 0);
		return;
	}
	ulen = min_t(unsigned long, ulen, sizeof(u));
	memset(&u, 0, sizeof(u));
	if (fnet_copy_user(&u, uaddr, ulen)) {
		fnet_rec_fault(r);
		fnet_put_kbytes(r, slot, out, 0);
		return;
	}
	fa->family = u.sa.sa_family;
	switch (u.sa.sa_family) {
	case AF_INET:
		fa->port = ntohs(u.in.sin_port);
		memcpy(fa->addr, &u.in.sin_addr, 4);
		n = sizeof(*fa);
		break;
	case AF_INET6:
		fa->port = ntohs(u.in6.sin6_port);
		memcpy(fa->addr, &u.in6.sin6_addr, 16);
		n = sizeof(*fa);
		break;
	case AF_UNIX: {
		u32 plen = ulen > offsetof(struct sockaddr_un, sun_path) ?
			   ulen - offsetof(struct sockaddr_un, sun_path) : 0;

		/* A path name ends at its NUL; an abstract name (leading NUL) is all its bytes. */
		if (plen && u.un.sun_path[0])
			plen = strnlen(u.un.sun_path, plen);
		memcpy(out + 4, u.un.sun_path, plen);
		n = 4 + plen;
		break;
	}
	default:
		n = 4;	/* family only */
	}
	fnet_put_kbytes(r, slot, out, n);
}

static u32 fnet_sock_end(struct sock *sk, bool peer, struct fnet_sockaddr *fa)
{
	struct inet_sock *inet = inet_sk(sk);

	memset(fa, 0, sizeof(*fa));
	fa->family = sk->sk_family;
	switch (sk->sk_family) {
	case AF_INET:
		fa->port = ntohs(peer ? inet->inet_dport : inet->inet_sport);
		memcpy(fa->addr, peer ? &inet->inet_daddr : &inet->inet_rcv_saddr, 4);
		return sizeof(*fa);
#if IS_ENABLED(CONFIG_IPV6)
	case AF_INET6:
		fa->port = ntohs(peer ? inet->inet_dport : inet->inet_sport);
		memcpy(fa->addr, peer ? fnet_sk_v6_daddr(sk) : fnet_sk_v6_saddr(sk), 16);
		return sizeof(*fa);
#endif
	default:
		return 4;
	}
}

/* Peer and/or local end of the socket behind fd (slot -1 = not wanted). */
void fnet_put_sock_ends(struct fnet_rec *r, int slot_peer, int slot_local, int fd)
{
	struct fnet_sockaddr fa;
	struct socket *sock;
	int err = 0;

	sock = fd >= 0 ? sockfd_lookup(fd, &err) : NULL;
	if (!sock || !sock->sk) {
		if (slot_peer >= 0)
			fnet_put_kbytes(r, slot_peer, &fa, 0);
		if (slot_local >= 0)
			fnet_put_kbytes(r, slot_local, &fa, 0);
		if (sock)
			sockfd_put(sock);
		return;
	}
	if (slot_peer >= 0)
		fnet_put_kbytes(r, slot_peer, &fa, fnet_sock_end(sock->sk, true, &fa));
	if (slot_local >= 0)
		fnet_put_kbytes(r, slot_local, &fa, fnet_sock_end(sock->sk, false, &fa));
	sockfd_put(sock);
}

FNET_FILLER(socket)
{
	A(0, a[0]);
	A(1, a[1]);
	A(2, a[2]);
}

FNET_FILLER(socketpair)
{
	int sv[2] = { -1, -1 };

	A(0, a[0]);
	A(1, a[1]);
	A(2, a[2]);
	if (ret == 0 && fnet_copy_user(sv, a[3], sizeof(sv)))
		fnet_rec_fault(r);
	A(3, (s64)sv[0]);
	A(4, (s64)sv[1]);
}

FNET_FILLER(connect)
{
	A(0, FD(a[0]));
	fnet_put_usockaddr(r, 0, a[1], a[2]);
	fnet_put_sock_ends(r, -1, 1, (int)a[0]);
}

/* accept/accept4: both ends from the new socket. */
FNET_FILLER(accept)
{
	A(0, FD(a[0]));
	if (r->hdr->type == FNET_EV_ACCEPT4)
		A(1, a[3]);
	fnet_put_sock_ends(r, 0, 1, ret >= 0 ? (int)ret : -1);
}

FNET_FILLER(bind)
{
	A(0, FD(a[0]));
	fnet_put_usockaddr(r, 0, a[1], a[2]);
}

FNET_FILLER(listen)
{
	A(0, FD(a[0]));
	A(1, (s64)(int)a[1]);
}

/* sendto(fd, buf, len, flags, addr, addrlen): the explicit address, else the socket's peer. */
FNET_FILLER(sendto)
{
	A(0, FD(a[0]));
	A(1, a[2]);
	if (a[4])
		fnet_put_usockaddr(r, 0, a[4], a[5]);
	else
		fnet_put_sock_ends(r, 0, -1, (int)a[0]);
}

/* recvfrom(fd, buf, len, flags, addr, addrlen*): the sender the kernel wrote back. */
FNET_FILLER(recvfrom)
{
	int alen = 0;

	A(0, FD(a[0]));
	A(1, a[2]);
	if (ret >= 0 && a[4] && a[5] && fnet_copy_user(&alen, a[5], sizeof(alen)) == 0 && alen > 0)
		fnet_put_usockaddr(r, 0, a[4], alen);
	else
		fnet_put_sock_ends(r, 0, -1, (int)a[0]);
}

/* sendmsg/recvmsg(fd, msghdr*, flags): size = bytes moved, addr = msg_name or the peer. */
FNET_FILLER(msg)
{
	struct {
		unsigned long name;
		int namelen;
	} m = { 0, 0 };

	A(0, FD(a[0]));
	A(1, ret > 0 ? ret : 0);
	if (a[1] && fnet_copy_user(&m, a[1], sizeof(m)))
		fnet_rec_fault(r);
	if (m.name && m.namelen > 0 && (r->hdr->type == FNET_EV_SENDMSG || ret >= 0))
		fnet_put_usockaddr(r, 0, m.name, m.namelen);
	else
		fnet_put_sock_ends(r, 0, -1, (int)a[0]);
}

/* shutdown(fd, how), getsockopt(fd, level, optname) */
FNET_FILLER(fd_ints)
{
	A(0, FD(a[0]));
	A(1, (s64)(int)a[1]);
	if (r->hdr->type == FNET_EV_GETSOCKOPT)
		A(2, (s64)(int)a[2]);
}
