"""EventBatch and StringTable: the only currency between sources, state, engine and outputs.

An :class:`EventBatch` is a set of equally long numpy columns, one row per event, in event
order.  Strings never appear in columns: they are integer ids into a :class:`StringTable`
shared by every batch of a pipeline (``batch.strings``; a live source rolls it over to a fresh
table when it is full), so a string predicate is computed once per distinct string.

Base columns (written by the decoder, from the record header of kmod/include/falconet_abi.h)

    column  dtype    meaning
    num     uint64   event number, 1-based, running over the whole source (Falco's evt.num)
    ts      uint64   nanoseconds since boot (live) / since the epoch (captures: see `boot_ns`)
    cpu     uint16   CPU that produced the event
    tid     int64    thread id
    pid     int64    process id (thread group id)
    type    uint16   event type number (collector.abi.BY_NUM; Falco's evt.type by name)
    flags   uint16   FNET_RF_* (fault reading user memory, truncated string, compat syscall)
    ret     int64    return value (Falco's evt.res / evt.rawres, fd, child pid ...)
    a0..a5  int64    numeric arguments; meaning per type from the ABI event table
    v0..v5  uint32   string ids of the variable parts; 0 = absent, see StringTable

State columns (added by the state engine, `collector.fields` maps Falco fields to them) live
in the same ``cols`` dict under their own names.  Sources set ``boot_ns`` so that
``ts + boot_ns`` is wall-clock nanoseconds since the epoch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

NA = 0          # string id of an absent value (Falco's <NA>)
EMPTY = 1       # string id of b""
_INTERN_LOCK = threading.Lock()

#: Default caps of a live source's string table (whichever is reached first); 0 = never roll.
DEFAULT_STRINGS_MAX_IDS = 1 << 22
DEFAULT_STRINGS_MAX_BYTES = 512 << 20

BASE_COLUMNS: dict[str, np.dtype] = {
    "num": np.dtype(np.uint64), "ts": np.dtype(np.uint64), "cpu": np.dtype(np.uint16),
    "tid": np.dtype(np.int64), "pid": np.dtype(np.int64), "type": np.dtype(np.uint16),
    "flags": np.dtype(np.uint16), "ret": np.dtype(np.int64),
    **{f"a{i}": np.dtype(np.int64) for i in range(6)},
    **{f"v{i}": np.dtype(np.uint32) for i in range(6)},
}


class StringTable:
    """Interns byte strings to dense uint32 ids, first seen first numbered.

    Id 0 is reserved for "absent" and id 1 for the empty string.  ``text(i)`` decodes as UTF-8
    (invalid bytes escaped as ``\\xNN``, as Falco escapes them) and caches the result.

    A table never evicts: ids are stable for the table's lifetime.  A live source therefore
    rolls over to a fresh table once this one holds more than its cap (:func:`rollover_due`;
    setting ``pipeline.string_table_max_ids`` / ``_max_bytes``): batches decoded before keep
    the old table, and everything that holds ids across batches (state engine, rule lookup
    tables) follows ``batch.strings`` when it changes.
    """

    __slots__ = ("_bytes", "_ids", "_nb", "_text", "carried", "memo", "__weakref__")

    def __init__(self) -> None:
        #: (ids, bytes) the state engine carried over into this table when it re-homed
        #: (a table is not rolled over before it has doubled that: see rollover_due).
        self.carried = (0, 0)
        self._nb = 0            # bytes of the interned strings (counted as they are added)
        #: Lookup tables derived from this table's ids (errno names, event type names...),
        #: keyed by their builder; they live and die with the table, so a new table can never
        #: be handed ids that belong to another.
        self.memo: dict = {}
        self._ids: dict[bytes, int] = {b"": EMPTY}
        self._bytes: list[bytes | None] = [None, b""]
        self._text: list[str | None] = [None, ""]

    def __len__(self) -> int:
        return len(self._bytes)

    def nbytes(self) -> int:
        """Total bytes of the interned strings."""
        return self._nb

    def intern(self, value: bytes | str) -> int:
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        i = self._ids.get(value)
        if i is None:
            # The reader thread (decoding) and the main thread (state, rules) intern into the
            # same table: check-then-add must be atomic or one string gets two ids.
            with _INTERN_LOCK:
                i = self._ids.get(value)
                if i is None:
                    i = len(self._bytes)
                    self._bytes.append(value)
                    self._text.append(None)
                    self._nb += len(value)
                    self._ids[value] = i
        return i

    def intern_many(self, values: Iterable[bytes]) -> np.ndarray:
        return np.fromiter((self.intern(v) for v in values), dtype=np.uint32)

    def lookup(self, value: bytes | str) -> int | None:
        """The id of a string if it was ever interned, else None (never adds)."""
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        return self._ids.get(value)

    def get(self, i: int) -> bytes | None:
        return self._bytes[i]

    def derived(self, key, make):
        """``make(self)`` computed once per table and kept in ``memo`` under ``key``."""
        v = self.memo.get(key)
        if v is None:
            v = self.memo[key] = make(self)
        return v

    def text(self, i: int) -> str | None:
        t = self._text[i]
        if t is None and i != NA:
            t = _decode(self._bytes[i])  # type: ignore[arg-type]
            self._text[i] = t
        return t

    def texts(self) -> list[str | None]:
        """All strings decoded (index = id); used to evaluate predicates per distinct string."""
        for i in range(len(self._text)):
            if self._text[i] is None and i != NA:
                self._text[i] = _decode(self._bytes[i])  # type: ignore[arg-type]
        return self._text


def rollover_due(strings: StringTable, max_ids: int, max_bytes: int) -> bool:
    """Whether a decoder should switch to a fresh table before its next batch: the table holds
    more than ``max_ids`` ids or ``max_bytes`` bytes of strings (0 = no such cap), and at least
    twice what the state engine carried over into it (so a live set near the cap costs one
    re-home per doubling, not one per batch)."""
    cids, cbytes = getattr(strings, "carried", (0, 0))
    if max_ids and len(strings) > max(max_ids, 2 * cids):
        return True
    return bool(max_bytes) and strings.nbytes() > max(max_bytes, 2 * cbytes)


def _decode(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("utf-8", "backslashreplace")


class EventBatch:
    """Equally long columns, one row per event.  ``cols`` maps column name -> 1-D array."""

    __slots__ = ("boot_ns", "cols", "n", "source", "strings")

    def __init__(self, cols: dict[str, np.ndarray], strings: StringTable, boot_ns: int = 0,
                 source: str = "syscall"):
        lengths = {len(c) for c in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"EventBatch columns differ in length: {sorted(lengths)}")
        self.cols = cols
        self.strings = strings
        self.n = lengths.pop() if lengths else 0
        self.boot_ns = boot_ns
        self.source = source

    @classmethod
    def empty(cls, strings: StringTable, n: int = 0) -> EventBatch:
        return cls({k: np.zeros(n, dt) for k, dt in BASE_COLUMNS.items()}, strings)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def __contains__(self, name: str) -> bool:
        return name in self.cols

    def take(self, index: np.ndarray) -> EventBatch:
        """Rows selected by an integer index array or a boolean mask, as a new batch."""
        return EventBatch({k: v[index] for k, v in self.cols.items()}, self.strings,
                          self.boot_ns, self.source)

    def copy(self) -> EventBatch:
        """A batch that owns its columns (decoders reuse their buffers between batches)."""
        return EventBatch({k: v.copy() for k, v in self.cols.items()}, self.strings,
                          self.boot_ns, self.source)

    @staticmethod
    def concat(batches: list[EventBatch]) -> EventBatch:
        if not batches:
            raise ValueError("concat of no batches")
        names = batches[0].cols.keys()
        return EventBatch({k: np.concatenate([b.cols[k] for b in batches]) for k in names},
                          batches[0].strings, batches[0].boot_ns, batches[0].source)

    def wall_ns(self) -> np.ndarray:
        """Timestamps as nanoseconds since the epoch."""
        return self.cols["ts"] + np.uint64(self.boot_ns)

    def row(self, i: int) -> dict:
        """One event as a dict of Python values, strings decoded (tests and debugging only)."""
        out = {}
        for k, v in self.cols.items():
            x = v[i].item()
            if k.startswith("v") and k[1:].isdigit():
                x = self.strings.get(x)
            out[k] = x
        return out
