"""`falconet replay` as a Falco user drives it: -r, --json, -t/-T/-D, -o, --stats-json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules" / "falconet_rules.yaml"


def falconet(*args):
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    p = tmp_path_factory.mktemp("cap") / "s.fcap"
    r = falconet("capture", "-w", str(p), "--source", "synthetic", "--events", "40000", "--seed", "11")
    assert r.returncode == 0, r.stderr
    return p


def stats_of(r) -> dict:
    return json.loads(r.stderr.strip().splitlines()[-1])


def test_json_lines_are_falco_alerts(capture):
    r = falconet("replay", "--json", "--stats-json", "-r", str(RULES), str(capture))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines, "the synthetic mix must trigger some bundled rules"
    for line in lines:
        a = json.loads(line)
        assert set(a) >= {"hostname", "output", "output_fields", "priority", "rule", "source",
                          "tags", "time"}
        assert a["source"] == "syscall" and a["time"].endswith("Z")
        assert a["output"].split(" ", 2)[1] == a["priority"]
        assert isinstance(a["output_fields"], dict) and "evt.time" in a["output_fields"]
    s = stats_of(r)
    assert s["events"] == 40000 and sum(s["alerts"].values()) == len(lines)


def test_text_lines_and_default_rules(capture):
    r = falconet("replay", str(capture))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    # "HH:MM:SS.nnnnnnnnn: Priority output"
    assert first[2] == ":" and first[8] == "." and first[18:20] == ": "


def test_selection_options(capture):
    base = stats_of(falconet("replay", "--stats-json", "-r", str(RULES), str(capture)))["alerts"]
    assert len(base) >= 2
    rule = max(base, key=base.get)
    # -D disables rules whose name contains the substring
    r = falconet("replay", "--stats-json", "-D", rule[3:12], "-r", str(RULES), str(capture))
    assert rule not in stats_of(r)["alerts"]
    # -T disables by tag; -t keeps only a tag
    r = falconet("replay", "--stats-json", "-T", "host", "-r", str(RULES), str(capture))
    assert stats_of(r)["alerts"] == {}
    r = falconet("replay", "--stats-json", "-t", "host", "-r", str(RULES), str(capture))
    assert stats_of(r)["alerts"] == base
    # -o priority=... loads only rules at least that severe
    r = falconet("replay", "--stats-json", "-o", "priority=critical", "-r", str(RULES), str(capture))
    assert set(stats_of(r)["alerts"]) < set(base)


def test_rules_directory_and_missing_rules(capture, tmp_path):
    d = tmp_path / "rules.d"
    d.mkdir()
    (d / "10-a.yaml").write_text(RULES.read_text())
    (d / "20-b.yaml").write_text("- rule: Write below monitored dir\n  enabled: false\n"
                                 "  override: {enabled: replace}\n")
    r = falconet("replay", "--stats-json", "-r", str(d), str(capture))
    assert r.returncode == 0, r.stderr
    assert "Write below monitored dir" not in stats_of(r)["alerts"]
    r = falconet("replay", "-r", str(tmp_path / "nope.yaml"), str(capture))
    assert r.returncode == 1 and "rules file not found" in r.stderr and "Traceback" not in r.stderr
