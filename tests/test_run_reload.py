"""`falconet run` follows edits of its rules file: a good change is swapped in, a broken one
is reported and the running rules are kept; SIGTERM ends it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RULE = """
- rule: {name}
  desc: test rule
  condition: evt.type in (openat, open) and fd.name startswith /etc
  output: "opened %fd.name"
  priority: WARNING
"""


def wait_for(proc_err: list[str], pipe, needle: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = pipe.readline()
        if not line:
            time.sleep(0.05)
            continue
        proc_err.append(line)
        if needle in line:
            return True
    return False


def test_reload_good_then_broken(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULE.format(name="first"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "run", "--source", "synthetic", "--events",
         str(10**9), "-r", str(rules), "-o", "stdout_output.enabled=false", "--stats-json"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    err: list[str] = []
    try:
        time.sleep(2.0)
        rules.write_text(RULE.format(name="first") + RULE.format(name="second"))
        assert wait_for(err, proc.stderr, "rules reloaded: 2 rules enabled"), err
        rules.write_text("- rule: broken\n  condition: evt.type = (\n")
        assert wait_for(err, proc.stderr, "rules reload failed, keeping the running rules"), err
        proc.send_signal(signal.SIGTERM)
        out, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(err) + rest
    assert "Traceback" not in "".join(err) + rest
    import json
    summary = json.loads(rest.strip().splitlines()[-1])
    assert summary["events"] > 0
    assert summary["engine"]["rules_enabled"] == 2   # the broken edit did not replace them
