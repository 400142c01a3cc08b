"""The pure-Python/numpy twin of ext/state.c + ext/state_events.c (same interface as
collector/state/core_c.py's CCore, same versions, same columns).

State transitions are inherently sequential, so rows whose event type changes state (or
refers to an fd) are applied one by one in Python; the rows in between (kill, ptrace, unlink,
mkdir, getpid ...: no state change) are handled per run with numpy: one version lookup per
distinct process of the run, scattered back to the rows.  Every rule mirrors the C code; the
comments there explain the why.
"""

from __future__ import annotations

import socket
import struct

import numpy as np

from .. import abi
from ..batch import EMPTY, NA
from . import model as M
from .model import FVER_DTYPE, PVER_DTYPE

_EV = abi.EV
(K_NONE, K_OPEN, K_OPENAT, K_CREAT, K_CLOSE, K_DUP, K_DUP23, K_FCNTL, K_FDARG, K_CHDIR,
 K_FCHDIR, K_EXEC, K_CLONE, K_FORKSYS, K_PROCFORK, K_PROCEXIT, K_SETSID, K_SETPGID,
 K_SETUID, K_SETGID, K_SETREUID, K_SETREGID, K_SETRESUID, K_SETRESGID, K_CAPSET,
 K_SOCKET, K_SOCKETPAIR, K_CONNECT, K_ACCEPT, K_BIND, K_SENDRECV, K_MEMFD) = range(32)

KIND = np.zeros(abi.NUM_EVENT_TYPES, np.uint8)
for _n, _k in {
    "OPEN": K_OPEN, "OPENAT": K_OPENAT, "OPENAT2": K_OPENAT, "CREAT": K_CREAT, "CLOSE": K_CLOSE,
    "DUP": K_DUP, "DUP2": K_DUP23, "DUP3": K_DUP23, "FCNTL": K_FCNTL, "FCHMOD": K_FDARG,
    "FCHOWN": K_FDARG, "IOCTL": K_FDARG, "FINIT_MODULE": K_FDARG, "SETNS": K_FDARG,
    "LISTEN": K_FDARG, "SHUTDOWN": K_FDARG, "GETSOCKOPT": K_FDARG, "CHDIR": K_CHDIR,
    "FCHDIR": K_FCHDIR, "EXECVE": K_EXEC, "EXECVEAT": K_EXEC, "CLONE": K_CLONE,
    "CLONE3": K_CLONE, "FORK": K_FORKSYS, "VFORK": K_FORKSYS, "PROC_FORK": K_PROCFORK,
    "PROC_EXIT": K_PROCEXIT, "SETSID": K_SETSID, "SETPGID": K_SETPGID, "SETUID": K_SETUID,
    "SETGID": K_SETGID, "SETREUID": K_SETREUID, "SETREGID": K_SETREGID,
    "SETRESUID": K_SETRESUID, "SETRESGID": K_SETRESGID, "CAPSET": K_CAPSET,
    "SOCKET": K_SOCKET, "SOCKETPAIR": K_SOCKETPAIR, "CONNECT": K_CONNECT, "ACCEPT": K_ACCEPT,
    "ACCEPT4": K_ACCEPT, "BIND": K_BIND, "SENDTO": K_SENDRECV, "SENDMSG": K_SENDRECV,
    "RECVFROM": K_SENDRECV, "RECVMSG": K_SENDRECV, "MEMFD_CREATE": K_MEMFD,
}.items():
    KIND[_EV[_n]] = _k

# What a live capture must include for the tables to stay right whatever the rules ask for
# (libsinsp does the same): every type that changes state.  Types that only read an fd's
# info (K_FDARG) or refine a socket's tuple (K_SENDRECV) are captured when a rule needs them.
STATE_EVENT_TYPES = frozenset(int(t) for t in np.nonzero(KIND)[0]
                              if KIND[t] not in (K_FDARG, K_SENDRECV))

AT_FDCWD = -100
O_DIRECTORY, O_TMPFILE, O_CLOEXEC = 0o200000, 0o20000000, 0o2000000
CLONE_PARENT, CLONE_THREAD = 0x8000, 0x10000
UNSET32 = 0xFFFFFFFF
MAX_CHAIN = 64
_PV_NAMES = PVER_DTYPE.names
_FV_NAMES = FVER_DTYPE.names
_FV_ZERO = tuple(0 for _ in _FV_NAMES)
_FI = {n: i for i, n in enumerate(_FV_NAMES)}
# string id fields of a process / an fd info (what a rehome re-interns)
_PV_STR = ("name", "exe", "exepath", "args", "cmdline", "cwd", "container_id", "sname",
           "vpgid_name", "vpgid_exe")
_FV_STR_IDX = frozenset(_FI[k] for k in ("name", "nameraw", "directory", "filename", "cip",
                                         "sip"))


class Proc:
    __slots__ = ("v", "fds", "nthreads", "nchildren", "vid", "vgen", "live")

    def __init__(self, pid: int) -> None:
        self.v = dict.fromkeys(_PV_NAMES, 0)
        self.v["pid"] = pid
        self.v["loginuid"] = -1
        self.fds: dict[int, list] = {}    # fd -> [FdInfo, cloexec]
        self.nthreads = self.nchildren = self.vid = self.vgen = 0
        self.live = True


class FdInfo:
    __slots__ = ("v", "refs", "vid", "vgen")

    def __init__(self, v: tuple) -> None:
        self.v, self.refs, self.vid, self.vgen = v, 0, 0, 0


def _fv(**kw) -> tuple:
    t = list(_FV_ZERO)
    for k, x in kw.items():
        t[_FI[k]] = x
    return tuple(t)


def _fset(v: tuple, **kw) -> tuple:
    t = list(v)
    for k, x in kw.items():
        t[_FI[k]] = x
    return tuple(t)


class PureTables:
    def __init__(self, strings, *, max_procs: int = 65536, max_threads: int = 262144,
                 max_fds: int = 1 << 20, max_fd_num: int = 65535) -> None:
        self.strings = strings
        self.max_procs, self.max_threads = max_procs, max_threads
        self.max_fds, self.max_fd_num = max_fds, max_fd_num
        self.procs: dict[int, Proc] = {}
        self.tids: dict[int, int] = {}
        self.nfds = 0
        self.gen = 0
        self.st = dict.fromkeys(
            ("events", "procs_added", "procs_removed", "procs_unknown", "procs_cap_hit",
             "threads_cap_hit", "fds_cap_hit", "fd_num_too_big", "fds_unknown"), 0)
        self.host_id = strings.intern(b"host")
        self._reset()

    def intern(self, b: bytes) -> int:
        return self.strings.intern(b)

    # -- strings ------------------------------------------------------------------------
    def _b(self, i: int) -> bytes:
        return self.strings.get(i) or b""

    def _empty(self, i: int) -> bool:
        return i <= EMPTY or not self.strings.get(i)

    def make_cmdline(self, comm: int, args: int) -> int:
        if not comm:
            return 0
        if self._empty(args):
            return comm
        return self.intern(self._b(comm) + b" " + self._b(args))

    def cwd_slash(self, cwd: int) -> int:
        if self._empty(cwd):
            return 0
        b = self._b(cwd)
        return cwd if b.endswith(b"/") else self.intern(b + b"/")

    def container_of(self, cg: int) -> int:
        if self._empty(cg):
            return self.host_id
        cid = M.container_id(self._b(cg))
        return self.intern(cid) if cid is not None else self.host_id

    def exe_flags(self, exepath: int) -> int:
        return M.PV_EXE_MEMFD if not self._empty(exepath) and \
            self._b(exepath).startswith(b"/memfd:") else 0

    def resolve_path(self, p: Proc | None, dirfd: int, name: int) -> int:
        if not name:
            return 0
        nb = self._b(name)
        if nb.startswith(b"/"):
            return self.intern(M.normalize(nb))
        base = 0
        if p is not None and dirfd == AT_FDCWD:
            base = p.v["cwd"]
        elif p is not None:
            e = p.fds.get(dirfd)
            base = e[0].v[_FI["name"]] if e else 0
        if self._empty(base) or not self._b(base).startswith(b"/"):
            return name
        return self.intern(M.normalize(self._b(base) + b"/" + nb))

    def split_dir(self, f: tuple) -> tuple:
        t, name = f[_FI["type"]], f[_FI["name"]]
        if t == M.FD_DIRECTORY:
            return _fset(f, directory=name, filename=0)
        if t != M.FD_FILE or self._empty(name):
            return _fset(f, directory=0, filename=0)
        b = self._b(name)
        k = b.rfind(b"/") + 1
        fn = self.intern(b[k:])
        d = 0 if k == 0 else self.intern(b[:1] if k == 1 else b[:k - 1])
        return _fset(f, directory=d, filename=fn)

    def saddr(self, i: int):
        if i <= EMPTY:
            return None
        b = self._b(i)
        if len(b) < 4:
            return None
        fam, port = struct.unpack_from("<HH", b)
        if fam == 2 and len(b) >= 8:
            return fam, port, self.intern(socket.inet_ntop(socket.AF_INET, b[4:8]).encode())
        if fam == 10 and len(b) >= 20:
            return fam, port, self.intern(socket.inet_ntop(socket.AF_INET6, b[4:20]).encode())
        if fam == 1:
            path = b[4:]
            if path[:1] == b"\0":
                path = b"@" + path[1:]
            return fam, port, self.intern(path)
        return None

    def sock_name(self, f: tuple) -> tuple:
        t = f[_FI["type"]]
        if t == M.FD_UNIX:
            return _fset(f, name=f[_FI["sip"]] or f[_FI["cip"]] or EMPTY)
        if t not in (M.FD_IPV4, M.FD_IPV6):
            return f
        any_ = b"::" if t == M.FD_IPV6 else b"0.0.0.0"

        def ep(ip, port):
            return (self._b(ip) if ip else any_) + b":%d" % port
        fl = f[_FI["flags"]]
        if fl & M.FV_SERVER and not fl & M.FV_CONNECTED:
            name = ep(f[_FI["sip"]], f[_FI["sport"]])
        else:
            name = ep(f[_FI["cip"]], f[_FI["cport"]]) + b"->" + ep(f[_FI["sip"]], f[_FI["sport"]])
        return _fset(f, name=self.intern(name))

    # -- string table rollover ----------------------------------------------------------
    def rehome(self, strings) -> int:
        """Move the state onto another string table (the twin of fnet_state_rehome in
        ext/state_rehome.c): every string id held by a live process or fd info, and the
        "host" id, re-interned through one old id -> new id map; versions invalidated.
        Returns the number of strings carried over."""
        old = self.strings
        if strings is old:
            return 0
        mp = {NA: NA, EMPTY: EMPTY}
        get, intern = old.get, strings.intern

        def tr(i: int) -> int:
            j = mp.get(i)
            if j is None:
                b = get(i)
                j = mp[i] = intern(b) if b is not None else NA
            return j
        done: set[int] = set()
        for p in self.procs.values():
            v = p.v
            for k in _PV_STR:
                v[k] = tr(v[k])
            for fi, _ in p.fds.values():
                if id(fi) not in done:
                    done.add(id(fi))
                    fi.v = tuple(tr(x) if i in _FV_STR_IDX else x for i, x in enumerate(fi.v))
        self.host_id = tr(self.host_id)
        self.strings = strings
        self._reset()
        return len(mp) - 2

    # -- tables ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self.pvt: list[tuple] = [tuple(0 for _ in _PV_NAMES)]
        self.fvt: list[tuple] = [_FV_ZERO]
        self.gen += 1

    def fd_version(self, fi: FdInfo) -> int:
        if fi.vgen != self.gen:
            fi.vid = len(self.fvt)
            self.fvt.append(fi.v)
            fi.vgen = self.gen
        return fi.vid

    def fver_push(self, v: tuple) -> int:
        self.fvt.append(v)
        return len(self.fvt) - 1

    def _parent(self, p: Proc) -> Proc | None:
        v = p.v
        if not v["flags"] & M.PV_PPID or v["ppid"] <= 0 or v["ppid"] == v["pid"]:
            return None
        return self.procs.get(v["ppid"])

    def _leader(self, p: Proc, use_sid: bool) -> tuple[int, int]:
        key = p.v["sid"] if use_sid else p.v["vpgid"]
        q = self.procs.get(key)
        if q is not None:
            return q.v["name"], q.v["exe"]
        best = p
        need = M.PV_SID if use_sid else M.PV_VPGID
        for _ in range(MAX_CHAIN):
            if not best.v["flags"] & M.PV_PPID:
                break
            q = self.procs.get(best.v["ppid"])
            if q is None or q is best:
                break
            if not q.v["flags"] & need or (q.v["sid"] if use_sid else q.v["vpgid"]) != key:
                break
            best = q
        return best.v["name"], best.v["exe"]

    def proc_version(self, p: Proc | None) -> int:
        if p is None:
            return 0
        if p.vgen == self.gen:
            return p.vid
        chain: list[Proc] = []
        cur = p
        while cur is not None and len(chain) < MAX_CHAIN and cur.vgen != self.gen:
            if any(c is cur for c in chain):
                break
            chain.append(cur)
            cur = self._parent(cur)
        for q in reversed(chain):
            v = dict(q.v)
            par = self._parent(q)
            v["parent"] = par.vid if par is not None and par.vgen == self.gen else 0
            v["sname"] = v["vpgid_name"] = v["vpgid_exe"] = 0
            if v["flags"] & M.PV_SID:
                v["sname"] = self._leader(q, True)[0]
            if v["flags"] & M.PV_VPGID:
                v["vpgid_name"], v["vpgid_exe"] = self._leader(q, False)
            q.vid = len(self.pvt)
            self.pvt.append(tuple(v[k] for k in _PV_NAMES))
            q.vgen = self.gen
        return p.vid if p.vgen == self.gen else 0

    def fdinfo_new(self, v: tuple) -> FdInfo | None:
        if self.nfds >= self.max_fds:
            self.st["fds_cap_hit"] += 1
            return None
        self.nfds += 1
        return FdInfo(v)

    def _put(self, fi: FdInfo) -> None:
        fi.refs -= 1
        if fi.refs == 0:
            self.nfds -= 1
            fi.vgen = 0

    def fd_install(self, p: Proc, fd: int, fi: FdInfo | None, cloexec: bool) -> None:
        if fd < 0 or fd > self.max_fd_num:
            if fd > self.max_fd_num:
                self.st["fd_num_too_big"] += 1
            if fi is not None and fi.refs == 0:
                self.nfds -= 1
            return
        old = p.fds.pop(fd, None)
        if fi is not None:
            fi.refs += 1
            p.fds[fd] = [fi, bool(cloexec)]
        if old is not None:
            self._put(old[0])

    @staticmethod
    def fd_lookup(p: Proc | None, fd: int) -> FdInfo | None:
        if p is None:
            return None
        e = p.fds.get(fd)
        return e[0] if e else None

    def fd_close_all(self, p: Proc, only_cloexec: bool) -> None:
        for fd in list(p.fds):
            fi, ce = p.fds[fd]
            if not only_cloexec or ce:
                del p.fds[fd]
                self._put(fi)

    def proc_add(self, pid: int) -> Proc | None:
        old = self.procs.get(pid)
        if old is not None:
            self.proc_remove(old)
        if len(self.procs) >= self.max_procs:
            self.st["procs_cap_hit"] += 1
            return None
        p = Proc(pid)
        self.procs[pid] = p
        self.st["procs_added"] += 1
        return p

    def child_link(self, p: Proc, delta: int) -> None:
        if not p.v["flags"] & M.PV_PPID:
            return
        par = self.procs.get(p.v["ppid"])
        if par is not None and par is not p:
            if delta < 0 and par.nchildren == 0:
                return
            par.nchildren += delta

    def proc_remove(self, p: Proc) -> None:
        if not p.live:
            return
        self.fd_close_all(p, False)
        self.child_link(p, -1)
        pid = p.v["pid"]
        del self.procs[pid]
        if p.nchildren:
            init = self.procs.get(1)
            for c in self.procs.values():
                if c.v["flags"] & M.PV_PPID and c.v["ppid"] == pid:
                    c.v["ppid"] = 1 if init is not None else 0
                    if init is None:
                        c.v["flags"] &= ~M.PV_PPID
                    else:
                        init.nchildren += 1
                    c.vgen = 0
            self.gen += 1
        p.live = False
        p.vgen = 0
        self.st["procs_removed"] += 1

    def thread_set(self, tid: int, pid: int) -> Proc | None:
        p = self.procs.get(pid)
        if p is None:
            p = self.proc_add(pid)
            if p is None:
                return None
            self.st["procs_unknown"] += 1
        cur = self.tids.get(tid)
        if cur != pid:
            if cur is not None:
                o = self.procs.get(cur)
                if o is not None and o.nthreads:
                    o.nthreads -= 1
            elif len(self.tids) >= self.max_threads:
                self.st["threads_cap_hit"] += 1
                return p
            self.tids[tid] = pid
            p.nthreads += 1
        return p

    # -- seeding ---------------------------------------------------------------------------
    def seed_proc(self, d: dict) -> bool:
        p = self.proc_add(d["pid"])
        if p is None:
            return False
        v = p.v
        for k in ("ppid", "sid", "vpgid", "loginuid", "start_ts", "cap_eff", "cap_prm",
                  "cap_inh", "exe", "exepath", "args", "uid", "gid", "euid", "egid", "tty"):
            v[k] = d.get(k, 0)
        v["name"] = d.get("comm", 0)
        v["cmdline"] = self.make_cmdline(v["name"], v["args"])
        v["cwd"] = self.cwd_slash(d.get("cwd", 0))
        v["container_id"] = self.container_of(d.get("cgroup", 0))
        v["flags"] = (d.get("flags", 0) & ~M.PV_EXE_MEMFD) | self.exe_flags(v["exepath"])
        return True

    def seed_thread(self, tid: int, pid: int) -> bool:
        return self.thread_set(tid, pid) is not None

    def seed_fd(self, pid: int, fd: int, row: dict, cloexec: bool) -> bool:
        p = self.procs.get(pid)
        if p is None:
            return False
        fi = self.fdinfo_new(_fv(**row))
        if fi is None:
            return False
        self.fd_install(p, fd, fi, cloexec)
        return True

    def seed_done(self) -> None:
        for p in self.procs.values():
            p.nchildren = 0
        for p in self.procs.values():
            self.child_link(p, +1)
        self.gen += 1

    # -- transitions ----------------------------------------------------------------------
    def fork_child(self, pp: Proc | None, ppid_ev: int, ctid: int, cpid: int, flags: int,
                   start: int, comm: int) -> None:
        pv = dict(pp.v) if pp is not None else None
        c = self.proc_add(cpid)
        if c is None:
            return
        if pp is not None and pp.live:
            c.v = pv
            c.v["pid"] = cpid
            if not flags & CLONE_PARENT:
                c.v["ppid"] = ppid_ev
                c.v["flags"] |= M.PV_PPID
            for fd, (fi, ce) in pp.fds.items():
                fi.refs += 1
                c.fds[fd] = [fi, ce]
        else:
            c.v["ppid"] = ppid_ev
            c.v["flags"] = M.PV_PPID
        c.v["start_ts"] = start
        if not self._empty(comm) and c.v["flags"] & M.PV_KNOWN:
            c.v["name"] = comm
            c.v["cmdline"] = self.make_cmdline(comm, c.v["args"])
        elif not self._empty(comm) and not c.v["name"]:
            c.v["name"] = comm
        self.child_link(c, +1)
        self.thread_set(ctid, cpid)

    def do_exec(self, p: Proc, a: list, vs: list) -> None:
        v = p.v
        a0, a1, lu, tty, ppid, cap = (x & 0xFFFFFFFFFFFFFFFF for x in a)
        ppid = a[4]
        filename, argv, cwd, comm, exepath, cgroup = vs
        if not v["flags"] & M.PV_PPID or v["ppid"] != ppid:
            self.child_link(p, -1)
            v["ppid"] = ppid
            v["flags"] |= M.PV_PPID
            self.child_link(p, +1)
        v["uid"], v["gid"] = a0 & UNSET32, a0 >> 32 & UNSET32
        v["euid"], v["egid"] = a1 & UNSET32, a1 >> 32 & UNSET32
        lu &= UNSET32
        v["loginuid"] = -1 if lu == UNSET32 else lu
        v["tty"] = M.tty_encode(tty)
        v["cap_eff"] = cap
        if not self._empty(argv):
            b = self._b(argv)
            k = b.find(b"\0")
            k = len(b) if k < 0 else k
            v["exe"] = self.intern(b[:k])
            rest = b[k + 1:]
            v["args"] = self.intern(rest.replace(b"\0", b" ")) if k + 1 < len(b) else EMPTY
        else:
            v["exe"] = filename or EMPTY
            v["args"] = EMPTY
        v["name"] = v["exe"] if self._empty(comm) else comm
        v["exepath"] = (filename or EMPTY) if self._empty(exepath) else exepath
        if not self._empty(cwd):
            v["cwd"] = self.cwd_slash(cwd)
        if not self._empty(cgroup) or not v["container_id"]:
            v["container_id"] = self.container_of(cgroup)
        v["cmdline"] = self.make_cmdline(v["name"], v["args"])
        v["flags"] = (v["flags"] & ~M.PV_EXE_MEMFD) | M.PV_KNOWN | M.PV_PPID | M.PV_CAPEFF | \
            self.exe_flags(v["exepath"])
        self.fd_close_all(p, True)
        if p.nchildren:
            self.gen += 1
        p.vgen = 0

    def set_ids(self, p: Proc, k: int, a0: int, a1: int) -> None:
        v = p.v
        g = k in (K_SETGID, K_SETREGID, K_SETRESGID)
        r, e = ("gid", "egid") if g else ("uid", "euid")
        if k in (K_SETUID, K_SETGID):
            if v[e] == 0:
                v[r] = a0 & UNSET32
            v[e] = a0 & UNSET32
        else:
            if a0 & UNSET32 != UNSET32:
                v[r] = a0 & UNSET32
            if a1 & UNSET32 != UNSET32:
                v[e] = a1 & UNSET32
        p.vgen = 0

    def new_fd(self, p: Proc | None, fd: int, f: tuple, cloexec: bool) -> int:
        if p is None or fd < 0 or fd > self.max_fd_num:
            if p is not None and fd > self.max_fd_num:
                self.st["fd_num_too_big"] += 1
            return self.fver_push(f)
        fi = self.fdinfo_new(f)
        if fi is None:
            return self.fver_push(f)
        self.fd_install(p, fd, fi, cloexec)
        return self.fd_version(fi)

    @staticmethod
    def name_differs(a: tuple, b: tuple) -> bool:
        """fd.name_changed without rendering names (as name_differs() in C)."""
        inet = (M.FD_IPV4, M.FD_IPV6)
        ta, tb = a[_FI["type"]], b[_FI["type"]]

        def bound(x):
            fl = x[_FI["flags"]]
            return bool(fl & M.FV_SERVER) and not fl & M.FV_CONNECTED
        if ta in inet and a[_FI["name"]] == 0 and tb == ta and b[_FI["name"]] == 0:
            return any(a[_FI[k]] != b[_FI[k]] for k in ("cip", "cport", "sip", "sport")) or \
                bound(a) != bound(b)
        return a[_FI["name"]] != b[_FI["name"]] or ta != tb or \
            (tb in inet and b[_FI["name"]] == 0)

    def fd_replace(self, p, fd, old: FdInfo | None, f: tuple) -> tuple[int, int]:
        if old is not None and old.v == f:
            return self.fd_version(old), 0
        changed = int(old is not None and self.name_differs(old.v, f))
        e = p.fds.get(fd) if p is not None else None
        return self.new_fd(p, fd, f, bool(e and e[1])), changed

    def fd_ev(self, p, fd) -> int:
        fi = self.fd_lookup(p, fd)
        if fi is None:
            self.st["fds_unknown"] += 1
            return 0
        return self.fd_version(fi)
