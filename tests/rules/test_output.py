"""Alerts: %field rendering, <NA>, typed output_fields, Falco's text and JSON lines exactly."""

from __future__ import annotations

import json
import os
import time

import pytest
from helpers import batch, engine

from collector.rules.output import OutputFormat
from collector.rules.yamlsrc import Pos

RULE = """\
- rule: Open by test
  desc: d
  condition: evt.type in (openat, execve) and test.s1 exists
  output: >
    File %evt.arg.name opened by %test.s1 (pid=%proc.pid i1=%test.i1 b=%test.b1
    missing=%test.s2 flags=%evt.arg.flags anc2=%test.anc[2] low=%tolower(test.s1)
    len=%len(test.s1) type=%evt.type res=%evt.res num=%evt.num)
  priority: WARNING
  tags: [zeta, alpha, filesystem]
"""


@pytest.fixture(autouse=True)
def utc():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def _batch():
    b = batch([
        {"type": "openat", "test.s1": "CatX", "pid": 42, "test.i1": 7, "test.b1": True,
         "a1": 0o1101, "v0": "/etc/shadow", "ret": 3, "test.anc[2]": "sshd"},
        {"type": "close", "test.s1": "x"},
        {"type": "openat", "test.s1": "dd", "pid": 43, "test.i1": None, "test.b1": False,
         "a1": 0, "v0": "/tmp/f", "ret": -2},
    ])
    b.cols["ts"][:] = [1_700_000_000_123_456_789, 1_700_000_000_200_000_000, 1_700_000_001_000_000_001]
    return b


def test_text_and_json_lines_exactly(tmp_path):
    eng = engine(tmp_path, RULE, hostname="node1")
    alerts = eng.process(_batch())
    assert [a.rule for a in alerts] == ["Open by test", "Open by test"]
    a = alerts[0]
    expect_out = ("File /etc/shadow opened by CatX (pid=42 i1=7 b=true missing=<NA> "
                  "flags=O_TRUNC|O_CREAT|O_WRONLY anc2=sshd low=catx len=4 type=openat "
                  "res=SUCCESS num=1)")
    assert a.output == expect_out
    assert a.text_line() == "22:13:20.123456789: Warning " + expect_out
    assert a.text_line(iso8601=True) == "2023-11-14T22:13:20.123456789+0000: Warning " + expect_out
    assert a.output_fields == {
        "evt.arg.name": "/etc/shadow", "test.s1": "CatX", "proc.pid": 42, "test.i1": 7,
        "test.b1": True, "test.s2": None, "evt.arg.flags": "O_TRUNC|O_CREAT|O_WRONLY",
        "test.anc[2]": "sshd", "tolower(test.s1)": "catx", "len(test.s1)": 4,
        "evt.type": "openat", "evt.res": "SUCCESS", "evt.num": 1,
        "evt.time": 1_700_000_000_123_456_789}
    line = a.json_line()
    assert line == (
        '{"hostname":"node1","output":"22:13:20.123456789: Warning ' + expect_out + '",'
        '"output_fields":{"evt.arg.flags":"O_TRUNC|O_CREAT|O_WRONLY","evt.arg.name":"/etc/shadow",'
        '"evt.num":1,"evt.res":"SUCCESS","evt.time":1700000000123456789,"evt.type":"openat",'
        '"len(test.s1)":4,"proc.pid":42,"test.anc[2]":"sshd","test.b1":true,"test.i1":7,'
        '"test.s1":"CatX","test.s2":null,"tolower(test.s1)":"catx"},'
        '"priority":"Warning","rule":"Open by test","source":"syscall",'
        '"tags":["alpha","filesystem","zeta"],"time":"2023-11-14T22:13:20.123456789Z"}')
    b = alerts[1]
    assert "i1=<NA> b=false" in b.output and "res=ENOENT" in b.output
    assert b.output_fields["test.i1"] is None and b.output_fields["evt.res"] == "ENOENT"
    assert "flags=O_RDONLY " in b.output


def test_json_include_switches_and_iso_time_field(tmp_path):
    eng = engine(tmp_path, RULE, "time_format_iso_8601=true", hostname="h")
    a = eng.process(_batch())[0]
    assert "evt.time.iso8601" in a.output_fields and "evt.time" not in a.output_fields
    d = json.loads(a.json_line(iso8601=True, include_output=False, include_tags=False))
    assert "output" not in d and "tags" not in d and d["priority"] == "Warning"


def test_leading_star_and_literal_percent():
    fmt = OutputFormat("*100% of %evt.type and %notafield", Pos("f", 1, 1))
    assert [p if isinstance(p, str) else p[0] for p in fmt.pieces] == \
        ["100% of ", "evt.type", " and %notafield"]


def test_output_with_unknown_field_is_an_error(tmp_path):
    from collector.errors import RuleError
    with pytest.raises(RuleError, match=r"rules.yaml:\d+:\d+: error: rule 'r': in output: "
                                        r"unknown field 'proc.nonexistent'"):
        engine(tmp_path, "- rule: r\n  desc: d\n  condition: evt.type=open\n  "
                         "output: x %proc.nonexistent\n  priority: INFO\n")


def test_stats_count_alerts(tmp_path):
    eng = engine(tmp_path, RULE)
    eng.process(_batch())
    s = eng.stats()
    assert s["alerts_by_rule"] == {"Open by test": 2}
    assert s["alerts_by_priority"] == {"Warning": 2}
    assert s["rules_loaded"] == 1 and s["rules_enabled"] == 1 and s["events"] == 3
