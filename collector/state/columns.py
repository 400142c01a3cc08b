"""State columns: gathers from the version tables of one batch (identical for both cores).

Every column is computed per *version* (the tables hold one row per distinct process / fd
state seen in the batch, usually a few hundred) and then gathered to the events with one
``table[pv]`` -- no Python per event.  Integer columns use NA_INT (int64 min) for "no
value"; string columns are ids in the batch's StringTable, 0 = absent.  The Falco field
each column serves is listed in collector/state/fields.py (the one mapping table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import model as M
from .model import NA_INT

MAX_DEPTH = 64          # ancestors followed at most (cycles / runaway chains)
ALL_WIDTH = 16          # width of the proc_a*_all columns (fixed, so batches concatenate)

# proc_a<kind>_<N>: the N-th ancestor's value (0 = the process itself);
# proc_a<kind>_all: 2-D (events x ALL_WIDTH), column k-1 = the k-th ancestor (the bare
# any-ancestor form and proc.aname[N] up to 16; deeper N: ask for proc_a<kind>_<N>)
_ANC = re.compile(r"^proc_a(pid|name|exe|exepath|cmdline)_(\d+|all)$")


@dataclass
class Ctx:
    """One batch's state output."""
    pv: np.ndarray
    fv: np.ndarray
    fdnum: np.ndarray
    evflags: np.ndarray
    pvt: np.ndarray
    fvt: np.ndarray
    intern: object                      # bytes -> id
    users: dict
    groups: dict
    sock_names: object = None           # fills lazily made inet socket names of fvt
    anc: dict = field(default_factory=dict)   # depth -> ancestor version ids per version
    named: bool = False


def _na_unless(vals: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.where(ok, vals.astype(np.int64), NA_INT)


def _name_lut(c: Ctx, ids: np.ndarray, ok: np.ndarray, names: dict) -> np.ndarray:
    """Per-version string ids of names[id] (users/groups), 0 where unknown."""
    out = np.zeros(len(ids), np.uint32)
    for u in np.unique(ids[ok]).tolist():
        nm = names.get(int(u))
        if nm is not None:
            out[ok & (ids == u)] = c.intern(nm.encode("utf-8", "surrogateescape"))
    return out


def _caps(c: Ctx, masks: np.ndarray, ok: np.ndarray) -> np.ndarray:
    out = np.zeros(len(masks), np.uint32)
    for m in np.unique(masks[ok]).tolist():
        out[ok & (masks == m)] = c.intern(M.cap_text(int(m)).encode())
    return out


def _ancestor(c: Ctx, depth: int) -> np.ndarray:
    """Version id of the depth-th ancestor of every version (0 = unknown)."""
    a = c.anc.get(depth)
    if a is None:
        if depth == 0:
            a = np.arange(len(c.pvt), dtype=np.uint32)
        else:
            a = c.pvt["parent"][_ancestor(c, depth - 1)]
        c.anc[depth] = a
    return a


def _per_version(c: Ctx, name: str) -> np.ndarray:
    """The value of a process column for each version row."""
    t = c.pvt
    fl = t["flags"]
    known = (fl & M.PV_KNOWN) != 0
    if name in ("proc_name", "proc_exe", "proc_exepath", "proc_args", "proc_cmdline",
                "proc_cwd", "proc_sname", "proc_vpgid_name", "proc_vpgid_exe", "container_id"):
        return t[name[5:] if name.startswith("proc_") else name]
    if name == "proc_ppid":
        return _na_unless(t["ppid"], (fl & M.PV_PPID) != 0)
    if name == "proc_sid":
        return _na_unless(t["sid"], (fl & M.PV_SID) != 0)
    if name == "proc_vpgid":
        return _na_unless(t["vpgid"], (fl & M.PV_VPGID) != 0)
    if name == "proc_vpid":
        host = c.intern(b"host")
        return _na_unless(t["pid"], (t["container_id"] == host) & (t["pid"] != 0))
    if name == "proc_tty":
        return _na_unless(t["tty"], known)
    if name == "proc_start_ts":
        return _na_unless(t["start_ts"].view(np.int64), t["start_ts"] != 0)
    if name == "proc_pflags":
        return fl
    if name == "proc_ppid_start_ts":
        par = t["parent"]
        st = t["start_ts"][par]
        return _na_unless(st.view(np.int64), (par != 0) & (st != 0))
    if name == "user_uid":
        return _na_unless(t["euid"], known)
    if name == "group_gid":
        return _na_unless(t["egid"], known)
    if name == "user_loginuid":
        return _na_unless(t["loginuid"], known)
    if name == "user_name":
        return _name_lut(c, t["euid"], known, c.users)
    if name == "group_name":
        return _name_lut(c, t["egid"], known, c.groups)
    if name == "user_loginname":
        return _name_lut(c, t["loginuid"], known & (t["loginuid"] >= 0), c.users)
    if name == "thread_cap_effective":
        return _caps(c, t["cap_eff"], (fl & M.PV_CAPEFF) != 0)
    if name == "thread_cap_permitted":
        return _caps(c, t["cap_prm"], (fl & M.PV_CAPS) != 0)
    if name == "thread_cap_inheritable":
        return _caps(c, t["cap_inh"], (fl & M.PV_CAPS) != 0)
    m = _ANC.match(name)
    if m:
        kind, d = m.group(1), m.group(2)
        col = {"pid": "pid", "name": "name", "exe": "exe", "exepath": "exepath",
               "cmdline": "cmdline"}[kind]
        if d == "all":
            anc = np.stack([_ancestor(c, k) for k in range(1, ALL_WIDTH + 1)], axis=1)
        else:
            anc = _ancestor(c, min(int(d), MAX_DEPTH))
        vals = t[col][anc]
        if kind == "pid":
            vals = np.where(anc != 0, vals, NA_INT)
        return vals
    raise KeyError(name)


PROC_COLUMNS = (
    "proc_name", "proc_exe", "proc_exepath", "proc_args", "proc_cmdline", "proc_cwd",
    "proc_sname", "proc_vpgid_name", "proc_vpgid_exe", "container_id", "proc_ppid",
    "proc_sid", "proc_vpgid", "proc_vpid", "proc_tty", "proc_start_ts", "proc_pflags",
    "proc_ppid_start_ts",
    "user_uid", "group_gid", "user_loginuid", "user_name", "group_name", "user_loginname",
    "thread_cap_effective", "thread_cap_permitted", "thread_cap_inheritable",
)
FD_COLUMNS = (
    "fd_num", "fd_name", "fd_nameraw", "fd_directory", "fd_filename", "fd_type", "fd_l4proto",
    "fd_vflags", "fd_oflags", "fd_cip", "fd_sip", "fd_cport", "fd_sport", "fd_lip", "fd_rip",
    "fd_lport", "fd_rport", "fd_name_changed",
)
DEFAULT_COLUMNS = PROC_COLUMNS + FD_COLUMNS + (
    "proc_aname_1", "proc_aexe_1", "proc_aexepath_1", "proc_acmdline_1", "proc_apid_1",
    "proc_aname_all", "proc_apid_all", "proc_aexe_all", "proc_aexepath_all", "proc_acmdline_all")


_NUMERIC = {"proc_pflags", "fd_oflags", "fd_type", "fd_l4proto", "fd_vflags", "fd_name_changed"}


def is_string_column(name: str) -> bool:
    """Whether a state column holds string ids (else numbers)."""
    if name in _NUMERIC or name.startswith("proc_apid_"):
        return False
    return is_state_column(name) and not name in (
        "fd_num", "fd_cport", "fd_sport", "fd_lport", "fd_rport", "proc_ppid", "proc_sid",
        "proc_vpgid", "proc_vpid", "proc_tty", "proc_start_ts", "proc_ppid_start_ts",
        "user_uid", "group_gid",
        "user_loginuid")


def is_state_column(name: str) -> bool:
    return name in PROC_COLUMNS or name in FD_COLUMNS or _ANC.match(name) is not None


def _fd_per_version(c: Ctx, name: str) -> np.ndarray:
    """An fd column per fd version (gathered with fv)."""
    f = c.fvt
    if name == "fd_name" and not c.named:
        if c.sock_names is not None:
            c.sock_names(f)
        c.named = True
    if name == "fd_vflags":
        return f["flags"]
    if name in ("fd_name", "fd_nameraw", "fd_directory", "fd_filename", "fd_type",
                "fd_l4proto", "fd_oflags", "fd_cip", "fd_sip"):
        return f[name[3:]]
    if name in ("fd_cport", "fd_sport"):
        ip = f[name[3] + "ip"]
        return np.where(ip != 0, f[name[3:]].astype(np.int64), NA_INT)
    server = (f["flags"] & M.FV_SERVER) != 0
    if name in ("fd_lip", "fd_rip"):
        local = name == "fd_lip"
        return np.where(server == local, f["sip"], f["cip"])
    if name in ("fd_lport", "fd_rport"):
        local = name == "fd_lport"
        ip = np.where(server == local, f["sip"], f["cip"])
        port = np.where(server == local, f["sport"], f["cport"]).astype(np.int64)
        return np.where(ip != 0, port, NA_INT)
    raise KeyError(name)


def _gather_c(idx: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    from .. import native as _nat
    ffi, lib = _nat._native.ffi, _nat._native.lib
    cols = ffi.new("struct fnet_gather_col[]", len(pairs))
    for k, (src, dst) in enumerate(pairs):
        cols[k].src = ffi.cast("uint8_t *", src.ctypes.data)
        cols[k].dst = ffi.cast("uint8_t *", dst.ctypes.data)
        cols[k].width = src.itemsize * int(np.prod(src.shape[1:], dtype=np.int64))
    lib.fnet_gather(len(idx), ffi.cast("uint32_t *", idx.ctypes.data), len(pairs), cols)


_C_GATHER_MIN = 2048    # below this many rows numpy's take beats setting up the C call


def _gather(idx: np.ndarray, tables: dict[str, np.ndarray], out: dict) -> None:
    """out[name] = tables[name][idx] for every name (one C pass, or numpy take)."""
    from .. import native as _nat
    pairs = []
    for name, t in tables.items():
        t = np.ascontiguousarray(t)
        dst = np.empty((len(idx),) + t.shape[1:], t.dtype)
        out[name] = dst
        pairs.append((t, dst))
    if not pairs:
        return
    if _nat.BACKEND == "c" and len(idx) >= _C_GATHER_MIN:
        _gather_c(np.ascontiguousarray(idx, np.uint32), pairs)
    else:
        ix = idx.astype(np.intp)
        for t, dst in pairs:
            np.take(t, ix, axis=0, out=dst)


def _fd_names_of_rows(c: Ctx, rows: np.ndarray) -> np.ndarray:
    """fd_name of ``rows``, making only the inet socket names those rows' fd versions still
    lack (the same names as making them all: sock_names skips named versions, and the
    version table keeps what it made for later reads)."""
    f = c.fvt
    fv = c.fv[rows]
    if c.sock_names is not None and len(fv):
        seen = np.zeros(len(f), bool)
        seen[fv] = True
        vers = np.flatnonzero(seen & (f["name"] == 0))
        if len(vers):
            sub = f[vers]
            c.sock_names(sub)
            f["name"][vers] = sub["name"]
    return f["name"][fv]


_PER_EVENT = ("fd_num", "fd_name_changed")     # computed from per-event arrays, no table


def _table(c: Ctx, name: str, tables: dict | None) -> np.ndarray:
    """The per-version table of a column (kept in ``tables`` when given)."""
    t = tables.get(name) if tables is not None else None
    if t is None:
        t = _fd_per_version(c, name) if name.startswith("fd_") else _per_version(c, name)
        if tables is not None:
            t = tables[name] = np.ascontiguousarray(t)
    return t


def compute(c: Ctx, names, rows: np.ndarray | None = None,
            tables: dict | None = None) -> dict[str, np.ndarray]:
    """The columns ``names`` for every event, or for the events ``rows`` only (the same
    values as computing every event and taking ``rows``)."""
    out: dict[str, np.ndarray] = {}
    ptab: dict[str, np.ndarray] = {}
    ftab: dict[str, np.ndarray] = {}
    for name in names:
        if name == "fd_num":
            fd = c.fdnum if rows is None else c.fdnum[rows]
            out[name] = np.where(fd == M.NO_FD, NA_INT, fd)
        elif name == "fd_name_changed":
            ev = c.evflags if rows is None else c.evflags[rows]
            out[name] = (ev & 1).astype(bool)
        elif name.startswith("fd_"):
            ftab[name] = _table(c, name, tables)
        else:
            ptab[name] = _table(c, name, tables)
    if ptab:
        _gather(c.pv if rows is None else c.pv[rows], ptab, out)
    if ftab:
        _gather(c.fv if rows is None else c.fv[rows], ftab, out)
    return {n: out[n] for n in names}


class LazyColumns(dict):
    """A batch's column dict whose state columns are computed on first access.

    The requested state columns are listed (``in``, ``keys()``, ``len()`` see them) but only
    gathered when read, so the rules engine pays for the columns it touches (outputs of rules
    that did not fire never are).  Iterating (``items()``, ``values()``, ``copy()`` ...)
    computes everything first, so ``EventBatch.take/copy/concat`` behave as with eager
    columns.  The batch's version tables are kept until the dict goes away.
    """

    __slots__ = ("_ctx", "_pending", "_tables")

    def __init__(self, base: dict, ctx: Ctx, names) -> None:
        super().__init__(base)
        self._ctx = ctx
        self._pending = [n for n in dict.fromkeys(names) if n not in base]
        self._tables: dict = {}          # per-version tables of the columns taken by rows

    def take_rows(self, key, rows: np.ndarray) -> np.ndarray:
        """``self[key][rows]``, but a column not computed yet is gathered for ``rows`` only
        (rules read a group's rows, outputs the matching rows: the column is never
        computed for the whole batch on their account)."""
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)[rows]
        if key in self._pending:
            if key == "fd_name" and not self._ctx.named:
                return _fd_names_of_rows(self._ctx, rows)
            return compute(self._ctx, [key], rows, self._tables)[key]
        raise KeyError(key)

    def col_ndim(self, key) -> int:
        """``self[key].ndim`` without computing the column."""
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key).ndim
        if key in self._pending:
            if key == "fd_name":            # without making the socket names
                return self._ctx.fvt["name"].ndim
            return 1 if key in _PER_EVENT else _table(self._ctx, key, self._tables).ndim
        raise KeyError(key)

    def __missing__(self, key):
        if key in self._pending:
            self.materialize([key])
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def materialize(self, keys=None) -> None:
        want = self._pending if keys is None else [k for k in keys if k in self._pending]
        if want:
            self.update(compute(self._ctx, want, None, self._tables))
            self._pending = [k for k in self._pending if k not in want]

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self._pending

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._pending)

    def __iter__(self):
        self.materialize()
        return dict.__iter__(self)

    def keys(self):
        self.materialize()
        return dict.keys(self)

    def values(self):
        self.materialize()
        return dict.values(self)

    def items(self):
        self.materialize()
        return dict.items(self)

    def copy(self) -> dict:
        self.materialize()
        return dict(dict.items(self))

    def __reduce__(self):
        return (dict, (self.copy(),))
