"""`webui.enabled`: a replay (or `falconet run`) stores its alerts in the UI's database and
serves the UI from the same process, without HTTP between them."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replay_feeds_the_ui_store(tmp_path):
    db = tmp_path / "ui.db"
    r = subprocess.run(
        [sys.executable, "-m", "collector", "replay", "--stats-json",
         "-o", "webui.enabled=true", "-o", f"webui.db_path={db}",
         "-o", f"webui.listen_port={free_port()}", str(ROOT / "tests" / "data" / "demo.fcap")],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stderr.strip().splitlines()[-1])
    assert "generated the password" in r.stderr
    with sqlite3.connect(db) as con:
        n = con.execute("select count(*) from events").fetchone()[0]
    assert n == sum(summary["alerts"].values()) > 0
