"""Reading captures with ``sysdig -r`` and rendering Falconet rows the way sysdig prints them,
for the differential tests.  sysdig (Debian 0.29.3) skips procinfo events when printing and
omits lines with a missing field unless the format starts with ``*``."""

from __future__ import annotations

import functools
import gzip
import ipaddress
import json
import re
import shutil
import struct
import subprocess

from collector.sources.scap_ppm import EC, EVENTS

SYSDIG = shutil.which("sysdig")
FIELDS = ("num", "type", "dir", "tid", "pid", "proc", "fd", "rawres", "args")
FORMAT = "*" + "\t".join(f"%{f}" for f in (
    "evt.num", "evt.type", "evt.dir", "thread.tid", "proc.pid", "proc.name", "fd.name",
    "evt.rawres", "evt.args"))

# evt.type names of events that are not system calls (they take no part in enter/exit pairs)
NOT_SYSCALL = {e[1] for e in EVENTS if not e[4] & EC["SYSCALL"]} | {"switch"}
PARAM_NAMES = {e[1]: set() for e in EVENTS}
for _e in EVENTS:
    PARAM_NAMES[_e[1]].update(p[0] for p in _e[5])


# sysdig 0.29.3's event table ends before USER_ADDED_E (354): like every libscap it skips
# event types beyond its table and does not number them.  Falconet numbers every event block,
# as current libs do; codes 296..353 occur in none of the captures, so any bound in
# (295, 354] describes sysdig 0.29.3 here.
SYSDIG_EVENT_MAX = 354
EV_BLOCKS = (0x204, 0x8010ABCD, 0x216, 0x221, 0x208, 0x217, 0x222)


def print_formats(shared_table: str) -> dict[tuple[str, str], str]:
    """(evt.type, param) -> PF_* print format, from the reference event table."""
    with open(shared_table, encoding="utf-8") as f:
        d = json.load(f)
    out = {}
    for e in d["events"].values():
        for p in e["params"]:
            out.setdefault((e["name"], p["name"]), p["fmt"])
    return out


def event_codes(path: str) -> list[int]:
    """The event type code of every event block, in file order (a plain test-side scan)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    pos, out = 0, []
    while pos + 8 <= len(data):
        code, total = struct.unpack_from("<II", data, pos)
        if code in EV_BLOCKS:
            p = pos + 10 + (4 if code in (0x208, 0x217, 0x222) else 0)
            out.append(struct.unpack_from("<H", data, p + 20)[0])
        pos += total
    return out


def sysdig_numbers(path: str) -> dict[int, int]:
    """Falconet evt.num -> sysdig 0.29's evt.num (which skips types beyond its table)."""
    out, n = {}, 0
    for i, c in enumerate(event_codes(path), 1):
        if c < SYSDIG_EVENT_MAX:
            n += 1
            out[i] = n
    return out


class SysdigError(Exception):
    pass


@functools.lru_cache(maxsize=64)
def run(path: str, filt: str = "") -> tuple[tuple[str, ...], ...]:
    """sysdig's lines for a capture (and an optional filter), each split into FIELDS."""
    cmd = [SYSDIG, "-r", path, "-p", FORMAT] + ([filt] if filt else [])
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300,
                       check=False)
    if r.returncode != 0:
        raise SysdigError((r.stderr or r.stdout).strip()[:300])
    out = []
    for line in r.stdout.split("\n"):
        if not line.strip():
            continue
        parts = line.split("\t", len(FIELDS) - 1)
        if len(parts) != len(FIELDS) or not parts[0].isdigit():
            raise SysdigError(f"unexpected sysdig line: {line[:200]!r}")
        out.append(tuple(parts))
    return tuple(out)


def nums(path: str, filt: str) -> set[int]:
    return {int(x[0]) for x in run(path, filt)}


def parse_args(evtype: str, text: str) -> dict[str, str]:
    """``name=value name=value`` of evt.args, split at the event's known parameter names."""
    names = PARAM_NAMES.get(evtype) or set()
    if not names:
        return {}
    pat = re.compile(r"(?:^| )(" + "|".join(sorted(map(re.escape, names), key=len,
                                                     reverse=True)) + r")=")
    marks = [(m.start(1), m.end(), m.group(1)) for m in pat.finditer(text)]
    out = {}
    for i, (_s, vstart, name) in enumerate(marks):
        vend = marks[i + 1][0] - 1 if i + 1 < len(marks) else len(text)
        out.setdefault(name, text[vstart:vend].rstrip(" "))
    return out


def leading_int(v: str, fmt: str = "PF_DEC") -> int | None:
    tok = v.split("(", 1)[0].strip()
    try:
        if fmt == "PF_HEX":
            return int(tok, 16)
        if fmt == "PF_OCT":
            return int(tok, 8)
        return int(tok)
    except ValueError:
        try:
            return int(tok, 16)
        except ValueError:
            return None


def flag_names(v: str) -> set[str]:
    m = re.search(r"\((.*)\)\s*$", v)
    return set(m.group(1).split("|")) if m else set()


def printable(b: bytes) -> str:
    """A byte string as sysdig prints it: non-printable bytes as '.'."""
    return "".join(chr(c) if 32 <= c < 127 else "." for c in b)


def same_text(ours: str, theirs: str) -> bool:
    """Equal, or sysdig truncated its rendering ("..." suffix)."""
    if theirs.endswith("...") and not ours.endswith("..."):
        return ours.startswith(theirs[:-3])
    return ours == theirs


def sockaddr_text(b: bytes | None) -> str | None:
    """struct fnet_sockaddr bytes as sysdig prints an address: ip:port, or a unix path."""
    if b is None or len(b) < 4:
        return None
    fam = int.from_bytes(b[0:2], "little")
    port = int.from_bytes(b[2:4], "little")
    if fam == 2 and len(b) >= 8:
        return f"{ipaddress.IPv4Address(b[4:8])}:{port}"
    if fam == 10 and len(b) >= 20:
        return f"{ipaddress.IPv6Address(b[4:20]).compressed}:{port}"
    if fam == 1:
        return printable(b[4:])
    return None
