"""Reload without restart: inotify, the polling fallback, atomic swap, broken changes."""

from __future__ import annotations

import errno
import os
import time

import pytest
from helpers import batch

from collector.config import Config
from collector.rules import RuleEngine
from collector.rules.reload import InotifyUnavailable, ReloadingEngine, Watcher, _Inotify

RULE = """\
- rule: {name}
  desc: d
  condition: evt.type = openat and test.s1 = {value}
  output: o %test.s1
  priority: WARNING
"""


def _wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _reloading(tmp_path, factory=_Inotify, interval=0.1):
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(name="one", value="bash"))
    errors, warns = [], []

    def build(luts):
        return RuleEngine.load([str(path)], Config.load(None), luts=luts)
    eng = ReloadingEngine(build, [str(path)], on_error=errors.append, warn=warns.append,
                          interval=interval, inotify_factory=factory)
    return path, eng, errors, warns


def _replace(path, text):
    # editors write a temp file and rename it over the original
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_inotify_reload_swaps_rules(tmp_path):
    path, eng, _errors, warns = _reloading(tmp_path)
    assert eng.watcher.mode == "inotify" and warns == []
    b = batch([{"type": "openat", "test.s1": "zsh"}])
    eng.start()
    try:
        old = eng.engine
        assert eng.process(b) == []
        _replace(path, RULE.format(name="two", value="zsh"))
        assert _wait(lambda: eng.reloads == 1)
        assert eng.engine is not old
        assert [a.rule for a in eng.process(b)] == ["two"]
        assert eng.stats()["watch_mode"] == "inotify"
    finally:
        eng.stop()


def test_broken_change_keeps_old_rules_and_reports(tmp_path):
    path, eng, errors, _warns = _reloading(tmp_path)
    eng.start()
    try:
        old = eng.engine
        path.write_text(RULE.format(name="bad", value="bash") + "  colour: [\n")
        assert _wait(lambda: eng.failures >= 1)
        assert eng.engine is old
        assert errors and "keeping the previous rules" in errors[0] and "r.yaml:" in errors[0]
        assert eng.last_error
        path.write_text(RULE.format(name="fixed", value="bash"))
        assert _wait(lambda: eng.reloads == 1)
        assert eng.engine.rules[0].name == "fixed" and eng.last_error is None
    finally:
        eng.stop()


@pytest.mark.parametrize("where", ["init", "add_watch"])
def test_fallback_to_polling_when_inotify_is_exhausted(tmp_path, where):
    class Exhausted(_Inotify):
        def __init__(self):
            if where == "init":
                raise InotifyUnavailable(errno.EMFILE, "inotify_init1: Too many open files")
            super().__init__()

        def add(self, path):
            raise InotifyUnavailable(errno.ENOSPC, f"inotify_add_watch({path}): No space left on device")

    path, eng, _errors, warns = _reloading(tmp_path, factory=Exhausted)
    assert eng.watcher.mode == "poll"
    assert len(warns) == 1 and "falling back to polling" in warns[0]
    assert ("Too many open files" if where == "init" else "No space left") in warns[0]
    eng.start()
    try:
        time.sleep(0.05)
        path.write_text(RULE.format(name="polled", value="bash") + "\n# bigger\n")
        assert _wait(lambda: eng.reloads == 1)
        assert eng.engine.rules[0].name == "polled"
        assert len(warns) == 1        # one warning, not one per poll
    finally:
        eng.stop()


def test_config_change_triggers_reload(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULE.format(name="one", value="bash"))
    cfg = tmp_path / "falconet.yaml"
    cfg.write_text("priority: debug\n")

    def build(luts):
        return RuleEngine.load([str(rules)], Config.load(str(cfg)), luts=luts)
    eng = ReloadingEngine(build, [str(rules), str(cfg)], interval=0.1).start()
    try:
        assert len(eng.engine.enabled) == 1
        _replace(cfg, "priority: critical\n")
        assert _wait(lambda: eng.reloads == 1)
        assert len(eng.engine.enabled) == 0
    finally:
        eng.stop()


def test_watcher_sees_new_file_in_rules_directory(tmp_path):
    d = tmp_path / "rules.d"
    d.mkdir()
    hits = []
    w = Watcher([str(d)], lambda: hits.append(1), interval=0.1).start()
    try:
        (d / "extra.yaml").write_text("[]\n")
        assert _wait(lambda: hits)
    finally:
        w.stop()


def test_watch_rules_entry_point(tmp_path):
    from collector.rules.reload import watch_rules
    rules = tmp_path / "r.yaml"
    rules.write_text(RULE.format(name="one", value="bash"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rule_matching: all\n")
    errors = []
    eng = watch_rules([str(rules)], str(cfg), ["priority=debug"], on_error=errors.append,
                      interval=0.1, hostname="h")
    try:
        assert eng.engine.first_only is False and eng.engine.hostname == "h"
        _replace(cfg, "rule_matching: [\n")          # broken config: keep running
        assert _wait(lambda: eng.failures == 1)
        assert "c.yaml" in errors[0] and eng.engine.first_only is False
    finally:
        eng.stop()
