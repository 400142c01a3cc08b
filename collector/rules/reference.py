"""The slow scalar reference evaluator: one event at a time, written for clarity.

For tests only (the vectorized plans in :mod:`plan` must agree with it on every condition
and batch) and as the baseline of benchmarks/bench_rules.py.  Field values are extracted
once per batch through the registry (extraction is not what is being checked); everything
after that, operators, absent values, transformers, ``val()``, ancestors, boolean logic, is
plain Python per event.

Semantics (Falco's): a comparison whose field has no value is false (``!=`` too), ``not``
negates that, ``exists`` is true iff the field has a value.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re

from .. import fields
from .check import ANCESTOR_FIELDS, MAX_ANCESTORS, b64
from .parser import And, Cmp, FieldRef, Not, Or, Transform


class Row:
    """Field values of one event, looked up lazily from per-batch extractions."""

    def __init__(self, ev: Evaluator, i: int):
        self.ev = ev
        self.i = i


class Evaluator:
    def __init__(self, batch):
        self.batch = batch
        self.strings = batch.strings
        self._cache: dict = {}

    def _field(self, name: str, key):
        k = (name, key)
        v = self._cache.get(k)
        if v is None:
            vals = fields.extract(self.batch, name, key)
            v = (vals.kind, vals.data, vals.valid_mask())
            self._cache[k] = v
        return v

    def raw(self, ref: FieldRef, i: int, key=None):
        """Python value of a field at row i (bytes for strings, int, bool), None when
        absent, or a list of the present values for a multi-valued (2-D) field."""
        kind, data, valid = self._field(ref.fdef.name, ref.key if key is None else key)
        conv = (lambda x: self.strings.get(x)) if kind == "str" else bool if kind == "bool" else int
        if data.ndim == 2:
            return [conv(data[i, j].item()) for j in range(data.shape[1]) if valid[i, j]]
        if not valid[i]:
            return None
        return conv(data[i].item())

    def value(self, expr, i: int, key=None):
        if isinstance(expr, Transform):
            v = self.value(expr.inner, i, key)
            if isinstance(v, list):
                return [y for y in (self._transform(expr, x) for x in v) if y is not None]
            return None if v is None else self._transform(expr, v)
        return self.raw(expr, i, key)

    def _transform(self, expr, v):
        if expr.fn == "len":
            return len(v) if isinstance(v, (bytes, str)) else len(str(v).encode())
        s = _text(v) if isinstance(v, bytes) else (str(v).lower() if isinstance(v, bool) else str(v))
        if expr.fn == "tolower":
            s = s.lower()
        elif expr.fn == "toupper":
            s = s.upper()
        elif expr.fn == "basename":
            s = s.rsplit("/", 1)[-1]
        elif expr.fn == "b64":
            s = b64(s)
            if s is None:
                return None
        return s.encode("utf-8", "surrogateescape")

    def run(self, node, i: int) -> bool:
        if isinstance(node, And):
            return all(self.run(x, i) for x in node.items)
        if isinstance(node, Or):
            return any(self.run(x, i) for x in node.items)
        if isinstance(node, Not):
            return not self.run(node.item, i)
        return self.cmp(node, i)

    def cmp(self, c: Cmp, i: int) -> bool:
        base = c.lhs
        while isinstance(base, Transform):
            base = base.inner
        if base.fdef.name in ANCESTOR_FIELDS and base.key is None:
            # any ancestor: parent, grandparent ... up to the first missing level
            for level in range(1, MAX_ANCESTORS + 1):
                if self.raw(base, i, str(level)) in (None, []):
                    return False
                if self.cmp_one(c, self.value(c.lhs, i, str(level)), i):
                    return True
            return False
        return self.cmp_one(c, self.value(c.lhs, i), i)

    def cmp_one(self, c: Cmp, v, i: int) -> bool:
        if isinstance(v, list):          # multi-valued: true if true for any value
            if c.op == "exists":
                return len(v) > 0
            return any(self.cmp_value(c, x, i) for x in v)
        return self.cmp_value(c, v, i)

    def cmp_value(self, c: Cmp, v, i: int) -> bool:
        op = c.op
        if op == "exists":
            return v is not None
        if v is None:
            return False
        if isinstance(c.values, (FieldRef, Transform)):
            w = self.value(c.values, i)
            if isinstance(w, list):
                return any(self._cmp_with(c, v, x, i) for x in w)
            if w is None:
                return False
            return self._cmp_with(c, v, w, i)
        return self._cmp_values(c, v, c.values)

    def _cmp_with(self, c: Cmp, v, w, i: int) -> bool:
        values = (_text(w) if isinstance(w, bytes) else w,)
        if isinstance(w, bytes) and c.op in ("bcontains", "bstartswith"):
            values = (w,)
        return self._cmp_values(c, v, values)

    def _cmp_values(self, c: Cmp, v, values) -> bool:
        op = c.op
        if isinstance(v, bytes) and c.kind in ("str", "ip"):
            if op in ("bcontains", "bstartswith"):
                b = v
                return any((x in b) if op == "bcontains" else b.startswith(x) for x in values)
            s = _text(v)
            if c.kind == "ip":
                return _ip_cmp(op, s, values)
            return _str_cmp(op, s, values)
        if isinstance(v, bytes):     # a str-typed runtime value compared as a number
            try:
                v = int(_text(v), 0)
            except ValueError:
                return False
        if c.kind == "str":
            return _str_cmp(op, str(int(v)) if not isinstance(v, bool) else str(v).lower(),
                            tuple(str(x) for x in values))
        return _num_cmp(op, v, values)


def _text(b) -> str:
    if isinstance(b, str):
        return b
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("utf-8", "backslashreplace")


def _str_cmp(op: str, s: str, values) -> bool:
    if op == "=":
        return s == values[0]
    if op == "!=":
        return s != values[0]
    if op in ("in", "intersects"):
        return s in values
    if op == "contains":
        return values[0] in s
    if op == "icontains":
        return values[0].lower() in s.lower()
    if op == "startswith":
        return s.startswith(values[0])
    if op == "endswith":
        return s.endswith(values[0])
    if op == "glob":
        return fnmatch.fnmatchcase(s, values[0])
    if op == "iglob":
        return fnmatch.fnmatchcase(s.lower(), values[0].lower())
    if op == "regex":
        return re.fullmatch(values[0], s) is not None
    if op == "pmatch":
        for p in values:
            if p == "/" and s.startswith("/"):
                return True
            if s == p or s.startswith(p + "/"):
                return True
        return False
    if op == "<":
        return s < values[0]
    if op == "<=":
        return s <= values[0]
    if op == ">":
        return s > values[0]
    if op == ">=":
        return s >= values[0]
    raise ValueError(op)  # pragma: no cover


def _num_cmp(op: str, v, values) -> bool:
    x = values[0]
    if op == "=":
        return v == x
    if op == "!=":
        return v != x
    if op in ("in", "intersects"):
        return v in values
    if op == "<":
        return v < x
    if op == "<=":
        return v <= x
    if op == ">":
        return v > x
    if op == ">=":
        return v >= x
    raise ValueError(op)  # pragma: no cover


def _ip_cmp(op: str, s: str, values) -> bool:
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return False
    hit = any(a.version == n.version and a in n for n in values)
    return (not hit) if op == "!=" else hit


def evaluate(ast, batch) -> list[bool]:
    """The reference result of a checked condition on every row of a batch."""
    ev = Evaluator(batch)
    return [ev.run(ast, i) for i in range(batch.n)]


def is_pure() -> bool:
    return bool(os.environ.get("FALCONET_PUREPYTHON"))
