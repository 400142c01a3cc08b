"""The metadata blocks of a .scap file: section header, machine info, process list (V1..V9),
fd lists (V1, V2), interface lists (V1, V2) and user/group lists (V1, V2).

Written from ``shared/reference/scap-format.md``.  Every parser takes one block *body*
(``bytes`` without the 8-byte block header and the 4-byte trailer) and the stream offset of
that body, and either returns Python values or raises :class:`MetaError` with the offset of
the field that does not fit.  The results are folded into the Source snapshot schema
(``collector.sources``) by :class:`SnapshotBuilder`.

Metadata is small (one entry per thread / fd / user), so these parsers are plain Python;
the events, which are many, never come through here.
"""

from __future__ import annotations

import ipaddress
import struct

# --- block type codes --------------------------------------------------------------------------

SHB = 0x0A0D0D0A
MI = (0x201, 0x8002ABCD)
PL = {0x202: 1, 0x8000ABCD: 1, 0x207: 2, 0x8013ABCD: 2, 0x209: 3, 0x8014ABCD: 3, 0x210: 4,
      0x211: 5, 0x212: 6, 0x213: 7, 0x214: 8, 0x215: 9}
FDL = {0x203: 1, 0x8001ABCD: 1, 0x218: 2}
IL = {0x205: 1, 0x8011ABCD: 1, 0x219: 2}
UL = {0x206: 1, 0x8012ABCD: 1, 0x220: 2}
# event blocks: code -> (header version, has 32-bit flags, large)
EV = {0x204: (1, False, False), 0x8010ABCD: (1, False, False), 0x216: (2, False, False),
      0x221: (2, False, True), 0x208: (1, True, False), 0x217: (2, True, False),
      0x222: (2, True, True)}

BLOCK_NAMES = {SHB: "SHB", **{c: "MI" for c in MI}, **{c: f"PL_V{v}" for c, v in PL.items()},
               **{c: "FDL" if v == 1 else "FDL_V2" for c, v in FDL.items()},
               **{c: "IL" if v == 1 else "IL_V2" for c, v in IL.items()},
               **{c: "UL" if v == 1 else "UL_V2" for c, v in UL.items()},
               0x204: "EV", 0x8010ABCD: "EV", 0x216: "EV_V2", 0x221: "EV_V2_LARGE",
               0x208: "EVF", 0x217: "EVF_V2", 0x222: "EVF_V2_LARGE"}

BYTE_ORDER_MAGIC = 0x1A2B3C4D
SWAPPED_MAGIC = 0x4D3C2B1A

FD_TYPES = {0: "other", 1: "file", 2: "directory", 3: "ipv4", 4: "ipv6", 5: "ipv4", 6: "ipv6",
            7: "pipe", 8: "unix", 9: "event", 10: "other", 11: "signalfd", 12: "eventpoll",
            13: "inotify", 14: "timerfd", 15: "other", 16: "file", 17: "bpf", 18: "other",
            19: "other", 20: "memfd", 21: "other"}
L4PROTO = {0: "unknown", 1: "n/a", 2: "tcp", 3: "udp", 4: "icmp", 5: "raw"}


class MetaError(Exception):
    """A metadata block that does not parse; ``offset`` is the stream offset of the problem."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


class _Cursor:
    """Bounds-checked little-endian reads over one block body."""

    __slots__ = ("b", "base", "end", "p", "what")

    def __init__(self, body: bytes, base: int, what: str, start: int = 0, end: int | None = None):
        self.b = body
        self.p = start
        self.end = len(body) if end is None else end
        self.base = base
        self.what = what

    def left(self) -> int:
        return self.end - self.p

    def _take(self, n: int) -> int:
        p = self.p
        if n > self.end - p:
            raise MetaError(f"{self.what}: field of {n} bytes runs past the end of its entry "
                            f"({self.end - p} bytes left)", self.base + p)
        self.p = p + n
        return p

    def u8(self) -> int:
        return self.b[self._take(1)]

    def u16(self) -> int:
        return struct.unpack_from("<H", self.b, self._take(2))[0]

    def u32(self) -> int:
        return struct.unpack_from("<I", self.b, self._take(4))[0]

    def u64(self) -> int:
        return struct.unpack_from("<Q", self.b, self._take(8))[0]

    def i64(self) -> int:
        return struct.unpack_from("<q", self.b, self._take(8))[0]

    def raw(self, n: int) -> bytes:
        p = self._take(n)
        return bytes(self.b[p:p + n])

    def string(self) -> bytes:
        return self.raw(self.u16())

    def skip(self, n: int) -> None:
        self._take(n)


def _txt(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


def _words(b: bytes) -> list[str]:
    """A NUL-separated list (may end with a NUL) as a list of strings."""
    if b.endswith(b"\0"):
        b = b[:-1]
    return [_txt(w) for w in b.split(b"\0")] if b else []


# --- section header, machine info -------------------------------------------------------------

def parse_shb(body: bytes, base: int) -> dict:
    c = _Cursor(body, base, "section header")
    magic = c.u32()
    if magic == SWAPPED_MAGIC:
        raise MetaError("byte-swapped (big-endian) capture: not supported", base)
    if magic != BYTE_ORDER_MAGIC:
        raise MetaError(f"invalid byte-order magic 0x{magic:08x} in the section header", base)
    major, minor = c.u16(), c.u16()
    if major != 1:
        raise MetaError(f"unsupported .scap major version {major}.{minor} (this reader knows 1.x)",
                        base + 4)
    section_len = c.i64()
    return {"version": (major, minor), "section_length": section_len}


def parse_mi(body: bytes, base: int) -> dict:
    c = _Cursor(body, base, "machine info")
    ncpu = c.u32()
    mem = c.u64()
    max_pid = c.u64()
    host = c.raw(128).split(b"\0", 1)[0]
    out = {"num_cpus": ncpu, "memory_bytes": mem, "max_pid": max_pid, "hostname": _txt(host)}
    if c.left() >= 8:
        out["boot_ns"] = c.u64()
    return out


# --- process list ----------------------------------------------------------------------------

def parse_pl(body: bytes, base: int, version: int) -> list[dict]:
    """Thread entries of a process list block of the given version (1..9)."""
    threads = []
    c = _Cursor(body, base, f"process list (V{version})")
    while c.left() >= 4:
        start = c.p
        end = c.end
        if version >= 9:
            elen = c.u32()
            if elen < 4 or elen > c.end - start:
                raise MetaError(f"process list entry length {elen} does not fit in the block "
                                f"({c.end - start} bytes left)", base + start)
            end = start + elen
        e = _Cursor(body, base, f"process list (V{version}) entry", c.p, end)
        t: dict = {"tid": e.i64(), "pid": e.i64(), "ppid": e.i64()}
        if version >= 6:
            t["sid"] = e.i64()
        if version >= 8:
            t["vpgid"] = e.i64()
        t["comm"] = _txt(e.string())
        t["exe"] = _txt(e.string())
        if version >= 7:
            t["exepath"] = _txt(e.string())
        t["args"] = _words(e.string())
        t["cwd"] = _txt(e.string())
        t["fdlimit"] = e.u64()
        t["flags"] = e.u32()
        t["uid"] = e.u32()
        t["gid"] = e.u32()
        if version >= 2:
            e.skip(4 + 4 + 4 + 8 + 8)   # vmsize, vmrss, vmswap (kB), pfmajor, pfminor
        if version >= 3:
            e.string()                  # environment: not kept (size, secrets)
        if version >= 4:
            t["vtid"] = e.i64()
            t["vpid"] = e.i64()
            cg = _words(e.string())
            t["cgroups"] = cg
            t["cgroup"] = next((x.split("=", 1)[1] for x in cg if x.startswith("cpuset=")),
                               cg[0].split("=", 1)[-1] if cg else "")
        if version >= 5:
            t["root"] = _txt(e.string())
        if version >= 9:
            _pl_v9_tail(e, t)
            c.p = end
        else:
            c.p = e.p
        threads.append(t)
    return threads


def _pl_v9_tail(e: _Cursor, t: dict) -> None:
    """The V9 fields after ``root``, each present only if the entry still has room."""
    if e.left() > 29:           # libs >= 0.10: pidns_init_start_ts and tty come first
        t["pidns_init_start_ts"] = e.u64()
        t["tty"] = e.u32()
    if e.left() >= 4:
        t["loginuid"] = e.u32()
    if e.left() >= 1:
        t["exe_writable"] = bool(e.u8())
    if e.left() >= 24:
        e.skip(16)                  # cap_inheritable, cap_permitted
        t["cap_eff"] = e.u64()
    if e.left() >= 1:
        t["exe_upper_layer"] = bool(e.u8())
    if e.left() >= 24:
        e.skip(24)                  # exe_ino, exe_ino_ctime, exe_ino_mtime
    if e.left() >= 1:
        t["exe_from_memfd"] = bool(e.u8())
    if e.left() >= 1:
        e.skip(1)                   # exe_lower_layer
    if e.left() >= 8:
        t["pgid"] = e.i64()


# --- fd list ---------------------------------------------------------------------------------

def _ip4(b: bytes) -> str:
    return str(ipaddress.IPv4Address(b))


def _ip6(b: bytes) -> str:
    return str(ipaddress.IPv6Address(b))


# fd-list codes of inet sockets: (address bytes, formatter, tuple (True) or server (False))
_INET_FDS = {3: (4, _ip4, True), 4: (16, _ip6, True), 5: (4, _ip4, False), 6: (16, _ip6, False)}


def parse_fdl(body: bytes, base: int, version: int) -> tuple[int, list[dict]]:
    """(tid, fds) of one fd-list block."""
    c = _Cursor(body, base, f"fd list (V{version})")
    tid = c.i64()
    fds = []
    while c.left() >= 4:
        start = c.p
        end = c.end
        if version >= 2:
            elen = c.u32()
            if elen < 4 or elen > c.end - start:
                raise MetaError(f"fd list entry length {elen} does not fit in the block "
                                f"({c.end - start} bytes left)", base + start)
            end = start + elen
        e = _Cursor(body, base, f"fd list (V{version}) entry", c.p, end)
        fd = struct.unpack("<q", struct.pack("<Q", e.u64()))[0]
        e.u64()                     # inode
        code = e.u8()
        d: dict = {"fd": fd, "type": FD_TYPES.get(code, "other"), "name": ""}
        if code in _INET_FDS:       # ipv4/ipv6 socket tuple or server socket
            width, fmt, pair = _INET_FDS[code]
            sip = fmt(e.raw(width))
            dip = fmt(e.raw(width)) if pair else None
            sport = e.u16()
            dport = e.u16() if pair else None
            d.update({"sip": sip, "dip": dip, "sport": sport, "dport": dport} if pair else
                     {"sip": sip, "sport": sport})
            d["l4proto"] = L4PROTO.get(e.u8(), "unknown")
            d["name"] = f"{sip}:{sport}->{dip}:{dport}" if pair else f"{sip}:{sport}"
        elif code == 8:
            src, dst = e.u64(), e.u64()
            d["name"] = _txt(e.string())
            d.update(source=src, dest=dst)
        elif code == 16:
            d["flags"] = e.u32()
            d["name"] = _txt(e.string())
            if version >= 2 and e.left() >= 4:
                d["dev"] = e.u32()
        elif code in (1, 2, 7, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21):
            d["name"] = _txt(e.string())
        elif code != 0:
            if version < 2:
                raise MetaError(f"fd list entry of unknown type {code} (cannot be skipped in a "
                                "V1 list)", base + start)
            d = {}
        if version >= 2:
            c.p = end
        else:
            c.p = e.p
        if d:
            fds.append(d)
    return tid, fds


# --- interface and user lists ----------------------------------------------------------------

def parse_il(body: bytes, base: int, version: int) -> list[dict]:
    c = _Cursor(body, base, f"interface list (V{version})")
    out = []
    while c.left() >= 4:
        start = c.p
        end = c.end
        if version >= 2:
            elen = c.u32()          # does not count itself
            if elen > c.end - c.p:
                raise MetaError(f"interface entry length {elen} does not fit in the block",
                                base + start)
            end = c.p + elen
        e = _Cursor(body, base, "interface entry", c.p, end)
        typ, namelen = e.u16(), e.u16()
        if typ in (1, 3):
            addr = e.raw(4)
            e.skip(8)
            if typ == 1:
                e.skip(8)
            out.append({"family": "ipv4", "addr": _ip4(addr), "name": _txt(e.raw(namelen))})
        elif typ in (2, 4):
            addr = e.raw(16)
            e.skip(32)
            if typ == 2:
                e.skip(8)
            out.append({"family": "ipv6", "addr": _ip6(addr), "name": _txt(e.raw(namelen))})
        else:
            if version < 2:
                raise MetaError(f"interface entry of unknown type {typ}", base + start)
        c.p = end if version >= 2 else e.p
    return out


def parse_ul(body: bytes, base: int, version: int) -> tuple[dict[int, str], dict[int, str]]:
    c = _Cursor(body, base, f"user list (V{version})")
    users: dict[int, str] = {}
    groups: dict[int, str] = {}
    while c.left() >= 4:
        start = c.p
        end = c.end
        if version >= 2:
            elen = c.u32()
            if elen < 4 or elen > c.end - start:
                raise MetaError(f"user list entry length {elen} does not fit in the block",
                                base + start)
            end = start + elen
        e = _Cursor(body, base, "user list entry", c.p, end)
        if e.u8() == 0:
            uid, _gid = e.u32(), e.u32()
            users[uid] = _txt(e.string())
            e.string()
            e.string()
        else:
            gid = e.u32()
            groups[gid] = _txt(e.string())
        c.p = end if version >= 2 else e.p
    return users, groups


class SnapshotBuilder:
    """Folds the metadata blocks of one section into the Source snapshot dict."""

    def __init__(self) -> None:
        self.snap: dict = {"users": {}, "groups": {}, "threads": [], "interfaces": []}
        self._by_tid: dict[int, dict] = {}
        self.blocks: dict[str, int] = {}

    def add(self, code: int, body: bytes, base: int) -> None:
        name = BLOCK_NAMES.get(code)
        if name is not None:
            self.blocks[name] = self.blocks.get(name, 0) + 1
        if code in MI:
            mi = parse_mi(body, base)
            self.snap["hostname"] = mi["hostname"]
            self.snap["num_cpus"] = mi["num_cpus"]
            if mi.get("boot_ns"):
                self.snap["boot_ns"] = mi["boot_ns"]
        elif code in PL:
            for t in parse_pl(body, base, PL[code]):
                t.setdefault("fds", [])
                old = self._by_tid.get(t["tid"])
                if old is not None:
                    t["fds"] = old["fds"]
                    self.snap["threads"][self.snap["threads"].index(old)] = t
                else:
                    self.snap["threads"].append(t)
                self._by_tid[t["tid"]] = t
        elif code in FDL:
            tid, fds = parse_fdl(body, base, FDL[code])
            t = self._by_tid.get(tid)
            if t is None:       # fds of a thread the process list did not name
                t = {"tid": tid, "fds": []}
                self._by_tid[tid] = t
                self.snap["threads"].append(t)
            t["fds"].extend(fds)
        elif code in IL:
            self.snap["interfaces"].extend(parse_il(body, base, IL[code]))
        elif code in UL:
            users, groups = parse_ul(body, base, UL[code])
            self.snap["users"].update(users)
            self.snap["groups"].update(groups)

    def tid_pids(self) -> dict[int, int]:
        return {t["tid"]: t["pid"] for t in self.snap["threads"] if "pid" in t}
