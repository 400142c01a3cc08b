/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * falconet_abi.h - the one definition of the Falconet kernel/userspace ABI.
 *
 * Included by the kernel module (kmod/) and by the cffi extension (ext/); read by the Python
 * side (collector/abi.py parses the CDEF section and the event table below).  Nothing about the
 * record layout, event numbers, parameter meaning, ring layout or ioctls is written anywhere
 * else.  Change anything here -> bump FALCONET_ABI_VERSION.
 *
 * ---------------------------------------------------------------------------------------------
 * 1. Records
 * ---------------------------------------------------------------------------------------------
 *
 *   One record per syscall, written at syscall *exit* (arguments and return value together),
 *   plus process lifecycle records from the sched tracepoints.
 *
 *   offset  size  field
 *   0       2     len       total record bytes incl. header and variable part; multiple of 8
 *   2       2     type      enum falconet_event_type (FNET_EV_*)
 *   4       2     flags     FNET_RF_* (fault reading user memory, truncated, compat syscall)
 *   6       2     cpu       CPU that produced the record
 *   8       8     ts        nanoseconds since boot (ktime_get_boot_ns), monotonic per CPU
 *   16      4     tid       thread id (task->pid)
 *   20      4     pid       process id (task->tgid)
 *   24      8     ret       syscall return value (signed); lifecycle records: see table
 *   32      48    arg[6]    fixed numeric arguments, meaning per type (table below), zero if unused
 *   80      12    vlen[6]   byte length of each variable part, 0 if absent/unused
 *   92      4     _pad      zero
 *   96      ...   variable parts, concatenated in slot order (v0 first), no separators,
 *                 then zero padding up to len
 *
 *   A record is at most FNET_MAX_RECORD bytes.  Strings are raw bytes, not NUL-terminated,
 *   truncated to the snaplen (flag FNET_RF_TRUNC).  Parts are written in slot order, each
 *   bounded by the snaplen and by what is left of FNET_MAX_RECORD: when the parts together
 *   would exceed it, the first part that does not fit is cut to the room left, the parts
 *   after it are empty (vlen 0), FNET_RF_TRUNC is set and drops_toolong counted; the record
 *   is still written.  A record that does not fit the ring's free space is not written at
 *   all (drops_full), never cut.  argv-like values are NUL-separated words
 *   ("ls\0-l\0/tmp"), without a trailing NUL.  Socket addresses use struct fnet_sockaddr.
 *
 * ---------------------------------------------------------------------------------------------
 * 2. Per-CPU rings, mmap layout of /dev/falconet
 * ---------------------------------------------------------------------------------------------
 *
 *   One device, one ring per possible CPU.  The mmap offset (in pages) selects the CPU and the
 *   region; the length never does:
 *
 *     pgoff = (cpu << FNET_MMAP_CPU_SHIFT) | region
 *       region FNET_MMAP_PRODUCER  (1 page, read-only)  struct fnet_ring_producer
 *       region FNET_MMAP_CONSUMER  (1 page, read-write) struct fnet_ring_consumer
 *       region FNET_MMAP_DATA      (2 * data_size, read-only) the data pages mapped twice,
 *                                   back to back, so a record never wraps:
 *
 *        +-----------+-----------+--------------------+--------------------+
 *        | producer  | consumer  |  data (size N)     |  same pages again  |
 *        +-----------+-----------+--------------------+--------------------+
 *
 *   Positions are free-running u64 byte counters; a record lives at (pos & (data_size - 1)).
 *   The producer writes the record, then publishes it with
 *     smp_store_release(&producer->producer_pos, pos + len)
 *   and userspace reads producer_pos with a load-acquire before reading records.  Userspace
 *   releases space with a store-release of consumer->consumer_pos after it is done with the
 *   bytes; the producer reads it with smp_load_acquire.  (Documentation/core-api/
 *   circular-buffers.rst.)  When a record does not fit, it is dropped and counted
 *   (drops_full); nothing is ever overwritten.
 *
 *   poll() on the device reports POLLIN when any ring holds at least the consumer's
 *   `watermark` bytes (or any data after FNET_POLL_FLUSH_NS); the producer wakes the reader
 *   only when crossing that watermark, never once per record.
 *
 * ---------------------------------------------------------------------------------------------
 * 3. ioctls: every argument struct starts with a u32 `size` = sizeof as the caller knows it.
 * ---------------------------------------------------------------------------------------------
 */
#ifndef FALCONET_ABI_H
#define FALCONET_ABI_H

#if defined(__KERNEL__)
#include <linux/types.h>
#include <linux/ioctl.h>
#elif !defined(FNET_CDEF)
#include <linux/types.h>
#include <sys/ioctl.h>
#endif

/* BEGIN FNET_CDEF -- this section is fed verbatim to cffi's cdef(): plain constants and
 * structs only (no expressions in #define, no macros with arguments). */

#define FALCONET_ABI_VERSION 1
#define FNET_HDR_SIZE 96
#define FNET_NUM_ARGS 6
#define FNET_NUM_VARS 6
#define FNET_MAX_RECORD 65528
#define FNET_DEFAULT_SNAPLEN 4096
#define FNET_MAX_SNAPLEN 16384
#define FNET_NUM_EVENT_TYPES 128

/* record flags */
#define FNET_RF_FAULT 1
#define FNET_RF_TRUNC 2
#define FNET_RF_COMPAT 4

#define FNET_MMAP_CPU_SHIFT 8
#define FNET_MMAP_PRODUCER 0
#define FNET_MMAP_CONSUMER 1
#define FNET_MMAP_DATA 2

/* socket address families in struct fnet_sockaddr (values of the kernel's AF_*) */
#define FNET_AF_UNSPEC 0
#define FNET_AF_UNIX 1
#define FNET_AF_INET 2
#define FNET_AF_INET6 10

struct fnet_event_hdr {
	__u16 len;
	__u16 type;
	__u16 flags;
	__u16 cpu;
	__u64 ts;
	__u32 tid;
	__u32 pid;
	__s64 ret;
	__u64 arg[6];
	__u16 vlen[6];
	__u32 _pad;
};

/* Variable part for socket addresses.  INET: addr[0..3] (network order), INET6: addr[0..15];
 * port in host byte order.  UNIX: the 4-byte header then the path bytes (no NUL), so the
 * part's vlen is 4 + path length; a leading NUL marks an abstract socket. */
struct fnet_sockaddr {
	__u16 family;
	__u16 port;
	__u8 addr[16];
};

struct fnet_ring_producer {
	__u64 producer_pos;
	__u64 data_size;
	__u64 events;
	__u64 drops_full;
	__u64 drops_fault;
	__u64 drops_toolong;
	__u64 drops_compat;
	__u32 cpu;
	__u32 online;
};

struct fnet_ring_consumer {
	__u64 consumer_pos;
	__u64 watermark;
};

struct fnet_info {
	__u32 size;
	__u32 abi_version;
	__u64 layout_hash;
	__u32 nr_cpus;
	__u32 snaplen;
	__u64 data_size;
	__u32 capturing;
	__u32 nr_event_types;
};

struct fnet_interest {
	__u32 size;
	__u32 _pad;
	__u64 bits[2];
};

struct fnet_snaplen {
	__u32 size;
	__u32 snaplen;
};

struct fnet_cpu_stats {
	__u32 size;
	__u32 cpu;
	__u64 events;
	__u64 drops_full;
	__u64 drops_fault;
	__u64 drops_toolong;
	__u64 drops_compat;
	__u64 bytes;
};

/* END FNET_CDEF */

/* ioctl numbers ('f' = 0x66).  Each takes a pointer to the struct named, `size` filled in. */
#define FNET_IOC_MAGIC 'f'
#define FNET_IOC_GET_INFO      _IOR(FNET_IOC_MAGIC, 1, struct fnet_info)
#define FNET_IOC_START         _IO(FNET_IOC_MAGIC, 2)
#define FNET_IOC_STOP          _IO(FNET_IOC_MAGIC, 3)
#define FNET_IOC_SET_INTEREST  _IOW(FNET_IOC_MAGIC, 4, struct fnet_interest)
#define FNET_IOC_SET_SNAPLEN   _IOW(FNET_IOC_MAGIC, 5, struct fnet_snaplen)
#define FNET_IOC_GET_STATS     _IOWR(FNET_IOC_MAGIC, 6, struct fnet_cpu_stats)

/* Any data is reported readable after this long even below the watermark. */
#define FNET_POLL_FLUSH_NS 50000000ULL

/*
 * 4. Layout hash.  FNV-1a (64-bit) over the sequence of u32 values: for every (struct, field)
 * pair below in order, sizeof(struct), offsetof(struct, field), sizeof(field); then
 * FALCONET_ABI_VERSION.  The module reports it in fnet_info.layout_hash; the extension
 * computes it from its own compilation and collector/abi.py from its own view of the layout,
 * and all three must agree.
 */
#define FNET_LAYOUT_FIELDS(X) \
	X(fnet_event_hdr, len) X(fnet_event_hdr, type) X(fnet_event_hdr, flags) \
	X(fnet_event_hdr, cpu) X(fnet_event_hdr, ts) X(fnet_event_hdr, tid) \
	X(fnet_event_hdr, pid) X(fnet_event_hdr, ret) X(fnet_event_hdr, arg) \
	X(fnet_event_hdr, vlen) X(fnet_event_hdr, _pad) \
	X(fnet_sockaddr, family) X(fnet_sockaddr, port) X(fnet_sockaddr, addr) \
	X(fnet_ring_producer, producer_pos) X(fnet_ring_producer, data_size) \
	X(fnet_ring_producer, events) X(fnet_ring_producer, drops_full) \
	X(fnet_ring_producer, drops_fault) X(fnet_ring_producer, drops_toolong) \
	X(fnet_ring_producer, drops_compat) X(fnet_ring_producer, cpu) \
	X(fnet_ring_producer, online) \
	X(fnet_ring_consumer, consumer_pos) X(fnet_ring_consumer, watermark) \
	X(fnet_info, size) X(fnet_info, abi_version) X(fnet_info, layout_hash) \
	X(fnet_info, nr_cpus) X(fnet_info, snaplen) X(fnet_info, data_size) \
	X(fnet_info, capturing) X(fnet_info, nr_event_types) \
	X(fnet_interest, size) X(fnet_interest, _pad) X(fnet_interest, bits) \
	X(fnet_snaplen, size) X(fnet_snaplen, snaplen) \
	X(fnet_cpu_stats, size) X(fnet_cpu_stats, cpu) X(fnet_cpu_stats, events) \
	X(fnet_cpu_stats, drops_full) X(fnet_cpu_stats, drops_fault) \
	X(fnet_cpu_stats, drops_toolong) X(fnet_cpu_stats, drops_compat) \
	X(fnet_cpu_stats, bytes)

#define FNET_FNV_OFFSET 0xcbf29ce484222325ULL
#define FNET_FNV_PRIME 0x100000001b3ULL

static inline __u64 fnet_fnv_u32(__u64 h, __u32 v)
{
	int i;

	for (i = 0; i < 4; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= FNET_FNV_PRIME;
	}
	return h;
}

#define FNET_HASH_FIELD_(s, f) \
	h = fnet_fnv_u32(h, (__u32)sizeof(struct s)); \
	h = fnet_fnv_u32(h, (__u32)__builtin_offsetof(struct s, f)); \
	h = fnet_fnv_u32(h, (__u32)sizeof(((struct s *)0)->f));

static inline __u64 fnet_layout_hash(void)
{
	__u64 h = FNET_FNV_OFFSET;

	FNET_LAYOUT_FIELDS(FNET_HASH_FIELD_)
	return fnet_fnv_u32(h, FALCONET_ABI_VERSION);
}

/*
 * 5. Event types and the meaning of each slot.
 *
 * FNET_EVENT(NAME, number, "falco evt.type", category,
 *            "a0", "a1", "a2", "a3", "a4", "a5",   numeric argument names ("" = unused)
 *            "v0", "v1", "v2", "v3", "v4", "v5")   variable part names ("" = unused)
 *
 * Argument names are Falco's `evt.arg.<name>` where Falco has one.  The return value is
 * always in `ret` (Falco's `res`, `fd` or `pid` depending on the syscall).  Conventions:
 *   - fd arguments are sign-extended ints; AT_FDCWD is -100.
 *   - `path`-like v-slots hold the string as passed by the process; for the open family and
 *     execve, `fullpath`/`exepath` hold the kernel's d_path() of the resulting file (empty on
 *     failure), so userspace need not resolve relative paths itself.
 *   - socket addresses: struct fnet_sockaddr; connect/accept/bind/sendto carry both ends:
 *     `addr` = the peer (remote), `laddr` = the local end after the call.
 *   - cred-like values: uid/gid/euid/egid/loginuid as u32 (loginuid -1 = unset);
 *     the paired execve slots pack two of them: uid_gid = uid | (u64)gid << 32, same for
 *     euid_egid;
 *     tty = kernel dev_t of the controlling tty (0 = none, major<<20|minor).
 *   - `cap_eff` etc.: 64-bit capability masks.
 *   - `cgroup` (execve): one cgroup path from its hierarchy's root (the cpuset v1 hierarchy
 *     when mounted and the task is not in its root, else cgroup v2), cut at the front with
 *     FNET_RF_TRUNC when too long; empty = unknown (no CONFIG_CGROUPS, PREEMPT_RT).  Records
 *     converted from .scap put Falco's `cgroups` list (NUL-separated subsys=path) here.
 *   - `cwd` (execve): d_path() of the task's working directory; empty = unknown (PREEMPT_RT,
 *     where the lock that pins it sleeps; userspace keeps the cwd it tracked).
 * Lifecycle records (category PROC):
 *   PROC_FORK  from sched_process_fork, written by the parent: tid/pid = parent;
 *              a0 = child tid, a1 = child tgid, a2 = clone flags (CLONE_THREAD etc. when
 *              known, else 0), a3 = child start time (ns since boot); v0 = child comm.
 *   EXECVE/EXECVEAT: written once per attempt; on success from sched_process_exec context
 *              (ret = 0) with the new image's identity, on failure at sys_exit (ret < 0).
 *   PROC_EXIT  from sched_process_exit: ret = exit code (raw wait status), a0 = 1 if the
 *              whole thread group is gone (last thread), else 0.
 *   CLONE/FORK/VFORK/CLONE3 are the parent's syscall exit (ret = child tid or -errno).
 */
#define FNET_CAT_FILE 1
#define FNET_CAT_PROC 2
#define FNET_CAT_NET 3
#define FNET_CAT_CRED 4
#define FNET_CAT_SYS 5

#define FNET_EVENT_TABLE(FNET_EVENT) \
	FNET_EVENT(OPEN, 1, "open", FNET_CAT_FILE, "flags", "mode", "dev", "ino", "", "", "name", "fullpath", "", "", "", "") \
	FNET_EVENT(OPENAT, 2, "openat", FNET_CAT_FILE, "dirfd", "flags", "mode", "dev", "ino", "", "name", "fullpath", "", "", "", "") \
	FNET_EVENT(OPENAT2, 3, "openat2", FNET_CAT_FILE, "dirfd", "flags", "mode", "resolve", "dev", "ino", "name", "fullpath", "", "", "", "") \
	FNET_EVENT(CREAT, 4, "creat", FNET_CAT_FILE, "flags", "mode", "dev", "ino", "", "", "name", "fullpath", "", "", "", "") \
	FNET_EVENT(CLOSE, 5, "close", FNET_CAT_FILE, "fd", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(DUP, 6, "dup", FNET_CAT_FILE, "oldfd", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(DUP2, 7, "dup2", FNET_CAT_FILE, "oldfd", "newfd", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(DUP3, 8, "dup3", FNET_CAT_FILE, "oldfd", "newfd", "flags", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(FCNTL, 9, "fcntl", FNET_CAT_FILE, "fd", "cmd", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(LINK, 10, "link", FNET_CAT_FILE, "", "", "", "", "", "", "oldpath", "newpath", "", "", "", "") \
	FNET_EVENT(LINKAT, 11, "linkat", FNET_CAT_FILE, "olddir", "newdir", "flags", "", "", "", "oldpath", "newpath", "", "", "", "") \
	FNET_EVENT(SYMLINK, 12, "symlink", FNET_CAT_FILE, "", "", "", "", "", "", "target", "linkpath", "", "", "", "") \
	FNET_EVENT(SYMLINKAT, 13, "symlinkat", FNET_CAT_FILE, "linkdirfd", "", "", "", "", "", "target", "linkpath", "", "", "", "") \
	FNET_EVENT(UNLINK, 14, "unlink", FNET_CAT_FILE, "", "", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(UNLINKAT, 15, "unlinkat", FNET_CAT_FILE, "dirfd", "flags", "", "", "", "", "name", "", "", "", "", "") \
	FNET_EVENT(RENAME, 16, "rename", FNET_CAT_FILE, "", "", "", "", "", "", "oldpath", "newpath", "", "", "", "") \
	FNET_EVENT(RENAMEAT, 17, "renameat", FNET_CAT_FILE, "olddirfd", "newdirfd", "", "", "", "", "oldpath", "newpath", "", "", "", "") \
	FNET_EVENT(RENAMEAT2, 18, "renameat2", FNET_CAT_FILE, "olddirfd", "newdirfd", "flags", "", "", "", "oldpath", "newpath", "", "", "", "") \
	FNET_EVENT(MKDIR, 19, "mkdir", FNET_CAT_FILE, "mode", "", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(MKDIRAT, 20, "mkdirat", FNET_CAT_FILE, "dirfd", "mode", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(RMDIR, 21, "rmdir", FNET_CAT_FILE, "", "", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(CHMOD, 22, "chmod", FNET_CAT_FILE, "mode", "", "", "", "", "", "filename", "", "", "", "", "") \
	FNET_EVENT(FCHMOD, 23, "fchmod", FNET_CAT_FILE, "fd", "mode", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(FCHMODAT, 24, "fchmodat", FNET_CAT_FILE, "dirfd", "mode", "", "", "", "", "filename", "", "", "", "", "") \
	FNET_EVENT(CHOWN, 25, "chown", FNET_CAT_FILE, "uid", "gid", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(LCHOWN, 26, "lchown", FNET_CAT_FILE, "uid", "gid", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(FCHOWN, 27, "fchown", FNET_CAT_FILE, "fd", "uid", "gid", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(FCHOWNAT, 28, "fchownat", FNET_CAT_FILE, "dirfd", "uid", "gid", "flags", "", "", "pathname", "", "", "", "", "") \
	FNET_EVENT(CHDIR, 29, "chdir", FNET_CAT_FILE, "", "", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(FCHDIR, 30, "fchdir", FNET_CAT_FILE, "fd", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(CHROOT, 31, "chroot", FNET_CAT_FILE, "", "", "", "", "", "", "path", "", "", "", "", "") \
	FNET_EVENT(MOUNT, 32, "mount", FNET_CAT_FILE, "flags", "", "", "", "", "", "dev", "dir", "type", "", "", "") \
	FNET_EVENT(UMOUNT2, 33, "umount2", FNET_CAT_FILE, "flags", "", "", "", "", "", "name", "", "", "", "", "") \
	FNET_EVENT(MEMFD_CREATE, 34, "memfd_create", FNET_CAT_FILE, "flags", "", "", "", "", "", "name", "", "", "", "", "") \
	FNET_EVENT(EXECVE, 40, "execve", FNET_CAT_PROC, "uid_gid", "euid_egid", "loginuid", "tty", "ppid", "cap_eff", "filename", "args", "cwd", "comm", "exepath", "cgroup") \
	FNET_EVENT(EXECVEAT, 41, "execveat", FNET_CAT_PROC, "uid_gid", "euid_egid", "loginuid", "tty", "ppid", "cap_eff", "filename", "args", "cwd", "comm", "exepath", "cgroup") \
	FNET_EVENT(CLONE, 42, "clone", FNET_CAT_PROC, "flags", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(CLONE3, 43, "clone3", FNET_CAT_PROC, "flags", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(FORK, 44, "fork", FNET_CAT_PROC, "", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(VFORK, 45, "vfork", FNET_CAT_PROC, "", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(PROC_FORK, 46, "procfork", FNET_CAT_PROC, "child_tid", "child_pid", "flags", "start_ts", "", "", "comm", "", "", "", "", "") \
	FNET_EVENT(PROC_EXIT, 47, "procexit", FNET_CAT_PROC, "last", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(PTRACE, 48, "ptrace", FNET_CAT_PROC, "request", "pid", "addr", "data", "", "", "", "", "", "", "", "") \
	FNET_EVENT(KILL, 49, "kill", FNET_CAT_PROC, "pid", "sig", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(TKILL, 50, "tkill", FNET_CAT_PROC, "tid", "sig", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(TGKILL, 51, "tgkill", FNET_CAT_PROC, "pid", "tid", "sig", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(PRCTL, 52, "prctl", FNET_CAT_PROC, "option", "arg2", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETNS, 53, "setns", FNET_CAT_PROC, "fd", "nstype", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(UNSHARE, 54, "unshare", FNET_CAT_PROC, "flags", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETSID, 55, "setsid", FNET_CAT_PROC, "", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETPGID, 56, "setpgid", FNET_CAT_PROC, "pid", "pgid", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETUID, 60, "setuid", FNET_CAT_CRED, "uid", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETGID, 61, "setgid", FNET_CAT_CRED, "gid", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETREUID, 62, "setreuid", FNET_CAT_CRED, "ruid", "euid", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETREGID, 63, "setregid", FNET_CAT_CRED, "rgid", "egid", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETRESUID, 64, "setresuid", FNET_CAT_CRED, "ruid", "euid", "suid", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SETRESGID, 65, "setresgid", FNET_CAT_CRED, "rgid", "egid", "sgid", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(CAPSET, 66, "capset", FNET_CAT_CRED, "cap_inheritable", "cap_permitted", "cap_effective", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SOCKET, 70, "socket", FNET_CAT_NET, "domain", "type", "proto", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SOCKETPAIR, 71, "socketpair", FNET_CAT_NET, "domain", "type", "proto", "fd1", "fd2", "", "", "", "", "", "", "") \
	FNET_EVENT(CONNECT, 72, "connect", FNET_CAT_NET, "fd", "", "", "", "", "", "addr", "laddr", "", "", "", "") \
	FNET_EVENT(ACCEPT, 73, "accept", FNET_CAT_NET, "fd", "", "", "", "", "", "addr", "laddr", "", "", "", "") \
	FNET_EVENT(ACCEPT4, 74, "accept4", FNET_CAT_NET, "fd", "flags", "", "", "", "", "addr", "laddr", "", "", "", "") \
	FNET_EVENT(BIND, 75, "bind", FNET_CAT_NET, "fd", "", "", "", "", "", "addr", "", "", "", "", "") \
	FNET_EVENT(LISTEN, 76, "listen", FNET_CAT_NET, "fd", "backlog", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(SENDTO, 77, "sendto", FNET_CAT_NET, "fd", "size", "", "", "", "", "addr", "", "", "", "", "") \
	FNET_EVENT(SENDMSG, 78, "sendmsg", FNET_CAT_NET, "fd", "size", "", "", "", "", "addr", "", "", "", "", "") \
	FNET_EVENT(RECVFROM, 79, "recvfrom", FNET_CAT_NET, "fd", "size", "", "", "", "", "addr", "", "", "", "", "") \
	FNET_EVENT(RECVMSG, 80, "recvmsg", FNET_CAT_NET, "fd", "size", "", "", "", "", "addr", "", "", "", "", "") \
	FNET_EVENT(SHUTDOWN, 81, "shutdown", FNET_CAT_NET, "fd", "how", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(GETSOCKOPT, 82, "getsockopt", FNET_CAT_NET, "fd", "level", "optname", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(INIT_MODULE, 90, "init_module", FNET_CAT_SYS, "length", "", "", "", "", "", "uargs", "", "", "", "", "") \
	FNET_EVENT(FINIT_MODULE, 91, "finit_module", FNET_CAT_SYS, "fd", "flags", "", "", "", "", "uargs", "", "", "", "", "") \
	FNET_EVENT(DELETE_MODULE, 92, "delete_module", FNET_CAT_SYS, "flags", "", "", "", "", "", "name", "", "", "", "", "") \
	FNET_EVENT(BPF, 93, "bpf", FNET_CAT_SYS, "cmd", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(USERFAULTFD, 94, "userfaultfd", FNET_CAT_SYS, "flags", "", "", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(IOCTL, 95, "ioctl", FNET_CAT_SYS, "fd", "request", "argument", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(MPROTECT, 96, "mprotect", FNET_CAT_SYS, "addr", "length", "prot", "", "", "", "", "", "", "", "", "") \
	FNET_EVENT(GETPID, 100, "getpid", FNET_CAT_SYS, "", "", "", "", "", "", "", "", "", "", "", "")

#define FNET_EV_ENUM_(name, num, ...) FNET_EV_##name = num,
enum falconet_event_type {
	FNET_EV_NONE = 0,
	FNET_EVENT_TABLE(FNET_EV_ENUM_)
};

#endif /* FALCONET_ABI_H */
