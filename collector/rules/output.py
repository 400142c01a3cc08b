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
        body = text.removeprefix("*")
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
        """Alerts for ``rows`` of ``batch`` (already in event order), built column-wise: the
        text of each field is made once per distinct value, each line by one join."""
        from .plan import row_view
        n = len(rows)
        sub = row_view(batch, rows)
        cells = {key: _cells(sub, _extract(sub, expr), expr) for key, expr in self.exprs.items()}
        columns = [[p] * n if p.__class__ is str else [c[0] for c in cells[p[0]]]
                   for p in self.pieces]
        outputs = ["".join(parts) for parts in zip(*columns)]
        keys = list(cells) + [self.time_field]
        ts = (batch.cols["ts"][rows] + np.uint64(batch.boot_ns)).tolist()
        jcols = [[c[1] for c in cells[k]] for k in keys[:-1]] + [ts]
        tags = tuple(rule.tags)
        name, prio, source = rule.name, rule.priority, rule.source
        return [Alert(time_ns=t, rule=name, priority=prio, output=o, output_fields=dict(zip(keys, vals)),
                      source=source, tags=tags, hostname=hostname)
                for t, o, vals in zip(ts, outputs, zip(*jcols))]


def _base(e):
    while isinstance(e, Transform):
        e = e.inner
    return e


def _extract(batch, expr):
    """(kind, data, valid, ftype) of a field expression over a (small) batch."""
    from .plan import Ctx, LutCache, eval_expr  # transformers share the plan's code
    ctx = Ctx(batch, None)
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


_NA_CELL = (NA_TEXT, None)


def _cells(batch, col, expr) -> list:
    """(text, JSON value) per row, as Falco renders them: each cell is made once per
    distinct value and the rows pick theirs (one dict lookup each, in C via ``map``)."""
    kind, data, valid, ftype = col
    n = len(data)
    if data.ndim == 2:        # multi-valued: the first present value
        vm = valid if valid is not None else (data != 0 if kind == "str" else np.ones(data.shape, bool))
        first = vm.argmax(axis=1)
        valid = vm.any(axis=1)
        data = data[np.arange(n), first]
    dl = data.tolist()
    if valid is not None and not valid.all():
        for i in np.flatnonzero(~valid).tolist():
            dl[i] = None
    memo: dict = {None: _NA_CELL}
    new = set(dl)
    new.discard(None)
    if kind == "str":
        text = batch.strings.text
        for x in new:
            if x == 0:
                memo[x] = _NA_CELL
            else:
                t = text(x)
                memo[x] = (t, t)
    elif kind == "bool":
        for x in new:
            memo[x] = ("true", True) if x else ("false", False)
    else:
        name = _base(expr).fdef.name if isinstance(expr, FieldRef) else ""
        fmt = _TIME_FMT.get(name)
        as_str = kind_of(ftype) == "str"
        for x in new:
            v = int(x)
            if fmt is not None:
                memo[x] = (fmt(v), v)
            else:
                t = str(v)
                memo[x] = (t, t if as_str else v)
    return list(map(memo.__getitem__, dl))


def suggested_suffix() -> str:
    """The container plugin's suggested output fields (Falco's ``suggested_output``)."""
    if fields.lookup("container.id") and fields.lookup("container.name"):
        return " container_id=%container.id container_name=%container.name"
    return ""
