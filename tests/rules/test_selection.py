"""Selection and event semantics as Falco: -t/-T/-D, enabled, priority, -A, first/all, enter events."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import batch, engine

from collector import abi
from collector.errors import RuleError

RULES = """\
- rule: shell a
  desc: d
  condition: evt.type = openat and test.s1 = bash
  output: a %test.s1
  priority: WARNING
  tags: [shell, stable]
- rule: shell b
  desc: d
  condition: evt.type in (openat, execve) and test.s1 startswith ba
  output: b %test.s1
  priority: NOTICE
  tags: [shell]
- rule: off by default
  desc: d
  condition: evt.type = openat and test.s1 = bash
  output: c
  priority: CRITICAL
  enabled: false
  tags: [extra]
- rule: pid probe
  desc: d
  condition: evt.type = getpid
  output: p
  priority: DEBUG
  tags: [noisy]
"""


def _b():
    return batch([{"type": "openat", "test.s1": "bash"}, {"type": "execve", "test.s1": "bad"},
                  {"type": "getpid", "test.s1": "x"}, {"type": "openat", "test.s1": "zsh"}])


def names(eng):
    return [r.name for r in eng.enabled]


@pytest.fixture
def getpid_ignored(monkeypatch):
    """Falconet's table has none of Falco's ignored I/O calls; pretend getpid is one to
    exercise the -A mechanism."""
    from collector.rules import engine as E
    monkeypatch.setattr(E, "IGNORED_TYPES", frozenset({abi.BY_NAME["getpid"].num}))


def test_falco_ignored_io_calls_are_not_in_the_event_table():
    from collector.rules.engine import IGNORED_EVENT_NAMES, IGNORED_TYPES
    assert "read" in IGNORED_EVENT_NAMES and "sendto" not in IGNORED_EVENT_NAMES
    assert IGNORED_TYPES == frozenset()


def test_defaults_first_match_and_ignored_events(tmp_path, getpid_ignored):
    eng = engine(tmp_path, RULES)
    assert names(eng) == ["shell a", "shell b", "pid probe"]
    assert abi.BY_NAME["getpid"].num not in eng.event_types
    assert any("ignored events (getpid)" in str(w) for w in eng.warnings)
    got = [(a.output, a.rule) for a in eng.process(_b())]
    assert got == [("a bash", "shell a"), ("b bad", "shell b")]


def test_all_events_and_rule_matching_all(tmp_path, getpid_ignored):
    eng = engine(tmp_path, RULES, "rule_matching=all", all_events=True)
    assert abi.BY_NAME["getpid"].num in eng.event_types
    got = [a.rule for a in eng.process(_b())]
    assert got == ["shell a", "shell b", "shell b", "pid probe"]


def test_tags_enable_even_disabled_rules(tmp_path):
    assert names(engine(tmp_path, RULES, tags=["extra"])) == ["off by default"]
    assert names(engine(tmp_path, RULES, tags=["shell", "noisy"])) == ["shell a", "shell b", "pid probe"]


def test_disable_tags_and_substrings(tmp_path):
    assert names(engine(tmp_path, RULES, disable_tags=["stable"])) == ["shell b", "pid probe"]
    assert names(engine(tmp_path, RULES, disable_substrings=["shell"])) == ["pid probe"]
    assert names(engine(tmp_path, RULES, disable_substrings=["hell b"], disable_tags=["noisy"])) \
        == ["shell a"]


def test_tags_with_disable_is_an_error(tmp_path):
    with pytest.raises(RuleError, match=r"You can not specify both disabled \(-D/-T\) and enabled \(-t\) rules"):
        engine(tmp_path, RULES, tags=["shell"], disable_tags=["x"])
    with pytest.raises(RuleError, match="both disabled"):
        engine(tmp_path, RULES, tags=["shell"], disable_substrings=["x"])


@pytest.mark.parametrize("prio, expect", [
    ("debug", ["shell a", "shell b", "pid probe"]),
    ("notice", ["shell a", "shell b"]),
    ("WARNING", ["shell a"]),
    ("critical", []),
])
def test_priority_threshold(tmp_path, prio, expect):
    assert names(engine(tmp_path, RULES, f"priority={prio}")) == expect


def test_enter_events_are_not_seen_by_rules(tmp_path):
    eng = engine(tmp_path, RULES, "rule_matching=all")
    b = batch([{"type": "openat", "test.s1": "bash"}, {"type": "openat", "test.s1": "bash"}])
    b.cols["dir"] = np.array([1, 0], np.uint8)       # enter, exit (a .scap pair)
    alerts = eng.process(b)
    assert [a.output_fields["evt.time"] for a in alerts] == [int(b.cols["ts"][1])] * 2


def test_event_types_follow_falco_index(tmp_path):
    eng = engine(tmp_path, """\
        - rule: r
          desc: d
          condition: not evt.type in (openat, execve) and evt.type != close and test.s1 = x
          output: o
          priority: INFO
        - rule: s
          desc: d
          condition: (evt.type = connect or evt.type = accept) and not test.s1 = y
          output: o
          priority: INFO
        """)
    r, s = eng.rules
    names_r = {abi.BY_NUM[t].falco for t in r.types}
    assert "openat" not in names_r and "close" not in names_r and "unlink" in names_r
    assert {abi.BY_NUM[t].falco for t in s.types} == {"connect", "accept"}


def test_columns_and_process_of_empty_batch(tmp_path):
    eng = engine(tmp_path, RULES)
    assert {"type", "test.s1"} <= eng.columns
    assert eng.process(batch([])) == []
