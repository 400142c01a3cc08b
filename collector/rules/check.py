"""Definitions -> checked condition ASTs: lists and macros expanded, exceptions appended,
fields resolved against the registry (collector.fields), operators and values checked
against each field's type, and the event types each rule can match worked out.

Lists and macros are resolved after every file has loaded, so a rule may use a macro
defined further down or in a later file (the official files do).  A bare list value that
names no list is an ordinary string, as in Falco.  List items written with quotes
(``'"10.0.0.0/8"'``) are unquoted, as Falco's parser does when it reads the expanded list.
"""

from __future__ import annotations

import base64
import ipaddress
import re

from .. import abi, fields
from .parser import (
    LIST_OPS,
    And,
    Cmp,
    FieldRef,
    FieldValue,
    ListValue,
    MacroRef,
    Not,
    Or,
    ParseError,
    Transform,
    Value,
    bare_ok,
    field_of,
    parse,
    quote,
)

STR_TYPES = {"charbuf", "fspath", "fsrelpath", "bytebuf", "string", "dynamic", "list"}
BOOL_TYPES = {"bool"}
IP_TYPES = {"ipaddr", "ipv4addr", "ipv6addr", "ipnet", "ipv4net", "ipv6net"}
STR_OPS = {"=", "!=", "<", "<=", ">", ">=", "contains", "icontains", "bcontains", "startswith",
           "bstartswith", "endswith", "glob", "iglob", "regex", "in", "intersects", "pmatch",
           "exists"}
NUM_OPS = {"=", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"}
BOOL_OPS = {"=", "!=", "in", "intersects", "exists"}
IP_OPS = {"=", "!=", "in", "intersects", "exists"}
# Without an index these mean "any ancestor" in conditions: the plans walk levels 1, 2, ...
# (``field[N]``) while a level exists (the state fields give the parent for the bare name).
ANCESTOR_FIELDS = {"proc.aname", "proc.aexe", "proc.aexepath", "proc.acmdline", "proc.apid"}
MAX_ANCESTORS = 64
MAX_MACRO_DEPTH = 64


class CheckError(Exception):
    """A compile error at (src, off); ``unknown_field`` marks unknown-field errors (for
    skip-if-unknown-filter)."""

    def __init__(self, src, off: int, msg: str, unknown_field: bool = False):
        super().__init__(msg)
        self.src = src
        self.off = off
        self.msg = msg
        self.unknown_field = unknown_field

    def pos(self):
        return self.src.offset_pos(self.off)


def kind_of(ftype: str) -> str:
    if ftype in STR_TYPES:
        return "str"
    if ftype in BOOL_TYPES:
        return "bool"
    if ftype in IP_TYPES:
        return "ip"
    return "int"


class FixedSrc:
    """A condition source whose every offset maps to one position (generated text)."""

    def __init__(self, pos, text: str):
        self.pos = pos
        self.text = text

    def offset_pos(self, off: int):
        return self.pos


# --- fields --------------------------------------------------------------------------------


def resolve_field(ref: FieldRef) -> None:
    """Fill ref.fdef / ref.key; raise CheckError for unknown fields or bad arguments."""
    if ref.fdef is not None:
        return
    fd = fields.lookup(ref.name)
    key = None
    if fd is None:
        parts = ref.name.split(".")
        for i in range(len(parts) - 1, 1, -1):
            cand = fields.lookup(".".join(parts[:i]))
            if cand is not None and cand.arg == "key":
                fd, key = cand, ".".join(parts[i:])
                break
    if fd is None:
        raise CheckError(ref.src, ref.off, f"unknown field '{ref.text()}'", unknown_field=True)
    if key is not None and ref.arg is not None:
        raise CheckError(ref.src, ref.off, f"field '{ref.text()}': give the argument either as "
                         f"'.name' or as '[...]', not both")
    if key is None:
        key = ref.arg
    if fd.arg == "none" and key is not None:
        raise CheckError(ref.src, ref.off, f"field '{fd.name}' does not take an argument")
    if fd.arg == "key" and not key:
        raise CheckError(ref.src, ref.off, f"field '{fd.name}' requires an argument "
                         f"(e.g. {fd.name}.NAME or {fd.name}[N])")
    if fd.arg == "index" and key is not None and not key.strip().isdigit():
        raise CheckError(ref.src, ref.off, f"field '{fd.name}' takes a numeric index, got '{key}'")
    ref.fdef = fd
    ref.key = key.strip() if (fd.arg == "index" and key is not None) else key


def expr_type(expr) -> str:
    """Falco type of a field expression (transformers included)."""
    if isinstance(expr, Transform):
        inner = expr_type(expr.inner)
        if expr.fn == "len":
            return "uint64"
        if kind_of(inner) != "str":
            raise CheckError(expr.src, expr.off, f"transformer '{expr.fn}' needs a string field, "
                             f"'{expr.inner.text()}' is of type {inner}")
        return "charbuf"
    resolve_field(expr)
    return expr.fdef.ftype


def parse_int(text: str) -> int | None:
    t = text.strip()
    try:
        if re.fullmatch(r"[+-]?0[0-7]+", t):
            return int(t, 8)
        return int(t, 0)
    except ValueError:
        return None


def _convert(cmp: Cmp, kind: str, ftype: str, v: Value):
    t = v.text
    op = cmp.op
    if kind == "int":
        n = parse_int(t)
        if n is None:
            raise CheckError(v.src, v.off, f"'{t}' is not a valid number for field "
                             f"'{cmp.lhs.text()}' (type {ftype})")
        return n
    if kind == "bool":
        if t not in ("true", "false"):
            raise CheckError(v.src, v.off, f"'{t}' is not a valid boolean for field "
                             f"'{cmp.lhs.text()}' (expected true or false)")
        return t == "true"
    if kind == "ip":
        try:
            return ipaddress.ip_network(t, strict=False)
        except ValueError:
            raise CheckError(v.src, v.off, f"'{t}' is not a valid IP address or network for "
                             f"field '{cmp.lhs.text()}'") from None
    if op in ("bcontains", "bstartswith"):
        h = t.strip()
        if len(h) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", h):
            raise CheckError(v.src, v.off, f"'{t}' is not a valid hex byte string for '{op}'")
        return bytes.fromhex(h)
    if op == "regex":
        try:
            re.compile(t)
        except re.error as e:
            raise CheckError(v.src, v.off, f"invalid regular expression '{t}': {e}") from None
    return t


def check_cmp(cmp: Cmp) -> None:
    """Resolve and type-check one comparison in place (fills cmp.kind, cmp.values)."""
    ftype = expr_type(cmp.lhs)
    kind = kind_of(ftype)
    ops = {"str": STR_OPS, "int": NUM_OPS, "bool": BOOL_OPS, "ip": IP_OPS}[kind]
    if cmp.op not in ops:
        raise CheckError(cmp.src, cmp.off, f"operator '{cmp.op}' cannot be used with field "
                         f"'{cmp.lhs.text()}' of type {ftype}")
    cmp.kind = kind
    rhs = cmp.rhs
    if rhs is None:
        cmp.values = None
    elif isinstance(rhs, FieldValue):
        rtype = expr_type(rhs.expr)
        rkind = kind_of(rtype)
        if (rkind == "str") != (kind == "str") or (kind != "str" and rkind != kind):
            raise CheckError(rhs.src, rhs.off, f"cannot compare '{cmp.lhs.text()}' ({ftype}) with "
                             f"'{rhs.expr.text()}' ({rtype})")
        cmp.values = rhs.expr
    elif isinstance(rhs, ListValue):
        if cmp.op not in LIST_OPS:
            raise CheckError(rhs.src, rhs.off, f"operator '{cmp.op}' takes a single value, not a list")
        cmp.values = tuple(_convert(cmp, kind, ftype, v) for v in rhs.items)
    else:
        if cmp.op in LIST_OPS:
            raise CheckError(rhs.src, rhs.off, f"operator '{cmp.op}' needs a list '(...)'")
        cmp.values = (_convert(cmp, kind, ftype, rhs),)
    if kind == "str" and cmp.op == "pmatch":
        cmp.values = tuple(x.rstrip("/") or "/" for x in cmp.values)


# --- expansion -----------------------------------------------------------------------------


class Expander:
    """Expands macros and lists of one Collector's definitions and checks conditions."""

    def __init__(self, coll):
        self.coll = coll
        self._list_cache: dict[str, list] = {}
        self._macro_ast: dict[str, object] = {}

    def list_items(self, name: str, stack=()) -> list:
        """A list's items with nested list names expanded (as Falco's compile_list_infos)."""
        got = self._list_cache.get(name)
        if got is not None:
            return got
        ld = self.coll.lists[name]
        out = []
        for it in ld.items:
            ref = self.coll.lists.get(str(it))
            if ref is not None and str(it) not in stack and ref is not ld:
                ref.used = True
                out.extend(self.list_items(str(it), stack + (name,)))
            else:
                out.append(_unquote(str(it)))
        self._list_cache[name] = out
        return out

    def macro_ast(self, name: str):
        m = self.coll.macros[name]
        ast = self._macro_ast.get(name)
        if ast is None:
            try:
                ast = parse(m.cond.text, m.cond)
            except ParseError as e:
                raise CheckError(m.cond, e.offset, f"in macro '{name}': {e.msg}") from None
            self._macro_ast[name] = ast
        return ast

    def expand(self, node, vis: int, stack: tuple = ()):
        if isinstance(node, And):
            return And([self.expand(x, vis, stack) for x in node.items], off=node.off, src=node.src)
        if isinstance(node, Or):
            return Or([self.expand(x, vis, stack) for x in node.items], off=node.off, src=node.src)
        if isinstance(node, Not):
            return Not(self.expand(node.item, vis, stack), off=node.off, src=node.src)
        if isinstance(node, MacroRef):
            m = self.coll.macros.get(node.name)
            if m is None:
                raise CheckError(node.src, node.off, f"undefined macro '{node.name}'")
            if node.name in stack:
                raise CheckError(node.src, node.off, f"macro '{node.name}' refers to itself "
                                 f"({' -> '.join(stack + (node.name,))})")
            if len(stack) >= MAX_MACRO_DEPTH:
                raise CheckError(node.src, node.off, "macros nested too deeply")
            m.used = True
            return self.expand(self.macro_ast(node.name), m.visibility, stack + (node.name,))
        if isinstance(node, Cmp):
            rhs = node.rhs
            if isinstance(rhs, ListValue):
                items = []
                for v in rhs.items:
                    ld = self.coll.lists.get(v.text)
                    if ld is not None:
                        ld.used = True
                        items.extend(Value(x, True, off=v.off, src=v.src)
                                     for x in self.list_items(v.text))
                    elif rhs.ref is not None:
                        raise CheckError(v.src, v.off, f"undefined list '{v.text}'")
                    else:
                        items.append(v)
                rhs = ListValue(items, off=rhs.off, src=rhs.src)
            out = Cmp(node.lhs, node.op, rhs, off=node.off, src=node.src)
            check_cmp(out)
            return out
        raise TypeError(node)  # pragma: no cover

    def rule_ast(self, rule):
        try:
            ast = parse(rule.cond.text, rule.cond)
        except ParseError as e:
            raise CheckError(rule.cond, e.offset, e.msg) from None
        parts = [ast]
        for ex in rule.exceptions:
            e_ast = exception_ast(ex)
            if e_ast is not None:
                parts.append(Not(e_ast, off=0, src=e_ast.src))
        if len(parts) > 1:
            ast = And(parts, off=0, src=rule.cond)
        return self.expand(ast, rule.visibility)


def exception_ast(ex):
    """Falco's build_rule_exception_infos: an exception as condition text, then parsed."""
    from .yamlsrc import YList
    if not ex.values:
        return None
    fields_ = ex.fields
    src = FixedSrc(ex.pos, "")
    if not isinstance(fields_, YList):
        if fields_ is None:
            raise CheckError(src, 0, f"exception '{ex.name}': missing 'fields'")
        comp = str(ex.comps) if ex.comps is not None else "in"
        if comp not in LIST_OPS:
            raise CheckError(src, 0, f"exception '{ex.name}': with a single field, 'comps' must be "
                             f"one of in, pmatch, intersects (got '{comp}')")
        vals = []
        for v in ex.values:
            if isinstance(v, YList):
                raise CheckError(FixedSrc(getattr(v, "pos", ex.pos), ""), 0,
                                 f"exception '{ex.name}': with a single field, each value must be a "
                                 "single string")
            vals.append(_q(str(v)))
        text = f"{fields_} {comp} ({', '.join(vals)})"
    else:
        comps = ex.comps
        if comps is None:
            comps = ["="] * len(fields_)
        elif not isinstance(comps, YList):
            raise CheckError(src, 0, f"exception '{ex.name}': 'comps' must be a list like 'fields'")
        comps = [str(c) for c in comps]
        if len(comps) != len(fields_):
            raise CheckError(src, 0, f"exception '{ex.name}': 'fields' and 'comps' must have the "
                             f"same length ({len(fields_)} fields, {len(comps)} comps)")
        ors = []
        for tup in ex.values:
            tpos = getattr(tup, "pos", ex.pos)
            if not isinstance(tup, YList) or len(tup) != len(fields_):
                raise CheckError(FixedSrc(tpos, ""), 0, f"exception '{ex.name}': each value must be "
                                 f"a list of {len(fields_)} item(s), one per field")
            ands = []
            for f, c, v in zip(fields_, comps, tup):
                if isinstance(v, YList):
                    rhs = "(" + ", ".join(_q(str(x)) for x in v) + ")"
                elif c in LIST_OPS:
                    rhs = f"({v})"
                else:
                    rhs = _q(str(v))
                ands.append(f"{f} {c} {rhs}")
            ors.append("(" + " and ".join(ands) + ")")
        text = " or ".join(ors)
    src = FixedSrc(ex.pos, text)
    try:
        return parse(f"({text})", src)
    except ParseError as e:
        raise CheckError(src, 0, f"exception '{ex.name}': {e.msg} in '{text}'") from None


def _unquote(s: str) -> str:
    """A list item written with its own quotes is read as the quoted string."""
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        try:
            from .parser import Parser
            p = Parser(s)
            v = p.string()
            if p.i == len(s):
                return v.text
        except ParseError:
            pass
    return s


def _q(s: str) -> str:
    return s if bare_ok(s) else quote(s)


# --- event types ---------------------------------------------------------------------------

ALL_TYPES = frozenset(e.num for e in abi.EVENTS)


def event_types(node, neg: bool = False) -> frozenset:
    """Event types a (checked) condition can match: Falco's evttype resolver, De Morgan-style."""
    if isinstance(node, And):
        sets = [event_types(x, neg) for x in node.items]
        return frozenset().union(*sets) if neg else frozenset.intersection(*sets)
    if isinstance(node, Or):
        sets = [event_types(x, neg) for x in node.items]
        return frozenset.intersection(*sets) if neg else frozenset().union(*sets)
    if isinstance(node, Not):
        return event_types(node.item, not neg)
    if isinstance(node, Cmp) and isinstance(node.lhs, FieldRef) and node.lhs.name == "evt.type" \
            and node.op in ("=", "!=", "in") and not isinstance(node.rhs, FieldValue):
        named = frozenset(abi.BY_NAME[v].num for v in node.values if v in abi.BY_NAME)
        positive = (node.op != "!=") != neg
        return named if positive else ALL_TYPES - named
    return ALL_TYPES


def unknown_evttypes(node, out: set | None = None) -> set:
    """evt.type names a condition compares with that Falconet's event table does not have."""
    if out is None:
        out = set()
    if isinstance(node, (And, Or)):
        for x in node.items:
            unknown_evttypes(x, out)
    elif isinstance(node, Not):
        unknown_evttypes(node.item, out)
    elif isinstance(node, Cmp) and isinstance(node.lhs, FieldRef) and node.lhs.name == "evt.type" \
            and isinstance(node.values, tuple):
        out.update(v for v in node.values if v not in abi.BY_NAME)
    return out


def fields_used(node, out: set | None = None) -> set:
    """Every FieldRef object of a checked AST (LHS, val() and transformer inner fields)."""
    if out is None:
        out = set()
    if isinstance(node, (And, Or)):
        for x in node.items:
            fields_used(x, out)
    elif isinstance(node, Not):
        fields_used(node.item, out)
    elif isinstance(node, Cmp):
        out.add(field_of(node.lhs))
        if isinstance(node.rhs, FieldValue):
            out.add(field_of(node.rhs.expr))
    return out


def b64(s: str) -> str | None:
    try:
        return base64.b64decode(s.encode("utf-8", "surrogateescape"), validate=False).decode(
            "utf-8", "backslashreplace")
    except (ValueError, TypeError):
        return None
