"""Turning what arrives into stored records: falcosidekick's payload check, Falco's JSON
time format, and :class:`collector.alert.Alert` objects from an in-process ``falconet run``.

A *record* is the plain dict the store keeps::

    {"uuid", "time_ns", "priority" (0..7, Falco's order), "rule", "source", "hostname",
     "output", "output_fields" (dict), "tags" (sorted list of str)}

:func:`parse_payload` accepts exactly what falcosidekick's ``FalcoPayload.Check()`` accepts
(priority that parses case-insensitively, ``info`` included; non-empty ``rule``; non-zero
``time``; non-empty ``output_fields``) and also falcosidekick's WebUI envelope
``{"event": {...}, "outputs": [...]}``, so either Falco's ``http_output`` or falcosidekick's
``webui`` output can point at ``falconet ui``.
"""

from __future__ import annotations

import calendar
import json
import re
import uuid as uuidlib
from typing import Any

from ..alert import Alert, Priority, format_time_json

SIDEKICK_MESSAGE = "Please send a valid request body"

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$")
# Falco's text prefix: "17:15:03.434319636: Warning " or an ISO-8601 time, then the priority.
_PREFIX = re.compile(
    r"^(?:\d{2}:\d{2}:\d{2}\.\d{9}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}(?:Z|[+-]\d{4}|[+-]\d{2}:\d{2})?)"
    r": (?:Emergency|Alert|Critical|Error|Warning|Notice|Informational|Debug) ")


class PayloadError(ValueError):
    """A rejected payload; ``str()`` is the reason given after falcosidekick's message."""


def parse_time(text: Any) -> int:
    """Nanoseconds since the epoch from an RFC 3339 time; 0 for Go's zero time.

    Raises PayloadError for anything that is not an RFC 3339 string.
    """
    if not isinstance(text, str):
        raise PayloadError(f"time must be an RFC 3339 string, got {type(text).__name__}")
    m = _RFC3339.match(text.strip())
    if not m:
        raise PayloadError(f"time {text!r} is not an RFC 3339 time (e.g. 2025-04-02T15:15:03.434319636Z)")
    y, mo, d, h, mi, s = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
            raise ValueError
    except (ValueError, OverflowError):
        raise PayloadError(f"time {text!r} is not a valid date and time") from None
    frac = (m.group(7) or "").ljust(9, "0")
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60
        secs -= offset if m.group(9) == "+" else -offset
    if y == 1 and mo == 1 and d == 1 and h == mi == s == 0 and int(frac) == 0:
        return 0
    return secs * 1_000_000_000 + int(frac)


def strip_prefix(output: str) -> str:
    """Falco's ``output`` without its ``<time>: <Priority> `` prefix (the ``message``)."""
    return _PREFIX.sub("", output, count=1)


def _opt_str(payload: dict, key: str, default: str) -> str:
    value = payload.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise PayloadError(f"{key} must be a string, got {type(value).__name__}")
    return value


def parse_payload(body: bytes | str) -> dict[str, Any]:
    """Validate one alert as falcosidekick does and return a record.

    Raises PayloadError with the reason (the HTTP layer answers 400
    ``Please send a valid request body: <reason>``).
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError(f"body is not JSON ({e})") from None
    if isinstance(payload, dict) and isinstance(payload.get("event"), dict) and "rule" not in payload:
        payload = payload["event"]           # falcosidekick's WebUI envelope
    if not isinstance(payload, dict):
        raise PayloadError("body must be one JSON object (one alert per request)")

    raw_priority = payload.get("priority")
    if raw_priority in (None, ""):
        raise PayloadError("priority is missing")
    if not isinstance(raw_priority, str):
        raise PayloadError("priority must be a string such as \"Warning\"")
    try:
        priority = Priority.parse(raw_priority)
    except ValueError as e:
        raise PayloadError(str(e)) from None

    rule = payload.get("rule")
    if not isinstance(rule, str) or not rule.strip():
        raise PayloadError("rule is missing or empty")

    if payload.get("time") in (None, ""):
        raise PayloadError("time is missing")
    time_ns = parse_time(payload["time"])
    if time_ns == 0:
        raise PayloadError("time is zero")

    fields = payload.get("output_fields")
    if fields is None or fields == {}:
        raise PayloadError("output_fields is missing or empty (Falco needs json_output: true and "
                           "json_include_output_fields_property: true)")
    if not isinstance(fields, dict):
        raise PayloadError("output_fields must be a JSON object")

    tags = payload.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise PayloadError("tags must be a list of strings")

    given = payload.get("uuid")
    try:
        event_id = str(uuidlib.UUID(given)) if isinstance(given, str) and given else str(uuidlib.uuid4())
    except ValueError:
        event_id = str(uuidlib.uuid4())

    output = _opt_str(payload, "output", "")
    if not output:
        output = _opt_str(payload, "message", "")
    return {
        "uuid": event_id,
        "time_ns": time_ns,
        "priority": int(priority),
        "rule": rule,
        "source": _opt_str(payload, "source", "") or "syscall",
        "hostname": _opt_str(payload, "hostname", ""),
        "output": output,
        "output_fields": fields,
        "tags": sorted({t for t in tags if t}),
    }


def record_from_alert(alert: Alert) -> dict[str, Any]:
    """A record from an in-process alert (``falconet run`` feeding the UI directly)."""
    return {
        "uuid": str(uuidlib.uuid4()),
        "time_ns": int(alert.time_ns),
        "priority": int(alert.priority),
        "rule": alert.rule,
        "source": alert.source or "syscall",
        "hostname": alert.hostname,
        "output": alert.text_line(),
        "output_fields": dict(alert.output_fields),
        "tags": sorted({t for t in alert.tags if t}),
    }


def falco_json(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as Falco's JSON alert (plus ``uuid``), for export."""
    return {
        "hostname": record["hostname"],
        "output": record["output"],
        "output_fields": record["output_fields"],
        "priority": Priority(record["priority"]).label,
        "rule": record["rule"],
        "source": record["source"],
        "tags": list(record["tags"]),
        "time": format_time_json(record["time_ns"]),
        "uuid": record["uuid"],
    }
