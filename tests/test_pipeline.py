"""The pipeline: every event reaches the engine once, in order; stop is clean; errors surface
after the valid events; capture -> replay round-trips through the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from collector import native
from collector.alert import Alert, Priority
from collector.capture import FcapReader
from collector.pipeline import Pipeline, summary
from collector.sources.fcap import FcapSource
from collector.sources.raw import DecodingSource
from collector.sources.synthetic import SyntheticSource


class CountingEngine:
    """Fires one alert per execve-family event; remembers every event number it saw."""

    columns: set[str] = set()

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def process(self, batch):
        self.seen.append(batch["num"].copy())
        from collector import abi
        ex = np.isin(batch["type"], [abi.EV["EXECVE"], abi.EV["EXECVEAT"]])
        return [Alert(int(t), "exec seen", Priority.NOTICE, "exec") for t in batch["ts"][ex]]


class ListOutputs:
    def __init__(self):
        self.alerts, self.closed = [], False

    def start(self):
        pass

    def emit(self, a):
        self.alerts.append(a)

    def drain(self, timeout=0):
        return True

    def close(self):
        self.closed = True

    def stats(self):
        return {"list": {"delivered": len(self.alerts), "dropped": 0}}


def test_every_event_once_in_order():
    src = DecodingSource(SyntheticSource(events=50_000, seed=3), name="synthetic")
    eng, out = CountingEngine(), ListOutputs()
    pipe = Pipeline(src, engine=eng, outputs=out, queue_batches=2, lossless=True)
    st = pipe.run()
    nums = np.concatenate(eng.seen)
    assert st.events == 50_000 and len(nums) == 50_000
    assert (nums == np.arange(1, 50_001)).all()
    assert out.closed and len(out.alerts) == st.alerts > 0
    s = summary(pipe, None)
    assert s["events"] == 50_000 and s["alerts"] == {"exec seen": st.alerts}


class SlowEngine(CountingEngine):
    """A fixed cost per batch, as the rules engine's Python has."""

    def process(self, batch):
        time.sleep(0.02)
        return super().process(batch)


def _slow_live_run():
    """40000 events in 400 small batches into a slow engine, the live way (never blocks)."""
    src = DecodingSource(SyntheticSource(events=40_000, seed=5, batch_events=100),
                         name="synthetic")
    eng = SlowEngine()
    st = Pipeline(src, engine=eng, queue_batches=2, drop_when_full=True).run()
    return st, eng, np.concatenate(eng.seen)


def test_live_slow_engine_gets_small_batches_merged_not_dropped():
    st, eng, nums = _slow_live_run()
    assert st.queue_drops == 0 and len(nums) == 40_000
    assert (nums == np.arange(1, 40_001)).all()          # complete and in order
    assert len(eng.seen) < 400 / 4                        # merged: far fewer than 400 batches


def test_live_backlog_beyond_its_bound_drops_oldest_counted(monkeypatch):
    import collector.pipeline as P
    monkeypatch.setattr(P, "BACKLOG_EVENTS", 1000)
    st, _, nums = _slow_live_run()
    assert st.queue_drops > 0 and len(nums) + st.queue_drops == 40_000
    assert (np.diff(nums) > 0).all()                      # what is kept stays in order


def test_stop_is_clean_and_prompt():
    src = DecodingSource(SyntheticSource(events=10**9, seed=1), name="synthetic")
    eng = CountingEngine()
    pipe = Pipeline(src, engine=eng, queue_batches=2)
    import threading
    threading.Timer(0.5, pipe.stop).start()
    t0 = time.monotonic()
    st = pipe.run()
    assert time.monotonic() - t0 < 10
    assert 0 < st.events < 10**9
    nums = np.concatenate(eng.seen)
    assert (np.diff(nums) == 1).all()


def test_capture_error_after_valid_events(tmp_path):
    p = tmp_path / "x.fcap"
    r = subprocess.run([sys.executable, "-m", "collector", "capture", "-w", str(p), "--source",
                        "synthetic", "--events", "20000", "--no-compress"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) * 2 // 3])
    eng = CountingEngine()
    pipe = Pipeline(FcapSource(str(p)), engine=eng)
    with pytest.raises(Exception) as ei:
        pipe.run()
    assert "offset" in str(ei.value)
    seen = np.concatenate(eng.seen)
    assert 0 < len(seen) < 20000 and (seen == np.arange(1, len(seen) + 1)).all()


def falconet(*args, **kw):
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True,
                          text=True, timeout=300, **kw)


def test_capture_then_replay_round_trips_bit_for_bit(tmp_path):
    p = tmp_path / "s.fcap"
    r = falconet("capture", "-w", str(p), "--source", "synthetic", "--events", "30000",
                 "--seed", "5")
    assert r.returncode == 0, r.stderr
    got = b"".join(FcapReader(str(p)).raw_blocks())
    gen = SyntheticSource(events=30000, seed=5)
    gen.open()
    want = b"".join(bytes(b) for b in gen.raw_batches())
    assert got == want
    r = falconet("replay", "--events", "--stats-json", str(p))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 30000
    s = json.loads(r.stderr.strip().splitlines()[-1])
    assert s["events"] == 30000 and s["skipped"] == {}


def test_sigterm_during_synthetic_capture_closes_file(tmp_path):
    p = tmp_path / "big.fcap"
    proc = subprocess.Popen([sys.executable, "-m", "collector", "capture", "-w", str(p),
                             "--source", "synthetic", "--events", str(10**9)],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    r = FcapReader(str(p))
    n = sum(len(b) for b in r.raw_blocks())
    assert r.error is None and r.end is not None and r.end["events"] > 0 and n > 0
