"""`falconet ui`: management actions and clear errors, through the real command line."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time

import pytest

from collector.cli import main
from collector.ui.auth import verify_password
from collector.ui.store import Store

from .helpers import Client, alert

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(capsys, *argv: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["ui", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_reads_like_a_man_page(capsys):
    with pytest.raises(SystemExit) as e:
        main(["ui", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for words in ("falcosidekick", "--token-create", "--reset-password", "url_prefix", "Exit status"):
        assert words in out


def test_tokens_create_list_revoke(tmp_path, capsys):
    db = str(tmp_path / "t.db")
    code, out, err = run_cli(capsys, "--db", db, "--token-create", "node1")
    assert code == 0 and out.strip().startswith("fnt_") and "shown only this once" in err
    token = out.strip()
    code, out, _ = run_cli(capsys, "--db", db, "--token-list")
    assert code == 0 and out.startswith("node1\tcreated ") and token not in out
    code, _, err = run_cli(capsys, "--db", db, "--token-create", "node1")
    assert code == 1 and "exists already" in err
    code, out, _ = run_cli(capsys, "--db", db, "--token-revoke", "node1")
    assert code == 0 and "revoked" in out
    code, _, err = run_cli(capsys, "--db", db, "--token-revoke", "node1")
    assert code == 1 and err.startswith("falconet: no ingestion token named 'node1'")


def test_reset_and_set_password(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "p.db")
    code, out, _ = run_cli(capsys, "--db", db, "--reset-password")
    assert code == 0
    password = out.strip().rsplit(" ", 1)[1]
    s = Store(db)
    assert verify_password(password, s.meta_get("password_hash"))
    s.close()
    code, out, _ = run_cli(capsys, "--db", db, "--set-password", stdin="my-own-long-password\n",
                           monkeypatch=monkeypatch)
    assert code == 0
    s = Store(db)
    assert verify_password("my-own-long-password", s.meta_get("password_hash"))
    s.close()
    code, _, err = run_cli(capsys, "--db", db, "--set-password", stdin="short\n", monkeypatch=monkeypatch)
    assert code == 1 and "at least 12 characters" in err


def test_hash_password_for_the_config(tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "--hash-password", stdin="config-password-123\n", monkeypatch=monkeypatch)
    assert code == 0 and verify_password("config-password-123", out.strip())
    # the hash works from the configuration file, and reset is refused with a pointer to it
    cfg = tmp_path / "f.yaml"
    cfg.write_text(f"webui:\n  password_hash: '{out.strip()}'\n  db_path: {tmp_path / 'h.db'}\n")
    code, _, err = run_cli(capsys, "-c", str(cfg), "--reset-password")
    assert code == 1 and "webui.password_hash" in err


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "--db", str(tmp_path / "x.db"), "--max-age", "soon", "--token-list")
    assert code == 1 and "webui.retention.max_age" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "-o", "webui.url_prefix=/a b", "--token-list")
    assert code == 1 and "url_prefix" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_prints_the_password_once_and_port_in_use_is_a_clear_error(tmp_path):
    port, db = _free_port(), str(tmp_path / "s.db")
    cmd = [sys.executable, "-m", "collector", "ui", "--port", str(port), "--db", db]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        c = Client(f"http://127.0.0.1:{port}/")
        deadline = time.time() + 15
        while True:
            try:
                c.get("/healthz")
                break
            except OSError:
                assert time.time() < deadline, "falconet ui did not start"
                time.sleep(0.05)
        second = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert second.stderr.strip().endswith(f"cannot listen on 127.0.0.1:{port}: port in use")
        assert "Traceback" not in second.stderr
        assert c.post("/", alert()).status == 200
    finally:
        first.terminate()                      # SIGTERM: a clean stop
        _, err = first.communicate(timeout=15)
    assert first.returncode == 0, err
    assert err.count("generated the password") == 1
    password = err.split("only this once:")[1].split()[0]
    # a second start on the same database neither regenerates nor prints a password
    restart = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 15
        while True:
            try:
                c.get("/healthz")
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.05)
        assert c.login(password).status == 303
        assert c.get("/api/v1/events/count").json()["statistics"]["all"] == 1
    finally:
        restart.terminate()
        _, err = restart.communicate(timeout=15)
    assert "generated the password" not in err
