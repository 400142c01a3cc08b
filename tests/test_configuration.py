"""Configuration: defaults documented, user file merged, -o overrides typed, errors named."""

from __future__ import annotations

import re

import pytest

from collector.config import Config, default_text
from collector.errors import ConfigError


def test_defaults_load_and_every_key_is_documented():
    cfg = Config.load(None)
    assert cfg.get("json_output") is False
    text = default_text()
    lines = text.splitlines()
    # Names mentioned in any comment (a key may be explained in its neighbour's comment).
    documented = set(re.findall(r"[a-z_0-9]+", " ".join(
        ln for ln in lines if ln.lstrip().startswith("#"))))
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([a-z_0-9]+):", line)
        if not m:
            continue
        name = m.group(2)
        before = lines[i - 1].strip() if i else ""
        after = lines[i + 1].strip() if i + 1 < len(lines) else ""
        ok = before.startswith("#") or name in documented or after.startswith("#")
        assert ok, f"config/falconet.yaml:{i + 1}: key {name!r} has no comment documenting it"


def test_user_file_merges_and_overrides(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text("json_output: true\npipeline:\n  batch_events: 1024\n")
    cfg = Config.load(str(p), ["pipeline.queue_batches=3", "http_output.url=http://x:2801/",
                                "rules_files=[a.yaml, b.yaml]"])
    assert cfg.get("json_output") is True
    assert cfg.get("pipeline.batch_events") == 1024
    assert cfg.get("pipeline.queue_batches") == 3
    assert cfg.get("pipeline.stats_interval") == 0          # default kept beside the override
    assert cfg.get("http_output.url") == "http://x:2801/"
    assert cfg.get("rules_files") == ["a.yaml", "b.yaml"]


def test_errors_name_file_line_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+:\d+: invalid YAML"):
        Config.load(str(p))
    with pytest.raises(ConfigError, match="not found"):
        Config.load(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="expected key=value"):
        Config.load(None, ["json_output"])
    cfg = Config.load(None, ["pipeline.batch_events=lots"])
    with pytest.raises(ConfigError, match="'pipeline.batch_events' must be int"):
        cfg.typed("pipeline.batch_events", int)
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        Config.load(str(p))
