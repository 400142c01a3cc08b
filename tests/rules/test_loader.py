"""Loading: official files, YAML pitfalls, positions, override/append and every error kind."""

from __future__ import annotations

import re

import pytest
from helpers import engine, msgs

from collector.config import Config
from collector.errors import RuleError
from collector.rules import RuleEngine, validate

LOC = re.compile(r"^.+\.yaml:\d+:\d+: (error|warning): ")


def test_official_files_load_with_zero_errors(official):
    errors, _warnings = validate(official)
    assert errors == [], "\n".join(map(str, errors))
    eng = RuleEngine.load(official, Config.load(None))
    assert len(eng.rules) == 25 + 31 + 37
    assert len(eng.enabled) == 25 + 31 + 37 - 12      # sandbox has 12 enabled: false
    stable = RuleEngine.load(official[:1], Config.load(None))
    assert len(stable.rules) == 25
    from collector import abi
    names = {abi.BY_NUM[t].falco for t in stable.event_types}
    assert {"execve", "execveat", "openat", "connect", "ptrace", "init_module"} <= names


def test_official_stable_alone_has_no_warnings(official):
    errors, warnings = validate(official[:1])
    assert errors == []
    for w in warnings:      # only "unused" notes are acceptable
        assert "not referenced" in str(w), str(w)


def test_yaml_pitfalls(tmp_path):
    errs, _warns = msgs(tmp_path, """\
        - macro: m
          condition: proc.name = "x"
        - rule: r
          desc: != after evt.type
          condition: evt.type = open and m
          output: o %proc.name
          priority:
            WARNING
          exceptions:
            - name: e1
              fields: [proc.name, fd.name]
              comps: [=, in]
              values:
                - [cat, [/etc/a, /etc/b]]
        """)
    assert errs == []
    eng = engine(tmp_path, """\
        - rule: r
          desc: != after evt.type
          condition: evt.type = open
          output: o
          priority: warning
        """)
    assert eng.rules[0].defn.desc == "!= after evt.type"
    assert eng.rules[0].priority.label == "Warning"


def test_every_message_has_file_line_col_and_item(tmp_path):
    errs, _ = msgs(tmp_path, """\
        - rule: r1
          desc: d
          condition: evt.type = open and proc.nam = x
          output: o
          priority: WARNING
        """)
    assert len(errs) == 1
    assert errs[0].endswith("rules.yaml:3:34: error: rule 'r1': unknown field 'proc.nam'"), errs[0]


def test_positions_in_folded_conditions(tmp_path):
    errs, _ = msgs(tmp_path, """\
        - macro: m1
          condition: >
            evt.type = open
            and not no_such_macro
        - rule: r
          desc: d
          condition: m1
          output: o
          priority: INFO
        """)
    assert len(errs) == 1
    assert ":4:13: error: rule 'r': undefined macro 'no_such_macro'" in errs[0], errs


@pytest.mark.parametrize("body, expect", [
    ("- rule: r\n  desc: d\n  condition: evt.type = open and\n  output: o\n  priority: INFO\n",
     "unexpected end of condition"),
    ("- rule: r\n  desc: d\n  condition: evt.type = open\n  priority: INFO\n",
     "missing required key 'output'"),
    ("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: LOUD\n",
     "invalid priority"),
    ("- rule: r\n  desc: d\n  condition: proc.pid contains 3\n  output: o\n  priority: INFO\n",
     "operator 'contains' cannot be used with field 'proc.pid' of type int64"),
    ("- rule: r\n  desc: d\n  condition: proc.pid = abc\n  output: o\n  priority: INFO\n",
     "'abc' is not a valid number for field 'proc.pid'"),
    ("- rule: r\n  desc: d\n  condition: evt.is_open_read = yes\n  output: o\n  priority: INFO\n",
     "'yes' is not a valid boolean"),
    ("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o %proc.nope\n  priority: INFO\n",
     "in output: unknown field 'proc.nope'"),
    ("- rule: r\n  desc: d\n  condition: evt.type = open\n  desc: again\n  output: o\n  priority: INFO\n",
     "duplicate key 'desc'"),
    (("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"
      "- rule: r\n  desc: d\n  condition: and x\n  override: {condition: replace, output: append}\n"),
     "an override is defined for 'output' but the item has no such key"),
    (("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"
      "- rule: r\n  condition: and proc.name = x\n  priority: INFO\n  override: {condition: append}\n"),
     "unexpected key 'priority': no corresponding entry under 'override' is defined"),
    (("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"
      "- rule: r\n  priority: INFO\n  override: {priority: append}\n"),
     "key 'priority' cannot be appended to, use 'replace' instead"),
    (("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"
      "- rule: r\n  condition: x\n  append: true\n  override: {condition: append}\n"),
     "keys 'override' and 'append: true' cannot be used together"),
    ("- rule: nope\n  condition: and x\n  override: {condition: append}\n",
     "rule has an 'override' key but no rule by that name already exists"),
    ("- rule: nope\n  condition: and x\n  append: true\n",
     "rule has 'append' key but no rule by that name already exists"),
    ("- list: l\n  items: [a]\n- list: l\n  items: [b]\n  override: {items: replace}\n",
     "key 'items' cannot be replaced, use 'append' instead"),
    ("- macro: m\n  condition: x\n  override: {condition: append}\n",
     "macro has 'append' key or an append override but no macro by that name already exists"),
    (("- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: r\n  desc: d\n"
      "  condition: evt.type = open and a\n  output: o\n  priority: INFO\n"),
     "refers to itself"),
    ("- required_engine_version: 9.0.0\n", "rules require engine version 9.0.0"),
    ("- required_plugin_versions:\n  - name: k8saudit\n    version: 0.1.0\n",
     "plugin 'k8saudit' version 0.1.0 is required"),
    (("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"
      "  exceptions:\n  - name: e\n    fields: [proc.name, fd.name]\n    comps: [=]\n    values: [[a, b]]\n"),
     "'fields' and 'comps' must have the same length"),
    (("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"
      "  exceptions:\n  - name: e\n    fields: [proc.name, fd.name]\n    values: [[a]]\n"),
     "each value must be a list of 2 item(s)"),
    ("- rule: r\n  desc: d\n  condition: fd.name regex '('\n  output: o\n  priority: INFO\n",
     "invalid regular expression"),
    ("{a: 1}\n", "rules content is not a YAML sequence"),
    ("- rule: r\n  desc: [\n", "invalid YAML"),
])
def test_error_kinds(tmp_path, body, expect):
    errs, _ = msgs(tmp_path, body)
    assert errs, f"no error for: {body}"
    assert any(expect in e for e in errs), errs
    for e in errs:
        assert LOC.match(e), e


def test_warning_kinds(tmp_path):
    _, warns = msgs(tmp_path, """\
        - rule: r
          desc: d
          condition: proc.name = x
          output: o
          priority: INFO
          colour: red
        - list: unused_list
          items: [a]
        - rule: r2
          desc: d
          condition: evt.type = open and evt.dir = <
          output: o
          priority: INFO
        - rule: r2
          condition: and proc.name = y
          append: true
        - whatever: 1
        """)
    text = "\n".join(warns)
    assert "unknown key 'colour'" in text
    assert "rule matches too many evt.type values" in text
    assert "list not referenced" in text
    assert "evt.dir is deprecated" in text
    assert "'append' key is deprecated" in text
    assert "unknown top level item 'whatever'" in text
    for w in warns:
        assert LOC.match(w), w


def test_override_and_append_semantics(tmp_path):
    eng = engine(tmp_path, """\
        - list: bins
          items: [cat]
        - macro: m
          condition: proc.name in (bins)
        - rule: r
          desc: first
          condition: evt.type = open and m
          output: out1
          priority: INFO
          tags: [a]
        - list: bins
          items: [dog]
          override: {items: append}
        - macro: m
          condition: or proc.name = cow
          override: {condition: append}
        - rule: r
          desc: second
          output: "%proc.name"
          priority: CRITICAL
          tags: [b]
          override: {desc: append, output: append, priority: replace, tags: append}
        - rule: r
          condition: and not proc.pname = bad
          append: true
        - rule: r
          enabled: false
          override: {enabled: replace}
        - rule: r
          enabled: true
        """)
    r = eng.rules[0]
    assert r.defn.desc == "first second"
    assert r.defn.output == "out1 %proc.name"
    assert r.priority.label == "Critical"
    assert r.tags == ["a", "b"]
    assert r.defn.cond.text == "evt.type = open and m and not proc.pname = bad"
    assert r.defn.enabled is True
    from collector.rules.parser import to_text
    text = to_text(r.ast)
    assert '(proc.name in ("cat", "dog") or proc.name = cow)' in text
    assert "not proc.pname = bad" in text


def test_redefinition_replaces_in_place(tmp_path):
    eng = engine(tmp_path, """\
        - rule: a
          desc: d
          condition: evt.type = open
          output: o
          priority: INFO
        - rule: b
          desc: d
          condition: evt.type = open
          output: o
          priority: INFO
        - rule: a
          desc: d2
          condition: evt.type = openat
          output: o
          priority: INFO
        """)
    assert [r.name for r in eng.rules] == ["a", "b"]
    assert eng.rules[0].defn.desc == "d2"


def test_exceptions_compile_like_falco(tmp_path):
    from collector.rules.parser import to_text
    eng = engine(tmp_path, """\
        - rule: r
          desc: d
          condition: evt.type = open
          output: o
          priority: INFO
          exceptions:
            - name: tuple
              fields: [proc.name, fd.name]
              comps: [=, startswith]
              values:
                - [cat, /etc]
                - [my proc, /tmp]
            - name: scalar
              fields: proc.pname
              values: [sshd, bash]
            - name: empty
              fields: [proc.name]
        - rule: r
          exceptions:
            - name: scalar
              values: [zsh]
          override: {exceptions: append}
        """)
    text = to_text(eng.rules[0].ast)
    assert "not ((proc.name = cat and fd.name startswith /etc) or " \
           '(proc.name = "my proc" and fd.name startswith /tmp))' in text
    assert "not proc.pname in (sshd, bash, zsh)" in text


def test_skip_if_unknown_filter_and_unknown_source(tmp_path):
    eng = engine(tmp_path, """\
        - rule: skipped
          desc: d
          condition: evt.type = open and foo.bar = 1
          output: o
          priority: INFO
          skip-if-unknown-filter: true
        - rule: audit
          desc: d
          condition: ka.verb = create
          output: o
          priority: INFO
          source: k8s_audit
        - rule: kept
          desc: d
          condition: evt.type = open
          output: o
          priority: INFO
        """)
    assert [r.name for r in eng.rules] == ["kept"]
    text = "\n".join(map(str, eng.warnings))
    assert "rule skipped (skip-if-unknown-filter)" in text
    assert "unknown source 'k8s_audit'" in text


def test_load_raises_one_rule_error_listing_all(tmp_path):
    with pytest.raises(RuleError) as ei:
        engine(tmp_path, """\
            - rule: a
              desc: d
              condition: evt.type = open and x.y = 1
              output: o
              priority: INFO
            - rule: b
              desc: d
              condition: evt.type = open and undefined_macro
              output: o
              priority: INFO
            """)
    msg = str(ei.value)
    assert "2 error(s)" in msg and "unknown field 'x.y'" in msg and "undefined macro" in msg


def test_unused_macro_syntax_error_and_uncaptured_event_types(tmp_path):
    errs, warns = msgs(tmp_path, """\
        - macro: broken
          condition: proc.name = (
        - rule: io
          desc: d
          condition: evt.type in (read, write) and proc.name = x
          output: o
          priority: INFO
        """)
    assert any(":2:26: error: macro 'broken': expected a value" in e for e in errs), errs
    assert any("rule 'io': rule can never match in Falconet: its event types (read, write) are "
               "not captured" in w for w in warns), warns
