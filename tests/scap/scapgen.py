"""A small .scap writer for tests: blocks, events and whole files, valid or deliberately not.

Only what the tests need: section header, machine info, a V9 process list, user list and
event blocks (v1 and v2, with or without flags), laid out as scap-format.md describes.
"""

from __future__ import annotations

import gzip
import struct

from collector.sources.scap_convert import spec
from collector.sources.scap_ppm import EVENTS

CODE = {e[0]: i for i, e in enumerate(EVENTS)}


def block(code: int, body: bytes, total: int | None = None, trailer: int | None = None) -> bytes:
    pad = (-len(body)) % 4
    n = 12 + len(body) + pad if total is None else total
    return struct.pack("<II", code, n) + body + b"\0" * pad + \
        struct.pack("<I", n if trailer is None else trailer)


def shb(major: int = 1, minor: int = 2, magic: int = 0x1A2B3C4D) -> bytes:
    return block(0x0A0D0D0A, struct.pack("<IHHq", magic, major, minor, -1))


def mi(host: str = "testhost", ncpu: int = 2) -> bytes:
    body = struct.pack("<IQQ", ncpu, 1 << 30, 4194304) + host.encode().ljust(128, b"\0") + \
        struct.pack("<QQQQ", 1_700_000_000_000_000_000, 0, 0, 0)
    return block(0x201, body)


def _s(b: bytes) -> bytes:
    return struct.pack("<H", len(b)) + b


def pl_v9(threads) -> bytes:
    """threads: iterable of (tid, pid, ppid, comm)."""
    body = b""
    for tid, pid, ppid, comm in threads:
        e = struct.pack("<qqqqq", tid, pid, ppid, pid, pid) + _s(comm.encode()) + \
            _s(b"/usr/bin/" + comm.encode()) + _s(b"/usr/bin/" + comm.encode()) + _s(b"") + \
            _s(b"/") + struct.pack("<QIII", 1024, 0, 0, 0) + struct.pack("<IIIQQ", 0, 0, 0, 0, 0) + \
            _s(b"") + struct.pack("<qq", tid, pid) + _s(b"cpuset=/\0") + _s(b"/")
        body += struct.pack("<I", len(e) + 4) + e
    return block(0x215, body)


def ul_v2(users) -> bytes:
    body = b""
    for uid, name in users:
        e = struct.pack("<BII", 0, uid, uid) + _s(name.encode()) + _s(b"/") + _s(b"/bin/sh")
        body += struct.pack("<I", len(e) + 4) + e
    return block(0x220, body)


def param(kind: str, value) -> bytes:
    if kind == "u64":
        return struct.pack("<Q", value & (2**64 - 1))
    if kind == "i64":
        return struct.pack("<q", value)
    if kind == "u32":
        return struct.pack("<I", value)
    if kind == "u16":
        return struct.pack("<H", value)
    if kind == "u8":
        return struct.pack("<B", value)
    if kind == "str":
        return value.encode() + b"\0"
    if kind == "raw":
        return value
    raise ValueError(kind)


def event(code: int, tid: int, params: list[bytes], ts: int = 1_700_000_000_000_000_000,
          cpu: int = 0, v2: bool = True, flags: int | None = None,
          nparams: int | None = None, elen_delta: int = 0) -> bytes:
    """One event block; ``flags`` selects an EVF block, ``nparams``/``elen_delta`` lie."""
    large = bool(spec().flags[code] & 2) if code < spec().ntypes else False
    lfmt = "<I" if large else "<H"
    lens = b"".join(struct.pack(lfmt, len(p)) for p in params)
    hdr = 26 if v2 else 22
    elen = hdr + len(lens) + sum(len(p) for p in params) + elen_delta
    head = struct.pack("<QQIH", ts, tid & (2**64 - 1), elen, code)
    if v2:
        head += struct.pack("<I", len(params) if nparams is None else nparams)
    ev = head + lens + b"".join(params)
    pre = struct.pack("<H", cpu)
    if flags is not None:
        pre += struct.pack("<I", flags)
        bcode = 0x217 if v2 else 0x208
    else:
        bcode = 0x216 if v2 else 0x204
    return block(bcode, pre + ev)


def open_pair(tid: int, fd: int, path: str, ts: int, v2: bool = True) -> bytes:
    """openat enter/exit (PPME_SYSCALL_OPENAT_2_E/X) of one call."""
    e = event(CODE["SYSCALL_OPENAT_2_E"], tid,
              [param("i64", -100), param("str", path), param("u32", 1), param("u32", 0)],
              ts=ts, v2=v2)
    x = event(CODE["SYSCALL_OPENAT_2_X"], tid,
              [param("i64", fd), param("i64", -100), param("str", path), param("u32", 1 | 4),
               param("u32", 0o644), param("u32", 0), param("u64", 0)], ts=ts + 1, v2=v2)
    return e + x


def close_pair(tid: int, fd: int, ts: int) -> bytes:
    return event(CODE["SYSCALL_CLOSE_E"], tid, [param("i64", fd)], ts=ts) + \
        event(CODE["SYSCALL_CLOSE_X"], tid, [param("i64", 0)], ts=ts + 1)


def header(threads=((100, 100, 1, "bash"), (101, 100, 1, "bash"))) -> bytes:
    return shb() + mi() + ul_v2([(0, "root"), (1000, "alice")]) + pl_v9(threads)


def simple_capture(n_calls: int = 50) -> bytes:
    """A valid capture: header, then open/close pairs on two threads."""
    out = [header()]
    ts = 1_700_000_000_000_000_000
    for i in range(n_calls):
        tid = 100 + (i & 1)
        out.append(open_pair(tid, 3 + i % 5, f"/tmp/f{i}", ts))
        out.append(close_pair(tid, 3 + i % 5, ts + 2))
        ts += 10
    return b"".join(out)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, 6)
