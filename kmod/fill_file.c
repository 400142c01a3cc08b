// SPDX-License-Identifier: GPL-2.0-only
/*
 * fill_file.c - fillers for the file-system syscalls (category FNET_CAT_FILE).
 *
 * Each filler receives the six raw syscall arguments `a` (read at exit from the saved
 * registers, which the syscall does not change) and the return value, and fills the numeric
 * slots arg[] and the variable parts in slot order, as the event table of falconet_abi.h
 * defines them.  fd-like arguments are stored sign-extended from int (AT_FDCWD = -100).
 */
#include <linux/fcntl.h>
#include <linux/fs.h>
#include "falconet.h"

#define FD(x) ((u64)(s64)(int)(x))
#define A(i, v) (r->hdr->arg[i] = (u64)(v))

/* open family: name as passed, then the kernel's path of the resulting fd. */
static void fnet_open_common(struct fnet_rec *r, unsigned long uname, long ret, int dev_slot)
{
	u64 dev = 0, ino = 0;

	fnet_put_ustr(r, 0, uname);
	if (ret >= 0)
		fnet_put_fd_path(r, 1, (int)ret, &dev, &ino);
	A(dev_slot, dev);
	A(dev_slot + 1, ino);
}

FNET_FILLER(open)
{
	A(0, a[1]);
	A(1, a[2]);
	fnet_open_common(r, a[0], ret, 2);
}

FNET_FILLER(openat)
{
	A(0, FD(a[0]));
	A(1, a[2]);
	A(2, a[3]);
	fnet_open_common(r, a[1], ret, 3);
}

FNET_FILLER(openat2)
{
	/* struct open_how of 5.6+, restated so this file builds on kernels without openat2. */
	struct { u64 flags, mode, resolve; } how = {};

	A(0, FD(a[0]));
	if (a[3] >= sizeof(how) && fnet_copy_user(&how, a[2], sizeof(how)) == 0) {
		A(1, how.flags);
		A(2, how.mode);
		A(3, how.resolve);
	} else if (a[2]) {
		fnet_rec_fault(r);
	}
	fnet_open_common(r, a[1], ret, 4);
}

FNET_FILLER(creat)
{
	A(0, O_CREAT | O_WRONLY | O_TRUNC);
	A(1, a[1]);
	fnet_open_common(r, a[0], ret, 2);
}

/* fd-only and numeric-only syscalls share one shape: copy the first n arguments. */
#define FNET_NUMERIC(name, n, fd0)				\
FNET_FILLER(name)						\
{								\
	int i;							\
	for (i = 0; i < (n); i++)				\
		A(i, a[i]);					\
	if (fd0)						\
		A(0, FD(a[0]));					\
}

FNET_NUMERIC(close, 1, 1)
FNET_NUMERIC(dup, 1, 1)
FNET_NUMERIC(fcntl, 2, 1)
FNET_NUMERIC(fchmod, 2, 1)
FNET_NUMERIC(fchown, 3, 1)
FNET_NUMERIC(fchdir, 1, 1)

FNET_FILLER(dup2)
{
	A(0, FD(a[0]));
	A(1, FD(a[1]));
}

FNET_FILLER(dup3)
{
	A(0, FD(a[0]));
	A(1, FD(a[1]));
	A(2, a[2]);
}

/* Two paths: (old, new). */
FNET_FILLER(link)
{
	fnet_put_ustr(r, 0, a[0]);
	fnet_put_ustr(r, 1, a[1]);
}

FNET_FILLER(linkat)
{
	A(0, FD(a[0]));
	A(1, FD(a[2]));
	A(2, a[4]);
	fnet_put_ustr(r, 0, a[1]);
	fnet_put_ustr(r, 1, a[3]);
}

FNET_FILLER(symlinkat)
{
	A(0, FD(a[1]));
	fnet_put_ustr(r, 0, a[0]);
	fnet_put_ustr(r, 1, a[2]);
}

/* One path in a[0]. */
FNET_FILLER(path0)
{
	fnet_put_ustr(r, 0, a[0]);
}

FNET_FILLER(unlinkat)
{
	A(0, FD(a[0]));
	A(1, a[2]);
	fnet_put_ustr(r, 0, a[1]);
}

FNET_FILLER(renameat)
{
	A(0, FD(a[0]));
	A(1, FD(a[2]));
	if (r->hdr->type == FNET_EV_RENAMEAT2)
		A(2, a[4]);
	fnet_put_ustr(r, 0, a[1]);
	fnet_put_ustr(r, 1, a[3]);
}

/* (path, mode) for mkdir and chmod. */
FNET_FILLER(path_mode)
{
	A(0, a[1]);
	fnet_put_ustr(r, 0, a[0]);
}

/* (dirfd, path, mode) for mkdirat and fchmodat. */
FNET_FILLER(dirfd_path_mode)
{
	A(0, FD(a[0]));
	A(1, a[2]);
	fnet_put_ustr(r, 0, a[1]);
}

/* chown / lchown (path, uid, gid) */
FNET_FILLER(chown)
{
	A(0, (u32)a[1]);
	A(1, (u32)a[2]);
	fnet_put_ustr(r, 0, a[0]);
}

FNET_FILLER(fchownat)
{
	A(0, FD(a[0]));
	A(1, (u32)a[2]);
	A(2, (u32)a[3]);
	A(3, a[4]);
	fnet_put_ustr(r, 0, a[1]);
}

FNET_FILLER(mount)
{
	A(0, a[3]);
	fnet_put_ustr(r, 0, a[0]);
	fnet_put_ustr(r, 1, a[1]);
	fnet_put_ustr(r, 2, a[2]);
}

/* umount2 (name, flags) and memfd_create (name, flags) */
FNET_FILLER(name_flags)
{
	A(0, a[1]);
	fnet_put_ustr(r, 0, a[0]);
}
