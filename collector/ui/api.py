"""The JSON API (read side).  The reference is static/API.md (served at /api/v1/docs).

Each function takes the store and the parsed query string and returns a JSON-able object;
bad parameters raise :class:`collector.ui.query.QueryError` (400).  Shapes follow
falcosidekick-ui's ``/api/v1/events/search``, ``/count`` and ``/count/{field}`` so that
scripts written for it need few changes.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from .. import __version__
from ..alert import Priority, format_time_json
from .ingest import falco_json, strip_prefix
from .query import GROUP_FIELDS, TEXT_MATCH_CAP, QueryError, page_params, parse_filters
from .settings import UISettings, parse_duration
from .store import Store

Params = Mapping[str, list[str]]
EXPORT_DEFAULT, EXPORT_MAX = 10_000, 100_000
CSV_COLUMNS = ("time", "priority", "rule", "source", "hostname", "tags", "output", "output_fields", "uuid")


def event_json(rec: dict[str, Any]) -> dict[str, Any]:
    """One stored alert as the API shows it."""
    return {
        "id": rec["id"], "uuid": rec["uuid"],
        "time": format_time_json(rec["time_ns"]), "time_ns": rec["time_ns"],
        "priority": Priority(rec["priority"]).label, "rule": rec["rule"],
        "source": rec["source"], "hostname": rec["hostname"],
        "output": rec["output"], "message": strip_prefix(rec["output"]),
        "output_fields": rec["output_fields"], "tags": rec["tags"],
    }


def event_detail(rec: dict[str, Any]) -> dict[str, Any]:
    """One alert for the detail view: also every field and the Falco JSON as exact text.

    JavaScript numbers lose digits past 2**53, and Falco's ``evt.time`` is a nanosecond
    count, so the browser shows these strings instead of re-serialising parsed values.
    """
    d = event_json(rec)
    d["fields_text"] = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                        for k, v in rec["output_fields"].items()}
    d["falco_json"] = json.dumps(falco_json(rec), ensure_ascii=False, indent=2, sort_keys=True)
    return d


def search(store: Store, params: Params) -> dict[str, Any]:
    f = parse_filters(params)
    page, limit = page_params(params)
    rows, total = store.search(f, page, limit)
    stats: dict[str, Any] = {"returned": len(rows), "all": total}
    if store.text_capped(f):
        stats["text_matches_capped"] = TEXT_MATCH_CAP
    return {"results": [event_json(r) for r in rows],
            "statistics": stats,
            "page": page, "limit": limit, "last_id": store.last_id()}


def count(store: Store, params: Params) -> dict[str, Any]:
    return {"statistics": {"all": store.count(parse_filters(params))}}


def count_by(store: Store, field: str, params: Params) -> dict[str, Any]:
    if field == "tag":
        field = "tags"
    if field not in GROUP_FIELDS:
        raise QueryError(f"cannot count by {field!r}; use one of: {', '.join(GROUP_FIELDS)}")
    f = parse_filters(params)
    _, limit = page_params(params, default_limit=1000, max_limit=10_000)
    pairs = store.count_by(field, f, limit)
    if field == "priority":
        pairs = [(Priority(v).label, n) for v, n in pairs]
    results = {str(v): n for v, n in pairs}
    return {"results": results,
            "statistics": {"all": sum(results.values()), "distincts": len(results)}}


def timeline(store: Store, params: Params) -> dict[str, Any]:
    """Counts per time bucket and priority over [from, to) (default: the last 24 hours)."""
    now = time.time_ns()
    f = parse_filters(params, now_ns=now)
    end = f.until_ns
    if end is None:     # open-ended, like the counts: alerts stamped ahead of our clock count too
        newest = store.max_time(f)
        end = max(now, newest + 1) if newest is not None else now
    start = f.since_ns if f.since_ns is not None else end - int(parse_duration("24h") * 1e9)
    if end <= start:
        raise QueryError("the time range is empty (from must be before to)")
    try:
        buckets = int((params.get("buckets") or ["60"])[-1])
    except ValueError:
        raise QueryError("buckets must be a whole number") from None
    buckets = max(1, min(buckets, 500))
    rows = store.timeline(f, start, end, buckets)
    series: dict[str, list[int]] = {}
    for b, p, n in rows:
        series.setdefault(Priority(p).label, [0] * buckets)[b] += n
    ordered = {Priority(p).label: series[Priority(p).label]
               for p in sorted(Priority) if Priority(p).label in series}
    step = max(1, -(-(end - start) // buckets))
    return {"start": format_time_json(start), "start_ns": start, "end_ns": end,
            "step_ns": step, "buckets": buckets, "series": ordered}


def info(store: Store, settings: UISettings, username: str) -> dict[str, Any]:
    return {
        "version": __version__, "user": username,
        "retention": {"max_age_s": settings.max_age_s, "max_events": settings.max_events},
        "store": store.stats(),
        "priorities": [p.label for p in Priority],
    }


def export_name(params: Params) -> tuple[str, str]:
    fmt = ((params.get("format") or ["json"])[-1] or "json").lower()
    if fmt not in ("json", "csv"):
        raise QueryError("format must be json or csv")
    return fmt, f"falco_events.{fmt}"


def _export_limit(params: Params) -> int:
    try:
        limit = int((params.get("limit") or [str(EXPORT_DEFAULT)])[-1])
    except ValueError:
        raise QueryError("limit must be a whole number") from None
    return max(1, min(limit, EXPORT_MAX))


def _csv_cell(value: str) -> str:
    """Defuse spreadsheet formulas: alert text is attacker-controlled."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export(store: Store, params: Params) -> Iterator[bytes]:
    """The current selection (newest first) as a JSON array of Falco alerts, or CSV."""
    fmt, _ = export_name(params)
    f = parse_filters(params)
    records = store.iter_records(f, _export_limit(params))
    if fmt == "json":
        yield b"["
        first = True
        for rec in records:
            yield (b"" if first else b",\n") + json.dumps(falco_json(rec), ensure_ascii=False).encode()
            first = False
        yield b"]\n"
        return
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for i, rec in enumerate(records):
        d = falco_json(rec)
        writer.writerow([_csv_cell(str(x)) for x in (
            d["time"], d["priority"], d["rule"], d["source"], d["hostname"], ",".join(d["tags"]),
            d["output"], json.dumps(d["output_fields"], ensure_ascii=False), d["uuid"])])
        if i % 200 == 199:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()
