"""Falco condition parser: text -> AST, with the offset of every node for error messages.

The grammar (libsinsp's ``filter/parser.h``, which this parser follows)::

    Expr        := Or
    Or          := And ('or' And)*
    And         := Not ('and' Not)*
    Not         := 'not' Not | Check
    Check       := '(' Expr ')'
                 | FieldExpr Cond
                 | MacroIdentifier
    FieldExpr   := Field | Transformer '(' FieldExpr ')'
    Field       := Name ('.' Name)+ ( '[' ArgChars ']' )?      proc.aname[2], evt.arg.flags,
                                                                 evt.arg[0], container.mount.dest[/etc]
    Transformer := 'tolower' | 'toupper' | 'b64' | 'basename' | 'len'
    Cond        := 'exists'
                 | CmpOp   (Str | 'val' '(' FieldExpr ')' | Transformer '(' FieldExpr ')')
                 | ListOp  (List | ListIdentifier | 'val' '(' FieldExpr ')')
    CmpOp       := '=' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'contains' | 'icontains'
                 | 'bcontains' | 'startswith' | 'bstartswith' | 'endswith' | 'glob' | 'iglob'
                 | 'regex'
    ListOp      := 'in' | 'intersects' | 'pmatch'
    List        := '(' ( Str (',' Str)* )? ')'          a bare Str naming a list is expanded
    Str         := '"' ... '"' | "'" ... "'" | Bare
    Bare        := any run of characters except whitespace , ( ) = " '

Keywords (``and or not`` and word operators) are lower case and must end at a word boundary.
Nesting depth is capped (:data:`MAX_DEPTH`, libsinsp's default) so hostile input cannot
exhaust the Python stack.  Numbers are strings in the AST; the type checker converts them
according to the field's type (decimal, ``0x`` hex, or octal ``0...`` as libsinsp does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_DEPTH = 100

CMP_OPS = ("==", "=", "!=", "<=", "<", ">=", ">")
WORD_CMP_OPS = ("contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith",
                "glob", "iglob", "regex")
LIST_OPS = ("in", "intersects", "pmatch")
TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len")
KEYWORDS = frozenset(("and", "or", "not"))


class ParseError(Exception):
    def __init__(self, offset: int, msg: str):
        super().__init__(msg)
        self.offset = offset
        self.msg = msg


# --- AST -----------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Node:
    off: int = field(default=0, kw_only=True)
    src: object = field(default=None, kw_only=True, repr=False)   # YStr the text came from


@dataclass(slots=True, eq=False)
class And(Node):
    items: list


@dataclass(slots=True, eq=False)
class Or(Node):
    items: list


@dataclass(slots=True, eq=False)
class Not(Node):
    item: object


@dataclass(slots=True, eq=False)
class MacroRef(Node):
    name: str


@dataclass(slots=True, eq=False)
class FieldRef(Node):
    """A field with its optional ``[arg]``; ``name`` is the text before ``[`` (for
    ``evt.arg.flags`` the resolver splits the key off).  Filled by the checker: ``fdef``,
    ``key``."""

    name: str
    arg: str | None = None
    fdef: object = None
    key: str | None = None

    def text(self) -> str:
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


@dataclass(slots=True, eq=False)
class Transform(Node):
    fn: str
    inner: object     # FieldRef | Transform

    def text(self) -> str:
        return f"{self.fn}({self.inner.text()})"


@dataclass(slots=True, eq=False)
class Value(Node):
    text: str
    quoted: bool = False


@dataclass(slots=True, eq=False)
class ListValue(Node):
    items: list        # of Value; bare names of lists are expanded by the resolver
    ref: str | None = None   # set when written as `in listname`


@dataclass(slots=True, eq=False)
class FieldValue(Node):
    """``val(field)`` or a transformer on the right-hand side."""

    expr: object


@dataclass(slots=True, eq=False)
class Cmp(Node):
    lhs: object                  # FieldRef | Transform
    op: str
    rhs: object = None           # Value | ListValue | FieldValue | None (exists)
    values: object = None        # filled by the checker: converted right-hand values
    kind: str = ""               # filled by the checker: "str" | "int" | "bool" | "ip"


def field_of(expr) -> FieldRef:
    while isinstance(expr, Transform):
        expr = expr.inner
    return expr


# --- lexer helpers -------------------------------------------------------------------------

_WS = re.compile(r"\s*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)+")
_BARE = re.compile(r"""[^\s(),="']+""")
_WORD_END = re.compile(r"[A-Za-z0-9_.]")
_ESC = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "\\": "\\", '"': '"', "'": "'", "/": "/"}


class Parser:
    def __init__(self, text: str, src: object = None, max_depth: int = MAX_DEPTH):
        self.s = text
        self.i = 0
        self.src = src
        self.depth = 0
        self.max_depth = max_depth

    # entry
    def parse(self):
        self.ws()
        if self.i >= len(self.s):
            raise ParseError(0, "empty condition")
        node = self.expr()
        self.ws()
        if self.i < len(self.s):
            raise ParseError(self.i, f"unexpected '{self._snippet()}' after a complete expression")
        return node

    # helpers
    def ws(self) -> None:
        self.i = _WS.match(self.s, self.i).end()

    def _snippet(self) -> str:
        m = re.compile(r"\S+").match(self.s, self.i)
        return m.group(0)[:30] if m else "end of condition"

    def peek_word(self, word: str) -> bool:
        if not self.s.startswith(word, self.i):
            return False
        j = self.i + len(word)
        return j >= len(self.s) or not _WORD_END.match(self.s, j)

    def peek_word_call(self, word: str) -> bool:
        """``word`` followed (after optional spaces) by ``(``: a transformer/val call."""
        if not self.s.startswith(word, self.i):
            return False
        j = _WS.match(self.s, self.i + len(word)).end()
        return j < len(self.s) and self.s[j] == "("

    def expect(self, ch: str, what: str) -> None:
        self.ws()
        if not self.s.startswith(ch, self.i):
            raise ParseError(self.i, f"expected {what}, found '{self._snippet()}'")
        self.i += len(ch)

    def mk(self, cls, *a, off: int, **kw):
        return cls(*a, off=off, src=self.src, **kw)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise ParseError(self.i, f"condition nested too deeply (more than {self.max_depth} levels)")

    # grammar
    def expr(self):
        self.enter()
        try:
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self):
        off = self.i
        items = [self.and_()]
        while True:
            self.ws()
            if self.peek_word("or"):
                self.i += 2
                items.append(self.and_())
            else:
                break
        return items[0] if len(items) == 1 else self.mk(Or, items, off=off)

    def and_(self):
        off = self.i
        items = [self.not_()]
        while True:
            self.ws()
            if self.peek_word("and"):
                self.i += 3
                items.append(self.not_())
            else:
                break
        return items[0] if len(items) == 1 else self.mk(And, items, off=off)

    def not_(self):
        self.ws()
        off = self.i
        if self.peek_word("not"):
            self.i += 3
            self.enter()
            try:
                return self.mk(Not, self.not_(), off=off)
            finally:
                self.depth -= 1
        return self.check()

    def check(self):
        self.ws()
        off = self.i
        if off >= len(self.s):
            raise ParseError(off, "unexpected end of condition (expected a field, a macro or '(')")
        if self.s[off] == "(":
            self.i += 1
            node = self.expr()
            self.expect(")", "')'")
            return node
        if any(self.peek_word_call(t) for t in TRANSFORMERS):
            lhs = self.field_expr()
            return self.cond(lhs, off)
        m = _FIELD.match(self.s, off)
        if m:
            lhs = self.field_expr()
            return self.cond(lhs, off)
        m = _IDENT.match(self.s, off)
        if m:
            name = m.group(0)
            if name in KEYWORDS:
                raise ParseError(off, f"unexpected keyword '{name}'")
            self.i = m.end()
            return self.mk(MacroRef, name, off=off)
        raise ParseError(off, f"expected a field, a macro or '(', found '{self._snippet()}'")

    def field_expr(self):
        self.ws()
        off = self.i
        for t in TRANSFORMERS:
            if self.peek_word_call(t):
                self.i += len(t)
                self.expect("(", "'('")
                self.enter()
                try:
                    inner = self.field_expr()
                finally:
                    self.depth -= 1
                self.expect(")", f"')' closing {t}(")
                return self.mk(Transform, t, inner, off=off)
        m = _FIELD.match(self.s, off)
        if not m:
            raise ParseError(off, f"expected a field name, found '{self._snippet()}'")
        self.i = m.end()
        arg = None
        if self.i < len(self.s) and self.s[self.i] == "[":
            close = self.s.find("]", self.i + 1)
            if close < 0:
                raise ParseError(self.i, "missing ']' after field argument")
            arg = self.s[self.i + 1:close]
            self.i = close + 1
        return self.mk(FieldRef, m.group(0), arg, off=off)

    def cond(self, lhs, off):
        self.ws()
        op_off = self.i
        op = None
        for o in CMP_OPS:
            if self.s.startswith(o, self.i):
                op = o
                break
        if op is None:
            for o in WORD_CMP_OPS + LIST_OPS + ("exists",):
                if self.peek_word(o):
                    op = o
                    break
        if op is None:
            raise ParseError(op_off, f"expected an operator after '{lhs.text()}', found '{self._snippet()}'")
        self.i += len(op)
        if op == "==":
            op = "="
        if op == "exists":
            return self.mk(Cmp, lhs, op, None, off=off)
        self.ws()
        voff = self.i
        if self.peek_word_call("val"):
            self.i += 3
            self.expect("(", "'('")
            e = self.field_expr()
            self.expect(")", "')' closing val(")
            return self.mk(Cmp, lhs, op, self.mk(FieldValue, e, off=voff), off=off)
        if op in LIST_OPS:
            if self.s.startswith("(", self.i):
                return self.mk(Cmp, lhs, op, self.list_value(), off=off)
            m = _IDENT.match(self.s, self.i)
            if m and m.group(0) not in KEYWORDS:
                self.i = m.end()
                item = self.mk(Value, m.group(0), off=voff)
                return self.mk(Cmp, lhs, op, self.mk(ListValue, [item], m.group(0), off=voff), off=off)
            raise ParseError(voff, f"expected a list '(...)' after '{op}', found '{self._snippet()}'")
        if any(self.peek_word_call(t) for t in TRANSFORMERS):
            e = self.field_expr()
            return self.mk(Cmp, lhs, op, self.mk(FieldValue, e, off=voff), off=off)
        return self.mk(Cmp, lhs, op, self.string(), off=off)

    def list_value(self):
        off = self.i
        self.i += 1
        items = []
        self.ws()
        if self.s.startswith(")", self.i):
            self.i += 1
            return self.mk(ListValue, items, off=off)
        while True:
            items.append(self.string())
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
                continue
            if self.s.startswith(")", self.i):
                self.i += 1
                return self.mk(ListValue, items, off=off)
            raise ParseError(self.i, f"expected ',' or ')' in list, found '{self._snippet()}'")

    def string(self):
        self.ws()
        off = self.i
        if off >= len(self.s):
            raise ParseError(off, "expected a value, found end of condition")
        q = self.s[off]
        if q in "\"'":
            out = []
            j = off + 1
            while j < len(self.s):
                c = self.s[j]
                if c == "\\" and j + 1 < len(self.s):
                    nxt = self.s[j + 1]
                    out.append(_ESC.get(nxt, "\\" + nxt))
                    j += 2
                    continue
                if c == q:
                    self.i = j + 1
                    return self.mk(Value, "".join(out), True, off=off)
                out.append(c)
                j += 1
            raise ParseError(off, "unterminated quoted string")
        m = _BARE.match(self.s, off)
        if not m:
            raise ParseError(off, f"expected a value, found '{self._snippet()}'")
        self.i = m.end()
        return self.mk(Value, m.group(0), False, off=off)


def parse(text: str, src: object = None, max_depth: int = MAX_DEPTH):
    """Parse a condition; raises ParseError(offset, message)."""
    return Parser(text, src, max_depth).parse()


def parse_field_expr(text: str, src: object = None):
    """Parse a lone field expression (``proc.name``, ``tolower(proc.name)``) for outputs."""
    p = Parser(text, src)
    e = p.field_expr()
    p.ws()
    if p.i != len(text):
        raise ParseError(p.i, f"unexpected '{p._snippet()}' after field")
    return e


def to_text(node) -> str:
    """Render an AST back to condition text (used in messages and tests)."""
    if isinstance(node, And):
        return "(" + " and ".join(to_text(x) for x in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(to_text(x) for x in node.items) + ")"
    if isinstance(node, Not):
        return "not " + to_text(node.item)
    if isinstance(node, MacroRef):
        return node.name
    if isinstance(node, Cmp):
        lhs = node.lhs.text()
        if node.rhs is None:
            return f"{lhs} exists"
        return f"{lhs} {node.op} {to_text(node.rhs)}"
    if isinstance(node, Value):
        return quote(node.text) if node.quoted or not _BARE.fullmatch(node.text or "") else node.text
    if isinstance(node, ListValue):
        return "(" + ", ".join(to_text(x) for x in node.items) + ")"
    if isinstance(node, FieldValue):
        e = node.expr
        return e.text() if isinstance(e, Transform) else f"val({e.text()})"
    raise TypeError(node)  # pragma: no cover


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bare_ok(s: str) -> bool:
    return bool(_BARE.fullmatch(s)) and s not in KEYWORDS
