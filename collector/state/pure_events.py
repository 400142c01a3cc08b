"""The batch loop of the pure twin (see collector/state/pure.py for the tables and
ext/state_events.c for the C original of every transition)."""

from __future__ import annotations

import numpy as np

from ..batch import EMPTY
from . import model as M
from .model import FVER_DTYPE, PVER_DTYPE
from .pure import (
    AT_FDCWD, CLONE_PARENT, CLONE_THREAD, KIND, O_CLOEXEC, O_DIRECTORY, O_TMPFILE,
    K_ACCEPT, K_BIND, K_CAPSET, K_CHDIR, K_CLONE, K_CLOSE, K_CONNECT, K_CREAT, K_DUP, K_DUP23,
    K_EXEC, K_FCHDIR, K_FCNTL, K_FDARG, K_FORKSYS, K_MEMFD, K_NONE, K_OPEN, K_OPENAT,
    K_PROCEXIT, K_PROCFORK, K_SENDRECV, K_SETGID, K_SETPGID, K_SETREGID, K_SETRESGID,
    K_SETRESUID, K_SETREUID, K_SETSID, K_SETUID, K_SOCKET, K_SOCKETPAIR, PureTables, _FI, _fset,
    _fv,
)

SOCK_CLOEXEC = 0o2000000
EINPROGRESS = 115
_ACCEPT4 = __import__("collector.abi", fromlist=["EV"]).EV["ACCEPT4"]
_SHORT_RUN = 16     # runs of stateless rows shorter than this are done row by row


def _fdtype(fam: int) -> int:
    return {2: M.FD_IPV4, 10: M.FD_IPV6, 1: M.FD_UNIX, 16: M.FD_NETLINK}.get(fam, M.FD_OTHER)


def _l4(domain: int, typ: int, proto: int) -> int:
    if domain not in (2, 10):
        return 0
    t = typ & 0xF
    if t == 1:
        return M.L4_TCP
    if t == 2:
        return M.L4_ICMP if proto in (1, 58) else M.L4_UDP
    return M.L4_RAW if t == 3 else 0


class PureCore(PureTables):
    """Same interface as collector.state.core_c.CCore."""

    def _resolve(self, tid: int, pid: int):
        return self.thread_set(tid, pid)

    def step(self, k: int, t: int, tid: int, pid: int, ret: int, ts: int, a: list, vs: list):
        """One stateful row: returns (pv, fv, fdnum, evflags)."""
        p = self._resolve(tid, pid)
        fv, fdnum, evf, exiting = 0, M.NO_FD, 0, False
        a0, a1, a2 = a[0], a[1], a[2]
        if k in (K_OPEN, K_OPENAT, K_CREAT):
            flags = a1 if k == K_OPENAT else a0
            dirfd = a0 if k == K_OPENAT else AT_FDCWD
            if k == K_CREAT:
                flags |= 0o1101
            fdnum = ret if ret >= 0 else -1
            typ = M.FD_DIRECTORY if flags & O_DIRECTORY and not flags & O_TMPFILE else M.FD_FILE
            name = self.resolve_path(p, dirfd, vs[0]) if self._empty(vs[1]) else vs[1]
            f = self.split_dir(_fv(type=typ, nameraw=vs[0], name=name, oflags=flags & 0xFFFFFFFF))
            fv = self.new_fd(p, ret, f, bool(flags & O_CLOEXEC)) if ret >= 0 else self.fver_push(f)
        elif k == K_MEMFD:
            fdnum = ret
            if ret >= 0:
                f = _fv(type=M.FD_MEMFD, name=vs[0], nameraw=vs[0], oflags=a0 & 0xFFFFFFFF)
                fv = self.new_fd(p, ret, f, bool(a0 & 1))
        elif k == K_CLOSE:
            fdnum = a0
            fv = self.fd_ev(p, a0)
            if ret >= 0 and p is not None:
                self.fd_install(p, a0, None, False)
        elif k in (K_DUP, K_DUP23):
            fdnum = ret
            if ret >= 0 and p is not None:
                fi = self.fd_lookup(p, a0)
                if ret != a0:
                    self.fd_install(p, ret, fi, k == K_DUP23 and bool(a2 & O_CLOEXEC))
                fv = self.fd_version(fi) if fi is not None else 0
        elif k == K_FCNTL:
            fdnum = a0
            fv = self.fd_ev(p, a0)
            if a1 in (0, 1030) and ret >= 0 and p is not None:
                self.fd_install(p, ret, self.fd_lookup(p, a0), a1 == 1030)
        elif k == K_FDARG:
            fdnum = a0
            fv = self.fd_ev(p, a0)
        elif k == K_CHDIR:
            if ret == 0 and p is not None:
                p.v["cwd"] = self.cwd_slash(self.resolve_path(p, AT_FDCWD, vs[0]))
                p.vgen = 0
        elif k == K_FCHDIR:
            fdnum = a0
            fv = self.fd_ev(p, a0)
            fi = self.fd_lookup(p, a0)
            if ret == 0 and fi is not None and not self._empty(fi.v[_FI["name"]]):
                p.v["cwd"] = self.cwd_slash(fi.v[_FI["name"]])
                p.vgen = 0
        elif k == K_EXEC:
            if ret == 0 and p is not None:
                self.do_exec(p, a, vs)
        elif k in (K_CLONE, K_FORKSYS):
            if ret > 0 and ret not in self.tids:
                fl = a0 & 0xFFFFFFFFFFFFFFFF if k == K_CLONE else 0
                if fl & CLONE_THREAD:
                    self.thread_set(ret, pid)
                else:
                    self.fork_child(p, pid, ret, ret, fl, ts, 0)
        elif k == K_PROCFORK:
            if a0 == a1:
                self.fork_child(p, pid, a0, a1, a2 & 0xFFFFFFFFFFFFFFFF, a[3] & 0xFFFFFFFFFFFFFFFF,
                                vs[0])
            else:
                self.thread_set(a0, a1)
        elif k == K_PROCEXIT:
            exiting = True
        elif k == K_SETSID:
            if ret > 0 and p is not None:
                p.v["sid"] = p.v["vpgid"] = ret
                p.v["flags"] |= M.PV_SID | M.PV_VPGID
                p.vgen = 0
                if p.nchildren:
                    self.gen += 1
        elif k == K_SETPGID:
            if ret == 0:
                target = a0 if a0 else pid
                q = self.procs.get(target)
                if q is not None:
                    q.v["vpgid"] = a1 if a1 else target
                    q.v["flags"] |= M.PV_VPGID
                    q.vgen = 0
                    if q.nchildren:
                        self.gen += 1
        elif k in (K_SETUID, K_SETGID, K_SETREUID, K_SETREGID, K_SETRESUID, K_SETRESGID):
            if ret == 0 and p is not None:
                self.set_ids(p, k, a0, a1)
        elif k == K_CAPSET:
            if ret == 0 and p is not None:
                m = 0xFFFFFFFFFFFFFFFF
                p.v["cap_inh"], p.v["cap_prm"], p.v["cap_eff"] = a0 & m, a1 & m, a2 & m
                p.v["flags"] |= M.PV_CAPS | M.PV_CAPEFF
                p.vgen = 0
        elif k == K_SOCKET:
            fdnum = ret
            if ret >= 0:
                f = _fv(type=_fdtype(a0), family=a0 & 0xFF, l4proto=_l4(a0, a1, a2), name=EMPTY)
                fv = self.new_fd(p, ret, f, bool(a1 & SOCK_CLOEXEC))
        elif k == K_SOCKETPAIR:
            fdnum = a[3]
            if ret == 0:
                f = _fv(type=_fdtype(a0), family=a0 & 0xFF, l4proto=_l4(a0, a1, a2), name=EMPTY)
                fv = self.new_fd(p, a[3], f, bool(a1 & SOCK_CLOEXEC))
                self.new_fd(p, a[4], f, bool(a1 & SOCK_CLOEXEC))
        elif k in (K_CONNECT, K_BIND, K_SENDRECV):
            fdnum = a0
            fi = self.fd_lookup(p, a0)
            ra = self.saddr(vs[0])
            f = fi.v if fi is not None else _fv()
            if fi is None:
                self.st["fds_unknown"] += 1
            if k == K_CONNECT:
                upd = ra is not None
            elif k == K_BIND:
                upd = ra is not None and ret == 0
            else:
                upd = (ra is not None and ret >= 0 and not f[_FI["flags"]] & M.FV_CONNECTED
                       and ra[0] in (2, 10)
                       and (fi is None or f[_FI["type"]] in (M.FD_IPV4, M.FD_IPV6)))
            if not upd:
                fv = self.fd_version(fi) if fi is not None else 0
            else:
                if fi is None:
                    f = _fset(f, type=_fdtype(ra[0]), family=ra[0] & 0xFF)
                fl = f[_FI["flags"]]
                if k == K_BIND:
                    f = _fset(f, sip=ra[2], sport=ra[1], flags=fl | M.FV_SERVER)
                else:
                    fl &= ~M.FV_SERVER
                    f = _fset(f, sip=ra[2], sport=ra[1])
                    la = self.saddr(vs[1]) if k == K_CONNECT else None
                    if la is not None:
                        f = _fset(f, cip=la[2], cport=la[1])
                    if k == K_CONNECT and ret in (0, -EINPROGRESS):
                        fl |= M.FV_CONNECTED
                    f = _fset(f, flags=fl)
                f = self.sock_name_later(f)
                fv, evf = self.fd_replace(p, a0, fi, f)
        elif k == K_ACCEPT:
            fdnum = ret
            if ret >= 0:
                lf = self.fd_lookup(p, a0)
                ra, la = self.saddr(vs[0]), self.saddr(vs[1])
                fam = ra[0] if ra else (la[0] if la else (lf.v[_FI["family"]] if lf else 0))
                typ = lf.v[_FI["type"]] if lf else _fdtype(fam)
                if ra or la:
                    typ = _fdtype(fam)
                l4 = lf.v[_FI["l4proto"]] if lf else _l4(fam, 1, 0)
                f = _fv(type=typ, family=fam & 0xFF, l4proto=l4,
                        flags=M.FV_SERVER | M.FV_CONNECTED, name=EMPTY)
                if ra:
                    f = _fset(f, cip=ra[2], cport=ra[1])
                if la:
                    f = _fset(f, sip=la[2], sport=la[1])
                f = self.sock_name_later(f)
                fv = self.new_fd(p, ret, f, bool(a1 & SOCK_CLOEXEC) and t == _ACCEPT4)
        pv = self.proc_version(p) if p is not None and p.live else 0
        if exiting:
            if tid in self.tids:
                del self.tids[tid]
                if p is not None and p.nthreads:
                    p.nthreads -= 1
            if p is not None and a0 == 1:
                self.proc_remove(p)
        return pv, fv, fdnum, evf

    # -- the batch ----------------------------------------------------------------------
    def process(self, cols: dict):
        n = len(cols["type"])
        self._reset()
        types = np.asarray(cols["type"])
        kinds = KIND[types] if n else np.zeros(0, np.uint8)
        pv = np.zeros(n, np.uint32)
        fv = np.zeros(n, np.uint32)
        fdnum = np.full(n, M.NO_FD, np.int64)
        evf = np.zeros(n, np.uint8)
        tid, pid, ret, ts = (np.asarray(cols[c]).tolist() for c in ("tid", "pid", "ret", "ts"))
        tl = types.tolist()
        A = [np.asarray(cols[f"a{i}"]).tolist() for i in range(6)]
        V = [np.asarray(cols[f"v{i}"]).tolist() for i in range(6)]
        stateful = np.flatnonzero(kinds != K_NONE).tolist() + [n]
        pvl = pv  # row-by-row writes go through these
        start = 0
        for s in stateful:
            if s - start >= _SHORT_RUN:
                self._plain_run(start, s, cols, pv)
            else:
                for i in range(start, s):
                    p = self._resolve(tid[i], pid[i])
                    pvl[i] = self.proc_version(p) if p is not None and p.live else 0
            if s < n:
                r = self.step(int(kinds[s]), tl[s], tid[s], pid[s], ret[s], ts[s],
                              [A[j][s] for j in range(6)], [V[j][s] for j in range(6)])
                pv[s], fv[s], fdnum[s], evf[s] = r
            start = s + 1
        self.st["events"] += n
        return pv, fv, fdnum, evf, *self._tables()

    def _plain_run(self, lo: int, hi: int, cols: dict, pv: np.ndarray) -> None:
        """Rows lo..hi-1 change no state: one resolve per distinct (tid, pid) in order of first
        appearance (as the C loop meets them), one version per distinct process."""
        tid = np.asarray(cols["tid"][lo:hi], np.int64)
        pid = np.asarray(cols["pid"][lo:hi], np.int64)
        pairs = np.stack([tid, pid], axis=1)
        uniq, first, inv = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        vids = np.zeros(len(uniq), np.uint32)
        for j in np.argsort(first, kind="stable").tolist():
            p = self._resolve(int(uniq[j, 0]), int(uniq[j, 1]))
            vids[j] = self.proc_version(p) if p is not None and p.live else 0
        pv[lo:hi] = vids[inv.reshape(-1)]

    def sock_name_later(self, f: tuple) -> tuple:
        if f[_FI["type"]] in (M.FD_IPV4, M.FD_IPV6):
            return _fset(f, name=0)
        return self.sock_name(f)

    def sock_names(self, fvt: np.ndarray) -> None:
        """Make the names of inet socket versions (lazy, as fnet_state_sock_names)."""
        _sock_names(self, fvt)

    def _tables(self):
        pvt = np.array(self.pvt, dtype=PVER_DTYPE)
        fvt = np.array(self.fvt, dtype=FVER_DTYPE)
        return pvt, fvt

    def dump(self):
        self._reset()
        pvs = np.array([self.proc_version(p) for p in self.procs.values()], np.uint32)
        fds = [(p.v["pid"], fd, self.fd_version(fi), int(ce))
               for p in self.procs.values() for fd, (fi, ce) in sorted(p.fds.items())]
        thr = [(t, p) for t, p in self.tids.items()]
        pvt, fvt = self._tables()
        self.sock_names(fvt)
        return (pvs, np.array(fds, np.int64).reshape(-1, 4), np.array(thr, np.int64).reshape(-1, 2),
                pvt, fvt)

    def stats(self) -> dict:
        out = dict(self.st)
        out.update(procs=len(self.procs), threads=len(self.tids), fds=self.nfds,
                   pversions=len(self.pvt) - 1, fversions=len(self.fvt) - 1)
        return out


def _sock_names(tables: PureTables, fvt: np.ndarray) -> None:
    need = np.flatnonzero((fvt["name"] == 0) & np.isin(fvt["type"], (M.FD_IPV4, M.FD_IPV6)))
    for i in need.tolist():
        row = tuple(fvt[i].tolist())
        fvt[i] = tables.sock_name(row)


def sock_names_in(strings, fvt: np.ndarray) -> None:
    """The inet socket names of an fd version table whose ids belong to ``strings``, made in
    that table: for the lazy columns of a batch read after the state engine rolled over to a
    newer table (both cores; the rules are the same as in C, tests/state/test_twins.py)."""
    shim = PureTables.__new__(PureTables)
    shim.strings = strings
    _sock_names(shim, fvt)
