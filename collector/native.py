"""The C extension or its pure-numpy twin, behind one interface.

``BACKEND`` is ``"c"`` when ``collector._native`` (built from ext/ by cffi) is importable and
``FALCONET_PUREPYTHON`` is not set, else ``"pure"``.  Every C entry point has a pure-numpy
implementation with the same behaviour; the test suite runs under both
(``FALCONET_PUREPYTHON=1 pytest``).

Entry points (each part adds its own, documented where it is implemented):

    StringTable()
        The intern table (exactly the interface of collector.batch.StringTable: intern,
        intern_many, lookup, get, text, texts, len).  C backend: wraps ext/intern.c's table,
        which C code (decoder, state engine) shares through ``StringTable.ptr``; it is safe
        to use from several threads (a mutex per table: the reader thread decodes while the
        main thread's state engine and rules intern and read).

    Decoder(strings=None, max_ids=0, max_bytes=0)
        ``.decode(buf, first_num=1) -> (EventBatch, DecodeStats)``: one pass over a buffer of
        ABI records (bytes, bytearray, memoryview or uint8 array).  Rows are numbered
        first_num, first_num + 1, ...  A batch owns its columns for as long as it is
        referenced (``Decoder.batches_owned``): the C decoder reuses only column buffers no
        batch refers to any more, the pure one allocates fresh ones.  Skips and framing
        errors are in DecodeStats (collector.decode_py), the
        contract is in ext/decode.h.  ``strings`` must come from this module's StringTable.
        With a cap (ids / bytes of strings) the decoder switches ``.strings`` to a fresh table
        between batches once the current one is over it (live sources; collector.decode_py
        Rollover); each batch's ``.strings`` is the table its ids belong to.

    decode(buf, strings, first_num=1) -> (EventBatch, DecodeStats)
        Convenience: a fresh decoder, so the batch owns its columns.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from . import batch as _batch
from .batch import BASE_COLUMNS, EMPTY, NA, EventBatch
from .decode_py import BAD_REASONS, DecodeStats, Rollover

_native = None
if not os.environ.get("FALCONET_PUREPYTHON"):
    try:
        from . import _native  # type: ignore[no-redef]
    except ImportError:
        _native = None

BACKEND = "c" if _native is not None else "pure"


def require_c() -> None:
    """For tests/benchmarks that must exercise the C path."""
    if _native is None:
        raise ImportError("the C extension collector._native is not available "
                          "(FALCONET_PUREPYTHON set, or the build failed)")


class CStringTable(_batch.StringTable):
    """collector.batch.StringTable over ext/intern.c (same ids, same methods)."""

    __slots__ = ("_t", "ptr")

    def __init__(self) -> None:
        require_c()
        ffi, lib = _native.ffi, _native.lib
        t = lib.fnet_strtab_new()
        if t == ffi.NULL:
            raise MemoryError("fnet_strtab_new")
        self.ptr = ffi.gc(t, lib.fnet_strtab_free)   # freed when the last reference dies
        self._t = t
        self._text = [None, ""]
        self.memo = {}
        self.carried = (0, 0)

    def __len__(self) -> int:
        return _native.lib.fnet_strtab_count(self._t)

    def nbytes(self) -> int:
        return int(_native.lib.fnet_strtab_nbytes(self._t))

    @staticmethod
    def _b(value) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        return bytes(value)

    def intern(self, value) -> int:
        v = self._b(value)
        i = _native.lib.fnet_strtab_intern(self._t, v, len(v))
        if i == 0:
            raise MemoryError("string table: out of memory")
        return i

    def intern_many(self, values) -> np.ndarray:
        vals = [self._b(v) for v in values]
        n = len(vals)
        out = np.empty(n, np.uint32)
        if n:
            off = np.zeros(n + 1, np.uint64)
            np.cumsum([len(v) for v in vals], out=off[1:])
            blob = b"".join(vals) or b"\0"
            ffi = _native.ffi
            _native.lib.fnet_strtab_intern_many(
                self._t, blob, ffi.cast("uint64_t *", off.ctypes.data), n,
                ffi.cast("uint32_t *", out.ctypes.data))
            if n and not out.all():
                raise MemoryError("string table: out of memory")
        return out

    def lookup(self, value) -> int | None:
        v = self._b(value)
        i = _native.lib.fnet_strtab_lookup(self._t, v, len(v))
        return i or None

    def get(self, i: int) -> bytes | None:
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("string id out of range")
        if i == NA:
            return None
        ffi = _native.ffi
        ln = ffi.new("uint32_t *")
        p = _native.lib.fnet_strtab_get(self._t, i, ln)
        return ffi.buffer(p, ln[0])[:] if ln[0] else b""

    def _grow_cache(self) -> None:
        n = len(self)
        if len(self._text) < n:
            self._text.extend([None] * (n - len(self._text)))

    def text(self, i: int) -> str | None:
        i = int(i)
        if i >= len(self._text):
            self._grow_cache()
        t = self._text[i]
        if t is None and i != NA:
            t = _batch._decode(self.get(i))  # type: ignore[arg-type]
            self._text[i] = t
        return t

    def texts(self) -> list[str | None]:
        self._grow_cache()
        for i, t in enumerate(self._text):
            if t is None and i != NA:
                self._text[i] = _batch._decode(self.get(i))  # type: ignore[arg-type]
        return self._text


_NAMES = list(BASE_COLUMNS)


class _ColumnSet:
    """One set of base columns for ``cap`` rows, carved from one buffer, and the C struct
    pointing at them.  The set is free when nothing but itself refers to the buffer: every
    numpy view of a column (a batch's ``arr[:n]``, a view of that view) holds a reference to
    the buffer, so its reference count says whether any batch still uses the set."""

    __slots__ = ("arrays", "base", "c", "cap", "idle_refs")

    def __init__(self, cap: int) -> None:
        ffi = _native.ffi
        sizes = [cap * np.dtype(dt).itemsize for dt in BASE_COLUMNS.values()]
        self.base = np.empty(sum(-(-s // 64) * 64 for s in sizes), np.uint8)
        self.arrays: dict[str, np.ndarray] = {}
        self.c = c = ffi.new("struct fnet_columns *")
        off = 0
        for (k, dt), size in zip(BASE_COLUMNS.items(), sizes):
            arr = self.base[off:off + size].view(dt)
            off += -(-size // 64) * 64
            self.arrays[k] = arr
            ptr = ffi.cast(f"{_CTYPE[arr.dtype.str]} *", arr.ctypes.data)
            if k[0] in "av" and k[1:].isdigit():
                getattr(c, k[0])[int(k[1:])] = ptr
            else:
                setattr(c, k, ptr)
        c.cap = self.cap = cap
        self.idle_refs = self._refs()

    def _refs(self) -> int:
        return sys.getrefcount(self.base)

    def free(self) -> bool:
        return self._refs() <= self.idle_refs


class CDecoder(Rollover):
    """ABI records -> EventBatch through ext/decode.c.  Batches own their columns (see the
    module doc): each decode writes into a column set no batch refers to any more, from a
    pool of POOL sets, or into a new one when all are in use (a consumer holding batches).
    So a pipeline needs no copy of each batch, and a set's pages are reused warm.  With a cap
    (max_ids / max_bytes) it rolls over to a fresh table between batches
    (decode_py.Rollover)."""

    POOL = 4
    batches_owned = True

    def __init__(self, strings: CStringTable | None = None, max_ids: int = 0,
                 max_bytes: int = 0) -> None:
        require_c()
        self.set_strings_cap(max_ids, max_bytes)
        if strings is None:
            strings = CStringTable()
        if not isinstance(strings, CStringTable):
            raise TypeError("the C decoder needs a collector.native.StringTable "
                            f"(C-backed), got {type(strings).__name__}")
        self.strings = strings
        self._pool: list[_ColumnSet] = []
        self._cstats = _native.ffi.new("struct fnet_decode_stats *")

    def _columns(self, rows: int) -> _ColumnSet:
        """A column set for at least ``rows`` rows that no batch uses."""
        small = None
        for s in self._pool:
            if s.free():
                if s.cap >= rows:
                    return s
                small = s
        s = _ColumnSet(max(rows, 1024))
        if small is not None:               # a free set too small: replaced
            self._pool[self._pool.index(small)] = s
        elif len(self._pool) < self.POOL:
            self._pool.append(s)
        return s                            # else unpooled: freed with its last batch

    def _stats(self) -> DecodeStats:
        s = self._cstats
        return DecodeStats(
            records=s.records, bytes=s.bytes, unknown_type=s.unknown_type,
            unknown_type_bytes=s.unknown_type_bytes, bad_length=s.bad_length,
            bad_length_bytes=s.bad_length_bytes,
            bad_offset=None if s.bad_offset < 0 else s.bad_offset,
            bad_reason=BAD_REASONS[s.bad_reason], consumed=s.consumed)

    def decode_ring(self, reader, first_num: int = 1, max_bytes: int = 8 << 20):
        """Take the next merged records out of a collector.state.ring.RingReader and decode
        them where they lie (ext/ring_read.c, no intermediate copy): (batch, stats, info),
        or (None, stats, info) once the source is gone and drained.  info["records"] counts
        every record taken (rows + skipped), so 0 rows with records > 0 is progress."""
        self._roll()
        cs = self._columns(max_bytes // _native.lib.FNET_HDR_SIZE + 1)
        n = _native.lib.fnet_reader_decode(reader._r, max_bytes, first_num, self.strings._t,
                                           cs.c, self._cstats, reader._info)
        info = reader.info_dict()
        stats = self._stats()
        if n == _native.lib.FNET_RING_GONE:
            return None, stats, info
        return EventBatch({k: arr[:n] for k, arr in cs.arrays.items()}, self.strings), \
            stats, info

    def decode(self, buf, first_num: int = 1) -> tuple[EventBatch, DecodeStats]:
        ffi = _native.ffi
        if isinstance(buf, np.ndarray):
            buf = buf.reshape(-1).view(np.uint8)
        mv = memoryview(buf)
        size = mv.nbytes
        self._roll()
        cs = self._columns(size // _native.lib.FNET_HDR_SIZE + 1)
        src = ffi.from_buffer("uint8_t[]", mv) if size else ffi.NULL
        n = _native.lib.fnet_decode(src, size, first_num, self.strings._t, cs.c, self._cstats)
        stats = self._stats()
        cols = {k: arr[:n] for k, arr in cs.arrays.items()}
        return EventBatch(cols, self.strings), stats


_CTYPE = {"<u8": "uint64_t", "<i8": "int64_t", "<u4": "uint32_t", "<u2": "uint16_t"}

if BACKEND == "c":
    StringTable = CStringTable
    Decoder = CDecoder
else:
    from .batch import StringTable
    from .decode_py import Decoder


def decode(buf, strings, first_num: int = 1) -> tuple[EventBatch, DecodeStats]:
    """Decode one buffer with a fresh decoder (the batch owns its columns)."""
    return Decoder(strings).decode(buf, first_num)


__all__ = [
    "BACKEND",
    "EMPTY",
    "NA",
    "CDecoder",
    "CStringTable",
    "DecodeStats",
    "Decoder",
    "StringTable",
    "decode",
    "require_c",
]
