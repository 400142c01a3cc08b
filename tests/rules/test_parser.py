"""Condition grammar, operators, transformers and val(): examples with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import batch

from collector.rules.check import CheckError, Expander
from collector.rules.collector import Collector
from collector.rules.parser import (
    MAX_DEPTH,
    And,
    Cmp,
    FieldRef,
    MacroRef,
    Not,
    Or,
    ParseError,
    Transform,
    parse,
    to_text,
)
from collector.rules.plan import Ctx, LutCache, compile_plan
from collector.rules.reference import evaluate


def test_precedence_not_and_or():
    ast = parse("not a and b or c and not not d")
    assert isinstance(ast, Or) and len(ast.items) == 2
    left, right = ast.items
    assert isinstance(left, And) and isinstance(left.items[0], Not)
    assert isinstance(right, And) and isinstance(right.items[1], Not) and isinstance(right.items[1].item, Not)
    assert to_text(ast) == "((not a and b) or (c and not not d))"


def test_keywords_need_word_boundaries():
    ast = parse("notes and android or order")
    assert to_text(ast) == "((notes and android) or order)"
    assert isinstance(parse("android"), MacroRef)


@pytest.mark.parametrize("text, lhs, op, rhs", [
    ("proc.name=bash", "proc.name", "=", "bash"),
    ("proc.name == bash", "proc.name", "=", "bash"),
    ("proc.aname[2] != 'a b'", "proc.aname[2]", "!=", '"a b"'),
    ("evt.arg.flags contains O_TRUNC", "evt.arg.flags", "contains", "O_TRUNC"),
    ("evt.arg[0] startswith /etc", "evt.arg[0]", "startswith", "/etc"),
    ("container.mount.dest[/etc] exists", "container.mount.dest[/etc]", "exists", None),
    ("fd.num>=0", "fd.num", ">=", "0"),
    ("fd.num<=0x10", "fd.num", "<=", "0x10"),
    ('fd.name in ("/a b", c, \'d\')', "fd.name", "in", '("/a b", c, "d")'),
    ("fd.name in ()", "fd.name", "in", "()"),
    ("fd.name pmatch (shell_binaries)", "fd.name", "pmatch", "(shell_binaries)"),
    ("tolower(proc.name) = bash", "tolower(proc.name)", "=", "bash"),
    ("len(basename(fd.name)) > 3", "len(basename(fd.name))", ">", "3"),
    ("proc.name = val(proc.pname)", "proc.name", "=", "val(proc.pname)"),
    ("proc.name icontains toupper(proc.pname)", "proc.name", "icontains", "toupper(proc.pname)"),
    ('proc.cmdline contains "\\"quoted\\" \\\\ x"', "proc.cmdline", "contains", '"\\"quoted\\" \\\\ x"'),
    ("proc.name glob 'ba*'", "proc.name", "glob", '"ba*"'),
    ("proc.name bcontains 6261", "proc.name", "bcontains", "6261"),
])
def test_comparisons(text, lhs, op, rhs):
    ast = parse(text)
    assert isinstance(ast, Cmp) and ast.lhs.text() == lhs and ast.op == op
    assert (to_text(ast.rhs) if ast.rhs is not None else None) == rhs


def test_field_arguments_and_transformers_shapes():
    c = parse("tolower(basename(fd.name)) = x")
    assert isinstance(c.lhs, Transform) and c.lhs.fn == "tolower"
    assert isinstance(c.lhs.inner, Transform) and isinstance(c.lhs.inner.inner, FieldRef)
    c = parse("proc.aname[ 3 ] = x")
    assert c.lhs.arg == " 3 "


@pytest.mark.parametrize("text, offset, msg", [
    ("", 0, "empty condition"),
    ("proc.name =", 11, "expected a value"),
    ("proc.name bash", 10, "expected an operator after 'proc.name'"),
    ("(proc.name = a", 14, "expected ')'"),
    ("proc.name = a b", 14, "unexpected 'b'"),
    ("proc.name in (a, b", 18, "expected ',' or ')'"),
    ("proc.name in a b", 15, "unexpected 'b'"),
    ("and x", 0, "unexpected keyword 'and'"),
    ("proc.name = 'abc", 12, "unterminated quoted string"),
    ("proc.aname[2 = x", 10, "missing ']'"),
    ("tolower(proc.name = x", 18, "expected ')' closing tolower("),
    ("x and (", 7, "unexpected end of condition"),
])
def test_parse_errors_have_offsets(text, offset, msg):
    with pytest.raises(ParseError) as ei:
        parse(text)
    assert msg in ei.value.msg and ei.value.offset == offset, (ei.value.offset, ei.value.msg)


def test_depth_is_capped():
    deep = "(" * (MAX_DEPTH + 5) + "proc.name = x" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(ParseError, match="nested too deeply"):
        parse(deep)
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("not " * (MAX_DEPTH + 5) + "a")
    ok = "(" * (MAX_DEPTH - 5) + "proc.name = x" + ")" * (MAX_DEPTH - 5)
    assert isinstance(parse(ok), Cmp)


def _check(text):
    class Src:
        def offset_pos(self, off):
            return off
    return Expander(Collector()).expand(parse(text, Src()), 1 << 30)


@pytest.mark.parametrize("text, msg", [
    ("proc.pid contains 1", "operator 'contains' cannot be used with field 'proc.pid'"),
    ("test.b1 = maybe", "'maybe' is not a valid boolean"),
    ("test.ip = 300.1.1.1", "is not a valid IP address"),
    ("tolower(proc.pid) = x", "transformer 'tolower' needs a string field"),
    ("proc.pid = val(test.s1)", "cannot compare 'proc.pid' (int64) with 'test.s1'"),
    ("test.s1 = (a, b)", "expected a value"),
    ("test.s1 startswith (a)", "expected a value"),
    ("test.s1 bcontains xyz", "not a valid hex byte string"),
    ("evt.num[2] = 1", "field 'evt.num' does not take an argument"),
    ("evt.arg exists", "field 'evt.arg' requires an argument"),
    ("test.anc[x] = 1", "takes a numeric index"),
    ("nope.field = 1", "unknown field 'nope.field'"),
    ("undefined_macro", "undefined macro 'undefined_macro'"),
])
def test_check_errors(text, msg):
    with pytest.raises((CheckError, ParseError)) as ei:
        _check(text)
    assert msg in str(ei.value.msg)


ROWS = [
    {"type": "openat", "test.s1": "/etc/pam.d/sshd", "test.s2": "/etc", "test.i1": 16, "test.i2": 16,
     "test.b1": True, "test.ip": "10.1.2.3", "test.anc[1]": "bash", "test.anc[2]": "sshd"},
    {"type": "openat", "test.s1": "YmFzaA==", "test.s2": "bash", "test.i1": 2, "test.i2": None,
     "test.b1": False, "test.ip": "fe80::1", "test.anc[1]": "sshd"},
    {"type": "execve", "test.s1": None, "test.s2": "", "test.i1": None, "test.i2": 3,
     "test.b1": None, "test.ip": "8.8.8.8"},
]


@pytest.mark.parametrize("cond, expect", [
    ("test.s1 pmatch (/etc/pam.d, /usr)", [1, 0, 0]),
    ("test.s1 pmatch (/etc/pam)", [0, 0, 0]),
    ("test.s1 pmatch (/)", [1, 0, 0]),
    ("test.s1 glob '/etc/*'", [1, 0, 0]),
    ("test.s1 glob '/etc/*/ssh?'", [1, 0, 0]),
    ("test.s1 iglob '*==' ", [0, 1, 0]),
    ("test.s1 regex '/etc/.*'", [1, 0, 0]),
    ("test.s1 regex 'etc'", [0, 0, 0]),
    ("test.s1 bcontains 2f65", [1, 0, 0]),
    ("test.s1 bstartswith 596d", [0, 1, 0]),
    ("test.s1 intersects ('YmFzaA==', x)", [0, 1, 0]),
    ("test.s1 exists", [1, 1, 0]),
    ("not test.s1 exists", [0, 0, 1]),
    ("test.s1 != x", [1, 1, 0]),
    ("not test.s1 = x", [1, 1, 1]),
    ("b64(test.s1) = bash", [0, 1, 0]),
    ("basename(test.s1) = sshd", [1, 0, 0]),
    ("len(test.s1) = 15", [1, 0, 0]),
    ("toupper(test.s2) = BASH", [0, 1, 0]),
    ("test.s1 startswith val(test.s2)", [1, 0, 0]),
    ("test.i1 = val(test.i2)", [1, 0, 0]),
    ("test.i1 = 0x10", [1, 0, 0]),
    ("test.i1 = 020", [1, 0, 0]),
    ("test.i1 in (2, 3)", [0, 1, 0]),
    ("test.i1 < 3", [0, 1, 0]),
    ("test.b1 = false", [0, 1, 0]),
    ("test.ip = 10.0.0.0/8", [1, 0, 0]),
    ("test.ip in (fe80::/10, 8.8.8.8)", [0, 1, 1]),
    ("test.ip != 10.0.0.0/8", [0, 1, 1]),
    ("test.anc = sshd", [1, 1, 0]),
    ("test.anc[1] = sshd", [0, 1, 0]),
    ("test.anc exists", [1, 1, 0]),
    ("evt.type = openat and not test.anc in (bash)", [0, 1, 0]),
])
def test_operator_semantics(cond, expect):
    b = batch(ROWS)
    ast = _check(cond)
    assert [int(x) for x in evaluate(ast, b)] == expect
    got = compile_plan(ast, LutCache()).eval(Ctx(b, None), None)
    assert got.astype(int).tolist() == expect
    sub = np.array([0, 2])
    got = compile_plan(ast, LutCache()).eval(Ctx(b, sub), None)
    assert got.astype(int).tolist() == [expect[0], expect[2]]


def test_or_of_equalities_becomes_one_set_membership():
    from collector.rules.plan import CmpPlan, OrPlan
    ast = _check("test.s1 = /etc or test.i1 = 2 or test.s1 in ('YmFzaA==x', /etc) or test.i1 in (16) "
                 "or test.s1 startswith /e")
    plan = compile_plan(ast, LutCache())
    assert isinstance(plan, OrPlan)
    assert [(c.c.lhs.text(), c.c.op, c.c.values) for c in plan.items] == [
        ("test.s1", "in", ("/etc", "YmFzaA==x")), ("test.i1", "in", (2, 16)),
        ("test.s1", "startswith", ("/e",))]
    b = batch(ROWS)
    assert plan.eval(Ctx(b, None), None).tolist() == [bool(x) for x in evaluate(ast, b)] == [True, True, False]
    single = compile_plan(_check("test.i1 = 2 or test.i1 = 16"), LutCache())
    assert isinstance(single, CmpPlan) and single.c.values == (2, 16)
