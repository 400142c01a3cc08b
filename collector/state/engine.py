"""StateEngine: seeds the process/fd state, enriches batches with state columns, snapshots.

    eng = StateEngine(strings, snapshot=src.snapshot)     # snapshot schema: collector.sources
    batch = eng.enrich(batch, columns={"proc_name", "fd_name", ...})   # or None: defaults
    eng.snapshot() -> dict        # same schema, so a capture taken now replays the same names
    eng.stats() -> dict           # table sizes, caps hit, unknown processes/fds ...

Backend: ext/state.c through collector/state/core_c.py when the C extension is in use
(collector.native.BACKEND == "c"), else the pure twin collector/state/pure_events.py; both
produce the same columns (tests/state/test_twins.py).  Batches must be enriched in event
order, each exactly once.

String table rollover.  A live source switches to a fresh string table when its table is over
its cap (collector.decode_py.Rollover).  When ``enrich`` is handed a batch whose
``batch.strings`` is not the table the engine is on, the engine re-homes first: the core
re-interns every string id it holds into the new table (``core.rehome``), its per-id caches
are dropped and ``self.strings`` follows.  Batches enriched before keep working: their lazy
columns intern into (and name sockets in) their own table (_Follow).  Counted in stats():
``string_rehomes``, ``rehome_carried`` and ``rehome_ms`` of the last one.

Users and groups (user.name, group.name, user.loginname) come from the snapshot's "users" and
"groups" maps, and with ``host_users=True`` (live runs) also from /etc/passwd and /etc/group,
re-read when the files change (checked at most every ``users_check_s`` seconds, before a
batch is enriched).
"""

from __future__ import annotations

import os
import time

import numpy as np

from .. import native as _nat
from ..batch import EventBatch
from . import columns as C
from . import model as M
from .procscan import read_groups, read_users


def _make_core(strings, backend: str | None, **caps):
    backend = backend or _nat.BACKEND
    if backend == "c":
        from .core_c import CCore
        return CCore(strings, **caps)
    from .pure_events import PureCore
    return PureCore(strings, **caps)


class _Follow:
    """Interning and socket naming for the lazy columns of one batch: through the core while
    the core is still on the batch's table, else straight into the batch's (older) table."""

    __slots__ = ("core", "strings")

    def __init__(self, core, strings) -> None:
        self.core, self.strings = core, strings

    def intern(self, b: bytes) -> int:
        if self.core.strings is self.strings:
            return self.core.intern(b)
        return self.strings.intern(b)

    def sock_names(self, fvt) -> None:
        if self.core.strings is self.strings:
            self.core.sock_names(fvt)
        else:
            from .pure_events import sock_names_in
            sock_names_in(self.strings, fvt)


class StateEngine:
    def __init__(self, strings, snapshot: dict | None = None, *, max_procs: int = 65536,
                 max_threads: int = 262144, max_fds: int = 1 << 20, max_fd_num: int = 65535,
                 host_users: bool = False, backend: str | None = None,
                 lazy: bool = True, etc: str = "/etc", users_check_s: float = 1.0) -> None:
        self.strings = strings
        self.lazy = lazy
        self.core = _make_core(strings, backend, max_procs=max_procs, max_threads=max_threads,
                               max_fds=max_fds, max_fd_num=max_fd_num)
        self.backend = "c" if type(self.core).__name__ == "CCore" else "pure"
        self.users: dict[int, str] = {}
        self.groups: dict[int, str] = {}
        self._host_users = host_users
        self._etc = etc
        self._users_check_s = users_check_s
        self._pw_check = -1e18
        self._pw_mtime: tuple = ()
        self.meta: dict = {}
        self.batches = 0
        self.rehomes = 0
        self.rehome_carried = 0
        self.rehome_ms = 0.0
        if snapshot:
            self.seed(snapshot)
        if host_users:
            self._refresh_users(force=True)

    # -- seeding ---------------------------------------------------------------------------
    def _id(self, s) -> int:
        if s is None:
            return 0
        if isinstance(s, str):
            s = s.encode("utf-8", "surrogateescape")
        return self.core.intern(bytes(s))

    def seed(self, snap: dict) -> None:
        """Load a snapshot (collector.sources schema): processes, threads, fds, users."""
        self.users.update({int(k): v for k, v in (snap.get("users") or {}).items()})
        self.groups.update({int(k): v for k, v in (snap.get("groups") or {}).items()})
        self.meta = {k: snap[k] for k in ("hostname", "kernel", "boot_ns") if k in snap}
        threads = snap.get("threads") or []
        seen: set[int] = set()
        for t in sorted(threads, key=lambda t: (t.get("pid", 0), t.get("tid") != t.get("pid"))):
            pid = int(t["pid"])
            if pid in seen:
                continue
            seen.add(pid)
            self.core.seed_proc(self._seed_record(t))
        for t in threads:
            self.core.seed_thread(int(t.get("tid", t["pid"])), int(t["pid"]))
        done: set[int] = set()
        for t in threads:
            pid = int(t["pid"])
            if pid in done or not t.get("fds"):
                continue
            done.add(pid)
            for f in t["fds"]:
                self.core.seed_fd(pid, int(f["fd"]), self._fd_record(f), bool(f.get("cloexec")))
        self.core.seed_done()

    def _seed_record(self, t: dict) -> dict:
        known = "comm" in t or "exe" in t
        flags = (M.PV_KNOWN if known else 0) | (M.PV_PPID if "ppid" in t else 0) | \
            (M.PV_SID if "sid" in t else 0) | (M.PV_VPGID if "vpgid" in t else 0) | \
            (M.PV_CAPEFF if "cap_eff" in t else 0) | \
            (M.PV_CAPS if "cap_prm" in t else 0)
        args = t.get("args") or []
        lu = t.get("loginuid", -1)
        lu = -1 if lu is None or int(lu) in (-1, 0xFFFFFFFF) else int(lu)
        return {
            "pid": int(t["pid"]), "ppid": int(t.get("ppid", 0)), "sid": int(t.get("sid", 0)),
            "vpgid": int(t.get("vpgid", 0)), "loginuid": lu,
            "start_ts": int(t.get("start_ts", 0)), "cap_eff": int(t.get("cap_eff", 0)),
            "cap_prm": int(t.get("cap_prm", 0)), "cap_inh": int(t.get("cap_inh", 0)),
            "comm": self._id(t.get("comm")), "exe": self._id(t.get("exe")),
            "exepath": self._id(t.get("exepath")), "args": self._id(" ".join(args)),
            "cwd": self._id(t.get("cwd")), "cgroup": self._id(t.get("cgroup")),
            "uid": int(t.get("uid", 0)), "gid": int(t.get("gid", 0)),
            "euid": int(t.get("euid", t.get("uid", 0))), "egid": int(t.get("egid", t.get("gid", 0))),
            "tty": int(t.get("tty", 0)), "flags": flags,
        }

    def _fd_record(self, f: dict) -> dict:
        typ = M.FD_TYPE_CODE.get(f.get("type", "unknown"), M.FD_OTHER)
        row = {"type": typ, "name": self._id(f.get("name", "")), "oflags": int(f.get("flags", 0))}
        row["nameraw"] = row["name"]
        if typ in (M.FD_FILE, M.FD_DIRECTORY):
            name = f.get("name", "")
            if typ == M.FD_DIRECTORY:
                row["directory"] = row["name"]
            elif "/" in name:
                k = name.rfind("/") + 1
                row["filename"] = self._id(name[k:])
                row["directory"] = self._id(name[:1] if k == 1 else name[:k - 1])
            else:
                row["filename"] = row["name"]
        if typ in (M.FD_IPV4, M.FD_IPV6):
            row["family"] = 2 if typ == M.FD_IPV4 else 10
            row["l4proto"] = M.L4_NAMES.index(f["l4proto"]) if f.get("l4proto") in M.L4_NAMES else 0
            # snapshot tuples are source -> destination (as in .scap): sip/sport = client,
            # dip/dport = server; a listening socket has only sip/sport
            if f.get("dip"):
                row["sip"], row["sport"] = self._id(f["dip"]), int(f.get("dport", 0))
                if f.get("sip"):
                    row["cip"], row["cport"] = self._id(f["sip"]), int(f.get("sport", 0))
                row["flags"] = M.FV_CONNECTED | (M.FV_SERVER if f.get("server") else 0)
            elif f.get("sip"):
                row["sip"], row["sport"] = self._id(f["sip"]), int(f.get("sport", 0))
                row["flags"] = M.FV_SERVER
        elif typ == M.FD_UNIX:
            row["family"] = 1
        return row

    # -- users -----------------------------------------------------------------------------
    def _refresh_users(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._pw_check < self._users_check_s:
            return
        self._pw_check = now
        try:
            mt = tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in (
                os.stat(os.path.join(self._etc, "passwd")),
                os.stat(os.path.join(self._etc, "group"))))
        except OSError:
            return
        if mt != self._pw_mtime:
            self._pw_mtime = mt
            self.users.update(read_users(self._etc))
            self.groups.update(read_groups(self._etc))

    # -- batches ---------------------------------------------------------------------------
    def enrich(self, batch: EventBatch, columns=None) -> EventBatch:
        """The batch with state columns added (all defaults, or only the state columns named
        in ``columns``; other names are ignored).  With ``lazy`` (default) the columns are
        gathered on first access (collector.state.columns.LazyColumns); the state itself is
        always advanced here, in order."""
        if self._host_users:
            self._refresh_users()
        if batch.strings is not self.strings and batch.strings is not None:
            self.rehome(batch.strings)
        pv, fv, fdnum, evf, pvt, fvt = self.core.process(batch.cols)
        self.batches += 1
        if columns is None:
            names = C.DEFAULT_COLUMNS
        else:
            names = [c for c in columns if C.is_state_column(c)]
        fol = _Follow(self.core, self.strings)
        ctx = C.Ctx(pv, fv, fdnum, evf, pvt, fvt, fol.intern, self.users, self.groups,
                    fol.sock_names)
        if not self.lazy:
            cols = dict(batch.cols)
            cols.update(C.compute(ctx, names))
            return EventBatch(cols, batch.strings, batch.boot_ns, batch.source)
        out = EventBatch(dict(batch.cols), batch.strings, batch.boot_ns, batch.source)
        out.cols = C.LazyColumns(out.cols, ctx, names)
        return out

    def rehome(self, strings) -> None:
        """Follow a string table rollover: move the state onto ``strings`` (see the module
        doc).  Records what it carried on the table (collector.batch.rollover_due)."""
        t0 = time.perf_counter()
        n = self.core.rehome(strings)
        self.strings = strings
        self.rehomes += 1
        self.rehome_carried = n
        self.rehome_ms = (time.perf_counter() - t0) * 1e3
        if hasattr(strings, "nbytes"):
            strings.carried = (len(strings), strings.nbytes())

    def stats(self) -> dict:
        st = self.core.stats()
        st["batches"] = self.batches
        st["backend"] = self.backend
        st["string_rehomes"] = self.rehomes
        st["rehome_carried"] = self.rehome_carried
        st["rehome_ms"] = round(self.rehome_ms, 3)
        return st

    # -- snapshot -------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The current state in the collector.sources snapshot schema."""
        pvs, fds, thr, pvt, fvt = self.core.dump()
        S = self.strings.get

        def s(i):
            b = S(int(i)) if i else None
            return None if b is None else b.decode("utf-8", "surrogateescape")
        by_pid: dict[int, dict] = {}
        for vid in pvs.tolist():
            r = pvt[vid]
            fl = int(r["flags"])
            d = {"tid": int(r["pid"]), "pid": int(r["pid"])}
            if fl & M.PV_PPID:
                d["ppid"] = int(r["ppid"])
            if fl & M.PV_KNOWN:
                args = s(r["args"]) or ""
                cwd = s(r["cwd"])
                d.update(comm=s(r["name"]), exe=s(r["exe"]), exepath=s(r["exepath"]),
                         args=args.split(" ") if args else [],
                         cwd=cwd[:-1] if cwd and len(cwd) > 1 and cwd.endswith("/") else cwd,
                         uid=int(r["uid"]), gid=int(r["gid"]), euid=int(r["euid"]),
                         egid=int(r["egid"]), loginuid=int(r["loginuid"]), tty=int(r["tty"]))
                cid = s(r["container_id"])
                if cid and cid != "host":
                    d["cgroup"] = "/falconet-snapshot/" + cid + "0" * 52
            elif r["name"]:
                d["comm"] = s(r["name"])
            if fl & M.PV_SID:
                d["sid"] = int(r["sid"])
            if fl & M.PV_VPGID:
                d["vpgid"] = int(r["vpgid"])
            if r["start_ts"]:
                d["start_ts"] = int(r["start_ts"])
            if fl & M.PV_CAPEFF:
                d["cap_eff"] = int(r["cap_eff"])
            if fl & M.PV_CAPS:
                d["cap_prm"], d["cap_inh"] = int(r["cap_prm"]), int(r["cap_inh"])
            d["fds"] = []
            by_pid[d["pid"]] = d
        for pid, fd, vid, ce in fds.tolist():
            f = fvt[vid]
            t = int(f["type"])
            e = {"fd": fd, "type": M.FD_TYPES[t][0] or "unknown", "name": s(f["name"]) or "",
                 "flags": int(f["oflags"])}
            if ce:
                e["cloexec"] = True
            if t in (M.FD_IPV4, M.FD_IPV6):
                e["l4proto"] = M.L4_NAMES[int(f["l4proto"])]
                fl = int(f["flags"])
                if fl & M.FV_SERVER and not fl & M.FV_CONNECTED:
                    if f["sip"]:
                        e["sip"], e["sport"] = s(f["sip"]), int(f["sport"])
                else:
                    if f["cip"]:
                        e["sip"], e["sport"] = s(f["cip"]), int(f["cport"])
                    if f["sip"]:
                        e["dip"], e["dport"] = s(f["sip"]), int(f["sport"])
                    if fl & M.FV_SERVER:
                        e["server"] = True
            if pid in by_pid:
                by_pid[pid]["fds"].append(e)
        threads = list(by_pid.values())
        for tid, pid in thr.tolist():
            if tid != pid and pid in by_pid:
                t = {k: v for k, v in by_pid[pid].items() if k != "fds"}
                t["tid"] = tid
                threads.append(t)
        snap = dict(self.meta)
        snap["users"] = dict(self.users)
        snap["groups"] = dict(self.groups)
        snap["threads"] = threads
        return snap
