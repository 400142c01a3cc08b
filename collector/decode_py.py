"""The pure-numpy decoder: ABI records -> EventBatch, the twin of ext/decode.c.

Same contract as the C path (ext/decode.h), same results: the same columns, the same string
ids assigned in the same order (record order, then v0..v5), the same skip counters.  Only
finding the record boundaries may step in Python, once per break in the chain of
plausible headers (once per buffer when it is clean); everything else is numpy over all records at once:

1. boundaries: slots that look like headers are linked by their lengths; Python steps only
   where the linked runs break (see _record_offsets);
2. headers: one gather of the 12 header words of every record, viewed as ``abi.HDR_DTYPE``;
3. framing: the first record whose vlen[] sum exceeds its len ends the buffer (bad length);
   unknown types are masked out;
4. strings: every variable part is hashed (bucketed by padded width, 8 bytes per numpy step),
   distinct values are found with ``np.unique``, checked byte for byte against their
   representative (a hash collision falls back to exact bytes), ordered by first occurrence
   and interned once each, so ids match the C path's one-by-one interning.

``DecodeStats`` (shared with the C backend) lives here because this module has no native
dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np

from . import abi
from .batch import BASE_COLUMNS, EMPTY, NA, EventBatch, StringTable, rollover_due

HDR = abi.HDR_SIZE
HDR_WORDS = HDR // 8
BAD_REASONS = {0: None, 1: "short", 2: "len_small", 3: "len_unaligned", 4: "len_beyond", 5: "vlen"}
"""FNET_BAD_* -> name: fewer than a header left, len < header, len % 8, len past the end,
vlen[] sum past len."""

# type number (any u16) -> 0x80 | named v-slot bits, 0 if unknown (ext/decode.c ev_info)
EVENT_INFO = np.zeros(1 << 16, np.uint8)
for _e in abi.EVENTS:
    EVENT_INFO[_e.num] = 0x80 | sum(1 << i for i, v in enumerate(_e.vars) if v)
_NAMED = ((EVENT_INFO[:, None] >> np.arange(6, dtype=np.uint8)) & 1).astype(np.uint32)  # (65536, 6)


@dataclass
class DecodeStats:
    """What one decode (or, summed with ``+=``, a whole source) saw.

    records / bytes          decoded rows and the bytes of their records
    unknown_type(_bytes)     well-framed records of a type not in the ABI table, skipped
    bad_length(_bytes)       buffers whose framing broke; bytes from there to the buffer end
    bad_offset, bad_reason   offset of the (last) broken record in its buffer, and why
                             (BAD_REASONS values), None if the framing never broke
    consumed                 bytes examined (< len(buf) only if the columns filled up)
    """

    records: int = 0
    bytes: int = 0
    unknown_type: int = 0
    unknown_type_bytes: int = 0
    bad_length: int = 0
    bad_length_bytes: int = 0
    bad_offset: int | None = None
    bad_reason: str | None = None
    consumed: int = 0
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def skipped(self) -> dict[str, int]:
        """Skips by cause (non-zero only): records of unknown type, bad-length breaks."""
        return {k: v for k, v in (("unknown_type", self.unknown_type),
                                  ("bad_length", self.bad_length)) if v}

    @property
    def skipped_bytes(self) -> dict[str, int]:
        return {k: v for k, v in (("unknown_type", self.unknown_type_bytes),
                                  ("bad_length", self.bad_length_bytes)) if v}

    def __iadd__(self, o: DecodeStats) -> Self:
        for k in ("records", "bytes", "unknown_type", "unknown_type_bytes", "bad_length",
                  "bad_length_bytes", "consumed"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        if o.bad_reason is not None:
            self.bad_offset, self.bad_reason = o.bad_offset, o.bad_reason
        return self

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("records", "bytes", "unknown_type", "unknown_type_bytes",
                                           "bad_length", "bad_length_bytes", "bad_offset",
                                           "bad_reason", "consumed")}
        return d


def _as_u8(buf) -> np.ndarray:
    if isinstance(buf, np.ndarray):
        return buf.reshape(-1).view(np.uint8)
    return np.frombuffer(buf, np.uint8)


_KNOWN = EVENT_INFO != 0
_HDR_VOID = np.dtype(f"V{HDR}")


def _record_offsets(b: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Slot indices (offset / 8) of the framed records, the end offset, and a bad reason (0 if
    the chain reached the end of the buffer exactly).

    A record's length says where the next one starts, so the true chain is sequential.  It is
    found in runs: every 8-byte slot that looks like a header (framed length, known type,
    vlen[] within len, zero _pad) is a candidate, and a candidate whose length lands exactly on
    the next candidate is linked to it.  From the current position (always a true record
    boundary) the whole linked run is taken at once, each link being a verified step of the
    chain, so the heuristics only decide speed, never the result.  Python only steps at a
    break (a record that is not a candidate, or a candidate followed by a false one), so a
    clean buffer costs one step and an adversarial one no more than a step per record.
    """
    size = len(b)
    nslots = size // 8
    if nslots == 0:
        return np.zeros(0, np.int64), 0, (1 if size else 0)
    lo = b[: nslots * 8].view("<u4")[::2]                 # len | type << 16, per slot
    maybe = np.flatnonzero(((lo & 7) == 0) & ((lo & 0xFFFF) >= HDR) & (lo < (1 << 23)))
    cand = maybe[_KNOWN[lo[maybe] >> 16] & (maybe + HDR_WORDS <= nslots)]
    # ... whose vlen[] fit in len and whose _pad is 0 (an inode number in arg[4] often looks
    # like len | type otherwise); a true record failing this is merely stepped over singly.
    # words 10 and 11 of a header: vlen[0..3], then vlen[4..5] and _pad
    tail = b[: nslots * 8].view("<u8")[cand[:, None] + np.array([10, 11])]
    v4 = tail.view("<u2").reshape(-1, 8).astype(np.int64)
    ln = (lo[cand] & 0xFFFF).astype(np.int64)
    cand = cand[(v4[:, :6].sum(axis=1) + HDR <= ln) & ((tail[:, 1] >> np.uint64(32)) == 0)]
    nxt = cand + ((lo[cand] & 0xFFFF) >> 3)
    # A false candidate (e.g. an inode number in arg[4] that reads as len | type) is almost
    # never where another candidate's length lands: drop candidates nobody points at (the
    # walk below still verifies the chain; a true record dropped here is stepped over singly).
    for _ in range(2):
        hit = np.zeros(nslots + 1, bool)
        hit[np.minimum(nxt, nslots)] = True
        hit[0] = True
        keep = hit[cand]
        if keep.all():
            break
        cand, nxt = cand[keep], nxt[keep]
    breaks = np.flatnonzero(nxt[:-1] != cand[1:])
    breaks = np.append(breaks, len(cand) - 1)
    runs: list[np.ndarray] = []
    singles: list[int] = []
    is_cand = np.zeros(nslots + 1, np.bool_)
    is_cand[cand] = True
    isc = memoryview(is_cand)
    p = 0
    while p < nslots:
        if isc[p]:                                         # a linked run, taken whole
            k = int(np.searchsorted(cand, p))
            j = int(breaks[np.searchsorted(breaks, k)])
            runs.append(cand[k: j + 1])
            p = int(nxt[j])
        else:                                              # not a candidate: one record
            ln = int(lo[p]) & 0xFFFF
            if ln < HDR or ln & 7:
                break
            singles.append(p)
            p += ln >> 3
    if singles:
        runs.append(np.asarray(singles, np.int64))
        offs = np.sort(np.concatenate(runs))
    else:
        offs = np.concatenate(runs).astype(np.int64, copy=False) if runs else np.zeros(0, np.int64)
    if p > nslots:                                         # the last record runs past the end
        p = int(offs[-1])
        offs = offs[:-1]
    end = p * 8
    if end == size:
        return offs, end, 0
    if size - end < HDR:
        return offs, end, 1
    ln = int(lo[p]) & 0xFFFF
    return offs, end, (2 if ln < HDR else 3 if ln & 7 else 4)


def _gather_words(b: np.ndarray, start: np.ndarray, length: np.ndarray, w: int) -> np.ndarray:
    """(m, w // 8) little-endian words of b[start:start+length], zero past each end."""
    size = len(b)
    vw = np.dtype(f"V{w}")
    over = start > size - w                    # windows that would run past the buffer
    if not over.any():
        mat = np.ndarray((size - w + 1,), vw, b, 0, (1,))[start]
    else:
        base = max(0, size - w)
        tail = np.zeros(size - base + w, np.uint8)
        tail[: size - base] = b[base:]
        mat = np.empty(len(start), vw)
        mat[over] = np.ndarray((size - base,), vw, tail, 0, (1,))[start[over] - base]
        if size >= w:
            ok = ~over
            mat[ok] = np.ndarray((size - w + 1,), vw, b, 0, (1,))[start[ok]]
    mat = mat.view(np.uint8).reshape(len(start), w)
    words = mat.view("<u8")
    last = (length - 1) >> 3                   # word holding the last byte
    col = np.arange(w // 8)[None, :]
    keep = np.where(col < last[:, None], ~np.uint64(0),
                    np.where(col == last[:, None],
                             ~np.uint64(0) >> (np.uint64(64) - ((length - 8 * last) * 8).astype(np.uint64))[:, None],
                             np.uint64(0)))
    return words & keep


def _intern_parts(b: np.ndarray, start: np.ndarray, length: np.ndarray,
                  strings: StringTable) -> np.ndarray:
    """Ids of the byte strings b[start:start+length] (all length > 0), interning new ones in
    order of first occurrence."""
    k = len(start)
    ids = np.empty(k, np.uint32)
    if k == 0:
        return ids
    bucket = np.maximum(np.ceil(np.log2(np.maximum(length, 1))), 3).astype(np.int64)
    firsts, owners = [], []
    for bk in np.unique(bucket).tolist():
        sel = np.flatnonzero(bucket == bk)
        ln = length[sel]
        words = _gather_words(b, start[sel], ln, 1 << bk)
        h = ln.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        with np.errstate(over="ignore"):
            for j in range(words.shape[1]):
                h = (h ^ words[:, j]) * np.uint64(0x100000001B3)
                h ^= h >> np.uint64(29)
        _, first, inv = np.unique(h, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        rep = first[inv]
        if not ((ln == ln[rep]).all() and (words == words[rep]).all()):
            # A 64-bit hash collision: group this bucket by the exact bytes instead.
            keys = [words[i].tobytes()[: ln[i]] for i in range(len(sel))]
            seen: dict[bytes, int] = {}
            inv = np.fromiter((seen.setdefault(kk, len(seen)) for kk in keys), np.int64, len(keys))
            first = np.zeros(len(seen), np.int64)
            first[inv[::-1]] = np.arange(len(sel))[::-1]
        firsts.append(sel[first])
        owners.append((sel, inv, len(first)))
    allfirst = np.concatenate(firsts)
    order = np.argsort(allfirst, kind="stable")
    fo = allfirst[order]
    values = [b[s: s + n].tobytes() for s, n in zip(start[fo].tolist(), length[fo].tolist())]
    new_ids = np.asarray(strings.intern_many(values), np.uint32)
    distinct_ids = np.empty(len(allfirst), np.uint32)
    distinct_ids[order] = new_ids
    base = 0
    for sel, inv, nd in owners:
        ids[sel] = distinct_ids[base + inv]
        base += nd
    return ids


def decode(buf, strings: StringTable, first_num: int = 1) -> tuple[EventBatch, DecodeStats]:
    """Decode a buffer of ABI records (bytes-like or uint8 array) into a new EventBatch."""
    b = _as_u8(buf)
    size = len(b)
    stats = DecodeStats(consumed=size)
    offs, end, reason = _record_offsets(b)
    n0 = len(offs)
    if n0:
        # every 8-byte slot viewed as an opaque 96-byte row (overlapping), one row gather (an
        # opaque void gather is several times faster than a structured one), then the dtype
        slots = np.ndarray((size // 8 - HDR_WORDS + 1,), _HDR_VOID, b, 0, (8,))
        hdr = slots[offs].view(abi.HDR_DTYPE)
        vlen = hdr["vlen"].astype(np.int64)
        badv = np.flatnonzero(HDR + vlen.sum(axis=1) > hdr["len"])
        if len(badv):
            k = int(badv[0])
            end, reason = int(offs[k]) * 8, 5
            offs, hdr, vlen = offs[:k], hdr[:k], vlen[:k]
    else:
        hdr = np.zeros(0, abi.HDR_DTYPE)
        vlen = np.zeros((0, 6), np.int64)
    if reason:
        stats.bad_length, stats.bad_length_bytes = 1, size - end
        stats.bad_offset, stats.bad_reason = end, BAD_REASONS[reason]
    types = hdr["type"]
    known = EVENT_INFO[types] != 0
    if not known.all():
        stats.unknown_type = int((~known).sum())
        stats.unknown_type_bytes = int(hdr["len"][~known].astype(np.int64).sum())
        offs, hdr, vlen, types = offs[known], hdr[known], vlen[known], types[known]
    n = len(offs)
    stats.records = n
    stats.bytes = int(hdr["len"].astype(np.int64).sum())

    cols: dict[str, np.ndarray] = {
        "num": np.arange(first_num, first_num + n, dtype=np.uint64),
        "ts": hdr["ts"].copy(),
        "cpu": hdr["cpu"].copy(),
        "tid": hdr["tid"].astype(np.int64),
        "pid": hdr["pid"].astype(np.int64),
        "type": types.copy(),
        "flags": hdr["flags"].copy(),
        "ret": hdr["ret"].copy(),
    }
    args = hdr["arg"].view(np.int64) if n else np.zeros((0, 6), np.int64)
    for i in range(6):
        cols[f"a{i}"] = np.ascontiguousarray(args[:, i])
    vids = _NAMED[types].copy() if n else np.zeros((0, 6), np.uint32)   # empty (1) / absent (0)
    has = vlen > 0
    if has.any():
        start = np.empty_like(vlen)                     # offset of each part: exclusive prefix
        start[:, 0] = offs * 8 + HDR
        for i in range(1, 6):
            start[:, i] = start[:, i - 1] + vlen[:, i - 1]
        vids[has] = _intern_parts(b, start[has], vlen[has], strings)
    for i in range(6):
        cols[f"v{i}"] = np.ascontiguousarray(vids[:, i])
    for k, dt in BASE_COLUMNS.items():
        assert cols[k].dtype == dt, (k, cols[k].dtype)
    return EventBatch(cols, strings), stats


class Rollover:
    """String table rollover of a decoder (both decoders): with a cap (``max_ids`` ids or
    ``max_bytes`` bytes of strings, 0 = none), the decoder switches ``self.strings`` to a new
    empty table of the same kind before decoding the next batch once the current one is over
    it (collector.batch.rollover_due), so the table of a long-running live source stays
    bounded.  Batches already decoded keep the old table (their ids stay valid while they
    live); the state engine re-homes onto the new one when it sees its first batch.
    ``rollovers`` counts the switches.  Captures and replays decode without a cap (finite
    input: one table for the whole file)."""

    strings: StringTable
    max_ids = 0
    max_bytes = 0
    rollovers = 0

    def set_strings_cap(self, max_ids: int = 0, max_bytes: int = 0) -> None:
        if max_ids < 0 or max_bytes < 0:
            raise ValueError("string table caps must be >= 0 (0 = no cap)")
        self.max_ids, self.max_bytes = int(max_ids), int(max_bytes)

    def _roll(self) -> None:
        """Called at a batch boundary (before decoding): switch tables when due."""
        if (self.max_ids or self.max_bytes) and \
                rollover_due(self.strings, self.max_ids, self.max_bytes):
            self.strings = type(self.strings)()
            self.rollovers += 1


class Decoder(Rollover):
    """Pure twin of the C decoder object: ``decode(buf, first_num)`` -> (EventBatch, stats).

    Batches own their columns (fresh arrays per decode), as the C twin's do
    (``batches_owned``: a pipeline need not copy them).  Optional string table caps: see
    :class:`Rollover`.
    """

    batches_owned = True

    def __init__(self, strings: StringTable | None = None, max_ids: int = 0,
                 max_bytes: int = 0) -> None:
        self.strings = strings if strings is not None else StringTable()
        self.set_strings_cap(max_ids, max_bytes)

    def decode(self, buf, first_num: int = 1) -> tuple[EventBatch, DecodeStats]:
        self._roll()
        return decode(buf, self.strings, first_num)


__all__ = ["BAD_REASONS", "EMPTY", "EVENT_INFO", "NA", "DecodeStats", "Decoder", "Rollover",
           "decode"]
