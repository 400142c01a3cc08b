"""Encode ABI records (kmod/include/falconet_abi.h, section 1): the inverse of decoding.

For tests, the synthetic source and anyone who needs input bytes without a kernel::

    from collector import records as R

    buf = R.encode("openat", tid=100, pid=100, ts=1_000, ret=3,
                   args={"dirfd": R.AT_FDCWD, "flags": 0o100}, vars={"name": "/etc/shadow",
                   "fullpath": "/etc/shadow"})
    buf += R.encode("connect", tid=100, pid=100, ts=2_000, args=(3,),
                    vars=(R.sockaddr("inet", "10.0.0.1", 443), R.sockaddr("inet", "10.0.0.2", 5123)))
    buf += R.encode("execve", tid=101, pid=101, ts=3_000,
                    vars={"filename": "/bin/ls", "args": R.argv(["ls", "-l"]), "comm": "ls"})

``encode`` takes the event as a Falco name (``"openat"``, ``"procexit"``), a C name
(``"OPENAT"``) or a number; ``args`` and ``vars`` as sequences in slot order or as mappings
from the event table's argument names.  Numeric arguments may be negative (stored as two's
complement u64, decoded back as the same int64).  Variable parts are bytes, str (UTF-8) or
None/b"" (vlen 0: decodes to the empty string for a named slot, absent for an unused one).

``encode_many(cols, strings)`` is the vectorized bulk form: columns as in an EventBatch
(``type``, ``tid``, ``pid``, ``ts``, optional ``ret``, ``flags``, ``cpu``, ``a0..a5``,
``v0..v5``), where ``v*`` are integer ids into ``strings`` (a StringTable or a sequence of
bytes/None).  ``decode(encode_many(b.cols, b.strings))`` gives back the batch's columns.  A :class:`Pool`
is a cheap growing string list for generators that call ``encode_many`` repeatedly.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Mapping, Sequence

import numpy as np

from . import abi

AT_FDCWD = -100
AF = {"unspec": abi.CONST["FNET_AF_UNSPEC"], "unix": abi.CONST["FNET_AF_UNIX"],
      "inet": abi.CONST["FNET_AF_INET"], "inet6": abi.CONST["FNET_AF_INET6"]}

_HDR = struct.Struct("<HHHHQIIq6Q6HI")
assert _HDR.size == abi.HDR_SIZE
_U64 = (1 << 64) - 1


def event_type(t: int | str) -> abi.EventType:
    """The EventType for a Falco name, a C name or a number (ValueError if unknown)."""
    if isinstance(t, str):
        e = abi.BY_NAME.get(t) or (abi.BY_NUM.get(abi.EV[t]) if t in abi.EV else None)
    else:
        e = abi.BY_NUM.get(int(t))
    if e is None:
        raise ValueError(f"unknown event type {t!r}")
    return e


def _as_bytes(v: bytes | str | None) -> bytes:
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    return bytes(v)


def _slots(values, names: tuple[str, ...], what: str, ev: str) -> list:
    if isinstance(values, Mapping):
        out = [None] * 6
        for k, v in values.items():
            if k not in names or not k:
                raise ValueError(f"{ev} has no {what} named {k!r} (has {[n for n in names if n]})")
            out[names.index(k)] = v
        return out
    values = list(values)
    if len(values) > 6:
        raise ValueError(f"at most 6 {what}s, got {len(values)}")
    return values + [None] * (6 - len(values))


def encode(type: int | str, *, tid: int, pid: int, ts: int, ret: int = 0,
           args: Sequence[int] | Mapping[str, int] = (),
           vars: Sequence[bytes | str | None] | Mapping[str, bytes | str | None] = (),
           flags: int = 0, cpu: int = 0, snaplen: int | None = None, raw_type: bool = False) -> bytes:
    """One record as bytes (header, variable parts in slot order, zero padding to 8).

    ``snaplen`` truncates every variable part to that many bytes and sets FNET_RF_TRUNC when
    it did, as the kernel does.  ``raw_type=True`` also accepts type numbers that are not in
    the ABI table (for tests of unknown types; their slots can only be given by position).  Raises ValueError if the record would exceed FNET_MAX_RECORD.
    """
    if raw_type and not isinstance(type, str) and int(type) not in abi.BY_NUM:
        num, ename, argn, varn = int(type), str(type), ("",) * 6, ("",) * 6
    else:
        e = event_type(type)
        num, ename, argn, varn = e.num, e.falco, e.args, e.vars
    a = [int(x or 0) & _U64 for x in _slots(args, argn, "argument", ename)]
    vs = [_as_bytes(x) for x in _slots(vars, varn, "variable part", ename)]
    if snaplen is not None:
        if any(len(v) > snaplen for v in vs):
            flags |= abi.RF_TRUNC
        vs = [v[:snaplen] for v in vs]
    body = b"".join(vs)
    length = (abi.HDR_SIZE + len(body) + 7) & ~7
    if length > abi.MAX_RECORD:
        raise ValueError(f"record of {length} bytes exceeds FNET_MAX_RECORD ({abi.MAX_RECORD})")
    hdr = _HDR.pack(length, num, flags, cpu, ts & _U64, tid, pid, ret, *a, *[len(v) for v in vs], 0)
    return hdr + body + b"\0" * (length - abi.HDR_SIZE - len(body))


def sockaddr(family: int | str, addr: str | bytes = "", port: int = 0) -> bytes:
    """A struct fnet_sockaddr variable part.

    ``sockaddr("inet", "10.0.0.1", 443)``, ``sockaddr("inet6", "::1", 22)``: 20 bytes
    (address in network order, port in host order).  ``sockaddr("unix", "/run/x.sock")``: the
    4-byte header then the path (a leading "\\0" makes an abstract socket).
    """
    fam = AF[family] if isinstance(family, str) else int(family)
    if fam == AF["unix"]:
        return struct.pack("<HH", fam, 0) + _as_bytes(addr)
    if fam == AF["inet"]:
        raw = socket.inet_aton(addr) if isinstance(addr, str) else bytes(addr)
    elif fam == AF["inet6"]:
        raw = ipaddress.IPv6Address(addr).packed if isinstance(addr, str) else bytes(addr)
    else:
        raw = _as_bytes(addr)
    return struct.pack("<HH", fam, port) + raw.ljust(16, b"\0")[:16]


def parse_sockaddr(b: bytes) -> tuple[str, str, int]:
    """(family name, address text, port) of a struct fnet_sockaddr variable part."""
    fam, port = struct.unpack_from("<HH", b)
    names = {v: k for k, v in AF.items()}
    if fam == AF["unix"]:
        return "unix", b[4:].decode("utf-8", "backslashreplace"), 0
    if fam == AF["inet"]:
        return "inet", socket.inet_ntoa(b[4:8]), port
    if fam == AF["inet6"]:
        return "inet6", str(ipaddress.IPv6Address(b[4:20])), port
    return names.get(fam, str(fam)), b[4:].hex(), port


def argv(words: Sequence[str | bytes]) -> bytes:
    """argv-like value: NUL-separated words without a trailing NUL."""
    return b"\0".join(_as_bytes(w) for w in words)


# --- bulk -------------------------------------------------------------------------------------

class Pool:
    """A growing list of byte strings for ``encode_many`` (id 0 absent, id 1 empty, like a
    StringTable), whose concatenated form is cached between calls."""

    def __init__(self) -> None:
        self._items: list[bytes] = [b"", b""]
        self._ids: dict[bytes, int] = {b"": 1}
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, value: bytes | str) -> int:
        v = _as_bytes(value)
        i = self._ids.get(v)
        if i is None:
            i = self._ids[v] = len(self._items)
            self._items.append(v)
            self._cache = None
        return i

    def get(self, i: int) -> bytes | None:
        return None if i == 0 else self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            lens = np.fromiter(map(len, self._items), np.int64, len(self._items))
            off = np.zeros(len(lens) + 1, np.int64)
            np.cumsum(lens, out=off[1:])
            self._cache = (np.frombuffer(b"".join(self._items) or b"\0", np.uint8), off)
        return self._cache


def _pool(strings) -> tuple[np.ndarray, np.ndarray]:
    """(blob, offsets) of every string id: bytes of id i are blob[off[i]:off[i+1]]."""
    if isinstance(strings, Pool):
        return strings.arrays()
    if hasattr(strings, "get") and hasattr(strings, "__len__") and not isinstance(strings, (list, tuple)):
        items = [strings.get(i) for i in range(len(strings))]
    else:
        items = list(strings)
    parts = [_as_bytes(x) for x in items]
    lens = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    off = np.zeros(len(parts) + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    blob = np.frombuffer(b"".join(parts) or b"\0", np.uint8)
    return blob, off


def encode_many(cols: Mapping[str, np.ndarray], strings=(), offsets: bool = False):
    """Records for every row of ``cols`` (see module doc), concatenated, vectorized.

    Rows keep their order; ``num`` is ignored (decoders number rows themselves).  Types are
    written as given (unknown numbers included, for corruption tests).  ``strings`` may be a
    StringTable, a sequence of bytes/None, or a :class:`Pool`.  With ``offsets=True`` returns
    (bytes, int64 array of the n + 1 record boundaries).
    """
    n = len(cols["type"])
    if n == 0:
        return (b"", np.zeros(1, np.int64)) if offsets else b""

    def col(name, dt):
        c = cols.get(name)
        return np.zeros(n, dt) if c is None else np.asarray(c).astype(dt, copy=False)

    blob, poff = _pool(strings) if any(f"v{i}" in cols for i in range(6)) else (np.zeros(1, np.uint8),
                                                                              np.zeros(1, np.int64))
    plen = np.diff(poff)
    vid = np.stack([col(f"v{i}", np.int64) for i in range(6)], axis=1)         # (n, 6)
    vlen = plen[vid] if len(plen) else np.zeros((n, 6), np.int64)
    if (vlen > 0xFFFF).any():
        raise ValueError("a variable part is longer than 65535 bytes")
    rlen = (abi.HDR_SIZE + vlen.sum(axis=1) + 7) & ~7
    if n and rlen.max() > abi.MAX_RECORD:
        raise ValueError(f"a record exceeds FNET_MAX_RECORD ({abi.MAX_RECORD})")
    roff = np.zeros(n + 1, np.int64)
    np.cumsum(rlen, out=roff[1:])
    out = np.zeros(int(roff[-1]), np.uint8)

    hdr = np.zeros(n, abi.HDR_DTYPE)
    hdr["len"] = rlen
    hdr["type"] = col("type", np.uint16)
    hdr["flags"] = col("flags", np.uint16)
    hdr["cpu"] = col("cpu", np.uint16)
    hdr["ts"] = col("ts", np.uint64)
    hdr["tid"] = col("tid", np.int64).astype(np.uint32)
    hdr["pid"] = col("pid", np.int64).astype(np.uint32)
    hdr["ret"] = col("ret", np.int64)
    hdr["arg"] = np.stack([col(f"a{i}", np.int64) for i in range(6)], axis=1).view(np.uint64)
    hdr["vlen"] = vlen
    words = out.view(np.uint64)
    words[(roff[:-1] // 8)[:, None] + np.arange(abi.HDR_SIZE // 8)] = hdr.view(np.uint64).reshape(n, -1)

    # Variable parts: one ragged copy of every (row, slot) part, in row-major order.
    flat_len = vlen.ravel()
    nz = flat_len > 0
    if nz.any():
        starts_in_rec = np.cumsum(vlen, axis=1) - vlen                     # exclusive prefix
        dst = (roff[:-1, None] + abi.HDR_SIZE + starts_in_rec).ravel()[nz]
        src = poff[vid.ravel()[nz]]
        ln = flat_len[nz]
        total = int(ln.sum())
        seg = np.repeat(np.cumsum(ln) - ln, ln)
        inner = np.arange(total) - seg
        out[np.repeat(dst, ln) + inner] = blob[np.repeat(src, ln) + inner]
    return (out.tobytes(), roff) if offsets else out.tobytes()
