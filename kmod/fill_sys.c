// SPDX-License-Identifier: GPL-2.0-only
/*
 * fill_sys.c - fillers for the system-level syscalls (FNET_CAT_SYS): kernel modules, bpf,
 * userfaultfd, ioctl, mprotect, getpid.
 */
#include "falconet.h"

#define FD(x) ((u64)(s64)(int)(x))
#define A(i, v) (r->hdr->arg[i] = (u64)(v))

/* init_module(image, len, uargs) */
FNET_FILLER(init_module)
{
	A(0, a[1]);
	fnet_put_ustr(r, 0, a[2]);
}

/* finit_module(fd, uargs, flags) */
FNET_FILLER(finit_module)
{
	A(0, FD(a[0]));
	A(1, a[2]);
	fnet_put_ustr(r, 0, a[1]);
}

/* delete_module(name, flags) */
FNET_FILLER(delete_module)
{
	A(0, a[1]);
	fnet_put_ustr(r, 0, a[0]);
}

/* ioctl(fd, request, argument) */
FNET_FILLER(ioctl)
{
	A(0, FD(a[0]));
	A(1, a[1]);
	A(2, a[2]);
}

/* mprotect(addr, len, prot) */
FNET_FILLER(mprotect)
{
	A(0, a[0]);
	A(1, a[1]);
	A(2, a[2]);
}
