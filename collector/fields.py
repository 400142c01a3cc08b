"""The one table of Falco fields Falconet supports, and how each is read from an EventBatch.

Every field the rules engine and the output formatter can use is registered here with its
Falco type, description and extractor.  The rules engine never reads batch columns directly:
it calls :func:`extract`.  Parts register their fields (the base event fields are below; the
state engine registers ``proc.*``, ``fd.*``, ``user.*``, ``container.*`` ... from its module
``collector/state/fields.py``, imported at the end of this file).

Extracted values (class :class:`Values`):
    kind   "str"  -> ``data`` is uint32 string ids into ``batch.strings`` (0 = absent)
           "int"  -> ``data`` is int64
           "bool" -> ``data`` is bool
    valid  bool mask of rows where the field has a value (Falco's ``exists``; ``<NA>`` in
           outputs where False), or None when every row has one.

Falco types are kept (``ftype``) so outputs render and JSON-type values as Falco does
(``uint64`` as JSON numbers, ``charbuf`` as strings, ``ipaddr`` as dotted strings ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import abi
from .batch import NA, EventBatch


@dataclass(slots=True)
class Values:
    kind: str
    data: np.ndarray
    valid: np.ndarray | None = None

    def valid_mask(self) -> np.ndarray:
        if self.valid is not None:
            return self.valid
        if self.kind == "str":
            return self.data != NA
        return np.ones(len(self.data), dtype=bool)


Extractor = Callable[[EventBatch, "str | None"], Values]


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One Falco field.

    ``arg``: "none" (no ``[..]``), "index" (``proc.aname[2]``: optional integer), "key"
    (``evt.arg.flags`` / ``evt.arg[0]``: required name or index).
    ``columns``: batch columns the extractor reads, so a source/state engine can compute only
    what the loaded rules need.  ``events``: if set, the event type numbers on which the
    field can have a value (informational).
    """

    name: str
    ftype: str
    desc: str
    extract: Extractor
    arg: str = "none"
    columns: tuple[str, ...] = ()
    events: tuple[int, ...] = field(default=())


REGISTRY: dict[str, FieldDef] = {}


def register(fd: FieldDef) -> FieldDef:
    if fd.name in REGISTRY:
        raise ValueError(f"field {fd.name} registered twice")
    REGISTRY[fd.name] = fd
    return fd


def lookup(name: str) -> FieldDef | None:
    return REGISTRY.get(name)


def extract(batch: EventBatch, name: str, arg: str | None = None) -> Values:
    return REGISTRY[name].extract(batch, arg)


def column(name: str, kind: str) -> Extractor:
    """An extractor that returns a batch column as is."""
    def ex(batch: EventBatch, arg: str | None) -> Values:
        data = batch.cols[name]
        if kind == "int" and data.dtype != np.int64:
            data = data.astype(np.int64)
        return Values(kind, data)
    return ex


# --- base event fields (from the record header) ---------------------------------------------



def _evt_type(batch: EventBatch, arg: str | None) -> Values:
    """evt.type as string ids of Falco's syscall names (interned once per table)."""
    lut = batch.strings.derived(_type_name_lut, _type_name_lut)
    return Values("str", lut[batch.cols["type"]])


def _type_name_lut(strings) -> np.ndarray:
    lut = np.zeros(abi.NUM_EVENT_TYPES, dtype=np.uint32)
    for e in abi.EVENTS:
        lut[e.num] = strings.intern(e.falco)
    return lut


def _evt_time(batch: EventBatch, arg: str | None) -> Values:
    return Values("int", batch.wall_ns().astype(np.int64))


def _arg_slot(et: abi.EventType, arg: str) -> tuple[str, int] | None:
    """('a', i) / ('v', i) / ('r', 0) for the return value, or None."""
    if arg.isdigit():
        named = [("a", i) for i, a in enumerate(et.args) if a] + \
                [("v", i) for i, v in enumerate(et.vars) if v]
        k = int(arg)
        return named[k] if k < len(named) else None
    slot = et.slot(arg)
    if slot is None and arg in _RET_ALIASES:
        return ("r", 0)
    return slot


def _evt_arg(batch: EventBatch, arg: str | None, raw: bool = False) -> Values:
    """evt.arg.NAME / evt.arg[N]: the slot depends on each row's event type.

    Falco's evt.arg is a string: numbers are rendered as libsinsp renders them (flags and
    modes as their symbolic names, e.g. ``O_WRONLY|O_CREAT``; socket domains ``AF_INET``;
    ptrace requests ``PTRACE_ATTACH``; errors ``ENOENT``), once per distinct value.
    ``raw=True`` (evt.rawarg) gives numbers as numbers.
    """
    types = batch.cols["type"]
    n = batch.n
    strs = np.zeros(n, dtype=np.uint32)
    ints = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    any_str = False
    for t in np.unique(types):
        et = abi.BY_NUM.get(int(t))
        if et is None:
            continue
        slot = _arg_slot(et, arg or "")
        if slot is None:
            continue
        rows = types == t
        if slot[0] == "v":
            ids = batch.cols[f"v{slot[1]}"][rows]
            strs[rows] = ids
            valid[rows] = ids != NA
            any_str = True
            continue
        col = batch.cols["ret"] if slot[0] == "r" else batch.cols[f"a{slot[1]}"]
        nums = col[rows]
        valid |= rows
        if raw:
            ints[rows] = nums
            continue
        name = "res" if slot[0] == "r" else et.args[slot[1]]
        render = _arg_renderer(et.falco, name)
        uniq, inv = np.unique(nums, return_inverse=True)
        ids = np.fromiter((batch.strings.intern(render(int(u))) for u in uniq),
                          dtype=np.uint32, count=len(uniq))
        strs[rows] = ids[inv.reshape(-1)]
        any_str = True
    if raw and not any_str:
        return Values("int", ints, valid)
    if raw:
        # Mixed string and numeric slots under one name: render the numbers as decimals.
        num_rows = valid & (strs == NA)
        if num_rows.any():
            uniq, inv = np.unique(ints[num_rows], return_inverse=True)
            ids = np.fromiter((batch.strings.intern(str(int(u))) for u in uniq), dtype=np.uint32,
                              count=len(uniq))
            strs[num_rows] = ids[inv.reshape(-1)]
    return Values("str", strs, valid)




def _res_lut(strings) -> np.ndarray:
    import errno as _e

    from .errnos import MAX_ERRNO
    lut = np.zeros(MAX_ERRNO + 1, dtype=np.uint32)
    lut[0] = strings.intern("SUCCESS")
    for code in range(1, MAX_ERRNO + 1):
        lut[code] = strings.intern(_e.errorcode.get(code, f"E{code}"))
    return lut


def _res(batch: EventBatch, arg: str | None) -> Values:
    """evt.res: SUCCESS or the errno name, as Falco renders it."""
    lut = batch.strings.derived(_res_lut, _res_lut)
    ret = batch.cols["ret"]
    out = lut[np.clip(-ret, 0, len(lut) - 1)]
    out[ret >= 0] = lut[0]
    return Values("str", out)


for _fd in (
    FieldDef("evt.num", "uint64", "event number", column("num", "int"), columns=("num",)),
    FieldDef("evt.time", "abstime", "event timestamp (ns since the epoch)", _evt_time, columns=("ts",)),
    FieldDef("evt.rawtime", "abstime", "event timestamp (ns since the epoch)", _evt_time, columns=("ts",)),
    FieldDef("evt.type", "charbuf", "the system call name (e.g. openat)", _evt_type, columns=("type",)),
    FieldDef("evt.cpu", "int16", "CPU that produced the event", column("cpu", "int"), columns=("cpu",)),
    FieldDef("evt.rawres", "int64", "the return value, as a number", column("ret", "int"), columns=("ret",)),
    FieldDef("evt.res", "charbuf", "SUCCESS, or the error name (ENOENT...)", _res, columns=("ret",)),
    FieldDef("evt.arg", "charbuf", "an argument by name (evt.arg.flags) or position (evt.arg[0])",
             _evt_arg, arg="key",
             columns=("type", "ret") + tuple(f"a{i}" for i in range(6)) + tuple(f"v{i}" for i in range(6))),
    FieldDef("thread.tid", "int64", "thread id", column("tid", "int"), columns=("tid",)),
    FieldDef("proc.pid", "int64", "process id", column("pid", "int"), columns=("pid",)),
):
    register(_fd)


# --- more evt.* fields ---------------------------------------------------------------------

import errno as _errno
import os as _os
import signal as _signal
import socket as _socket

_RET_ALIASES = ("res", "fd", "res_or_fd", "pid", "ret")

# Symbolic renderings, in the order libsinsp's flag tables list them.
_OPEN_FLAGS = (("O_LARGEFILE", 0o100000), ("O_DIRECTORY", 0o200000), ("O_DIRECT", 0o40000),
               ("O_TRUNC", 0o1000), ("O_NONBLOCK", 0o4000), ("O_EXCL", 0o200),
               ("O_DSYNC", 0o10000), ("O_APPEND", 0o2000), ("O_CREAT", 0o100),
               ("O_NOFOLLOW", 0o400000), ("O_NOATIME", 0o1000000), ("O_NOCTTY", 0o400),
               ("O_PATH", 0o10000000))
_MODE_BITS = (("S_IXOTH", 0o1), ("S_IWOTH", 0o2), ("S_IROTH", 0o4), ("S_IXGRP", 0o10),
              ("S_IWGRP", 0o20), ("S_IRGRP", 0o40), ("S_IXUSR", 0o100), ("S_IWUSR", 0o200),
              ("S_IRUSR", 0o400), ("S_ISVTX", 0o1000), ("S_ISGID", 0o2000), ("S_ISUID", 0o4000))
_CLONE_FLAGS = (("CLONE_FILES", 0x400), ("CLONE_FS", 0x200), ("CLONE_IO", 0x80000000),
                ("CLONE_NEWIPC", 0x08000000), ("CLONE_NEWNET", 0x40000000),
                ("CLONE_NEWNS", 0x00020000), ("CLONE_NEWPID", 0x20000000),
                ("CLONE_NEWUTS", 0x04000000), ("CLONE_NEWUSER", 0x10000000),
                ("CLONE_NEWCGROUP", 0x02000000), ("CLONE_PARENT", 0x8000),
                ("CLONE_PARENT_SETTID", 0x00100000), ("CLONE_PTRACE", 0x2000),
                ("CLONE_SIGHAND", 0x800), ("CLONE_SYSVSEM", 0x40000), ("CLONE_THREAD", 0x10000),
                ("CLONE_UNTRACED", 0x00800000), ("CLONE_VM", 0x100), ("CLONE_VFORK", 0x4000),
                ("CLONE_SETTLS", 0x80000), ("CLONE_CHILD_CLEARTID", 0x00200000),
                ("CLONE_CHILD_SETTID", 0x01000000), ("CLONE_DETACHED", 0x00400000))
_PROT = (("PROT_READ", 1), ("PROT_WRITE", 2), ("PROT_EXEC", 4), ("PROT_SEM", 8),
         ("PROT_GROWSDOWN", 0x01000000), ("PROT_GROWSUP", 0x02000000))
_AT_FLAGS = (("AT_SYMLINK_FOLLOW", 0x400), ("AT_EMPTY_PATH", 0x1000), ("AT_REMOVEDIR", 0x200),
             ("AT_SYMLINK_NOFOLLOW", 0x100))
_PTRACE = {0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR",
           4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT",
           8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP", 12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS",
           14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH", 17: "PTRACE_DETACH",
           24: "PTRACE_SYSCALL", 0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG",
           0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET",
           0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT",
           0x4208: "PTRACE_LISTEN"}
_AF = {getattr(_socket, n): n for n in dir(_socket) if n.startswith("AF_") and
       isinstance(getattr(_socket, n), int)}
_AF.update({0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK",
            17: "AF_PACKET"})
_SIG = {int(s): s.name for s in _signal.Signals}


def _flags(table):
    def render(v: int) -> str:
        names = [n for n, bit in table if v & bit == bit]
        return "|".join(names) if names else str(v)
    return render


def _open_flags(v: int) -> str:
    acc = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_RDWR")[v & 3]
    names = [n for n, bit in _OPEN_FLAGS if v & bit == bit]
    names.append(acc)
    if v & 0o2000000:
        names.append("O_CLOEXEC")
    return "|".join(names)


def _errno_or_num(v: int) -> str:
    if v < 0 and -v in _errno.errorcode:
        return _errno.errorcode[-v]
    return str(v)


_ARG_RENDER = {
    ("flags", "open"): _open_flags, ("flags", "openat"): _open_flags,
    ("flags", "openat2"): _open_flags, ("flags", "creat"): _open_flags,
    ("flags", "clone"): _flags(_CLONE_FLAGS), ("flags", "clone3"): _flags(_CLONE_FLAGS),
    ("flags", "unshare"): _flags(_CLONE_FLAGS), ("nstype", "setns"): _flags(_CLONE_FLAGS),
    ("flags", "linkat"): _flags(_AT_FLAGS), ("flags", "unlinkat"): _flags(_AT_FLAGS),
    ("flags", "fchownat"): _flags(_AT_FLAGS), ("prot", "mprotect"): _flags(_PROT),
    ("domain", "socket"): lambda v: _AF.get(v, str(v)),
    ("domain", "socketpair"): lambda v: _AF.get(v, str(v)),
    ("request", "ptrace"): lambda v: _PTRACE.get(v, str(v)),
    ("request", "ioctl"): lambda v: hex(v & 0xFFFFFFFFFFFFFFFF),
    ("sig", "kill"): lambda v: _SIG.get(v, str(v)), ("sig", "tkill"): lambda v: _SIG.get(v, str(v)),
    ("sig", "tgkill"): lambda v: _SIG.get(v, str(v)),
}


def _arg_renderer(evtype: str, name: str):
    r = _ARG_RENDER.get((name, evtype))
    if r is not None:
        return r
    if name == "mode":
        return _flags(_MODE_BITS)
    if name == "res":
        return _errno_or_num
    return str


def _evt_rawarg(batch: EventBatch, arg: str | None) -> Values:
    return _evt_arg(batch, arg, raw=True)


def _evt_dir(batch: EventBatch, arg: str | None) -> Values:
    d = batch.cols.get("dir")
    gt, lt = batch.strings.intern(">"), batch.strings.intern("<")
    if d is None:
        return Values("str", np.full(batch.n, lt, dtype=np.uint32))
    return Values("str", np.where(d == 1, np.uint32(gt), np.uint32(lt)).astype(np.uint32))


_OPEN_TYPES = np.zeros(abi.NUM_EVENT_TYPES, dtype=bool)
for _name in ("open", "openat", "openat2", "creat"):
    if _name in abi.BY_NAME:
        _OPEN_TYPES[abi.BY_NAME[_name].num] = True


def _open_arg(batch: EventBatch, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(is an open-family row, the row's numeric arg `name`) for flags/mode."""
    types = batch.cols["type"]
    is_open = _OPEN_TYPES[types]
    out = np.zeros(batch.n, dtype=np.int64)
    for t in np.unique(types[is_open]):
        et = abi.BY_NUM[int(t)]
        slot = et.slot(name)
        if slot is not None and slot[0] == "a":
            rows = types == t
            out[rows] = batch.cols[f"a{slot[1]}"][rows]
    if "creat" in abi.BY_NAME:   # creat(2) is open(O_CREAT|O_WRONLY|O_TRUNC)
        rows = types == abi.BY_NAME["creat"].num
        if name == "flags":
            out[rows] |= 0o1101
    return is_open, out


def _is_open(pred: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Extractor:
    # evt.is_open_read/_write/_exec are registered with the state fields
    # (collector/state/fields.py); evt.is_open_create follows the same convention.
    def ex(batch: EventBatch, arg: str | None) -> Values:
        is_open, flags = _open_arg(batch, "flags")
        return Values("bool", is_open & pred(flags, None), is_open)
    return ex


def _evt_buffer(batch: EventBatch, arg: str | None) -> Values:
    """I/O buffers are not captured by Falconet's kernel module: always absent."""
    return Values("str", np.zeros(batch.n, dtype=np.uint32))


HOSTNAME = _os.environ.get("FALCO_HOSTNAME") or _socket.gethostname()


def _evt_hostname(batch: EventBatch, arg: str | None) -> Values:
    return Values("str", np.full(batch.n, batch.strings.intern(HOSTNAME), dtype=np.uint32))


def _evt_source(batch: EventBatch, arg: str | None) -> Values:
    return Values("str", np.full(batch.n, batch.strings.intern(batch.source), dtype=np.uint32))


_CATEGORY = {"FILE": "file", "PROC": "process", "NET": "net", "CRED": "user", "SYS": "system"}


def _cat_lut(strings) -> np.ndarray:
    lut = np.zeros(abi.NUM_EVENT_TYPES, dtype=np.uint32)
    for e in abi.EVENTS:
        lut[e.num] = strings.intern(_CATEGORY.get(e.category, "other"))
    return lut


def _evt_category(batch: EventBatch, arg: str | None) -> Values:
    return Values("str", batch.strings.derived(_cat_lut, _cat_lut)[batch.cols["type"]])


def _evt_args(batch: EventBatch, arg: str | None) -> Values:
    """All arguments as ``name=value`` pairs (res first), rendered once per distinct row."""
    types = batch.cols["type"]
    out = np.zeros(batch.n, dtype=np.uint32)
    strings = batch.strings
    for t in np.unique(types):
        et = abi.BY_NUM.get(int(t))
        if et is None:
            continue
        rows = np.flatnonzero(types == t)
        names = [("r", 0, "res")] + [("a", i, a) for i, a in enumerate(et.args) if a] + \
                [("v", i, v) for i, v in enumerate(et.vars) if v]
        cols = [batch.cols["ret"][rows]] + \
               [batch.cols[f"{k}{i}"][rows].astype(np.int64) for k, i, _ in names[1:]]
        mat = np.stack(cols, axis=1)
        uniq, inv = np.unique(mat, axis=0, return_inverse=True)
        ids = np.empty(len(uniq), dtype=np.uint32)
        for j, rowv in enumerate(uniq):
            parts = []
            for (k, _, name), v in zip(names, rowv):
                v = int(v)
                if k == "v":
                    txt = strings.text(v) if v else "<NA>"
                else:
                    txt = _arg_renderer(et.falco, name)(v)
                parts.append(f"{name}={txt}")
            ids[j] = strings.intern(" ".join(parts))
        out[rows] = ids[inv.reshape(-1)]
    return Values("str", out)


def _time_s(batch: EventBatch, arg: str | None) -> Values:
    return Values("int", (batch.wall_ns() // np.uint64(1_000_000_000)).astype(np.int64))


def _failed(batch: EventBatch, arg: str | None) -> Values:
    return Values("bool", batch.cols["ret"] < 0)


def _count(batch: EventBatch, arg: str | None) -> Values:
    return Values("int", np.ones(batch.n, dtype=np.int64))


_ARGCOLS = tuple(f"a{i}" for i in range(6)) + tuple(f"v{i}" for i in range(6))

for _fd in (
    FieldDef("evt.rawarg", "dynamic", "an argument by name or position, numbers unrendered",
             _evt_rawarg, arg="key", columns=("type", "ret") + _ARGCOLS),
    FieldDef("evt.args", "charbuf", "all event arguments as name=value pairs", _evt_args,
             columns=("type", "ret") + _ARGCOLS),
    FieldDef("evt.dir", "charbuf", "'<' for exit events, '>' for enter events (.scap captures)",
             _evt_dir, columns=("dir",)),
    FieldDef("evt.is_open_create", "bool", "an open-family call with O_CREAT",
             _is_open(lambda f, m: (f & 0o100) != 0), columns=("type", "a0", "a1")),
    FieldDef("evt.buffer", "bytebuf", "the I/O buffer (not captured by Falconet: always <NA>)",
             _evt_buffer),
    FieldDef("evt.time.s", "abstime", "event time as HH:MM:SS", _evt_time, columns=("ts",)),
    FieldDef("evt.time.iso8601", "abstime", "event time as ISO-8601 with nanoseconds",
             _evt_time, columns=("ts",)),
    FieldDef("evt.datetime", "abstime", "event time as YYYY-MM-DD HH:MM:SS.nnnnnnnnn",
             _evt_time, columns=("ts",)),
    FieldDef("evt.datetime.s", "abstime", "event time as YYYY-MM-DD HH:MM:SS", _evt_time,
             columns=("ts",)),
    FieldDef("evt.rawtime.s", "uint64", "seconds since the epoch", _time_s, columns=("ts",)),
    FieldDef("evt.hostname", "charbuf", "the host name (FALCO_HOSTNAME or gethostname)",
             _evt_hostname),
    FieldDef("evt.source", "charbuf", "the event source (syscall)", _evt_source),
    FieldDef("evt.category", "charbuf", "event category (file, net, process, user, system)",
             _evt_category, columns=("type",)),
    FieldDef("evt.failed", "bool", "true if the call returned an error", _failed, columns=("ret",)),
    FieldDef("evt.count", "uint32", "1 for every event (for aggregations)", _count),
):
    register(_fd)


# Fields computed by the state engine register themselves in collector/state/fields.py.
# Imported only when that module exists (the state engine is built in parallel); an error
# inside it is not hidden.
import importlib.util as _ilu

try:
    _state_spec = _ilu.find_spec("collector.state.fields")
except ModuleNotFoundError:   # no collector.state package at all
    _state_spec = None
if _state_spec is not None:
    from .state import fields as _state_fields  # noqa: F401

# evt.is_open_read/_write/_exec are registered by the state fields (collector/state/fields.py);
# these fallbacks keep them available when the state engine is not installed.
for _fd in (
    FieldDef("evt.is_open_read", "bool", "an open-family call with read access (O_RDONLY/O_RDWR)",
             _is_open(lambda f, m: (f & 3) != 1), columns=("type", "a0", "a1")),
    FieldDef("evt.is_open_write", "bool", "an open-family call with write access (O_WRONLY/O_RDWR)",
             _is_open(lambda f, m: (f & 3) != 0), columns=("type", "a0", "a1")),
    FieldDef("evt.is_open_exec", "bool", "an open-family call with FMODE_EXEC (0x20) in its flags",
             _is_open(lambda f, m: (f & 0x20) != 0), columns=("type", "a0", "a1")),
):
    if _fd.name not in REGISTRY:
        register(_fd)

