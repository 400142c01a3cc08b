"""Filters for the API and the pages: parsed from a query string, turned into SQL.

The parameters follow falcosidekick-ui's ``/api/v1/events/search``:

``priority``, ``source``, ``hostname``, ``tags``
    comma-separated, OR within a parameter (``priority=Warning,Error``); may repeat.
``rule``
    exact rule name; may repeat (rule names can contain commas, so no splitting).
``filter``
    free text, matched as a case-insensitive substring of the rule and the output (among
    the newest TEXT_MATCH_CAP alerts whose text matches; texts under 3 characters scan).
``since``
    how far back from now (``5min``, ``24h``, ``1w``, ``3M``...).
``from``, ``to``
    an absolute range, RFC 3339 (``2025-04-02T15:00:00Z``) or seconds since the epoch.
``min_priority``
    this priority and every more severe one (``min_priority=warning``).
``after_id``
    only alerts stored after the one with this id (used by live updates).

The literal value ``null`` means "not set", as in falcosidekick-ui.  AND across parameters.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..alert import Priority
from .ingest import PayloadError, parse_time
from .settings import parse_duration

GROUP_FIELDS = ("priority", "rule", "source", "hostname", "tags")
# Free text looks at the most recently stored alerts whose text matches, at most this many:
# a word found in a quarter of a million alerts must not cost a second per page.
TEXT_MATCH_CAP = 10_000


class QueryError(ValueError):
    """A bad query parameter; the API answers 400 with the message."""


@dataclass
class Filters:
    priorities: list[int] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    text: str = ""
    since_ns: int | None = None
    until_ns: int | None = None
    after_id: int | None = None

    def to_query(self) -> dict[str, Any]:
        """The filters as query parameters (for links and exports)."""
        q: dict[str, Any] = {}
        if self.priorities:
            q["priority"] = ",".join(Priority(p).label for p in self.priorities)
        for key, values in (("source", self.sources), ("hostname", self.hostnames), ("tags", self.tags)):
            if values:
                q[key] = ",".join(values)
        if self.rules:
            q["rule"] = list(self.rules)
        if self.text:
            q["filter"] = self.text
        return q


def _values(params: Mapping[str, list[str]], key: str, split: bool = True) -> list[str]:
    out: list[str] = []
    for raw in params.get(key, []):
        parts = raw.split(",") if split else [raw]
        for part in parts:
            part = part.strip()
            if part and part != "null" and part not in out:
                out.append(part)
    return out


def _one(params: Mapping[str, list[str]], key: str) -> str:
    values = [v for v in params.get(key, []) if v.strip() and v.strip() != "null"]
    return values[-1].strip() if values else ""


def _abs_time(text: str, key: str) -> int:
    try:
        return int(float(text) * 1_000_000_000)
    except ValueError:
        pass
    try:
        ns = parse_time(text)
    except PayloadError as e:
        raise QueryError(f"{key}: {e}") from None
    return ns


def parse_filters(params: Mapping[str, list[str]], now_ns: int | None = None) -> Filters:
    """Filters from ``urllib.parse.parse_qs`` output.  Raises QueryError."""
    f = Filters()
    prios: set[int] = set()
    for value in _values(params, "priority"):
        try:
            prios.add(int(Priority.parse(value)))
        except ValueError as e:
            raise QueryError(f"priority: {e}") from None
    minimum = _one(params, "min_priority")
    if minimum:
        try:
            floor = int(Priority.parse(minimum))
        except ValueError as e:
            raise QueryError(f"min_priority: {e}") from None
        allowed = set(range(floor + 1))
        prios = (prios & allowed) if prios else allowed
        if not prios:
            prios = {-1}                      # nothing can match
    f.priorities = sorted(prios)
    f.rules = _values(params, "rule", split=False)
    f.sources = _values(params, "source")
    f.hostnames = _values(params, "hostname")
    f.tags = _values(params, "tags") + [t for t in _values(params, "tag") if t not in _values(params, "tags")]
    f.text = _one(params, "filter") or _one(params, "q")
    now_ns = time.time_ns() if now_ns is None else now_ns
    since = _one(params, "since")
    if since:
        try:
            f.since_ns = now_ns - int(parse_duration(since, "since") * 1_000_000_000)
        except ValueError as e:
            raise QueryError(str(e)) from None
    start = _one(params, "from")
    if start:
        f.since_ns = _abs_time(start, "from")
    end = _one(params, "to")
    if end:
        f.until_ns = _abs_time(end, "to")
    after = _one(params, "after_id")
    if after:
        try:
            f.after_id = int(after)
        except ValueError:
            raise QueryError(f"after_id: expected a whole number, got {after!r}") from None
    return f


def page_params(params: Mapping[str, list[str]], default_limit: int = 100,
                max_limit: int = 1000) -> tuple[int, int]:
    """(page >= 1, limit in 1..max_limit) from ``page`` and ``limit``."""
    try:
        page = int(_one(params, "page") or 1)
        limit = int(_one(params, "limit") or default_limit)
    except ValueError:
        raise QueryError("page and limit must be whole numbers") from None
    if page < 1:
        raise QueryError("page starts at 1")
    if limit < 1:
        raise QueryError("limit must be at least 1")
    return page, min(limit, max_limit)


def _in(column: str, values: Iterable[Any], params: list[Any]) -> str:
    values = list(values)
    params.extend(values)
    return f"{column} IN ({','.join('?' * len(values))})"


def fts_query(text: str) -> str:
    """An FTS5 phrase matching ``text`` as a substring (trigram tokenizer)."""
    return '"' + text.replace('"', '""') + '"'


def uses_fts(f: Filters, fts: bool) -> bool:
    return bool(f.text) and fts and len(f.text) >= 3


def where_sql(f: Filters, fts: bool) -> tuple[str, str, list[Any]]:
    """(FROM source, ``WHERE ...`` or "", parameters) over ``events`` aliased ``e``.

    With free text and the trigram index, the source is the newest TEXT_MATCH_CAP matches of
    the index joined to ``events`` (CROSS JOIN fixes that order), so cost stays bounded.
    """
    clauses: list[str] = []
    params: list[Any] = []
    source = "events e"
    if uses_fts(f, fts):
        source = ("(SELECT rowid AS id FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid DESC"
                  " LIMIT ?) m CROSS JOIN events e ON e.id = m.id")
        params += [fts_query(f.text), TEXT_MATCH_CAP]
    if f.priorities:
        clauses.append(_in("e.priority", f.priorities, params))
    if f.rules:
        clauses.append(_in("e.rule", f.rules, params))
    if f.sources:
        clauses.append(_in("e.source", f.sources, params))
    if f.hostnames:
        clauses.append(_in("e.hostname", f.hostnames, params))
    if f.tags:
        inner = [_in("tag", f.tags, params)]
        if f.since_ns is not None:       # the time range narrows the tag index too
            inner.append("time_ns >= ?")
            params.append(f.since_ns)
        if f.until_ns is not None:
            inner.append("time_ns < ?")
            params.append(f.until_ns)
        clauses.append("e.id IN (SELECT event_id FROM event_tags WHERE " + " AND ".join(inner) + ")")
    if f.text and not uses_fts(f, fts):
        pattern = "%" + f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(e.output LIKE ? ESCAPE '\\' OR e.rule LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    if f.since_ns is not None:
        clauses.append("e.time_ns >= ?")
        params.append(f.since_ns)
    if f.until_ns is not None:
        clauses.append("e.time_ns < ?")
        params.append(f.until_ns)
    if f.after_id is not None:
        clauses.append("e.id > ?")
        params.append(f.after_id)
    return source, ("WHERE " + " AND ".join(clauses)) if clauses else "", params
