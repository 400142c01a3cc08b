// SPDX-License-Identifier: GPL-2.0-only
/*
 * syscalls.c - which syscall numbers become which event type, and their filler.
 *
 * Built at init into a table indexed by the native syscall number, so the sys_exit probe
 * does one bounds check, one table load and one bit test for a syscall nobody asked for.
 * Numbers come from the kernel's own <asm/unistd.h>; syscalls an architecture lacks
 * (open, fork, ... on arm64) are left out by #ifdef.  32-bit compat syscalls use other
 * numbers and argument layouts: probes.c counts and skips them before looking here.
 */
#include <linux/kernel.h>
#include <linux/syscalls.h>
#include <asm/unistd.h>
#include "falconet.h"

/* the fillers are declared in falconet.h */

#ifndef NR_syscalls
#define NR_syscalls __NR_syscalls
#endif

static struct fnet_sc fnet_sc_table[NR_syscalls];

#define S(nr, ev, fill) fnet_sc_set(__NR_##nr, FNET_EV_##ev, fnet_fill_##fill)

static void fnet_sc_set(int nr, u16 ev, fnet_filler_t fill)
{
	if (nr >= 0 && nr < NR_syscalls) {
		fnet_sc_table[nr].ev = ev;
		fnet_sc_table[nr].fill = fill;
	}
}

void fnet_sc_init(void)
{
	/* file */
#ifdef __NR_open
	S(open, OPEN, open);
#endif
	S(openat, OPENAT, openat);
#ifdef __NR_openat2
	S(openat2, OPENAT2, openat2);
#endif
#ifdef __NR_creat
	S(creat, CREAT, creat);
#endif
	S(close, CLOSE, close);
	S(dup, DUP, dup);
#ifdef __NR_dup2
	S(dup2, DUP2, dup2);
#endif
	S(dup3, DUP3, dup3);
	S(fcntl, FCNTL, fcntl);
#ifdef __NR_link
	S(link, LINK, link);
	S(symlink, SYMLINK, link);
	S(unlink, UNLINK, path0);
	S(rename, RENAME, link);
	S(mkdir, MKDIR, path_mode);
	S(rmdir, RMDIR, path0);
	S(chmod, CHMOD, path_mode);
	S(chown, CHOWN, chown);
	S(lchown, LCHOWN, chown);
#endif
	S(linkat, LINKAT, linkat);
	S(symlinkat, SYMLINKAT, symlinkat);
	S(unlinkat, UNLINKAT, unlinkat);
#ifdef __NR_renameat
	S(renameat, RENAMEAT, renameat);
#endif
#ifdef __NR_renameat2
	S(renameat2, RENAMEAT2, renameat);
#endif
	S(mkdirat, MKDIRAT, dirfd_path_mode);
	S(fchmod, FCHMOD, fchmod);
	S(fchmodat, FCHMODAT, dirfd_path_mode);
	S(fchown, FCHOWN, fchown);
	S(fchownat, FCHOWNAT, fchownat);
	S(chdir, CHDIR, path0);
	S(fchdir, FCHDIR, fchdir);
	S(chroot, CHROOT, path0);
	S(mount, MOUNT, mount);
	S(umount2, UMOUNT2, name_flags);
#ifdef __NR_memfd_create
	S(memfd_create, MEMFD_CREATE, name_flags);
#endif
	/* processes */
	S(execve, EXECVE, execve);
#ifdef __NR_execveat
	S(execveat, EXECVEAT, execveat);
#endif
	S(clone, CLONE, clone);
#ifdef __NR_clone3
	S(clone3, CLONE3, clone3);
#endif
#ifdef __NR_fork
	S(fork, FORK, none);
	S(vfork, VFORK, none);
#endif
	S(ptrace, PTRACE, ptrace);
	S(kill, KILL, two_ints);
	S(tkill, TKILL, two_ints);
	S(tgkill, TGKILL, tgkill);
	S(prctl, PRCTL, prctl);
	S(setns, SETNS, setns);
	S(unshare, UNSHARE, flags0);
	S(setsid, SETSID, none);
	S(setpgid, SETPGID, two_ints);
	/* credentials */
	S(setuid, SETUID, ids1);
	S(setgid, SETGID, ids1);
	S(setreuid, SETREUID, ids2);
	S(setregid, SETREGID, ids2);
	S(setresuid, SETRESUID, ids3);
	S(setresgid, SETRESGID, ids3);
	S(capset, CAPSET, capset);
	/* network */
	S(socket, SOCKET, socket);
	S(socketpair, SOCKETPAIR, socketpair);
	S(connect, CONNECT, connect);
#ifdef __NR_accept
	S(accept, ACCEPT, accept);
#endif
	S(accept4, ACCEPT4, accept);
	S(bind, BIND, bind);
	S(listen, LISTEN, listen);
	S(sendto, SENDTO, sendto);
	S(sendmsg, SENDMSG, msg);
	S(recvfrom, RECVFROM, recvfrom);
	S(recvmsg, RECVMSG, msg);
	S(shutdown, SHUTDOWN, fd_ints);
	S(getsockopt, GETSOCKOPT, fd_ints);
	/* system */
	S(init_module, INIT_MODULE, init_module);
#ifdef __NR_finit_module
	S(finit_module, FINIT_MODULE, finit_module);
#endif
	S(delete_module, DELETE_MODULE, delete_module);
#ifdef __NR_bpf
	S(bpf, BPF, flags0);
#endif
#ifdef __NR_userfaultfd
	S(userfaultfd, USERFAULTFD, flags0);
#endif
	S(ioctl, IOCTL, ioctl);
	S(mprotect, MPROTECT, mprotect);
	S(getpid, GETPID, none);
}

const struct fnet_sc *fnet_sc_lookup(long nr)
{
	if (nr < 0 || nr >= NR_syscalls || !fnet_sc_table[nr].ev)
		return NULL;
	return &fnet_sc_table[nr];
}
