"""Checked condition ASTs -> vectorized plans of numpy operations over batch columns.

A plan node evaluates on the rows of one event-type group of a batch (:class:`Ctx`), or on a
subset of them (``sel``, positions within the group): ``and``/``or`` narrow the rows they
pass on once few remain, so later comparisons touch only the rows still undecided (the
batch form of short-circuit evaluation).

String comparisons never look at strings per event.  Each distinct predicate (operator,
values, transformer chain) owns a boolean lookup table indexed by string id; the table is
extended for the ids interned since its last use, one Python call per new distinct string,
and kept across batches (:class:`LutCache`).  ``=``/``!=`` against one value compare ids
directly; ``in``/OR-of-equalities become one table lookup (set membership).  Transformers
(``tolower`` ...) are id -> id tables grown the same way.  Numbers are plain numpy
comparisons (``in`` is ``np.isin``).  A field without a value makes a comparison false,
``exists`` tests the valid mask.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import weakref

import numpy as np

from .. import fields
from ..batch import NA
from .check import ANCESTOR_FIELDS, MAX_ANCESTORS, b64
from .parser import And, Cmp, FieldRef, Not, Or, Transform, field_of, to_text

NARROW = 0.25     # narrow to an index once fewer than this fraction of rows stay undecided


class LazyCols(dict):
    """The columns of a subset of rows, gathered from the whole batch on first access."""

    def __init__(self, base: dict, rows: np.ndarray):
        super().__init__()
        self._base = base
        self._rows = rows

    def __missing__(self, k):
        base = self._base
        take = getattr(base, "take_rows", None)     # lazy state columns: gather rows only
        v = take(k, self._rows) if take is not None else base[k][self._rows]
        self[k] = v
        return v

    def __contains__(self, k) -> bool:
        return dict.__contains__(self, k) or k in self._base

    def get(self, k, default=None):  # dict.get would bypass __missing__
        return self[k] if k in self else default  # noqa: SIM401

    def _all(self) -> None:
        for k in self._base:
            if not dict.__contains__(self, k):
                self[k]

    def keys(self):
        self._all()
        return dict.keys(self)

    def values(self):
        self._all()
        return dict.values(self)

    def items(self):
        self._all()
        return dict.items(self)

    def __iter__(self):
        self._all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        return len(self._base)


def row_view(batch, rows: np.ndarray):
    """An EventBatch of ``rows`` whose columns are gathered only when an extractor reads them."""
    from ..batch import EventBatch
    v = EventBatch.__new__(EventBatch)
    v.cols = LazyCols(batch.cols, rows)
    v.strings = batch.strings
    v.n = len(rows)
    v.boot_ns = batch.boot_ns
    v.source = batch.source
    return v


class Ctx:
    """One event-type group of a batch.  Fields are extracted on the group's rows only (a
    lazy view: an extractor gathers just the columns it reads), once per group.  Fields
    that read 2-D columns (ancestor tables) of an eager batch are extracted once on the whole
    batch, where taking one level is a view, and only the result is gathered; a lazy state
    batch gathers the group's rows of them instead (LazyColumns.take_rows)."""

    __slots__ = ("batch", "full", "local", "n", "rows", "strings", "view")

    def __init__(self, batch, rows: np.ndarray | None, full: dict | None = None):
        self.batch = batch
        self.rows = rows
        self.n = batch.n if rows is None else len(rows)
        self.view = batch if rows is None else row_view(batch, rows)
        self.local: dict = {}     # (name, key) -> (kind, data, valid) for this group
        self.full = full if full is not None else {}   # per batch, shared by the groups
        self.strings = batch.strings

    def _wide(self, name: str) -> bool:
        """Whether the field reads a 2-D column (asked without computing lazy columns)."""
        k = ("\0wide", name)
        w = self.full.get(k)
        if w is None:
            cols = self.batch.cols
            if getattr(cols, "take_rows", None) is not None:
                w = False       # lazy state columns: gathering the rows is the cheap way
            else:
                w = any(c in cols and cols[c].ndim == 2 for c in fields.lookup(name).columns)
            self.full[k] = w
        return w

    def field(self, name: str, key):
        k = (name, key)
        got = self.local.get(k)
        if got is None:
            if self.rows is not None and self._wide(name):
                v = self.full.get(k)
                if v is None:
                    v = self.full[k] = fields.extract(self.batch, name, key)
                data = v.data[self.rows]
                valid = v.valid[self.rows] if v.valid is not None else None
            else:
                v = fields.extract(self.view, name, key)
                data, valid = v.data, v.valid
            if valid is None and v.kind == "str":
                valid = data != NA
            got = (v.kind, data, valid)
            self.local[k] = got
        return got


# --- per-distinct-string tables ------------------------------------------------------------


class Lut:
    """A table over string ids, filled lazily: an entry is computed (``fn(text, strings, id)``)
    the first time its id shows up in the data looked up, and kept for every later batch.
    Only the distinct strings a predicate actually sees are ever evaluated.

    ``unknown`` marks entries not computed yet; ``absent`` is the entry of id 0 (<NA>).
    """

    __slots__ = ("absent", "arr", "dtype", "fn", "strings_ref", "unknown")

    def __init__(self, fn, dtype, unknown, absent):
        self.fn = fn
        self.dtype = dtype
        self.unknown = unknown
        self.absent = absent
        self.arr = np.zeros(0, dtype)
        self.strings_ref = None

    def lookup(self, strings, data: np.ndarray) -> np.ndarray:
        ref = self.strings_ref
        if ref is None or ref() is not strings:      # a new pipeline/string table
            # weakly: a rolled-over table (collector.batch.StringTable) must not be kept
            # alive by the tables of a rule that stopped seeing events
            self.strings_ref = _weak(strings)
            self.arr = np.full(1024, self.unknown, self.dtype)
            self.arr[0] = self.absent
        n = len(strings)
        if n > len(self.arr):
            new = np.full(max(n, 2 * len(self.arr)), self.unknown, self.dtype)
            new[:len(self.arr)] = self.arr
            self.arr = new
        vals = self.arr[data]
        miss = vals == self.unknown
        if miss.any():
            ids = np.unique(data[miss])
            fn, text = self.fn, strings.text
            self.arr[ids] = [fn(text(i), strings, i) for i in ids.tolist()]
            vals = self.arr[data]
        return vals


def _weak(x):
    try:
        return weakref.ref(x)
    except TypeError:               # a table type without weak references
        return lambda: x


def _bool_lut(pred) -> Lut:
    """A predicate table: 0 = not computed, 1 = false, 2 = true."""
    return Lut(lambda t, strings, i: 2 if pred(t, strings, i) else 1, np.uint8, 0, 1)


class LutCache:
    """Predicate and transformer tables shared by every rule of an engine (and across
    reloads when the definitions are unchanged)."""

    def __init__(self) -> None:
        self.tables: dict = {}

    def get(self, key, make):
        t = self.tables.get(key)
        if t is None:
            t = make()
            self.tables[key] = t
        return t


def _str_pred(op: str, values: tuple):
    """(text, strings, id) -> bool for one string operator (the vectorized path's own
    definitions; the raw bytes are fetched only by the byte operators)."""
    if op in ("=", "in", "intersects"):
        s = frozenset(values)
        return lambda t, S, i: t in s
    if op == "!=":
        v = values[0]
        return lambda t, S, i: t != v
    if op == "contains":
        v = values[0]
        return lambda t, S, i: v in t
    if op == "icontains":
        v = values[0].lower()
        return lambda t, S, i: v in t.lower()
    if op == "startswith":
        v = values[0]
        return lambda t, S, i: t.startswith(v)
    if op == "endswith":
        v = values[0]
        return lambda t, S, i: t.endswith(v)
    if op == "bcontains":
        v = values[0]
        return lambda t, S, i: v in S.get(i)
    if op == "bstartswith":
        v = values[0]
        return lambda t, S, i: S.get(i).startswith(v)
    if op in ("glob", "iglob"):
        flags = re.DOTALL | (re.IGNORECASE if op == "iglob" else 0)
        rx = re.compile(fnmatch.translate(values[0]), flags)
        if op == "iglob":
            return lambda t, S, i: rx.match(t.lower()) is not None if t.isascii() else \
                fnmatch.fnmatchcase(t.lower(), values[0].lower())
        return lambda t, S, i: rx.match(t) is not None
    if op == "regex":
        rx = re.compile(values[0])
        return lambda t, S, i: rx.fullmatch(t) is not None
    if op == "pmatch":
        exact = frozenset(values)
        root = "/" in exact

        def pm(t, S, i):
            if t in exact or (root and t.startswith("/")):
                return True
            j = t.rfind("/")
            while j > 0:
                if t[:j] in exact:
                    return True
                j = t.rfind("/", 0, j)
            return False
        return pm
    if op in ("<", "<=", ">", ">="):
        v = values[0]
        import operator
        f = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]
        return lambda t, S, i: f(t, v)
    raise ValueError(op)  # pragma: no cover


def _ip_pred(op: str, values: tuple):
    """An address field against networks/addresses; a value that is no address never
    matches (``!=`` included)."""
    neg = op == "!="

    def p(t, S, i):
        try:
            a = ipaddress.ip_address(t)
        except ValueError:
            return False
        return any(a.version == n.version and a in n for n in values) != neg
    return p


_TRANSFORMS = {
    "tolower": lambda t: t.lower(),
    "toupper": lambda t: t.upper(),
    "basename": lambda t: t.rsplit("/", 1)[-1],
    "b64": b64,
}


def eval_expr(ctx: Ctx, e, luts: LutCache, key_override=None):
    """(kind, data, valid) of a field expression (field or transformer chain) on a group."""
    if isinstance(e, FieldRef):
        key = e.key if key_override is None else key_override
        return ctx.field(e.fdef.name, key)
    kind, data, valid = eval_expr(ctx, e.inner, luts, key_override)
    if kind != "str":
        data, kind = _ints_to_ids(ctx.strings, data), "str"
    strings = ctx.strings
    if e.fn == "len":
        lut = luts.get(("len",), lambda: Lut(lambda t, S, i: len(S.get(i)), np.int64, -1, 0))
        return "int", lut.lookup(strings, data), valid if valid is not None else data != NA
    fn = _TRANSFORMS[e.fn]

    def tr(t, S, i, fn=fn):
        r = fn(t)
        return NA if r is None else S.intern(r)
    lut = luts.get(("tr", e.fn), lambda: Lut(tr, np.int64, -1, NA))
    out = lut.lookup(strings, data).astype(np.uint32)
    return "str", out, out != NA


# --- plan nodes ----------------------------------------------------------------------------


class AndPlan:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def eval(self, ctx: Ctx, sel):
        n = ctx.n if sel is None else len(sel)
        res = None
        idx = None          # positions (within this frame) still true
        for child in self.items:
            if idx is None:
                m = child.eval(ctx, sel)
                res = m if res is None else (res & m)
            else:
                m = child.eval(ctx, idx if sel is None else sel[idx])
                res[idx] = m
                idx = idx[m]
            alive = len(idx) if idx is not None else int(np.count_nonzero(res))
            if alive == 0:
                return res
            if idx is None and alive < n * NARROW:
                idx = np.flatnonzero(res)
        return res


class OrPlan:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def eval(self, ctx: Ctx, sel):
        n = ctx.n if sel is None else len(sel)
        res = None
        idx = None          # positions still false
        for child in self.items:
            if idx is None:
                m = child.eval(ctx, sel)
                res = m if res is None else (res | m)
            else:
                m = child.eval(ctx, idx if sel is None else sel[idx])
                res[idx] = m
                idx = idx[~m]
            left = len(idx) if idx is not None else n - int(np.count_nonzero(res))
            if left == 0:
                return res
            if idx is None and left < n * NARROW:
                idx = np.flatnonzero(~res)
        return res


class NotPlan:
    __slots__ = ("item",)

    def __init__(self, item):
        self.item = item

    def eval(self, ctx: Ctx, sel):
        return ~self.item.eval(ctx, sel)


class CmpPlan:
    """One comparison.  ``lhs``/``rhs`` field expressions are evaluated to (kind, data,
    valid) per group; the predicate picks its path from the runtime kind."""

    __slots__ = ("_eq_text", "_mkey", "_nums", "_pred_key", "ancestor", "c", "luts")

    def __init__(self, c: Cmp, luts: LutCache):
        self.c = c
        self.luts = luts
        base = field_of(c.lhs)
        self.ancestor = base.fdef.name in ANCESTOR_FIELDS and base.key is None
        vals = c.values if isinstance(c.values, tuple) else None
        self._pred_key = (c.kind, c.op, vals)
        self._eq_text = vals[0] if (vals and c.kind == "str" and c.op in ("=", "!=")) else None
        self._nums = None
        if vals is not None and c.kind in ("int", "bool"):
            self._nums = np.array([int(x) for x in vals], dtype=np.int64)
        # the same comparison written in several rules (their shared macros: open_read,
        # open_write ...) is computed once per event-type group
        self._mkey = ("\0cmp", to_text(c), c.kind, repr(c.values))

    def expr(self, ctx: Ctx, e, key_override=None):
        return eval_expr(ctx, e, self.luts, key_override)

    def eval(self, ctx: Ctx, sel):
        """The mask over ``sel`` (positions in the group; None = all).  A mask computed on the
        whole group is kept in the group's context: comparisons are row by row, so any
        later ``sel`` takes its part of it (a fresh array: callers write into masks)."""
        m = ctx.local.get(self._mkey)
        if m is None:
            if sel is not None and 2 * len(sel) < ctx.n:
                return self._eval(ctx, sel)
            m = ctx.local[self._mkey] = self._eval(ctx, None)
        return m.copy() if sel is None else m[sel]

    def _eval(self, ctx: Ctx, sel):
        if not self.ancestor:
            kind, data, valid = self.expr(ctx, self.c.lhs)
            m = self.compare(ctx, sel, kind, data, valid)
            return m.any(axis=1) if m.ndim == 2 else m
        # bare proc.aname & co.: any ancestor, walking up while the level exists
        res = np.zeros(ctx.n if sel is None else len(sel), dtype=bool)
        alive = np.ones_like(res)
        for level in range(1, MAX_ANCESTORS + 1):
            kind, data, valid = self.expr(ctx, self.c.lhs, str(level))
            v = valid if valid is not None else np.ones(len(data), bool)
            alive &= v if sel is None else v[sel]
            if not alive.any():
                break
            m = self.compare(ctx, sel, kind, data, valid)
            res |= alive & (m.any(axis=1) if m.ndim == 2 else m)
        return res

    def compare(self, ctx: Ctx, sel, kind, data, valid):
        c = self.c
        if sel is not None:
            data = data[sel]
            if valid is not None:
                valid = valid[sel]
        if c.op == "exists":
            return valid.copy() if valid is not None else np.ones(data.shape, bool)
        if isinstance(c.values, (FieldRef, Transform)):
            m = self.compare_fields(ctx, sel, kind, data, valid)
        elif c.kind in ("str", "ip"):
            if kind != "str":
                data, kind = _ints_to_ids(ctx.strings, data), "str"
            if self._eq_text is not None and c.kind == "str":
                vid = ctx.strings.lookup(self._eq_text)
                if c.op == "=":
                    m = data == vid if vid is not None else np.zeros(data.shape, bool)
                else:
                    m = data != vid if vid is not None else np.ones(data.shape, bool)
                    m &= data != NA
            else:
                key = self._pred_key
                pred = _ip_pred if c.kind == "ip" else _str_pred
                lut = self.luts.get(key, lambda: _bool_lut(pred(c.op, c.values)))
                m = lut.lookup(ctx.strings, data) == 2
        else:
            if kind == "str":
                data = _ids_to_ints(self.luts, ctx.strings, data)
                valid = (data != _BAD) if valid is None else (valid & (data != _BAD))
            m = _num_op(c.op, data, self._nums)
        if valid is not None:
            m &= valid
        return m

    def compare_fields(self, ctx: Ctx, sel, kind, data, valid):
        c = self.c
        rk, rdata, rvalid = self.expr(ctx, c.values)
        if sel is not None:
            rdata = rdata[sel]
            rvalid = rvalid[sel] if rvalid is not None else None
        ok = rvalid if rvalid is not None else np.ones(rdata.shape, bool)
        if data.ndim != rdata.ndim:          # multi-valued on one side: any value
            if data.ndim == 1:
                data = data[:, None]
            else:
                rdata, ok = rdata[:, None], ok[:, None]
        data, rdata = np.broadcast_arrays(data, rdata)
        ok = np.broadcast_to(ok, data.shape)
        if kind != "str" and rk != "str":
            return _num_op(c.op, data, None, rdata) & ok
        if kind != "str":
            data = _ints_to_ids(ctx.strings, data)
        if rk != "str":
            rdata = _ints_to_ids(ctx.strings, rdata)
        if c.op in ("=", "in", "intersects"):
            return (data == rdata) & ok & (rdata != NA)
        if c.op == "!=":
            return (data != rdata) & ok & (rdata != NA)
        # other string operators: once per distinct (lhs, rhs) pair
        pair = ((data.astype(np.uint64) << np.uint64(32)) | rdata.astype(np.uint64)).reshape(-1)
        uniq, inv = np.unique(pair, return_inverse=True)
        strings = ctx.strings
        out = np.empty(len(uniq), bool)
        for j, p in enumerate(uniq.tolist()):
            a, b = p >> 32, p & 0xFFFFFFFF
            if a == NA or b == NA:
                out[j] = False
                continue
            vals = (strings.get(b),) if c.op in ("bcontains", "bstartswith") else (strings.text(b),)
            out[j] = _str_pred(c.op, vals)(strings.text(a), strings, a)
        return out[inv.reshape(-1)].reshape(data.shape) & ok


_BAD = np.iinfo(np.int64).min
_UNKNOWN_INT = np.iinfo(np.int64).min + 1


def _num_op(op: str, data, nums, other=None):
    x = other if other is not None else nums[0]
    if op == "=":
        return data == x
    if op == "!=":
        return data != x
    if op in ("in", "intersects"):
        if other is not None:
            return data == other
        return np.isin(data, nums) if len(nums) > 1 else data == nums[0]
    if op == "<":
        return data < x
    if op == "<=":
        return data <= x
    if op == ">":
        return data > x
    if op == ">=":
        return data >= x
    raise ValueError(op)  # pragma: no cover


def _ints_to_ids(strings, data) -> np.ndarray:
    """Numbers rendered as decimal strings, once per distinct value."""
    if data.dtype == bool:
        t, f = strings.intern("true"), strings.intern("false")
        return np.where(data, np.uint32(t), np.uint32(f)).astype(np.uint32)
    uniq, inv = np.unique(data, return_inverse=True)
    ids = np.fromiter((strings.intern(str(int(u))) for u in uniq), np.uint32, len(uniq))
    return ids[inv.reshape(-1)].reshape(data.shape)


def _parse_num(t, S, i):
    if t is None:
        return _BAD
    try:
        return int(t.strip(), 0)
    except ValueError:
        return _BAD


def _ids_to_ints(luts: LutCache, strings, data) -> np.ndarray:
    lut = luts.get(("int",), lambda: Lut(_parse_num, np.int64, _UNKNOWN_INT, _BAD))
    return lut.lookup(strings, data)


def compile_plan(node, luts: LutCache):
    """A checked AST -> plan tree."""
    if isinstance(node, And):
        return AndPlan([compile_plan(x, luts) for x in _flatten(node, And)])
    if isinstance(node, Or):
        items = merge_equalities(_flatten(node, Or))
        if len(items) == 1:
            return compile_plan(items[0], luts)
        return OrPlan([compile_plan(x, luts) for x in items])
    if isinstance(node, Not):
        return NotPlan(compile_plan(node.item, luts))
    if isinstance(node, Cmp):
        return CmpPlan(node, luts)
    raise TypeError(node)  # pragma: no cover


def merge_equalities(items: list) -> list:
    """OR-of-equalities -> set membership: ``f = a or f in (b, c) or g = x or f = d`` becomes
    ``f in (a, b, c, d) or g = x`` (one table lookup per distinct field expression)."""
    groups: dict = {}
    out: list = []
    for x in items:
        if isinstance(x, Cmp) and x.op in ("=", "in") and isinstance(x.values, tuple) \
                and x.kind in ("str", "int", "bool"):
            key = (x.lhs.text(), x.kind)
            g = groups.get(key)
            if g is None:
                groups[key] = [x]
                out.append(key)
            else:
                g.append(x)
        else:
            out.append(x)
    result = []
    for x in out:
        if not isinstance(x, tuple):
            result.append(x)
            continue
        g = groups[x]
        if len(g) == 1:
            result.append(g[0])
            continue
        values = tuple(dict.fromkeys(v for c in g for v in c.values))
        first = g[0]
        result.append(Cmp(first.lhs, "in", first.rhs, values=values, kind=first.kind,
                          off=first.off, src=first.src))
    return result


def _flatten(node, cls) -> list:
    out = []
    for x in node.items:
        if isinstance(x, cls):
            out.extend(_flatten(x, cls))
        else:
            out.append(x)
    return out
