"""Falco/sysdig .scap captures as a Falconet source.

    src = ScapSource("trace.scap.gz")          # plain or gzip, any version in the wild
    src.open()                                 # section header + metadata -> src.snapshot
    for batch in src.batches(): ...            # EventBatch rows, in event order
    src.error                                  # CaptureError after the last good event, or None
    src.stats()                                # events read, rows, skipped per event type ...

The file is walked block by block (``scap_meta`` for the metadata blocks, ``scap_stream``
for bytes and gzip); runs of event blocks are converted into columns by the C reader
(ext/scap.c) or, with ``FALCONET_PUREPYTHON=1`` or no extension, by its numpy twin
(``scap_pure``), both driven by one conversion table (``scap_convert``).

Batches carry the base columns of ``collector.batch`` plus ``dir`` (uint8: 1 = enter '>',
0 = exit '<') and ``argmask`` (uint16: bit i set when a<i> holds a value the event -- or,
for an exit row, its enter event -- carried; bit 12 for ``ret``), since old captures leave
out parameters and 0 is a valid value; ``ts`` is nanoseconds since the epoch (``boot_ns`` 0).  A concatenated file
(a second section header after events) continues as Falco does: the new section's metadata
is merged into ``snapshot`` (``sections`` in the stats counts them).

Semantics (see ``scap_convert`` for the whole table): enter and exit events are both rows,
as Falco evaluates old captures; an exit row also carries the arguments only its enter event
had; a child's clone exit is preceded by a PROC_FORK row (same ``num``) built from it, the
lifecycle record the live driver writes and the state engine expects; generic syscall events
are named by their syscall code; a thread never seen gets its tid as pid (as libsinsp does).
A batch holds up to ``batch_events + 1`` rows (an event may make two).

Events of types Falconet does not model are counted per type (``skipped``, reported in the
replay summary) and never converted.  Damage (bad magic, impossible lengths, truncation,
corrupted gzip) ends the source with one CaptureError naming the byte offset in the
uncompressed stream, after every event before the damage was delivered.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import numpy as np

from .. import abi, native
from ..batch import EventBatch, StringTable
from ..errors import CaptureError
from . import Source
from .scap_convert import spec as conversion_spec
from .scap_meta import BLOCK_NAMES, EV, SHB, MetaError, SnapshotBuilder, parse_shb
from .scap_ppm import EVENTS
from .scap_stream import ByteStream, StreamError, Window

NEED_MORE, FULL, OTHER_BLOCK, ERROR = 0, 1, 2, 3
MAX_META_BLOCK = 64 << 20      # one metadata block (process list of a huge host) at most
MAX_EVENT_BLOCK = 64 << 20     # one *_LARGE event block at most
MAX_THREADS = 1 << 19          # per-thread state (pending enter, pid) at most

_HDR = struct.Struct("<II")


def sniff(path: str) -> bool:
    """True if ``path`` is a .scap capture (plain or gzip-compressed)."""
    try:
        with open(path, "rb") as f:
            s = ByteStream(f)
            head = s.read(12)
    except (OSError, StreamError):
        return False
    return len(head) == 12 and _HDR.unpack_from(head)[0] == SHB and \
        head[8:12] in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d")


def _c_lib():
    lib = getattr(native._native, "lib", None) if native._native is not None else None
    if lib is None or not hasattr(lib, "fnet_scap_walk"):
        return None
    return native._native


class _Columns:
    """Reused column buffers of one batch (``cap`` rows)."""

    def __init__(self, cap: int):
        self.cap = cap + 1          # an event makes up to 2 rows; a batch ends at >= cap
        n = self.cap
        self.num = np.zeros(n, np.uint64)
        self.ts = np.zeros(n, np.uint64)
        self.cpu = np.zeros(n, np.uint16)
        self.tid = np.zeros(n, np.int64)
        self.pid = np.zeros(n, np.int64)
        self.type = np.zeros(n, np.uint16)
        self.flags = np.zeros(n, np.uint16)
        self.ret = np.zeros(n, np.int64)
        self.a = np.zeros((6, n), np.int64)
        self.v = np.zeros((6, n), np.uint32)
        self.dir = np.zeros(n, np.uint8)
        self.code = np.zeros(n, np.uint16)
        self.argmask = np.zeros(n, np.uint16)


class CWalker:
    """ext/scap.c behind the walker interface shared with ``scap_pure.PureWalker``."""

    backend = "c"

    def __init__(self, cols: _Columns, mod=None):
        mod = mod or _c_lib()
        self.ffi, self.lib = mod.ffi, mod.lib
        ffi, lib = self.ffi, self.lib
        sp = conversion_spec()
        from .scap_convert import PT_SIGNED
        self._keep = [np.ascontiguousarray(x) for x in
                      (sp.fnet, sp.flags, sp.nparams, sp.procparam, sp.action, PT_SIGNED,
                       sp.generic, sp.flagmap)]
        k = self._keep
        cspec = ffi.new("struct fnet_scap_spec *")
        cspec.ntypes = sp.ntypes
        cspec.fnet = ffi.cast("uint16_t *", k[0].ctypes.data)
        cspec.flags = ffi.cast("uint8_t *", k[1].ctypes.data)
        cspec.nparams = ffi.cast("uint8_t *", k[2].ctypes.data)
        cspec.procparam = ffi.cast("int8_t *", k[3].ctypes.data)
        cspec.procfork_type = abi.BY_NAME["procfork"].num
        cspec.clone_type = abi.BY_NAME["clone"].num
        cspec.clone3_type = abi.BY_NAME["clone3"].num
        cspec.action = ffi.cast("uint32_t *", k[4].ctypes.data)
        cspec.pt_signed = ffi.cast("uint8_t *", k[5].ctypes.data)
        cspec.generic = ffi.cast("uint16_t *", k[6].ctypes.data)
        cspec.ngeneric = len(k[6])
        cspec.flagmap = ffi.cast("uint32_t *", k[7].ctypes.data)
        cspec.nflagmap = len(k[7])
        cspec.max_threads = MAX_THREADS
        cspec.max_event = MAX_EVENT_BLOCK
        self.s = lib.fnet_scap_new(cspec)
        if self.s == ffi.NULL:
            raise MemoryError("fnet_scap_new")
        self.s = ffi.gc(self.s, lib.fnet_scap_free)
        self.strtab = lib.fnet_scap_strings(self.s)
        self.cols = cols
        c = ffi.new("struct fnet_scap_cols *")
        c.cap = cols.cap
        for name in ("num", "ts", "cpu", "tid", "pid", "type", "flags", "ret", "a", "v", "dir",
                     "code", "argmask"):
            arr = getattr(cols, name)
            setattr(c, name, ffi.cast(ffi.typeof(getattr(c, name)), arr.ctypes.data))
        self._ccols = c
        self.skipped = np.zeros(sp.ntypes + 1, np.uint64)
        self._res = ffi.new("struct fnet_scap_result *")
        self._lenp = ffi.new("uint32_t *")

    def seed(self, tids: np.ndarray, pids: np.ndarray) -> None:
        t = np.ascontiguousarray(tids, np.int64)
        p = np.ascontiguousarray(pids, np.int64)
        self.lib.fnet_scap_seed(self.s, self.ffi.cast("int64_t *", t.ctypes.data),
                                self.ffi.cast("int64_t *", p.ctypes.data), len(t))

    def walk(self, buf: bytearray, start: int, end: int, first_num: int, row0: int):
        """Convert event blocks of buf[start:end]; returns (status, consumed, need, events,
        rows, err_offset, err_message) with offsets relative to ``start``."""
        ffi, r = self.ffi, self._res
        with ffi.from_buffer(buf) as p:
            self.lib.fnet_scap_walk(self.s, p + start, end - start, first_num, self._ccols,
                                    row0, ffi.cast("uint64_t *", self.skipped.ctypes.data), r)
        msg = ffi.string(r.err).decode("utf-8", "replace") if r.status == ERROR else ""
        return r.status, r.consumed, r.need, r.events, r.rows, r.err_offset, msg

    def string_count(self) -> int:
        return self.lib.fnet_strtab_count(self.strtab)

    def string(self, i: int) -> bytes:
        p = self.lib.fnet_strtab_get(self.strtab, i, self._lenp)
        return bytes(self.ffi.buffer(p, self._lenp[0])) if p != self.ffi.NULL else b""

    def counters(self) -> dict:
        c = self.ffi.new("struct fnet_scap_counters *")
        self.lib.fnet_scap_get_counters(self.s, c)
        return {k: int(getattr(c, k)) for k in
                ("state_only", "bad_params", "threads_full", "paired", "threads")}


def make_walker(cols: _Columns, backend: str | None = None):
    """The C walker when the extension has it (unless ``backend == "pure"``), else the twin."""
    if backend != "pure" and _c_lib() is not None:
        return CWalker(cols)
    if backend == "c":
        raise ImportError("the C .scap reader is not in collector._native")
    from .scap_pure import PureWalker
    return PureWalker(cols, max_threads=MAX_THREADS, max_event=MAX_EVENT_BLOCK)


class ScapSource(Source):
    """Batches from a .scap file (see the module docstring)."""

    name = "scap"

    def __init__(self, path: str, batch_events: int = 65536, strings=None,
                 backend: str | None = None):
        super().__init__()
        self.path = path
        self.batch_events = max(1, int(batch_events))
        self.strings = strings
        self.backend = backend
        self.scap_events = 0
        self.sections = 0
        self.blocks: dict[str, int] = {}
        self._f = None
        self._w: Window | None = None
        self._lut = np.zeros(2, np.uint32)
        self._lut[1] = 1

    # -- opening: section header and metadata ---------------------------------------------
    def _open(self) -> None:
        try:
            self._f = open(self.path, "rb")  # noqa: SIM115 - closed in _close()
        except OSError as e:
            raise CaptureError(f"cannot open: {e.strerror}", self.path) from None
        if self.strings is None:
            self.strings = getattr(native, "StringTable", StringTable)()
        self._cols = _Columns(self.batch_events)
        self._walker = make_walker(self._cols, self.backend)
        self._stream = ByteStream(self._f, prefetch=True)
        self._w = Window(self._stream)
        self.snapshot = {"users": {}, "groups": {}, "threads": []}
        try:
            self._header()
        except BaseException:
            self._close()           # open() failed: nothing (file, inflater thread) stays
            raise

    def _header(self) -> None:
        """Section header and metadata, before the first event."""
        assert self._w is not None
        try:
            head = self._w.ensure(12)
        except StreamError as e:
            raise CaptureError(str(e), self.path, e.offset) from None
        buf = self._w.buf
        if head < 12 or _HDR.unpack_from(buf, 0)[0] != SHB:
            raise CaptureError("not a .scap capture: the file does not start with a section "
                               "header block (bad magic)", self.path, 0)
        try:
            self._section()
        except StreamError as e:
            raise self._fail(str(e), e.offset) from None

    def _fail(self, message: str, offset: int | None) -> CaptureError:
        return CaptureError(message, self.path, offset)

    def _block_header(self) -> tuple[int, int] | None:
        """(code, total length) of the next block, None at a clean end of file."""
        w = self._w
        assert w is not None
        n = w.ensure(8)
        if n == 0:
            return None
        if n < 8:
            raise self._fail(f"the file ends inside a block header ({n} of 8 bytes)", w.offset)
        return _HDR.unpack_from(w.buf, w.pos)

    def _whole_block(self, code: int, total: int, limit: int) -> bytes:
        """Body of the block at the window position (trailer checked); consumes the block."""
        w = self._w
        assert w is not None
        name = BLOCK_NAMES.get(code, f"0x{code:x}")
        if total < 12 or total > limit:
            raise self._fail(f"{name} block length {total} is impossible "
                             f"(must be 12..{limit})", w.offset + 4)
        got = w.ensure(total)
        if got < total:
            raise self._fail(f"the file ends inside a {name} block ({got} of {total} bytes)",
                             w.offset)
        trailer = _HDR.unpack_from(w.buf, w.pos + total - 8)[1]
        if trailer != total:
            raise self._fail(f"{name} block trailer {trailer} does not repeat its length "
                             f"{total}", w.offset + total - 4)
        body = bytes(w.buf[w.pos + 8:w.pos + total - 4])
        w.skip(total)
        return body

    def _skip_block(self, code: int, total: int) -> None:
        """Step over a block of a type this reader does not know, without holding it."""
        w = self._w
        assert w is not None
        start = w.offset
        if total < 12 or total > MAX_META_BLOCK:
            raise self._fail(f"block of unknown type 0x{code:x} has an impossible length {total}",
                             start + 4)
        left = total - 4
        while left:
            got = w.ensure(min(left, 1 << 20))
            if got == 0:
                raise self._fail(f"the file ends inside a block of type 0x{code:x} "
                                 f"({total - 4 - left} of {total} bytes)", w.offset)
            step = min(got, left)
            w.skip(step)
            left -= step
        if w.ensure(4) < 4:
            raise self._fail(f"the file ends inside a block of type 0x{code:x}", w.offset)
        trailer = _HDR.unpack_from(w.buf, w.pos)[0]
        if trailer != total:
            raise self._fail(f"block of type 0x{code:x}: trailer {trailer} does not repeat its "
                             f"length {total}", w.offset)
        w.skip(4)
        self._count(f"unknown 0x{code:x}")

    def _section(self) -> None:
        """Section header at the window position, then metadata up to the first event block."""
        w = self._w
        assert w is not None
        hdr = self._block_header()
        assert hdr is not None
        base = w.offset + 8
        body = self._whole_block(hdr[0], hdr[1], 1 << 20)
        try:
            parse_shb(body, base)
        except MetaError as e:
            raise self._fail(str(e), e.offset) from None
        self.sections += 1
        self._count("SHB")
        sb = SnapshotBuilder()
        while True:
            hdr = self._block_header()
            if hdr is None or hdr[0] in EV or hdr[0] == SHB:
                break
            if hdr[0] not in BLOCK_NAMES:
                self._skip_block(*hdr)
                continue
            base = w.offset + 8
            body = self._whole_block(hdr[0], hdr[1], MAX_META_BLOCK)
            try:
                sb.add(hdr[0], body, base)
            except MetaError as e:
                raise self._fail(str(e), e.offset) from None
        self._absorb(sb)

    def _absorb(self, sb: SnapshotBuilder) -> None:
        """Metadata of a section (or met between events) into the snapshot and pid table."""
        for k, n in sb.blocks.items():
            self._count(k, n)
        self._merge(sb.snap)
        tp = sb.tid_pids()
        if tp:
            self._walker.seed(np.fromiter(tp.keys(), np.int64, len(tp)),
                              np.fromiter(tp.values(), np.int64, len(tp)))

    def _merge(self, snap: dict) -> None:
        s = self.snapshot
        assert s is not None
        for k, v in snap.items():
            if k in ("users", "groups"):
                s[k].update(v)
            elif k == "threads":
                known = {t["tid"]: i for i, t in enumerate(s["threads"])}
                for t in v:
                    if t["tid"] in known:
                        s["threads"][known[t["tid"]]] = t
                    else:
                        s["threads"].append(t)
            elif k == "interfaces":
                s.setdefault(k, []).extend(v)
            else:
                s[k] = v

    def _count(self, name: str, n: int = 1) -> None:
        self.blocks[name] = self.blocks.get(name, 0) + n

    # -- events -----------------------------------------------------------------------------
    def _batches(self) -> Iterator[EventBatch]:
        w = self._w
        assert w is not None
        err: CaptureError | None = None
        self._pending_rows = 0
        try:
            for rows in self._walk():
                yield self._batch(rows)
                if self._stop.is_set():
                    return
        except CaptureError as e:
            err = e
        except StreamError as e:
            err = self._fail(str(e), e.offset)
        except MetaError as e:
            err = self._fail(str(e), e.offset)
        if err is not None:
            # every event before the damage is delivered, then the source ends with the error
            self.error = err
            if self._pending_rows:
                rows, self._pending_rows = self._pending_rows, 0
                yield self._batch(rows)
            return
        if self.scap_events == 0:
            self.error = self._fail("no events in file", w.offset)

    def _walk(self) -> Iterator[int]:
        """Drive the walker; yields the row count of each full batch and of the last one.
        On damage, raises with the rows already converted left in ``_pending_rows``."""
        w = self._w
        assert w is not None
        rows = 0
        while True:
            hdr = self._block_header()
            if hdr is None:
                break
            code, total = hdr
            if code == SHB:
                if self.scap_events == 0:
                    raise self._fail("a second section header before any event", w.offset)
                self._section()         # concatenated capture: new metadata, events go on
                continue
            if code not in EV:
                if code in BLOCK_NAMES:     # metadata between events: merged, as a restart
                    base = w.offset + 8
                    body = self._whole_block(code, total, MAX_META_BLOCK)
                    sb = SnapshotBuilder()
                    sb.add(code, body, base)
                    self._absorb(sb)
                else:
                    self._skip_block(code, total)
                continue
            status, consumed, need, events, rows, eoff, msg = self._walker.walk(
                w.buf, w.pos, w.end, self.scap_events + 1, rows)
            start = w.offset
            w.skip(consumed)
            self.scap_events += events
            self._map_strings()
            self._pending_rows = rows
            if status == ERROR:
                raise self._fail(msg, start + eoff)
            if status == FULL:
                self._pending_rows = 0
                yield rows
                rows = 0
            elif status == NEED_MORE:
                got = w.ensure(need)
                if 0 < got < need:
                    what = "a block header" if need == 8 else "an event block"
                    raise self._fail(f"the file ends inside {what} ({got} of {need} bytes)",
                                     w.offset)
        self._pending_rows = 0
        if rows:
            yield rows

    def _map_strings(self) -> None:
        """Extend the local -> pipeline string id map by the strings the walker added."""
        n = self._walker.string_count()
        old = len(self._lut)
        if n <= old:
            return
        lut = np.empty(max(n, old * 2), np.uint32)
        lut[:old] = self._lut
        intern = self.strings.intern
        string = self._walker.string
        for i in range(old, n):
            lut[i] = intern(string(i))
        self._lut = lut[:n]

    def _batch(self, rows: int) -> EventBatch:
        c = self._cols
        lut = self._lut
        cols = {"num": c.num[:rows], "ts": c.ts[:rows], "cpu": c.cpu[:rows],
                "tid": c.tid[:rows], "pid": c.pid[:rows], "type": c.type[:rows],
                "flags": c.flags[:rows], "ret": c.ret[:rows]}
        for i in range(6):
            cols[f"a{i}"] = c.a[i, :rows]
        for i in range(6):
            cols[f"v{i}"] = lut[c.v[i, :rows]]
        cols["dir"] = c.dir[:rows]
        cols["argmask"] = c.argmask[:rows]
        return EventBatch(cols, self.strings, boot_ns=0, source="syscall")

    def _close(self) -> None:
        if getattr(self, "_stream", None) is not None:
            self._stream.close()
            self._stream = None
        if self._f is not None:
            self._f.close()
            self._f = None

    # -- reporting --------------------------------------------------------------------------
    def skipped_by_type(self) -> dict[str, int]:
        """Events of types Falconet does not model, by Falco name and direction."""
        sk = self._walker.skipped if hasattr(self, "_walker") else np.zeros(0, np.uint64)
        out = {}
        for code in np.flatnonzero(sk):
            code = int(code)
            if code < len(EVENTS):
                e = EVENTS[code]
                out[f"{e[1]} {e[2]}"] = out.get(f"{e[1]} {e[2]}", 0) + int(sk[code])
            else:
                out["unknown event type"] = int(sk[code])
        return out

    def stats(self) -> dict:
        s = super().stats()
        s["rows"] = self.events
        s["events"] = self.scap_events
        skipped = dict(s["skipped"])
        for name, n in self.skipped_by_type().items():
            skipped[f"not modelled: {name}"] = n
        if hasattr(self, "_walker"):
            cnt = self._walker.counters()
            if cnt["state_only"]:
                skipped["state-only events"] = cnt["state_only"]
            s.update({f"scap_{k}": v for k, v in cnt.items()})
            s["backend"] = self._walker.backend
        s["skipped"] = skipped
        s["blocks"] = dict(self.blocks)
        s["sections"] = self.sections
        s["path"] = os.fspath(self.path)
        return s
