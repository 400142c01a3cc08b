"""One line per decoded event, in the spirit of `sysdig -r` output (debugging and demos).

    <num> <time> <cpu> <proc.name> (<tid>) < <evt.type> res=<ret> name=value ...

This loops over events in Python on purpose: it is a human-facing display, not a hot path.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from typing import TextIO

from . import abi, fields
from .alert import format_time_text
from .batch import NA, EventBatch

_SA = struct.Struct("<HH16s")


def render_sockaddr(raw: bytes) -> str:
    """struct fnet_sockaddr as text: 1.2.3.4:80, [::1]:22, /run/sock (falconet_abi.h)."""
    if len(raw) < 4:
        return raw.hex()
    family, port = struct.unpack_from("<HH", raw)
    if family == abi.CONST["FNET_AF_INET"] and len(raw) >= 8:
        return f"{ipaddress.IPv4Address(raw[4:8])}:{port}"
    if family == abi.CONST["FNET_AF_INET6"] and len(raw) >= 20:
        return f"[{ipaddress.IPv6Address(raw[4:20])}]:{port}"
    if family == abi.CONST["FNET_AF_UNIX"]:
        path = raw[4:]
        return ("@" + path[1:].decode("utf-8", "backslashreplace")) if path[:1] == b"\0" \
            else path.decode("utf-8", "backslashreplace")
    return f"family={family}"


_SOCK_SLOTS = {"addr", "laddr"}


class EventPrinter:
    """Callable on each batch; writes one line per event."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self.has_name = fields.lookup("proc.name") is not None

    def __call__(self, batch: EventBatch) -> None:
        s = batch.strings
        names = fields.extract(batch, "proc.name").data if self.has_name else None
        wall = batch.wall_ns()
        c = batch.cols
        lines = []
        for i in range(batch.n):
            et = abi.BY_NUM.get(int(c["type"][i]))
            tname = et.falco if et else f"type{int(c['type'][i])}"
            comm = s.text(int(names[i])) if names is not None and names[i] != NA else "<NA>"
            direction = ">" if "dir" in c and c["dir"][i] else "<"
            parts = [f"{int(c['num'][i])} {format_time_text(int(wall[i]))} {int(c['cpu'][i])} "
                     f"{comm} ({int(c['tid'][i])}) {direction} {tname} res={int(c['ret'][i])}"]
            if et is not None:
                for k, a in enumerate(et.args):
                    if a:
                        parts.append(f"{a}={int(c[f'a{k}'][i])}")
                for k, v in enumerate(et.vars):
                    sid = int(c[f"v{k}"][i])
                    if not v or sid == NA:
                        continue
                    raw = s.get(sid) or b""
                    if v in _SOCK_SLOTS:
                        parts.append(f"{v}={render_sockaddr(raw)}")
                    else:
                        text = raw.replace(b"\0", b" ").decode("utf-8", "backslashreplace")
                        parts.append(f"{v}={text}")
            lines.append(" ".join(parts))
        if lines:
            self.out.write("\n".join(lines) + "\n")
