"""`falconet rules validate|list|fields`."""

from __future__ import annotations

import re

from helpers import write

from collector.cli import main


def test_validate_ok(tmp_path, capsys):
    p = write(tmp_path, "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n"
                        "  priority: INFO\n")
    assert main(["rules", "validate", p]) == 0
    assert "ok: 0 error(s), 0 warning(s) in 1 file(s)" in capsys.readouterr().out


def test_validate_errors_like_a_compiler(tmp_path, capsys):
    p = write(tmp_path, "- rule: r\n  desc: d\n  condition: evt.type = open and bad.field = 1\n"
                        "  output: o\n  priority: INFO\n- list: l\n  items: [a]\n")
    assert main(["rules", "validate", p]) == 1
    out = capsys.readouterr()
    assert re.search(r"rules\.yaml:3:34: error: rule 'r': unknown field 'bad\.field'", out.err)
    assert re.search(r"rules\.yaml:6:3: warning: list 'l': list not referenced", out.out)
    assert "FAILED: 1 error(s), 1 warning(s)" in out.out
    assert "Traceback" not in out.err


def test_validate_missing_file(tmp_path, capsys):
    assert main(["rules", "validate", str(tmp_path / "nope.yaml")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_validate_official(official, capsys):
    assert main(["rules", "validate", *official]) == 0


def test_list(tmp_path, capsys):
    p = write(tmp_path, "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n"
                        "  priority: INFO\n  tags: [x]\n- rule: s\n  desc: d\n  condition: evt.type = open\n"
                        "  output: o\n  priority: INFO\n  enabled: false\n")
    assert main(["rules", "list", p]) == 0
    out = capsys.readouterr().out
    assert "+ Informational" in out and "r  [x]" in out and "- Informational" in out
    assert "1 of 2 rules enabled" in out


def test_list_bundled_rules(capsys):
    assert main(["rules", "list"]) == 0
    assert "rules enabled" in capsys.readouterr().out


def test_fields(capsys):
    assert main(["rules", "fields"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^evt\.type\s+charbuf\s+the system call name", out, re.MULTILINE)
    assert re.search(r"^evt\.arg\.NAME / \[N\]", out, re.MULTILINE)
    assert main(["rules", "fields", "--json", "evt.dir"]) == 0
    assert '"name": "evt.dir"' in capsys.readouterr().out
