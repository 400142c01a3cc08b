"""Hypothesis: random conditions on random batches, vectorized plans == scalar reference.

Conditions are generated as text (so the parser is exercised too), over test fields of every
kind (string with absent values, transformers, ints, bools, IPs, ancestor-style indexed
fields) and evt.type, with every operator.  The plan is evaluated on the whole batch, on a
group of rows and on a subset of a group; the engine is checked end to end with several rules
(rule_matching all/first), which also checks that the event-type index never drops a row the
reference matches.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import abi
from collector.batch import EventBatch
from collector.config import Config
from collector.native import StringTable
from collector.rules import RuleEngine
from collector.rules.check import Expander
from collector.rules.collector import Collector
from collector.rules.parser import parse, quote
from collector.rules.plan import Ctx, LutCache, compile_plan
from collector.rules.reference import evaluate

WORDS = ["", "a", "ab", "abc", "Bash", "bash", "/etc", "/etc/passwd", "/etc/pam.d/x", "/usr/bin/python3",
         "YmFzaA==", "x y", "ü", "a.c", "10"]
PATTERNS = ["a*", "*/passwd", "[ab]*", "*", "?a*", "/etc/*", "*.d/*", "A*"]
REGEXES = ["a.*", "ab?c", "/etc/.*", "[a-c]+", ".*"]
IPS = ["10.1.2.3", "192.168.1.1", "8.8.8.8", "::1", "fe80::1", "notanip"]
NETS = ["10.0.0.0/8", "192.168.1.1", "::1", "0.0.0.0/0", "fe80::/10"]
TYPES = ["openat", "execve", "connect", "close", "unlink"]

STR_FIELDS = ["test.s1", "test.s2", "tolower(test.s1)", "toupper(test.s2)", "basename(test.s1)",
              "b64(test.s1)", "test.anc", "test.anc[1]", "test.anc[2]", "tolower(test.anc)",
              "test.multi", "toupper(test.multi)"]
INT_FIELDS = ["test.i1", "test.i2", "len(test.s1)"]

word = st.sampled_from(WORDS).map(quote)


def str_cmp():
    f = st.sampled_from(STR_FIELDS)
    return st.one_of(
        st.tuples(f, st.sampled_from(["=", "!=", "contains", "icontains", "startswith", "endswith",
                                      "<", ">=", "bcontains", "bstartswith"]), word).map(
            lambda t: f"{t[0]} {t[1]} {t[2] if 'b' != t[1][0] else quote(t[2][1:-1].encode().hex())}"),
        st.tuples(f, st.sampled_from(["glob", "iglob"]), st.sampled_from(PATTERNS)).map(
            lambda t: f"{t[0]} {t[1]} {quote(t[2])}"),
        st.tuples(f, st.sampled_from(REGEXES)).map(lambda t: f"{t[0]} regex {quote(t[1])}"),
        st.tuples(f, st.sampled_from(["in", "intersects", "pmatch"]),
                  st.lists(st.sampled_from(WORDS), max_size=4)).map(
            lambda t: f"{t[0]} {t[1]} ({', '.join(quote(x) for x in t[2])})"),
        f.map(lambda x: f"{x} exists"),
        st.tuples(f, st.sampled_from(["=", "!=", "contains", "startswith"]),
                  st.sampled_from(["test.s1", "test.s2", "toupper(test.s1)"])).map(
            lambda t: f"{t[0]} {t[1]} val({t[2]})" if "(" not in t[2] else f"{t[0]} {t[1]} {t[2]}"),
    )


def int_cmp():
    f = st.sampled_from(INT_FIELDS)
    num = st.integers(-3, 5).map(str) | st.sampled_from(["0x2", "010"])
    return st.one_of(
        st.tuples(f, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), num).map(" ".join),
        st.tuples(f, st.lists(num, min_size=1, max_size=4)).map(
            lambda t: f"{t[0]} in ({', '.join(t[1])})"),
        f.map(lambda x: f"{x} exists"),
        st.tuples(f, st.sampled_from(["=", "<", "!="]), st.sampled_from(["test.i1", "test.i2"])).map(
            lambda t: f"{t[0]} {t[1]} val({t[2]})"),
    )


def other_cmp():
    return st.one_of(
        st.tuples(st.sampled_from(["=", "!="]), st.sampled_from(["true", "false"])).map(
            lambda t: f"test.b1 {t[0]} {t[1]}"),
        st.tuples(st.sampled_from(["=", "!="]), st.sampled_from(NETS)).map(
            lambda t: f"test.ip {t[0]} {quote(t[1])}"),
        st.lists(st.sampled_from(NETS), min_size=1, max_size=3).map(
            lambda v: f"test.ip in ({', '.join(quote(x) for x in v)})"),
        st.sampled_from(TYPES).map(lambda t: f"evt.type = {t}"),
        st.sampled_from(TYPES).map(lambda t: f"evt.type != {t}"),
        st.lists(st.sampled_from(TYPES), min_size=1, max_size=3).map(
            lambda v: f"evt.type in ({', '.join(v)})"),
    )


atom = st.one_of(str_cmp(), int_cmp(), other_cmp())
condition = st.recursive(
    atom,
    lambda sub: st.one_of(
        st.tuples(sub, sub).map(lambda t: f"({t[0]} and {t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"({t[0]} or {t[1]})"),
        st.lists(sub, min_size=3, max_size=5).map(lambda v: "(" + " and ".join(v) + ")"),
        st.lists(sub, min_size=3, max_size=5).map(lambda v: "(" + " or ".join(v) + ")"),
        sub.map(lambda s: f"not {s}"),
    ),
    max_leaves=12,
)


@st.composite
def batches(draw):
    n = draw(st.integers(1, 24))
    strings = StringTable()
    ids = lambda k: np.array([strings.intern(WORDS[i]) for i in k], np.uint32)
    windex = st.integers(0, len(WORDS) - 1)
    cols = {}
    b = EventBatch.empty(strings, n)
    cols = b.cols
    cols["type"][:] = [abi.BY_NAME[t].num for t in draw(st.lists(st.sampled_from(TYPES), min_size=n, max_size=n))]
    for f in ("test.s1", "test.s2"):
        cols[f] = ids(draw(st.lists(windex, min_size=n, max_size=n)))
        absent = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        cols[f][absent & (np.arange(n) % 3 == 0)] = 0
    for f in ("test.i1", "test.i2"):
        cols[f] = np.array(draw(st.lists(st.integers(-3, 5), min_size=n, max_size=n)), np.int64)
        cols[f + "#valid"] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) | \
            (np.arange(n) % 2 == 0)
    cols["test.b1"] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    cols["test.ip"] = np.array([strings.intern(x) for x in
                                draw(st.lists(st.sampled_from(IPS), min_size=n, max_size=n))], np.uint32)
    multi = np.stack([ids(draw(st.lists(windex, min_size=n, max_size=n))) for _ in range(3)], axis=1)
    multi[np.array(draw(st.lists(st.booleans(), min_size=3 * n, max_size=3 * n))).reshape(n, 3)] = 0
    cols["test.multi"] = multi
    depth = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    for lvl in (1, 2, 3):
        col = ids(draw(st.lists(windex, min_size=n, max_size=n)))
        col[depth < lvl] = 0
        cols[f"test.anc[{lvl}]"] = col
    return b


def checked(text: str):
    src = type("Src", (), {"offset_pos": lambda self, off: off, "text": text})()
    return Expander(Collector()).expand(parse(text, src), 1 << 30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition, batches(), st.data())
def test_plan_equals_reference(text, batch, data):
    ast = checked(text)
    ref = np.array(evaluate(ast, batch), dtype=bool)
    luts = LutCache()
    plan = compile_plan(ast, luts)
    got = plan.eval(Ctx(batch, None, {}), None)
    assert got.dtype == bool and got.shape == ref.shape
    assert (got == ref).all(), f"{text}: plan {got.astype(int)} != reference {ref.astype(int)}"
    # the same plan (tables now warm) on a group of rows, and on a subset of that group
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, batch.n - 1), min_size=1))), np.int64)
    got = plan.eval(Ctx(batch, rows, {}), None)
    assert (got == ref[rows]).all(), f"{text} on rows {rows}"
    sel = np.array(sorted(data.draw(st.sets(st.integers(0, len(rows) - 1)))), np.int64)
    got = plan.eval(Ctx(batch, rows, {}), sel)
    assert (got == ref[rows][sel]).all(), f"{text} on rows {rows} sel {sel}"


def _rules_yaml(conds):
    out = []
    for i, c in enumerate(conds):
        out.append(f"- rule: r{i}\n  desc: d\n  condition: {quote(c)}\n  output: o%test.s1\n"
                   f"  priority: WARNING\n  warn_evttypes: false\n")
    return "\n".join(out)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(condition, min_size=1, max_size=4), batches(), st.sampled_from(["all", "first"]))
def test_engine_equals_reference(conds, batch, matching):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "r.yaml")
        with open(p, "w") as f:
            f.write(_rules_yaml(conds))
        cfg = Config.load(None, [f"rule_matching={matching}"])
        eng = RuleEngine.load([p], cfg, all_events=True)
    batch.cols["num"][:] = np.arange(1, batch.n + 1)
    alerts = eng.process(batch)
    got = [(int(a.output_fields["evt.time"]), a.rule) for a in alerts]
    expect = []
    refs = [np.array(evaluate(r.ast, batch)) for r in eng.rules]
    for i in range(batch.n):
        for r, ref in zip(eng.rules, refs):
            if ref[i]:
                expect.append((i, r.name))
                if matching == "first":
                    break
    rows = [e[0] for e in expect]
    assert len(got) == len(expect)
    assert [g[1] for g in got] == [e[1] for e in expect], (conds, matching)
    # alerts come in event order
    assert rows == sorted(rows)
