"""stdout, file, program and syslog channels; per-channel priorities; the manager's contract."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time

import pytest

from collector.alert import Priority
from collector.outputs import DROP_RULE, Channel, Formatter, OutputManager
from collector.outputs.stdout import StdoutChannel

from .conftest import T0, Probe, config, make_alert, wait_for


def test_stdout_text_line_is_falcos(managers, capsys):
    m = managers(config(quiet=False))
    m.start()
    a = make_alert(1)
    m.emit(a)
    m.close()
    line = capsys.readouterr().out
    assert line == a.text_line() + "\n"
    assert line.split(": ", 1)[1] == "Warning Sensitive file opened (file=/etc/shadow n=1)\n"
    # HH:MM:SS.nnnnnnnnn local time prefix, nine fractional digits.
    stamp = line.split(": ", 1)[0]
    assert len(stamp) == 18 and stamp[8] == "." and stamp[9:].isdigit()


def test_stdout_json_line_is_falcos(managers, capsys):
    m = managers(config("json_output=true", quiet=False), hostname="node1")
    m.start()
    m.emit(make_alert(1))
    m.close()
    line = capsys.readouterr().out.strip()
    d = json.loads(line)
    assert list(d) == ["hostname", "output", "output_fields", "priority", "rule", "source",
                       "tags", "time"]
    assert d["hostname"] == "node1"
    assert d["time"] == "2025-04-02T15:15:03.434319637Z"
    assert d["tags"] == ["T1555", "filesystem"]
    assert d["output_fields"]["k8s.pod.name"] is None
    assert d["output_fields"]["proc.tty"] == 34817
    assert d["output"].endswith(": Warning Sensitive file opened (file=/etc/shadow n=1)")
    assert "," in line and ", " not in line.replace("(file=", "")  # compact separators


def test_json_include_switches():
    cfg = config("json_output=true", "json_include_output_property=false",
                 "json_include_tags_property=false")
    out = io.StringIO()
    ch = StdoutChannel(Formatter(cfg), stream=out)
    ch.deliver(make_alert())
    assert set(json.loads(out.getvalue())) == {"hostname", "output_fields", "priority", "rule",
                                               "source", "time"}


def test_emit_assigns_seq_and_hostname(managers):
    m = managers(config(), hostname="hostA")
    p = Probe()
    m.add_channel(p)
    m.start()
    alerts = [make_alert(i) for i in range(5)]
    for a in alerts:
        m.emit(a)
    assert [a.seq for a in alerts] == [1, 2, 3, 4, 5]
    assert m.drain(5)
    assert [a.hostname for a in p.got] == ["hostA"] * 5
    assert m.stats()["probe"] == {"queued": 0, "delivered": 5, "dropped": 0, "errors": 0,
                                  "capacity": 10000, "min_priority": "Debug"}


def test_per_channel_min_priority(managers, tmp_path):
    path = tmp_path / "events.txt"
    m = managers(config("file_output.enabled=true", f"file_output.filename={path}",
                        "file_output.min_priority=error"))
    p = Probe()
    m.add_channel(p)
    m.start()
    for prio in (Priority.DEBUG, Priority.WARNING, Priority.ERROR, Priority.CRITICAL):
        m.emit(make_alert(priority=prio))
    m.close()
    lines = path.read_text().splitlines()
    assert [l.split(": ", 1)[1].split()[0] for l in lines] == ["Error", "Critical"]
    assert len(p.got) == 4


def test_file_keep_alive_false_appends(managers, tmp_path):
    path = tmp_path / "events.txt"
    path.write_text("existing\n")
    m = managers(config("file_output.enabled=true", f"file_output.filename={path}",
                        "json_output=true"))
    m.start()
    for i in range(3):
        m.emit(make_alert(i))
    m.close()
    lines = path.read_text().splitlines()
    assert lines[0] == "existing"
    assert [json.loads(l)["output_fields"]["n"] for l in lines[1:]] == [0, 1, 2]


def test_file_reopens_on_sighup_for_log_rotation(managers, tmp_path):
    path = tmp_path / "events.txt"
    rotated = tmp_path / "events.txt.1"
    m = managers(config("file_output.enabled=true", f"file_output.filename={path}",
                        "file_output.keep_alive=true"))
    m.start()
    m.emit(make_alert(1))
    assert m.drain(5)
    os.rename(path, rotated)          # what logrotate does ...
    m.emit(make_alert(2))             # ... while the old file is still open
    assert m.drain(5)
    os.kill(os.getpid(), signal.SIGHUP)  # then its postrotate signal
    time.sleep(0.05)
    m.emit(make_alert(3))
    m.close()
    assert [l.rsplit("n=", 1)[1] for l in rotated.read_text().splitlines()] == ["1)", "2)"]
    assert [l.rsplit("n=", 1)[1] for l in path.read_text().splitlines()] == ["3)"]
    assert m.stats()["file"]["reopens"] == 1
    # close() gives the previous SIGHUP handler back.
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


def test_program_keep_alive_is_restarted_when_it_dies(managers, tmp_path):
    out = tmp_path / "prog.out"
    pidfile = tmp_path / "pids"
    prog = f"echo $$ >> {pidfile}; exec cat >> {out}"
    m = managers(config("program_output.enabled=true", f"program_output.program={prog}",
                        "program_output.keep_alive=true", "json_output=true"))
    m.start()
    m.emit(make_alert(1))
    assert wait_for(lambda: out.exists() and out.read_text().count("\n") == 1)
    first = int(pidfile.read_text().split()[0])
    os.kill(first, signal.SIGKILL)
    time.sleep(0.1)
    for i in range(2, 5):
        m.emit(make_alert(i))
    m.close()
    ns = [json.loads(l)["output_fields"]["n"] for l in out.read_text().splitlines()]
    assert ns == [1, 2, 3, 4]
    pids = pidfile.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]
    assert m.stats()["program"]["restarts"] == 1
    assert m.stats()["program"]["errors"] == 0


def test_program_without_keep_alive_runs_once_per_alert(managers, tmp_path):
    out = tmp_path / "prog.out"
    m = managers(config("program_output.enabled=true",
                        f"program_output.program=cat >> {out}; echo end >> {out}"))
    m.start()
    for i in range(3):
        m.emit(make_alert(i))
    m.close()
    lines = out.read_text().splitlines()
    assert lines[1::2] == ["end"] * 3 and len(lines) == 6


def test_syslog_udp_message(managers):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(5)
    port = srv.getsockname()[1]
    m = managers(config("syslog_output.enabled=true",
                        f"syslog_output.address=udp://127.0.0.1:{port}",
                        "syslog_output.facility=local3"))
    m.start()
    m.emit(make_alert(1, priority=Priority.CRITICAL))
    data = srv.recv(65536).decode()
    srv.close()
    # PRI = local3 (19) * 8 + Critical (2) = 154
    assert data.startswith("<154>")
    assert f"falconet[{os.getpid()}]: " in data
    assert data.endswith("Critical Sensitive file opened (file=/etc/shadow n=1)")


def test_syslog_unix_datagram(managers, tmp_path):
    path = str(tmp_path / "log")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(5)
    m = managers(config("syslog_output.enabled=true", f"syslog_output.address={path}"))
    m.start()
    m.emit(make_alert(1, priority=Priority.DEBUG))
    assert srv.recv(65536).decode().startswith("<15>")  # user (1) * 8 + Debug (7)
    srv.close()


class Boom(Channel):
    name = "boom"

    def deliver(self, alert):
        raise RuntimeError("endpoint exploded")


def test_channel_errors_are_counted_and_do_not_stop_the_worker(managers):
    m = managers(config())
    m.add_channel(Boom())
    p = Probe()
    m.add_channel(p)
    m.start()
    for i in range(3):
        m.emit(make_alert(i))
    assert m.drain(5)
    s = m.stats()
    assert s["boom"]["errors"] == 3 and s["boom"]["last_error"] == "endpoint exploded"
    assert s["probe"]["delivered"] == 3


def test_full_queue_drops_only_that_channel_and_raises_one_internal_alert(managers):
    gate = threading.Event()
    m = managers(config("outputs_queue.drop_alert_interval=3600"))
    slow = Probe("slow", capacity=10, gate=gate)
    fast = Probe("fast")
    m.add_channel(slow)
    m.add_channel(fast)
    m.start()
    t = time.perf_counter()
    for i in range(1000):
        m.emit(make_alert(i))
    elapsed = time.perf_counter() - t
    assert elapsed < 1.0  # never waited for the stuck channel
    assert wait_for(lambda: len(fast.got) == 1000)
    s = m.stats()["slow"]
    assert s["dropped"] >= 1000 - 11 and s["queued"] <= 10
    m.check_drops()  # (or the manager's own once-a-second check got there first)
    assert wait_for(lambda: fast.got[-1].rule == DROP_RULE)
    internal = fast.got[-1]
    assert internal.source == "internal" and internal.priority == Priority.WARNING
    assert internal.output_fields["n_drops_slow"] == str(s["dropped"])
    assert internal.output.startswith("Falconet internal: alerts dropped")
    m.emit(make_alert(5000))  # more drops ...
    assert m.check_drops() is None  # ... but at most one internal alert per interval
    assert wait_for(lambda: len(fast.got) == 1002)
    assert [a.rule for a in fast.got].count(DROP_RULE) == 1
    gate.set()


def test_stats_line_and_metrics(managers):
    m = managers(config())
    m.add_channel(Probe())
    m.start()
    m.emit(make_alert())
    assert m.drain(5)
    assert m.stats_line() == "outputs: probe q=0 ok=1 drop=0 err=0"
    text = m.metrics_text()
    assert 'falconet_outputs_drops_total{channel="probe"} 0' in text
    assert 'falconet_outputs_delivered_total{channel="probe"} 1' in text


def test_add_channel_twice_is_an_error(managers):
    from collector.errors import ConfigError
    m = managers(config())
    m.add_channel(Probe())
    with pytest.raises(ConfigError, match="configured twice"):
        m.add_channel(Probe())


def test_hostname_from_falco_env(monkeypatch):
    monkeypatch.setenv("FALCO_HOSTNAME", "from-env")
    monkeypatch.delenv("FALCONET_HOSTNAME", raising=False)
    m = OutputManager(config())
    assert m.hostname == "from-env"
    m.close()


def test_a_dying_program_never_kills_the_process_even_with_sigpipe_default(tmp_path):
    """`falconet`'s entry point sets SIGPIPE to its default action (for `| head`); a program
    output that stops reading (here: closes its stdin and lives on) must still cost only that
    channel errors and restarts, not kill capture with SIGPIPE."""
    import subprocess
    import sys
    script = f"""
import signal, sys, time, json
sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parents[2])!r})
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
from collector.config import Config
from collector.outputs import OutputManager
from tests.outputs.conftest import make_alert
m = OutputManager(Config.load(None, ["stdout_output.enabled=false", "program_output.enabled=true",
    "program_output.keep_alive=true",
    "program_output.program=exec 0<&- >/dev/null 2>&1; sleep 30"]), "h")
m.start()
for i in range(3):
    time.sleep(0.15)  # let the program close its stdin: the next write hits EPIPE
    m.emit(make_alert(i))
m.close(timeout=10)
print(json.dumps(m.stats()["program"]))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                       timeout=60)
    assert r.returncode == 0, (r.returncode, r.stderr)
    s = json.loads(r.stdout)
    assert s["restarts"] >= 1 and s["delivered"] + s["errors"] == 3


def test_close_reports_unreported_drops_and_counts_late_emits(managers):
    gate = threading.Event()
    m = managers(config("outputs_queue.drop_alert_interval=3600"))
    slow = Probe("slow", capacity=1, gate=gate)
    fast = Probe("fast")
    m.add_channel(slow)
    m.add_channel(fast)
    m.start()
    for i in range(5):
        m.emit(make_alert(i))
    assert wait_for(lambda: len(fast.got) == 5)
    gate.set()
    m.close()
    assert fast.got[-1].rule == DROP_RULE  # the final report reached the healthy channel
    late = make_alert(99)
    m.emit(late)  # after close: counted as dropped, not queued for dead workers
    assert m.stats()["fast"]["dropped"] == 1 and m.stats()["fast"]["queued"] == 0


def test_syslog_tcp_frames_end_with_newline(managers):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(5)
    m = managers(config("syslog_output.enabled=true",
                        f"syslog_output.address=tcp://127.0.0.1:{srv.getsockname()[1]}"))
    m.start()
    conn, _ = srv.accept()
    conn.settimeout(5)
    m.emit(make_alert(1, priority=Priority.NOTICE))
    m.emit(make_alert(2, priority=Priority.ALERT))
    data = b""
    while data.count(b"\n") < 2:
        data += conn.recv(65536)
    lines = data.decode().splitlines()
    # PRI: user (1) * 8 + Notice (5) = 13, user * 8 + Alert (1) = 9; then Falco's time stamp.
    day = time.strftime("%b %d", time.localtime(T0 // 1_000_000_000))  # local, as syslog(3)
    assert lines[0].startswith(f"<13>{day} ") and lines[1].startswith(f"<9>{day} ")
    conn.close()
    srv.close()
