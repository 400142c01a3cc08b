"""Storage: queries, retention by age and count (enforced continuously), persistence across
restarts, and that an acknowledged alert survives the process being killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid as uuidlib

import pytest

from collector.alert import Alert, Priority
from collector.ui.channel import UIChannel
from collector.ui.query import Filters, parse_filters
from collector.ui.settings import UISettings
from collector.ui.store import Store

from .helpers import Client, alert

NS = 1_000_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rec(i: int, *, age_s: float = 0.0, priority: int = 4, rule: str = "R", tags=("t",),
        hostname: str = "h", output: str | None = None) -> dict:
    return {"uuid": str(uuidlib.uuid4()), "time_ns": time.time_ns() - int(age_s * NS) + i,
            "priority": priority, "rule": rule, "source": "syscall", "hostname": hostname,
            "output": output if output is not None else f"alert number {i}",
            "output_fields": {"i": i}, "tags": list(tags)}


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "s.db"), synchronous="normal").start()
    yield s
    s.close()


def test_filters_search_counts_and_pages(store):
    store.add([rec(i, priority=i % 8, rule=f"rule {i % 3}", tags=("a", f"b{i % 2}"),
                   hostname=f"host{i % 4}", output=f"proc.name=p{i} file=/etc/f{i}") for i in range(100)])
    rows, total = store.search(Filters(), page=1, limit=10)
    assert total == 100 and len(rows) == 10
    assert [r["output_fields"]["i"] for r in rows] == list(range(99, 89, -1))       # newest first
    rows, _ = store.search(Filters(), page=10, limit=10)
    assert [r["output_fields"]["i"] for r in rows][-1] == 0
    q = parse_filters({"priority": ["Warning,error"], "rule": ["rule 1"]})
    rows, total = store.search(q, 1, 100)
    assert total == len([i for i in range(100) if i % 8 in (3, 4) and i % 3 == 1]) == total
    assert all(r["priority"] in (3, 4) and r["rule"] == "rule 1" for r in rows)
    assert store.count(parse_filters({"tags": ["b1"]})) == 50
    assert store.count(parse_filters({"tags": ["b1,b0"]})) == 100
    assert store.count(parse_filters({"hostname": ["host2"], "source": ["syscall"]})) == 25
    severe = [i for i in range(100) if i % 8 <= 3]
    assert store.count(parse_filters({"min_priority": ["error"]})) == len(severe)
    # free text: substring, case-insensitive, via the trigram index and the LIKE fallback
    assert store.fts
    assert store.count(parse_filters({"filter": ["/ETC/F4"]})) == 11          # f4, f40..f49
    assert store.count(parse_filters({"filter": ["p7"]})) == 11                # < 3 chars: LIKE
    assert store.count(parse_filters({"filter": ['"quoted"']})) == 0
    by_rule = dict(store.count_by("rule", Filters()))
    assert by_rule == {"rule 0": 34, "rule 1": 33, "rule 2": 33}
    assert dict(store.count_by("tags", Filters())) == {"a": 100, "b0": 50, "b1": 50}


def test_time_range_and_timeline(store):
    store.add([rec(i, age_s=3600 * (i % 10) + 1, priority=i % 2) for i in range(50)])
    assert store.count(parse_filters({"since": ["30min"]})) == 5
    now = time.time_ns()
    f = parse_filters({"from": [str((now - int(2.5 * 3600 * NS)) / NS)], "to": [str(now / NS)]})
    assert store.count(f) == 15
    rows = store.timeline(Filters(), now - 10 * 3600 * NS, now, 10)
    total = sum(n for _, _, n in rows)
    assert total == 50 and {p for _, p, _ in rows} == {0, 1}


def test_retention_by_count_keeps_the_newest(store):
    store.max_events = 30
    store.add([rec(i) for i in range(100)])
    store.enforce_retention()            # the writer may be doing it at the same time
    rows, total = store.search(Filters(), 1, 100)
    assert total == 30 and sorted(r["output_fields"]["i"] for r in rows) == list(range(70, 100))
    # deleted rows leave nothing behind in tags or the text index
    assert dict(store.count_by("tags", Filters())) == {"t": 30}
    assert store.count(parse_filters({"filter": ["number 5"]})) == 0
    assert store.count(parse_filters({"filter": ["number 75"]})) == 1


def test_retention_is_enforced_continuously_by_the_writer(tmp_path):
    s = Store(str(tmp_path / "c.db"), max_age_s=3600, max_events=50, retention_interval_s=0.1,
              synchronous="normal").start()
    try:
        s.add([rec(i) for i in range(20)])
        with s._reader() as conn:                                # received two hours ago
            conn.execute("UPDATE events SET received_ns = received_ns - ?", (7200 * NS,))
            conn.commit()
        s.add([rec(i, age_s=7200) for i in range(80)])         # old alert time, received now
        deadline = time.time() + 5
        while time.time() < deadline and s.count(Filters()) != 50:
            time.sleep(0.05)
        assert s.count(Filters()) == 50
        rows, _ = s.search(Filters(), 1, 100)
        assert sorted(r["output_fields"]["i"] for r in rows) == list(range(30, 80))
        assert s.deleted_total == 50
    finally:
        s.close()


def test_restart_keeps_alerts(tmp_path):
    path = str(tmp_path / "r.db")
    s = Store(path).start()
    ids = s.add([rec(i) for i in range(10)])
    s.close()
    s2 = Store(path).start()
    try:
        assert s2.count(Filters()) == 10 and s2.get(ids[3])["output_fields"] == {"i": 3}
        assert s2.add([rec(99)])[0] == 11
    finally:
        s2.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_acknowledged_alerts_survive_kill_9(tmp_path):
    """`falconet ui` is killed without warning right after answering 200s: all are on disk."""
    port, db = _free_port(), str(tmp_path / "k.db")
    proc = subprocess.Popen([sys.executable, "-m", "collector", "ui", "--port", str(port), "--db", db],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        c = Client(f"http://127.0.0.1:{port}/")
        deadline = time.time() + 15
        while True:
            try:
                if c.get("/healthz").status == 200:
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        acked = [c.post("/", alert(output=f"n={i}")).json()["uuid"] for i in range(40)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        err = proc.stderr.read().decode()
    assert "generated the password" in err
    s = Store(db).start()
    try:
        assert all(s.get(u) is not None for u in acked)
    finally:
        s.close()


def test_ui_channel_delivers_alerts_in_process(tmp_path):
    ch = UIChannel(UISettings(db_path=str(tmp_path / "ch.db")), min_priority=Priority.NOTICE)
    assert ch.name == "webui"
    a = Alert(time_ns=time.time_ns(), rule="Terminal shell in container", priority=Priority.NOTICE,
              output="A shell was spawned (proc.name=<script>)",
              output_fields={"proc.name": "<script>", "evt.time": 1743606903434319636},
              tags=("shell", "container"), hostname="node9")
    ch.deliver(a)
    ch.deliver(Alert(time_ns=1, rule="noisy", priority=Priority.DEBUG, output="x", output_fields={"a": 1}))
    ch.flush()
    rows, total = ch.store.search(Filters(), 1, 10)
    assert total == 1                                      # Debug is below min_priority
    r = rows[0]
    assert r["rule"] == "Terminal shell in container" and r["priority"] == int(Priority.NOTICE)
    assert r["output"].endswith(": Notice A shell was spawned (proc.name=<script>)")
    assert r["tags"] == ["container", "shell"] and r["hostname"] == "node9"
    ch.close()
    s = Store(str(tmp_path / "ch.db"))
    assert s.count(Filters()) == 1                         # committed on close
    s.close()


def test_ui_channel_can_serve_the_ui_from_the_same_process(tmp_path):
    ch = UIChannel(UISettings(db_path=str(tmp_path / "srv.db"), listen_port=0), serve=True)
    assert ch.server is None                               # nothing opened before start()
    ch.start()
    try:
        assert ch.generated_password
        ch.deliver(Alert(time_ns=time.time_ns(), rule="R", priority=Priority.ERROR, output="o",
                         output_fields={"k": "v"}))
        ch.flush()
        c = Client(ch.server.url)
        assert c.login(ch.generated_password).status == 303
        body = c.get("/api/v1/events/search").json()
        assert body["statistics"]["all"] == 1 and body["results"][0]["priority"] == "Error"
    finally:
        ch.close()


def test_open_errors_are_clear(tmp_path):
    from collector.errors import OutputError
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create the web UI database directory"):
        Store(str(blocker / "sub" / "db.sqlite"))


def test_free_text_looks_at_the_newest_matches_only(store, monkeypatch):
    import collector.ui.query as q
    monkeypatch.setattr(q, "TEXT_MATCH_CAP", 20)
    import collector.ui.store as st
    monkeypatch.setattr(st, "TEXT_MATCH_CAP", 20)
    store.add([rec(i, output=f"common word {i}" if i % 2 else f"rare {i}") for i in range(100)])
    f = parse_filters({"filter": ["common word"]})
    rows, total = store.search(f, 1, 100)
    assert total == 20 and store.text_capped(f)
    assert sorted(r["output_fields"]["i"] for r in rows) == list(range(61, 100, 2))   # the newest 20
    assert not store.text_capped(parse_filters({"filter": ["rare 9"]}))
    assert store.count(parse_filters({"filter": ["rare 9"]})) == 5          # rare 90, 92 .. 98


def test_ui_channel_from_config_and_start_errors(tmp_path):
    from collector.config import Config
    from collector.errors import OutputError
    cfg = Config.load(None, [f"webui.db_path={tmp_path / 'cfg.db'}", "webui.minimum_priority=warning",
                             "webui.listen_port=0"])
    ch = UIChannel.from_config(cfg)
    assert ch.serve is False and ch.min_priority == Priority.WARNING
    ch.start()
    ch.close()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        cfg = Config.load(None, [f"webui.db_path={tmp_path / 'b.db'}", "webui.enabled=true",
                                 f"webui.listen_port={busy.getsockname()[1]}"])
        ch = UIChannel.from_config(cfg)
        with pytest.raises(OutputError, match="port in use"):
            ch.start()
        ch.close()
    finally:
        busy.close()


def test_timeline_fast_path_equals_the_general_query(store):
    store.add([rec(i, age_s=(i * 37) % 7200, priority=i % 5, rule=f"r{i % 2}") for i in range(300)])
    now = time.time_ns()
    for params in ({}, {"priority": ["Warning,Error"]}, {"since": ["50min"]}):
        f = parse_filters(params, now_ns=now)
        fast = sorted(store.timeline(f, now - 7200 * NS, now + NS, 24))
        f.rules = ["r0", "r1"]                       # same rows, forces the GROUP BY query
        slow = sorted(store.timeline(f, now - 7200 * NS, now + NS, 24))
        assert fast == slow and sum(n for _, _, n in fast) > 0


def test_tag_counts_fast_path_equals_the_general_query(store):
    store.add([rec(i, age_s=(i * 53) % 7200, tags=("all", f"m{i % 3}") if i % 4 else ("rare",))
               for i in range(200)])
    now = time.time_ns()
    window = {"from": [str((now - 5000 * NS) / NS)], "to": [str((now - 1000 * NS) / NS)]}
    for params in ({}, {"since": ["1h"]}, window):
        f = parse_filters(params, now_ns=now)
        fast = store.count_by("tags", f)
        f.sources = ["syscall"]                      # same rows, forces the join
        slow = store.count_by("tags", f)
        assert fast == slow and fast
    f = parse_filters({"tags": ["rare"], "since": ["1h"]}, now_ns=now)
    assert store.count(f) == len([i for i in range(200) if i % 4 == 0 and (i * 53) % 7200 < 3600])


def test_not_a_database_and_other_layouts_are_clear_errors(tmp_path):
    from collector.errors import OutputError
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutputError, match="cannot open the web UI database"):
        Store(str(junk))
    s = Store(str(tmp_path / "v.db"))
    s.meta_set("schema_version", "99")
    s.close()
    with pytest.raises(OutputError, match="layout version 99"):
        Store(str(tmp_path / "v.db"))
