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
        first_num, first_num + 1, ...  The batch's columns are views of the decoder's reused
        buffers: **valid until the next decode() on the same decoder**; ``batch.copy()`` to
        keep it.  Skips and framing errors are in DecodeStats (collector.decode_py), the
        contract is in ext/decode.h.  ``strings`` must come from this module's StringTable.
        With a cap (ids / bytes of strings) the decoder switches ``.strings`` to a fresh table
        between batches once the current one is over it (live sources; collector.decode_py
        Rollover); each batch's ``.strings`` is the table its ids belong to.

    decode(buf, strings, first_num=1) -> (EventBatch, DecodeStats)
        Convenience: a fresh decoder, so the batch owns its columns.
"""

from __future__ import annotations

import os

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


class CDecoder(Rollover):
    """ABI records -> EventBatch through ext/decode.c, into column buffers it owns and reuses
    (see the module doc: a batch is valid until the next decode()).  With a cap (max_ids /
    max_bytes) it rolls over to a fresh table between batches (decode_py.Rollover)."""

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
        self._cap = 0
        self._arrays: dict[str, np.ndarray] = {}
        self._ccols = _native.ffi.new("struct fnet_columns *")
        self._cstats = _native.ffi.new("struct fnet_decode_stats *")

    def _ensure(self, rows: int) -> None:
        if rows <= self._cap:
            return
        cap = max(rows, 1024, self._cap * 2)
        ffi = _native.ffi
        self._arrays = {k: np.empty(cap, dt) for k, dt in BASE_COLUMNS.items()}
        c = self._ccols
        for k, arr in self._arrays.items():
            ptr = ffi.cast(f"{_CTYPE[arr.dtype.str]} *", arr.ctypes.data)
            if k[0] in "av" and k[1:].isdigit():
                getattr(c, k[0])[int(k[1:])] = ptr
            else:
                setattr(c, k, ptr)
        c.cap = cap
        self._cap = cap

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
        self._ensure(max_bytes // _native.lib.FNET_HDR_SIZE + 1)
        n = _native.lib.fnet_reader_decode(reader._r, max_bytes, first_num, self.strings._t,
                                           self._ccols, self._cstats, reader._info)
        info = reader.info_dict()
        stats = self._stats()
        if n == _native.lib.FNET_RING_GONE:
            return None, stats, info
        return EventBatch({k: arr[:n] for k, arr in self._arrays.items()}, self.strings), \
            stats, info

    def decode(self, buf, first_num: int = 1) -> tuple[EventBatch, DecodeStats]:
        ffi = _native.ffi
        if isinstance(buf, np.ndarray):
            buf = buf.reshape(-1).view(np.uint8)
        mv = memoryview(buf)
        size = mv.nbytes
        self._roll()
        self._ensure(size // _native.lib.FNET_HDR_SIZE + 1)
        src = ffi.from_buffer("uint8_t[]", mv) if size else ffi.NULL
        n = _native.lib.fnet_decode(src, size, first_num, self.strings._t, self._ccols,
                                    self._cstats)
        stats = self._stats()
        cols = {k: arr[:n] for k, arr in self._arrays.items()}
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
