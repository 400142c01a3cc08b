"""Alerts: what a rule match becomes, and Falco's text and JSON renderings of it.

An :class:`Alert` is the only thing the engine hands to outputs (stdout, file, program,
HTTP, gRPC, the web UI).  Its two renderings follow Falco exactly:

* text line:  ``<time>: <Priority> <output>``  where ``<time>`` is local ``HH:MM:SS.nnnnnnnnn``
  (or ISO-8601 with ``time_format_iso_8601``);
* JSON line:  keys sorted as nlohmann::json sorts them: ``hostname``, ``output``,
  ``output_fields``, ``priority``, ``rule``, ``source``, ``tags``, ``time`` (UTC ISO-8601 with
  nine fractional digits and ``Z``).  ``output`` carries the full text line.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from typing import Any


class Priority(enum.IntEnum):
    """Falco's severities; a lower value is more severe (as in Falco's enum)."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7

    @property
    def label(self) -> str:
        """The capitalised name Falco prints (``Warning``, ``Informational``...)."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> "Priority":
        """Parse a priority as Falco does: case-insensitive, ``info`` accepted.

        Raises ValueError naming the accepted values.
        """
        key = str(text).strip().upper()
        if key == "INFO":
            key = "INFORMATIONAL"
        try:
            return cls[key]
        except KeyError:
            names = ", ".join(p.label for p in cls)
            raise ValueError(f"unknown priority {text!r} (expected one of: {names})") from None


def format_time_text(ts_ns: int, iso8601: bool = False) -> str:
    """Falco's prefix time: local ``HH:MM:SS.nnnnnnnnn`` or ISO-8601 with offset."""
    sec, nsec = divmod(int(ts_ns), 1_000_000_000)
    lt = time.localtime(sec)
    if iso8601:
        return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{nsec:09d}" + time.strftime("%z", lt)
    return time.strftime("%H:%M:%S", lt) + f".{nsec:09d}"


def format_time_json(ts_ns: int) -> str:
    """Falco's JSON ``time``: UTC ``%FT%T.nnnnnnnnnZ``."""
    sec, nsec = divmod(int(ts_ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{nsec:09d}Z"


@dataclass(slots=True)
class Alert:
    """One alert.

    ``output`` is the rendered rule output *without* the time/priority prefix (Falco's
    ``message``); :meth:`text_line` adds the prefix.  ``output_fields`` maps every ``%field`` of
    the rule's output (plus ``evt.time``) to its typed value, ``None`` where Falco prints
    ``<NA>``.  ``seq`` is assigned by the alert dispatcher (monotonic per process, used by gRPC
    resume); 0 means not yet assigned.
    """

    time_ns: int
    rule: str
    priority: Priority
    output: str
    output_fields: dict[str, Any] = field(default_factory=dict)
    source: str = "syscall"
    tags: tuple[str, ...] = ()
    hostname: str = ""
    seq: int = 0

    def text_line(self, iso8601: bool = False) -> str:
        """The line Falco prints with ``json_output: false``."""
        return f"{format_time_text(self.time_ns, iso8601)}: {self.priority.label} {self.output}"

    def json_dict(
        self,
        iso8601: bool = False,
        include_output: bool = True,
        include_tags: bool = True,
        include_output_fields: bool = True,
        include_message: bool = False,
    ) -> dict[str, Any]:
        """Falco's JSON object (keys as Falco emits them; ``json_include_*`` honoured)."""
        d: dict[str, Any] = {"hostname": self.hostname}
        if include_output:
            d["output"] = self.text_line(iso8601)
        if include_message:
            d["message"] = self.output
        if include_output_fields:
            d["output_fields"] = dict(self.output_fields)
        d["priority"] = self.priority.label
        d["rule"] = self.rule
        d["source"] = self.source
        if include_tags:
            d["tags"] = sorted(self.tags)
        d["time"] = format_time_json(self.time_ns)
        return d

    def json_line(self, iso8601: bool = False, **include: bool) -> str:
        """One JSON line, compact separators, keys in Falco's (sorted) order."""
        return json.dumps(self.json_dict(iso8601, **include), separators=(",", ":"),
                          sort_keys=True, ensure_ascii=False)
