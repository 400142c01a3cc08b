"""Falconet capture files (``.fcap``): records exactly as the kernel wrote them.

Layout (all integers little-endian)::

    offset  size  file header
    0       8     magic  b"FNETCAP\\0"
    8       2     format version (FORMAT_VERSION)
    10      2     header size (32)
    12      4     ABI version of the records (FALCONET_ABI_VERSION)
    16      8     layout hash of the records (falconet_abi.h section 4)
    24      8     reserved, zero

    then blocks, each:
    0       4     magic  b"FBLK"
    4       2     kind   1 = meta, 2 = snapshot, 3 = records, 4 = end
    6       2     codec  0 = stored, 1 = zlib
    8       4     stored length (bytes that follow this header)
    12      4     raw length (after decompression)
    16      4     CRC-32 of the raw bytes
    20      4     record count (records blocks), else 0
    24      ...   payload

    meta      (first block, msgpack map): hostname, kernel, boot_ns (epoch ns at boot), ncpus,
              created_ns, falconet version, source (what was captured)
    snapshot  (second block, msgpack map): the state snapshot, schema in collector.sources
    records   concatenated ABI records, whole records only, in event order
    end       (last block, msgpack map): events, blocks, and drop counters of the capture;
              a file without it was not closed cleanly (still readable: every verified
              block is replayed, then one error names the offset where it stops)

Reading is strict: a bad magic, an unknown kind or codec, a CRC mismatch or a short block
stops the reader with :class:`~collector.errors.CaptureError` naming the byte offset, *after*
every record of the blocks before it was delivered.  Records are never guessed at: a block
whose checksum cannot be verified (damaged, or cut short by the end of the file) is not
replayed, which is why records blocks are small (64 KiB by default: damage costs at most
one block).  A file of another format is refused with the type detected (:func:`sniff`).
"""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import msgpack
import numpy as np

from . import __version__, abi
from .errors import CaptureError, FormatMismatch

MAGIC = b"FNETCAP\0"
BLOCK_MAGIC = b"FBLK"
FORMAT_VERSION = 1
FILE_HDR = struct.Struct("<8sHHIQQ")
BLOCK_HDR = struct.Struct("<4sHHIIII")
KIND_META, KIND_SNAPSHOT, KIND_RECORDS, KIND_END = 1, 2, 3, 4
KIND_NAMES = {KIND_META: "meta", KIND_SNAPSHOT: "snapshot", KIND_RECORDS: "records", KIND_END: "end"}
CODEC_STORED, CODEC_ZLIB = 0, 1
MAX_BLOCK = 64 << 20          # a block larger than this is corruption, not data
MAX_META = 256 << 20          # snapshot of a huge host still fits
DEFAULT_BLOCK = 64 << 10    # small blocks: damage costs at most one block


def sniff(head: bytes) -> str:
    """Name the format of a file from its first bytes."""
    if head.startswith(MAGIC):
        return "fcap"
    if len(head) >= 12 and head[:4] == b"\x0a\x0d\x0d\x0a":
        bom = head[8:12]
        if bom in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
            return "scap"
        return "pcapng"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        return "pcap"
    if head[:4] == b"\x7fELF":
        return "ELF executable"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if not head:
        return "empty file"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "JSON text"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown binary data"


def record_offsets(buf: bytes | memoryview, start: int = 0) -> tuple[list[int], int]:
    """Offsets of the whole records in ``buf`` and the end of the last one.

    Stops at the first record whose length is impossible (too short, unaligned, beyond the
    buffer): that is where the valid prefix ends.  The length chase is the decoder's own
    (collector.decode_py), so capture files and decoding agree on framing.
    """
    from .decode_py import _record_offsets
    b = np.frombuffer(buf, np.uint8)[start:]
    slots, end, _ = _record_offsets(b)
    return (slots * 8 + start).tolist(), end + start


@dataclass
class Block:
    offset: int        # byte offset of the block header in the file
    kind: int
    payload: bytes     # raw (decompressed) payload
    count: int


class FcapWriter:
    """Writes a capture: meta and snapshot first, then records blocks, then the end block."""

    def __init__(self, path: str, *, snapshot: dict | None = None, meta: dict | None = None,
                 compress: bool = True, block_size: int = DEFAULT_BLOCK):
        self.path = path
        self.compress = compress
        self.block_size = block_size
        self.events = 0
        self.blocks = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._pending_count = 0
        try:
            self._f: BinaryIO = open(path, "wb")
        except OSError as e:
            raise CaptureError(f"cannot create capture file: {e.strerror}", path) from None
        self._f.write(FILE_HDR.pack(MAGIC, FORMAT_VERSION, FILE_HDR.size, abi.ABI_VERSION,
                                    abi.LAYOUT_HASH, 0))
        m = {"hostname": socket.gethostname(), "kernel": os.uname().release,
             "boot_ns": boot_epoch_ns(), "ncpus": os.cpu_count() or 1,
             "created_ns": time.time_ns(), "falconet": __version__, "source": "unknown"}
        m.update(meta or {})
        self.meta = m
        self._block(KIND_META, msgpack.packb(m, use_bin_type=True), 0)
        self._block(KIND_SNAPSHOT, msgpack.packb(snapshot or {}, use_bin_type=True), 0)

    def _block(self, kind: int, raw: bytes, count: int) -> None:
        codec = CODEC_STORED
        stored = raw
        if self.compress and kind != KIND_END and len(raw) > 256:
            z = zlib.compress(raw, 1)
            if len(z) < len(raw):
                codec, stored = CODEC_ZLIB, z
        self._f.write(BLOCK_HDR.pack(BLOCK_MAGIC, kind, codec, len(stored), len(raw),
                                     zlib.crc32(raw), count))
        self._f.write(stored)
        self.blocks += 1

    def write_records(self, buf: bytes | memoryview) -> None:
        """Append whole ABI records (as the kernel or a source produced them).

        Blocks hold at most ``block_size`` bytes (or one record, if larger), split at record
        boundaries, so damage to a file costs at most one block.
        """
        data = bytes(buf)
        if not data:
            return
        offs, end = record_offsets(data)
        if end != len(data):
            raise CaptureError(f"refusing to write a partial or invalid record at offset {end} "
                               f"of a {len(data)}-byte buffer", self.path)
        self.events += len(offs)
        starts = np.asarray(offs + [end], dtype=np.int64)
        i = 0
        while i < len(offs):
            room = self.block_size - self._pending_len
            # Last record that still ends within the room left (at least one record).
            j = int(np.searchsorted(starts, starts[i] + room, side="right")) - 1
            j = max(j, i + 1) if self._pending_len == 0 else j
            if j <= i:
                self.flush_block()
                continue
            self._pending.append(data[starts[i]:starts[j]])
            self._pending_len += int(starts[j] - starts[i])
            self._pending_count += j - i
            i = j
            if self._pending_len >= self.block_size:
                self.flush_block()

    def flush_block(self) -> None:
        if self._pending:
            self._block(KIND_RECORDS, b"".join(self._pending), self._pending_count)
            self._pending, self._pending_len, self._pending_count = [], 0, 0

    def flush(self) -> None:
        """Write the pending records as a block and flush the file."""
        self.flush_block()
        self._f.flush()

    def close(self, stats: dict | None = None) -> None:
        if self._f.closed:
            return
        self.flush()
        end = {"events": self.events, "blocks": self.blocks + 1}
        end.update(stats or {})
        self._block(KIND_END, msgpack.packb(end, use_bin_type=True), 0)
        self._f.close()

    def __enter__(self) -> "FcapWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def boot_epoch_ns() -> int:
    """Wall-clock nanoseconds at boot (CLOCK_REALTIME - CLOCK_BOOTTIME)."""
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


class FcapReader:
    """Reads a capture block by block (bounded memory: one block at a time)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self._f: BinaryIO = open(path, "rb")
        except OSError as e:
            raise CaptureError(f"cannot open capture: {e.strerror}", path) from None
        head = self._f.read(FILE_HDR.size)
        kind = sniff(head)
        if kind != "fcap":
            self._f.close()
            raise FormatMismatch(f"not a Falconet capture (.fcap): looks like {kind}", path, kind)
        if len(head) < FILE_HDR.size:
            self._f.close()
            raise CaptureError("file header is truncated", path, len(head))
        _, version, hsize, abi_version, layout_hash, _ = FILE_HDR.unpack(head)
        if version != FORMAT_VERSION:
            self._f.close()
            raise CaptureError(f"capture format version {version} is not supported "
                               f"(this Falconet reads version {FORMAT_VERSION})", path, 8)
        if abi_version != abi.ABI_VERSION or layout_hash != abi.LAYOUT_HASH:
            self._f.close()
            raise CaptureError(
                f"records use ABI version {abi_version} (layout {layout_hash:#x}); this Falconet "
                f"decodes ABI version {abi.ABI_VERSION} (layout {abi.LAYOUT_HASH:#x})", path, 12)
        self._f.seek(hsize)
        self.meta: dict = {}
        self.snapshot: dict = {}
        self.end: dict | None = None
        self.error: CaptureError | None = None
        self.blocks_read = 0
        meta = self._next_block()
        if meta is None or meta.kind != KIND_META:
            raise self.error or CaptureError("the meta block is missing", path, hsize)
        self.meta = self._unpack(meta)
        snap = self._next_block()
        if snap is None or snap.kind != KIND_SNAPSHOT:
            raise self.error or CaptureError("the snapshot block is missing", path, meta.offset)
        self.snapshot = self._unpack(snap)

    def _unpack(self, block: Block) -> dict:
        try:
            value = msgpack.unpackb(block.payload, raw=False, strict_map_key=False)
        except Exception as e:  # noqa: BLE001 - msgpack raises several types
            raise CaptureError(f"{KIND_NAMES[block.kind]} block is not valid msgpack ({e})",
                               self.path, block.offset) from None
        if not isinstance(value, dict):
            raise CaptureError(f"{KIND_NAMES[block.kind]} block is not a map", self.path, block.offset)
        return value

    def _fail(self, message: str, offset: int) -> None:
        self.error = CaptureError(message, self.path, offset)

    def _next_block(self) -> Block | None:
        """The next block, or None at a clean end (error set on damage)."""
        off = self._f.tell()
        hdr = self._f.read(BLOCK_HDR.size)
        if not hdr:
            if self.end is None:
                self._fail("capture ends without its end block (the writer did not finish; "
                           "every complete record before this point was read)", off)
            return None
        if len(hdr) < BLOCK_HDR.size:
            self._fail(f"block header truncated ({len(hdr)} of {BLOCK_HDR.size} bytes)", off)
            return None
        magic, kind, codec, stored, raw_len, crc, count = BLOCK_HDR.unpack(hdr)
        if magic != BLOCK_MAGIC:
            self._fail(f"bad block magic {magic!r} (expected {BLOCK_MAGIC!r})", off)
            return None
        if kind not in KIND_NAMES:
            self._fail(f"unknown block kind {kind}", off + 4)
            return None
        if codec not in (CODEC_STORED, CODEC_ZLIB):
            self._fail(f"unknown block codec {codec}", off + 6)
            return None
        limit = MAX_META if kind in (KIND_META, KIND_SNAPSHOT) else MAX_BLOCK
        if stored > limit or raw_len > limit or (codec == CODEC_STORED and stored != raw_len):
            self._fail(f"implausible {KIND_NAMES[kind]} block lengths (stored {stored}, raw {raw_len})",
                       off + 8)
            return None
        payload = self._f.read(stored)
        if len(payload) < stored:
            # Cut short (a capture that was not closed, a partial copy).  The block's CRC
            # cannot be checked, so none of it is trusted: nothing unverified is replayed.
            self._fail(f"{KIND_NAMES[kind]} block cut short: {len(payload)} of {stored} bytes "
                       f"present (its {count} records were not replayed: they cannot be "
                       f"verified)", off + BLOCK_HDR.size + len(payload))
            return None
        data = payload
        if codec == CODEC_ZLIB:
            try:
                d = zlib.decompressobj()
                data = d.decompress(payload, raw_len + 1)
                ok = d.eof and not d.unused_data and len(data) == raw_len
            except zlib.error:
                ok = False
            if not ok:
                self._fail(f"{KIND_NAMES[kind]} block damaged: its compressed data does not "
                           f"decompress to {raw_len} bytes", off)
                return None
        if zlib.crc32(data) != crc:
            self._fail(f"{KIND_NAMES[kind]} block checksum mismatch (data corrupted)", off)
            return None
        self.blocks_read += 1
        return Block(off, kind, data, count)

    def raw_blocks(self) -> Iterator[bytes]:
        """Payloads of the records blocks, in order (complete records only)."""
        while self.error is None:
            block = self._next_block()
            if block is None:
                break
            if block.kind == KIND_END:
                self.end = self._unpack(block)
                trailing = self._f.read(1)
                if trailing:
                    self._fail("data after the end block", self._f.tell() - 1)
                break
            if block.kind != KIND_RECORDS:
                self._fail(f"unexpected {KIND_NAMES[block.kind]} block", block.offset)
                break
            offs, end = record_offsets(block.payload)
            if end != len(block.payload):
                yield block.payload[:end]
                self._fail(f"invalid record in records block (at record offset {end})",
                           block.offset + BLOCK_HDR.size)
                break
            yield block.payload

    def close(self) -> None:
        self._f.close()


def records_view(buf: bytes) -> np.ndarray:
    """The fixed headers of the records in ``buf`` (tests and debugging)."""
    offs, _ = record_offsets(buf)
    arr = np.frombuffer(buf, dtype=np.uint8)
    idx = np.asarray(offs, dtype=np.int64)[:, None] + np.arange(abi.HDR_SIZE)
    return arr[idx].copy().view(abi.HDR_DTYPE).reshape(-1)
