"""Rule outputs: Falco's ``%field`` format strings, compiled once, rendered per alert.

Syntax (libsinsp ``eventformatter.cpp``): ``%field``, ``%field[arg]``, ``%evt.arg.NAME``,
``%tolower(field)`` (any transformer), ``%<N>field`` (a width, accepted and ignored as Falco
ignores it for alerts).  A leading ``*`` is dropped (Falco always renders with ``*``):
missing values print ``<NA>`` and are ``null`` in ``output_fields``.  Values render as
Falco renders them: ``evt.time`` as local ``HH:MM:SS.nnnnnnnnn``, ``evt.time.iso8601`` /
``evt.datetime`` as dates, numbers in decimal, booleans ``true``/``false``.  In
``output_fields`` numbers stay JSON numbers (times as nanoseconds), strings stay strings.
"""

from __future__ import annotations

import re
import time

import numpy as np

from .. import fields
from ..alert import Alert, format_time_text
from .check import CheckError, FixedSrc, expr_type, kind_of
from .parser import FieldRef, ParseError, Transform, parse_field_expr

_TOKEN = re.compile(
    r"%(\d+)?((?:tolower|toupper|b64|basename|len)\s*\([^()]*(?:\([^()]*\)[^()]*)*\)"
    r"|[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)+(?:\[[^\]]*\])?)")

NA_TEXT = "<NA>"


class OutputFormat:
    """A compiled output: literal pieces and field expressions."""

    def __init__(self, text: str, pos, time_field: str = "evt.time"):
        self.text = text
        body = text[1:] if text.startswith("*") else text
        self.pieces: list = []      # str | (key, expr)
        self.exprs: dict = {}       # key -> expr
        last = 0
        src = FixedSrc(pos, text)
        for m in _TOKEN.finditer(body):
            self.pieces.append(body[last:m.start()])
            key = m.group(2)
            try:
                expr = parse_field_expr(key, src)
            except ParseError as e:
                raise CheckError(src, 0, f"invalid output token '%{key}': {e.msg}") from None
            try:
                expr_type(expr)
            except CheckError as e:
                raise CheckError(src, 0, f"in output: {e.msg}") from None
            self.pieces.append((key, expr))
            self.exprs.setdefault(key, expr)
            last = m.end()
        self.pieces.append(body[last:])
        self.time_field = time_field

    def columns(self) -> set:
        out = set()
        for e in self.exprs.values():
            out.update(_base(e).fdef.columns)
        return out

    def render(self, batch, rows: np.ndarray, rule, hostname: str) -> list:
        """Alerts for ``rows`` of ``batch`` (already in event order)."""
        sub = batch.take(rows)
        cols = {}
        for key, expr in self.exprs.items():
            cols[key] = _extract(sub, expr)
        ts = sub.wall_ns()
        out = []
        tags = tuple(rule.tags)
        for i in range(sub.n):
            parts = []
            ofields = {}
            for p in self.pieces:
                if isinstance(p, str):
                    parts.append(p)
                    continue
                key, expr = p
                text, jval = _value(sub, cols[key], expr, i)
                parts.append(text)
                ofields[key] = jval
            t = int(ts[i])
            ofields[self.time_field] = t
            out.append(Alert(time_ns=t, rule=rule.name, priority=rule.priority,
                             output="".join(parts), output_fields=ofields, source=rule.source,
                             tags=tags, hostname=hostname))
        return out


def _base(e):
    while isinstance(e, Transform):
        e = e.inner
    return e


def _extract(batch, expr):
    """(kind, data, valid, ftype) of a field expression over a (small) batch."""
    from .plan import Ctx, LutCache, eval_expr  # transformers share the plan's code
    ctx = Ctx(batch, None, {})
    if isinstance(expr, FieldRef):
        kind, data, valid = ctx.field(expr.fdef.name, expr.key)
    else:
        kind, data, valid = eval_expr(ctx, expr, LutCache())
    return kind, data, valid, expr_type(expr)


_TIME_FMT = {
    "evt.time": lambda ns: format_time_text(ns),
    "evt.time.s": lambda ns: time.strftime("%H:%M:%S", time.localtime(ns // 1_000_000_000)),
    "evt.time.iso8601": lambda ns: format_time_text(ns, iso8601=True),
    "evt.datetime": lambda ns: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(
        ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}",
    "evt.datetime.s": lambda ns: time.strftime("%Y-%m-%d %H:%M:%S",
                                               time.localtime(ns // 1_000_000_000)),
}


def _value(batch, col, expr, i: int):
    """(text, JSON value) of one cell, as Falco renders them."""
    kind, data, valid, ftype = col
    if data.ndim == 2:        # multi-valued: the first present value
        row_valid = valid[i] if valid is not None else np.ones(data.shape[1], bool)
        js = np.flatnonzero(row_valid)
        if len(js) == 0:
            return NA_TEXT, None
        x = data[i, js[0]].item()
    elif valid is not None and not valid[i]:
        return NA_TEXT, None
    else:
        x = data[i].item()
    if kind == "str":
        if x == 0:
            return NA_TEXT, None
        t = batch.strings.text(x)
        return t, t
    if kind == "bool":
        return ("true" if x else "false"), bool(x)
    name = _base(expr).fdef.name if isinstance(expr, FieldRef) else ""
    fmt = _TIME_FMT.get(name)
    if fmt is not None:
        return fmt(int(x)), int(x)
    if kind_of(ftype) == "str":
        return str(int(x)), str(int(x))
    return str(int(x)), int(x)


def suggested_suffix() -> str:
    """The container plugin's suggested output fields (Falco's ``suggested_output``)."""
    if fields.lookup("container.id") and fields.lookup("container.name"):
        return " container_id=%container.id container_name=%container.name"
    return ""
