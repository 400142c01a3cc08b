"""The kernel/userspace ABI as Python sees it, read from ``kmod/include/falconet_abi.h``.

Nothing here restates the layout: the constants, the structs of the CDEF section and the
event table are parsed from the header at import time, the numpy dtypes are derived from the
parsed structs with C's natural alignment, and the layout hash is recomputed from that view.
``tests/test_abi_layout.py`` checks this view against the C compiler's sizeof/offsetof.

Public names:
    ABI_VERSION, LAYOUT_HASH, HDR_SIZE, NUM_ARGS, NUM_VARS, MAX_RECORD, CONST (all #defines)
    STRUCTS: name -> list of (field, ctype, count, offset, size); SIZEOF: name -> size
    HDR_DTYPE: numpy dtype of struct fnet_event_hdr
    EVENTS: list of EventType;  BY_NUM: num -> EventType;  BY_NAME: falco name -> EventType
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np


def header_path() -> str:
    """Path of falconet_abi.h: in the source tree, or the copy installed in the package."""
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(os.path.dirname(here), "kmod", "include", "falconet_abi.h")
    if os.path.exists(src):
        return src
    return str(resources.files("collector._abi").joinpath("falconet_abi.h"))


def header_text() -> str:
    with open(header_path(), encoding="utf-8") as f:
        return f.read()


_TEXT = header_text()
_m = re.search(r"/\* BEGIN FNET_CDEF.*?\*/(.*)/\* END FNET_CDEF \*/", _TEXT, re.S)
if _m is None:  # pragma: no cover - the header is part of the package
    raise ImportError("falconet_abi.h has no FNET_CDEF section")
CDEF = _m.group(1)

CONST: dict[str, int] = {
    name: int(val, 0) for name, val in re.findall(r"^#define\s+(\w+)\s+(-?(?:0x[0-9a-fA-F]+|\d+))\s*$", CDEF, re.M)
}

_CTYPES = {"__u8": ("u1", 1), "__u16": ("<u2", 2), "__u32": ("<u4", 4), "__u64": ("<u8", 8),
           "__s8": ("i1", 1), "__s16": ("<i2", 2), "__s32": ("<i4", 4), "__s64": ("<i8", 8)}

STRUCTS: dict[str, list[tuple[str, str, int, int, int]]] = {}
SIZEOF: dict[str, int] = {}
DTYPES: dict[str, np.dtype] = {}

for _name, _body in re.findall(r"struct\s+(\w+)\s*\{(.*?)\};", CDEF, re.S):
    fields = []
    off = 0
    align = 1
    for ctype, fname, count in re.findall(r"(__[us]\d+)\s+(\w+)(?:\[(\d+)\])?\s*;", _body):
        _, size = _CTYPES[ctype]
        n = int(count) if count else 1
        off = (off + size - 1) // size * size
        fields.append((fname, ctype, n, off, size * n))
        off += size * n
        align = max(align, size)
    total = (off + align - 1) // align * align
    STRUCTS[_name] = fields
    SIZEOF[_name] = total
    DTYPES[_name] = np.dtype({
        "names": [f[0] for f in fields],
        "formats": [(_CTYPES[f[1]][0], (f[2],)) if f[2] > 1 else _CTYPES[f[1]][0] for f in fields],
        "offsets": [f[3] for f in fields],
        "itemsize": total,
    })

ABI_VERSION = CONST["FALCONET_ABI_VERSION"]
HDR_SIZE = CONST["FNET_HDR_SIZE"]
NUM_ARGS = CONST["FNET_NUM_ARGS"]
NUM_VARS = CONST["FNET_NUM_VARS"]
MAX_RECORD = CONST["FNET_MAX_RECORD"]
DEFAULT_SNAPLEN = CONST["FNET_DEFAULT_SNAPLEN"]
NUM_EVENT_TYPES = CONST["FNET_NUM_EVENT_TYPES"]
RF_FAULT = CONST["FNET_RF_FAULT"]
RF_TRUNC = CONST["FNET_RF_TRUNC"]
RF_COMPAT = CONST["FNET_RF_COMPAT"]
HDR_DTYPE = DTYPES["fnet_event_hdr"]
SOCKADDR_DTYPE = DTYPES["fnet_sockaddr"]
if SIZEOF["fnet_event_hdr"] != HDR_SIZE:  # pragma: no cover
    raise ImportError(f"falconet_abi.h: FNET_HDR_SIZE {HDR_SIZE} != sizeof(struct fnet_event_hdr) "
                      f"{SIZEOF['fnet_event_hdr']}")

# --- ioctl numbers (section 3): computed from the header's _IO/_IOR/_IOW/_IOWR lines ------------
# (asm-generic/ioctl.h encoding: dir << 30 | size << 16 | type << 8 | nr)
_IOC_DIR = {"": 0, "W": 1, "R": 2, "WR": 3}
_m_magic = re.search(r"#define FNET_IOC_MAGIC '(.)'", _TEXT)
IOC_MAGIC = ord(_m_magic.group(1)) if _m_magic else 0
IOCTL: dict[str, int] = {}
for _ioc_name, _ioc_dir, _ioc_nr, _ioc_struct in re.findall(
        r"#define FNET_IOC_(\w+)\s+_IO(WR|R|W)?\(FNET_IOC_MAGIC,\s*(\d+)(?:,\s*struct (\w+))?\)",
        _TEXT):
    _size = SIZEOF[_ioc_struct] if _ioc_struct else 0
    IOCTL[_ioc_name] = (_IOC_DIR[_ioc_dir] << 30) | (_size << 16) | (IOC_MAGIC << 8) | int(_ioc_nr)

# --- layout hash (section 4 of the header) -----------------------------------------------------

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1


def _fnv_u32(h: int, v: int) -> int:
    for i in range(4):
        h ^= (v >> (8 * i)) & 0xFF
        h = (h * _FNV_PRIME) & _MASK
    return h


def layout_hash(structs: dict | None = None, sizeof: dict | None = None) -> int:
    """FNV-1a over (sizeof, offsetof, sizeof field) for FNET_LAYOUT_FIELDS, then the version."""
    structs = STRUCTS if structs is None else structs
    sizeof = SIZEOF if sizeof is None else sizeof
    m = re.search(r"#define FNET_LAYOUT_FIELDS\(X\)(.*?)\n\n", _TEXT, re.S)
    assert m is not None
    h = _FNV_OFFSET
    for sname, fname in re.findall(r"X\((\w+),\s*(\w+)\)", m.group(1)):
        field = next(f for f in structs[sname] if f[0] == fname)
        h = _fnv_u32(h, sizeof[sname])
        h = _fnv_u32(h, field[3])
        h = _fnv_u32(h, field[4])
    return _fnv_u32(h, ABI_VERSION)


LAYOUT_HASH = layout_hash()

# --- event table (section 5) ------------------------------------------------------------------


@dataclass(frozen=True)
class EventType:
    """One row of FNET_EVENT_TABLE: the numeric and variable slots' Falco argument names."""

    name: str            # C name, e.g. "OPENAT"
    num: int             # FNET_EV_* value
    falco: str           # Falco's evt.type, e.g. "openat"
    category: str        # FILE, PROC, NET, CRED, SYS
    args: tuple[str, ...]   # names of arg[0..5] ("" unused)
    vars: tuple[str, ...]   # names of v0..v5 ("" unused)

    def slot(self, argname: str) -> tuple[str, int] | None:
        """('a', i) or ('v', i) for a Falco argument name, or None if this type lacks it."""
        if argname in self.args:
            return ("a", self.args.index(argname))
        if argname in self.vars:
            return ("v", self.vars.index(argname))
        return None


_EV_RE = re.compile(
    r'FNET_EVENT\((\w+),\s*(\d+),\s*"(\w+)",\s*FNET_CAT_(\w+),\s*' + r',\s*'.join(['"(\\w*)"'] * 12) + r'\)')
EVENTS: list[EventType] = [
    EventType(m[0], int(m[1]), m[2], m[3], tuple(m[4:10]), tuple(m[10:16]))
    for m in _EV_RE.findall(_TEXT)
]
BY_NUM: dict[int, EventType] = {e.num: e for e in EVENTS}
BY_NAME: dict[str, EventType] = {e.falco: e for e in EVENTS}
EV: dict[str, int] = {e.name: e.num for e in EVENTS}
if not EVENTS or max(BY_NUM) >= NUM_EVENT_TYPES:  # pragma: no cover
    raise ImportError("falconet_abi.h: event table empty or numbers exceed FNET_NUM_EVENT_TYPES")

# Lookup arrays for vectorized code: is this type number known?
KNOWN_TYPE = np.zeros(NUM_EVENT_TYPES, dtype=bool)
KNOWN_TYPE[list(BY_NUM)] = True
