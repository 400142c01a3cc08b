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

from dataclasses import dataclass, field
from typing import Callable

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

_TYPE_NAME_IDS: dict[int, np.ndarray] = {}


def _evt_type(batch: EventBatch, arg: str | None) -> Values:
    """evt.type as string ids of Falco's syscall names (interned once per table)."""
    key = id(batch.strings)
    lut = _TYPE_NAME_IDS.get(key)
    if lut is None or len(lut) != abi.NUM_EVENT_TYPES:
        lut = np.zeros(abi.NUM_EVENT_TYPES, dtype=np.uint32)
        for e in abi.EVENTS:
            lut[e.num] = batch.strings.intern(e.falco)
        _TYPE_NAME_IDS[key] = lut
    return Values("str", lut[batch.cols["type"]])


def _evt_time(batch: EventBatch, arg: str | None) -> Values:
    return Values("int", batch.wall_ns().astype(np.int64))


def _evt_arg(batch: EventBatch, arg: str | None) -> Values:
    """evt.arg.NAME / evt.arg[N]: the slot depends on each row's event type."""
    types = batch.cols["type"]
    n = batch.n
    is_str = np.zeros(n, dtype=bool)
    ints = np.zeros(n, dtype=np.int64)
    strs = np.zeros(n, dtype=np.uint32)
    valid = np.zeros(n, dtype=bool)
    for t in np.unique(types):
        et = abi.BY_NUM.get(int(t))
        if et is None:
            continue
        slot: tuple[str, int] | None
        if arg is not None and arg.isdigit():
            named = [("a", i) for i, a in enumerate(et.args) if a] + \
                    [("v", i) for i, v in enumerate(et.vars) if v]
            k = int(arg)
            slot = named[k] if k < len(named) else None
        else:
            slot = et.slot(arg or "")
        if slot is None:
            continue
        rows = types == t
        if slot[0] == "a":
            ints[rows] = batch.cols[f"a{slot[1]}"][rows]
            valid |= rows
        else:
            ids = batch.cols[f"v{slot[1]}"][rows]
            strs[rows] = ids
            is_str |= rows
            valid[rows] = ids != NA
    if is_str.any() and not (valid & ~is_str).any():
        return Values("str", strs, valid)
    if is_str.any():
        # Mixed: render numbers as strings so one comparison serves all rows.
        for i in np.flatnonzero(valid & ~is_str):
            strs[i] = batch.strings.intern(str(int(ints[i])))
        return Values("str", strs, valid)
    return Values("int", ints, valid)


def _res(batch: EventBatch, arg: str | None) -> Values:
    """evt.res: SUCCESS or the errno name, as Falco renders it."""
    from .errnos import errno_ids
    return Values("str", errno_ids(batch.strings)(batch.cols["ret"]))


for _fd in (
    FieldDef("evt.num", "uint64", "event number", column("num", "int"), columns=("num",)),
    FieldDef("evt.time", "abstime", "event timestamp (ns since the epoch)", _evt_time, columns=("ts",)),
    FieldDef("evt.rawtime", "abstime", "event timestamp (ns since the epoch)", _evt_time, columns=("ts",)),
    FieldDef("evt.type", "charbuf", "the system call name (e.g. openat)", _evt_type, columns=("type",)),
    FieldDef("evt.cpu", "int16", "CPU that produced the event", column("cpu", "int"), columns=("cpu",)),
    FieldDef("evt.rawres", "int64", "the return value, as a number", column("ret", "int"), columns=("ret",)),
    FieldDef("evt.res", "charbuf", "SUCCESS, or the error name (ENOENT...)", _res, columns=("ret",)),
    FieldDef("evt.arg", "charbuf", "an argument by name (evt.arg.flags) or position (evt.arg[0])",
             _evt_arg, arg="key", columns=tuple(f"a{i}" for i in range(6)) + tuple(f"v{i}" for i in range(6))),
    FieldDef("thread.tid", "int64", "thread id", column("tid", "int"), columns=("tid",)),
    FieldDef("proc.pid", "int64", "process id", column("pid", "int"), columns=("pid",)),
):
    register(_fd)


# Fields computed by the state engine register themselves in collector/state/fields.py.
try:
    from .state import fields as _state_fields  # noqa: E402,F401
except ModuleNotFoundError as _e:  # the state engine is optional while it is being built
    if not (_e.name or "").startswith("collector.state"):
        raise
