"""The C core of the state engine: a thin cffi wrapper over ext/state.c.

Interface (shared with collector/state/pure.py's PureCore):

    core = CCore(strings, max_procs=, max_threads=, max_fds=, max_fd_num=)
    core.seed_proc(d) / seed_thread(tid, pid) / seed_fd(pid, fd, fver_row, cloexec) / seed_done()
    pv, fv, fdnum, evflags, pvt, fvt = core.process(cols)     # one batch, in order
    pvs, fds, threads, pvt, fvt = core.dump()                  # for snapshots
    core.stats() -> dict

``strings`` is the pipeline's StringTable; ``core.rehome(new)`` moves the state onto a new
one (string table rollover, see collector/state/engine.py).  When it is the C-backed table
(collector.native.CStringTable) the engine interns straight into it (the table's mutex makes
that safe while the reader thread decodes into it); a plain Python table is mirrored (new
strings copied across before and after each call, same ids on both sides) -- tests and
tools only: the mirror assumes nobody else interns into that table during a call.
"""

from __future__ import annotations

import numpy as np

from .model import FVER_DTYPE, PVER_DTYPE

from .. import native as _nat

_native = _nat._native

_IN_COLS = ("ts", "tid", "pid", "type", "ret")
_DT = {"ts": np.uint64, "tid": np.int64, "pid": np.int64, "type": np.uint16, "ret": np.int64}
_CT = {"ts": "uint64_t", "tid": "int64_t", "pid": "int64_t", "type": "uint16_t", "ret": "int64_t"}


class CCore:
    def __init__(self, strings, *, max_procs: int = 65536, max_threads: int = 262144,
                 max_fds: int = 1 << 20, max_fd_num: int = 65535) -> None:
        _nat.require_c()
        self.ffi, self.lib = _native.ffi, _native.lib
        ffi, lib = self.ffi, self.lib
        self.strings = strings
        t = getattr(strings, "_t", None)
        if t is not None and isinstance(t, ffi.CData):
            self._tab = t
            self._mirror = False
        else:
            own = lib.fnet_strtab_new()
            if own == ffi.NULL:
                raise MemoryError("fnet_strtab_new")
            self._own = ffi.gc(own, lib.fnet_strtab_free)
            self._tab = own
            self._mirror = True
        opts = ffi.new("struct fnet_state_opts *")
        opts.size = ffi.sizeof("struct fnet_state_opts")
        opts.max_procs, opts.max_threads = max_procs, max_threads
        opts.max_fds, opts.max_fd_num = max_fds, max_fd_num
        self._sync_in()
        s = lib.fnet_state_new(self._tab, opts)
        if s == ffi.NULL:
            raise MemoryError("fnet_state_new")
        self._s = ffi.gc(s, lib.fnet_state_free)
        self._sync_out()
        self._in = ffi.new("struct fnet_state_in *")
        self._out = ffi.new("struct fnet_state_out *")
        self._keep: list = []

    # -- string mirroring (only for a pure-Python StringTable) ----------------------------
    def _sync_in(self) -> None:
        if not self._mirror:
            return
        lib, tab, py = self.lib, self._tab, self.strings
        for i in range(lib.fnet_strtab_count(tab), len(py)):
            b = py.get(i)
            got = lib.fnet_strtab_intern(tab, b, len(b)) if b is not None else i
            if got != i:
                raise RuntimeError(f"state: string table mirror out of step ({got} != {i})")

    def _sync_out(self) -> None:
        if not self._mirror:
            return
        lib, ffi, tab, py = self.lib, self.ffi, self._tab, self.strings
        ln = ffi.new("uint32_t *")
        for i in range(len(py), lib.fnet_strtab_count(tab)):
            p = lib.fnet_strtab_get(tab, i, ln)
            if py.intern(ffi.buffer(p, ln[0])[:] if ln[0] else b"") != i:
                raise RuntimeError("state: string table mirror out of step")

    # -- string table rollover -----------------------------------------------------------
    def rehome(self, strings) -> int:
        """Move the state onto another (new) string table: ext/state_rehome.c re-interns every
        string id the state holds into it, clears the per-id memo caches and invalidates the
        versions.  Returns the number of strings carried over."""
        if strings is self.strings:
            return 0
        ffi, lib = self.ffi, self.lib
        saved = (self.strings, self._tab, self._mirror, getattr(self, "_own", None))
        t = getattr(strings, "_t", None)
        if t is not None and isinstance(t, ffi.CData):
            self._tab, self._mirror = t, False
        else:
            own = lib.fnet_strtab_new()
            if own == ffi.NULL:
                raise MemoryError("fnet_strtab_new")
            self._own = ffi.gc(own, lib.fnet_strtab_free)
            self._tab, self._mirror = own, True
        self.strings = strings
        self._sync_in()
        n = lib.fnet_state_rehome(self._s, self._tab)
        if n < 0:       # the state is unchanged: stay on the old table
            self.strings, self._tab, self._mirror, self._own = saved
            raise MemoryError("state engine: out of memory re-homing the string table")
        self._sync_out()
        return n

    # -- seeding ----------------------------------------------------------------------------
    def seed_proc(self, d: dict) -> bool:
        sp = self.ffi.new("struct fnet_seed_proc *")
        for k, v in d.items():
            setattr(sp, k, v)
        return self.lib.fnet_state_seed_proc(self._s, sp) == 0

    def seed_thread(self, tid: int, pid: int) -> bool:
        return self.lib.fnet_state_seed_thread(self._s, tid, pid) == 0

    def seed_fd(self, pid: int, fd: int, row: dict, cloexec: bool) -> bool:
        f = self.ffi.new("struct fnet_fver *")
        for k, v in row.items():
            setattr(f, k, v)
        return self.lib.fnet_state_seed_fd(self._s, pid, fd, f, int(cloexec)) == 0

    def seed_done(self) -> None:
        self.lib.fnet_state_seed_done(self._s)

    def intern(self, b: bytes) -> int:
        """Intern through the table the core uses (keeps a mirror in step)."""
        self._sync_in()
        i = self.lib.fnet_strtab_intern(self._tab, b, len(b))
        self._sync_out()
        return i

    # -- batches ----------------------------------------------------------------------------
    def _ptr(self, arr: np.ndarray, ctype: str):
        self._keep.append(arr)
        return self.ffi.cast(ctype + " *", arr.ctypes.data)

    def process(self, cols: dict):
        ffi, lib = self.ffi, self.lib
        n = len(cols["type"])
        self._keep = []
        self._sync_in()
        c = self._in
        c.n = n
        for k in _IN_COLS:
            setattr(c, k, self._ptr(np.ascontiguousarray(cols[k], _DT[k]), _CT[k]))
        for i in range(6):
            c.a[i] = self._ptr(np.ascontiguousarray(cols[f"a{i}"], np.int64), "int64_t")
            c.v[i] = self._ptr(np.ascontiguousarray(cols[f"v{i}"], np.uint32), "uint32_t")
        pv = np.empty(n, np.uint32)
        fv = np.empty(n, np.uint32)
        fdnum = np.empty(n, np.int64)
        evf = np.empty(n, np.uint8)
        o = self._out
        o.pv, o.fv = self._ptr(pv, "uint32_t"), self._ptr(fv, "uint32_t")
        o.fdnum, o.evflags = self._ptr(fdnum, "int64_t"), self._ptr(evf, "uint8_t")
        if lib.fnet_state_process(self._s, c, o) < 0:
            raise MemoryError("state engine: out of memory")
        self._keep = []
        self._sync_out()
        return pv, fv, fdnum, evf, *self._tables()

    def sock_names(self, fvt: np.ndarray) -> None:
        """Make the names of inet socket versions (made lazily, see ext/state_events.c)."""
        if len(fvt):
            self.lib.fnet_state_sock_names(
                self._s, self.ffi.cast("struct fnet_fver *", fvt.ctypes.data), len(fvt))
            self._sync_out()

    def _tables(self):
        ffi, lib = self.ffi, self.lib
        cnt = ffi.new("uint32_t *")
        # copied as bytes, then viewed: numpy copies structured arrays field by field
        p = lib.fnet_state_pvers(self._s, cnt)
        pvt = np.frombuffer(ffi.buffer(p, cnt[0] * PVER_DTYPE.itemsize), np.uint8).copy() \
            .view(PVER_DTYPE)
        p = lib.fnet_state_fvers(self._s, cnt)
        fvt = np.frombuffer(ffi.buffer(p, cnt[0] * FVER_DTYPE.itemsize), np.uint8).copy() \
            .view(FVER_DTYPE)
        return pvt, fvt

    def dump(self):
        ffi, lib = self.ffi, self.lib
        st = self.stats()
        pvs = np.empty(max(1, st["procs"]), np.uint32)
        n = lib.fnet_state_dump(self._s, ffi.cast("uint32_t *", pvs.ctypes.data), len(pvs))
        nf = lib.fnet_state_nfds(self._s) * 4 + 16
        while True:
            fds = np.empty((nf, 4), np.int64)
            m = lib.fnet_state_dump_fds(self._s, ffi.cast("int64_t *", fds.ctypes.data), nf)
            if m < nf:
                break
            nf *= 4
        thr = np.empty((max(1, st["threads"]), 2), np.int64)
        k = lib.fnet_state_dump_threads(self._s, ffi.cast("int64_t *", thr.ctypes.data), len(thr))
        pvt, fvt = self._tables()
        self.sock_names(fvt)
        return (pvs[:n], fds[:m], thr[:k], pvt, fvt)

    def stats(self) -> dict:
        s = self.ffi.new("struct fnet_state_stats *")
        self.lib.fnet_state_get_stats(self._s, s)
        return {k: getattr(s, k) for k, _ in self.ffi.typeof("struct fnet_state_stats").fields}
