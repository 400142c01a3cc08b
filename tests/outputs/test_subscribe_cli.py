"""`falconet subscribe` as a user runs it: a separate process against the real server."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from collector.alert import Priority

from .conftest import make_alert, wait_for
from .test_grpc import tls_cfg, unix_cfg

ROOT = pathlib.Path(__file__).resolve().parents[2]


def falconet(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True, check=False,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "collector", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def test_history_as_falco_json_lines(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    alerts = [make_alert(i) for i in range(3)]
    for a in alerts:
        m.emit(a)
    assert m.drain(5)
    r = falconet("subscribe", "--address", addr, "--history", "--count", "3", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [a.json_line() for a in alerts]


def test_filters_and_text_output(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    m.emit(make_alert(0, priority=Priority.DEBUG))
    crit = make_alert(1, priority=Priority.CRITICAL, tags=("mitre_execution",))
    m.emit(crit)
    m.emit(make_alert(2, priority=Priority.CRITICAL))
    assert m.drain(5)
    r = falconet("subscribe", "--address", addr, "--history", "--count", "1", "--text",
                 "--min-priority", "error", "--tag", "mitre_execution")
    assert r.returncode == 0, r.stderr
    assert r.stdout == crit.text_line() + "\n"


def test_reconnects_and_resumes_across_a_server_restart(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m1 = managers(cfg)
    m1.start()
    m1.emit(make_alert(100))  # before the client: not wanted (live only)
    assert m1.drain(5)
    p = spawn("subscribe", "--address", addr, "--count", "4", "--json")
    try:
        assert wait_for(lambda: m1.stats()["grpc"]["subscribers"] == 1, timeout=20)
        for i in range(2):
            m1.emit(make_alert(i))
        assert m1.drain(5)
        assert wait_for(lambda: m1.grpc_server.hub.info()["subscribers"] == 1)
        m1.close()  # the server goes away ...
        m2 = managers(unix_cfg(tmp_path)[0])
        m2.start()  # ... and comes back with a new epoch and sequence numbers from 1
        for i in range(2, 4):
            m2.emit(make_alert(i))
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    ns = [json.loads(l)["output_fields"]["n"] for l in out.splitlines()]
    assert ns == [0, 1, 2, 3]
    assert "reconnecting" in err and "server restarted" in err


def test_state_file_resumes_across_runs(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    for i in range(5):
        m.emit(make_alert(i))
    assert m.drain(5)
    state = tmp_path / "sub.state"
    r = falconet("subscribe", "--address", addr, "--history", "--count", "2", "--json",
                 "--state-file", str(state))
    assert [json.loads(l)["output_fields"]["n"] for l in r.stdout.splitlines()] == [0, 1]
    assert json.loads(state.read_text())["seq"] == 2
    r = falconet("subscribe", "--address", addr, "--count", "3", "--json",
                 "--state-file", str(state))
    assert [json.loads(l)["output_fields"]["n"] for l in r.stdout.splitlines()] == [2, 3, 4]


def test_falco_api_mode(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    a = make_alert(7)
    m.emit(a)
    assert m.drain(5)
    r = falconet("subscribe", "--address", addr, "--falco", "--count", "1", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    expected = json.loads(a.json_line())
    assert d["output_fields"]["proc.tty"] == "34817"  # Falco's gRPC API sends strings
    for k in ("hostname", "output", "priority", "rule", "source", "tags", "time"):
        assert d[k] == expected[k]


def test_mutual_tls(managers, certs):
    m = managers(tls_cfg(certs))
    m.start()
    m.emit(make_alert(1))
    assert m.drain(5)
    r = falconet("subscribe", "--address", m.grpc_server.address, "--history", "--count", "1",
                 "--cert", certs["client_crt"], "--key", certs["client_key"], "--ca", certs["ca"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("(file=/etc/shadow n=1)")
    r = falconet("subscribe", "--address", m.grpc_server.address, "--no-reconnect",
                 "--cert", certs["rogue_crt"], "--key", certs["rogue_key"], "--ca", certs["ca"])
    assert r.returncode == 1 and r.stderr.startswith("falconet: ") and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (("--address", "127.0.0.1:5060"), "needs mutual TLS"),
    (("--min-priority", "loud"), "--min-priority: unknown priority 'loud'"),
    (("--falco", "--rule", "x"), "--falco: Falco's API has no filters"),
    (("--no-reconnect", "--address", "unix:///nonexistent/falconet.sock"), "unavailable"),
    (("--address", "localhost:1", "--cert", "/nonexistent.crt", "--key", "k", "--ca", "c"),
     "--ca c: cannot read"),
    (("-c", "/nonexistent/falconet.yaml"), "/nonexistent/falconet.yaml: configuration file not found"),
])
def test_errors_are_one_line_no_traceback(args, message):
    r = falconet("subscribe", *args)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1
