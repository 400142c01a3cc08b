"""The ring reader's fused path (fnet_reader_decode: merge + decode where the records lie)
against read-then-decode, and the idle-CPU holdback that keeps the order across CPUs."""

from __future__ import annotations

import os
import random
import time

import numpy as np
import pytest

from collector import abi, native
from collector import records as R
from collector.capture import record_offsets
from collector.sources.synthetic import SyntheticSource

pytestmark = pytest.mark.skipif(native.BACKEND != "c", reason="the ring reader is C only")

PAGE = os.sysconf("SC_PAGESIZE")


def pair(nr_cpus=1, size=PAGE, **kw):
    from collector.state.ring import MemRingProducer, RingReader
    p = MemRingProducer(nr_cpus, size)
    return p, RingReader.open_memfd(p, **kw)


def per_cpu(events: int, cpus: int, seed: int) -> list[list[bytes]]:
    out: list[list[bytes]] = [[] for _ in range(cpus)]
    for raw in SyntheticSource(events=events, seed=seed, cpus=cpus,
                               batch_events=4096).raw_batches():
        raw = bytes(raw)
        offs, end = record_offsets(raw)
        offs.append(end)
        for a, b in zip(offs, offs[1:]):
            out[raw[a + 6] % cpus].append(raw[a:b])
    return out


def texts(batch) -> dict[str, list]:
    """Columns with string ids replaced by their bytes (two tables give other ids)."""
    cols = {}
    for k, v in batch.cols.items():
        if k[0] == "v" and k[1:].isdigit():
            cols[k] = [batch.strings.get(int(i)) for i in v]
        else:
            cols[k] = v.tolist()
    return cols


def drain(p, streams, step):
    """Feed each CPU's records as room allows; call step() until everything came out."""
    idx = [0] * len(streams)
    got = []
    for _ in range(100000):
        for c, recs in enumerate(streams):
            while idx[c] < len(recs) and p.write(c, recs[idx[c]]):
                idx[c] += 1
        left = any(idx[c] < len(r) for c, r in enumerate(streams))
        out = step()
        if out:
            got.append(out)
        elif not left:
            out = step()
            if not out:
                return got
            got.append(out)
    raise AssertionError("rings never drained")


@pytest.mark.parametrize("seed,cpus,size", [(1, 4, 4 * PAGE), (2, 3, 16 * PAGE), (3, 1, PAGE),
                                            (4, 12, 4 * PAGE)])   # > 8 CPUs: the heap merge
def test_fused_equals_read_then_decode(seed, cpus, size):
    streams = per_cpu(6000, cpus, seed)
    p1, r1 = pair(cpus, size)
    p2, r2 = pair(cpus, size)
    d1 = native.Decoder(native.StringTable())
    d2 = native.Decoder(native.StringTable())
    state = {"n1": 1, "n2": 1}

    def step_copy():
        buf, info = r1.read()
        if not info["records"]:
            return None
        b, _ = d1.decode(buf, state["n1"])
        state["n1"] += b.n
        return texts(b)

    def step_fused():
        b, st, info = d2.decode_ring(r2, state["n2"], max_bytes=3 * PAGE)
        if not info["records"]:
            return None
        assert st.records == b.n and st.bad_length == 0
        state["n2"] += b.n
        return texts(b)

    a = drain(p1, streams, step_copy)
    b = drain(p2, streams, step_fused)
    cat = lambda parts: {k: sum((x[k] for x in parts), []) for k in parts[0]}  # noqa: E731
    ca, cb = cat(a), cat(b)
    assert len(ca["ts"]) == sum(map(len, streams))
    assert ca == cb
    assert ca["ts"] == sorted(ca["ts"])
    assert ca["num"] == list(range(1, len(ca["num"]) + 1))


def test_fused_skips_unknown_and_overrunning_records():
    p, r = pair()
    d = native.Decoder(native.StringTable())
    good = R.encode("unlink", tid=5, pid=5, ts=1, vars={"path": "/etc/a"})
    tofs = abi.HDR_DTYPE.fields["type"][1]
    vofs = abi.HDR_DTYPE.fields["vlen"][1]
    unknown = bytearray(R.encode("getpid", tid=5, pid=5, ts=2))
    unknown[tofs:tofs + 2] = (60000).to_bytes(2, "little")   # a type no table knows
    overrun = bytearray(R.encode("unlink", tid=5, pid=5, ts=3, vars={"path": "/etc/b"}))
    assert int.from_bytes(overrun[vofs:vofs + 2], "little") == len("/etc/b")
    overrun[vofs:vofs + 2] = (4000).to_bytes(2, "little")    # parts overrun the record
    last = R.encode("unlink", tid=5, pid=5, ts=4, vars={"path": "/etc/c"})
    for x in (good, bytes(unknown), bytes(overrun), last):
        assert p.write(0, x)
    b, st, info = d.decode_ring(r, 1)
    assert info["records"] == 4 and b.n == 2
    assert [b.strings.get(int(i)) for i in b.cols["v0"]] == [b"/etc/a", b"/etc/c"]
    assert st.unknown_type == 1 and st.bad_length == 1 and st.bad_reason == "vlen"
    assert r.stats()["corrupt"] == 1


def test_fused_respects_row_and_byte_budget():
    p, r = pair(2, 16 * PAGE)
    for t in range(1, 201):
        assert p.write(t % 2, R.encode("getpid", tid=1, pid=1, ts=t))
    d = native.Decoder(native.StringTable())
    got = []
    for _ in range(100):
        b, _, info = d.decode_ring(r, 1, max_bytes=96 * 7)
        assert b.n <= 7
        got += b.cols["ts"].tolist()
        if not info["records"]:
            break
    assert got == list(range(1, 201))


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def test_idle_cpu_race_needs_the_holdback():
    """CPU 1 is idle when the reader looks, then publishes a record stamped before CPU 0's:
    without a holdback it comes out after CPU 0's (out of order); with one, in order."""
    for holdback, want_sorted in ((0, False), (200_000_000, True)):
        p, r = pair(2, 4 * PAGE)
        r.set_holdback(holdback)
        t = now_ns()
        p.write(0, R.encode("getpid", tid=1, pid=1, ts=t))
        buf1, _ = r.read()
        p.write(1, R.encode("getpid", tid=2, pid=2, ts=t - 1000))   # stamped earlier
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            got += [int.from_bytes(bytes(buf1)[o + 8:o + 16], "little")
                    for o in range(0, len(buf1), 96)]
            if r.wait(1000) == 1:
                buf1, _ = r.read()
            else:
                buf1 = b""
        assert sorted(got) == [t - 1000, t]
        assert (got == sorted(got)) == want_sorted, (holdback, got)


def test_wait_sleeps_until_held_records_are_due():
    p, r = pair(2, 4 * PAGE)
    r.set_holdback(300_000_000)
    p.write(0, R.encode("getpid", tid=1, pid=1, ts=now_ns()))
    buf, info = r.read()
    assert len(buf) == 0 and info["held_back"] == 1      # CPU 1 idle: not due yet
    assert r.wait(0) == 0                                # held, no new data: no spin
    t0 = time.monotonic()
    assert r.wait(5000) == 1                             # woken when due, not at 5 s
    assert 0.05 < time.monotonic() - t0 < 4
    buf, info = r.read()
    assert len(buf) == 96 and info["held_back"] == 0
    r.set_holdback(0)


def test_holdback_zero_drains_everything_at_once():
    p, r = pair(2, 4 * PAGE)
    r.set_holdback(10_000_000_000)                       # 10 s: would hold everything
    t = now_ns()
    for i in range(5):
        p.write(0, R.encode("getpid", tid=1, pid=1, ts=t + i))     # CPU 1 idle
    buf, info = r.read()
    assert len(buf) == 0 and info["held_back"] == 5
    r.set_holdback(0)                                    # capture stopped: drain
    buf, info = r.read()
    assert info["records"] == 5 and info["held_back"] == 0


def test_random_interleavings_with_holdback_stay_ordered():
    rng = random.Random(11)
    p, r = pair(4, 16 * PAGE)
    r.set_holdback(50_000_000)
    base = now_ns()
    sent, got = [], []
    last = [base] * 4
    for _ in range(40):
        c = rng.randrange(4)
        for _ in range(rng.randrange(1, 20)):
            last[c] = max(last[c], now_ns() - rng.randrange(0, 5_000_000))   # in flight <= 5 ms
            p.write(c, R.encode("getpid", tid=c + 1, pid=c + 1, ts=last[c]))
            sent.append(last[c])
        buf, _ = r.read()
        got += [int.from_bytes(bytes(buf)[o + 8:o + 16], "little") for o in range(0, len(buf), 96)]
    r.set_holdback(0)
    for _ in range(10):
        buf, info = r.read()
        got += [int.from_bytes(bytes(buf)[o + 8:o + 16], "little")
                for o in range(0, len(buf), 96)]
        if not info["held_back"]:
            break
    assert got == sorted(got) and sorted(got) == sorted(sent)
    assert np.all(np.diff(np.array(got, np.int64)) >= 0)


@pytest.mark.parametrize("cpus", [3, 8, 9, 16])         # the scan (<= 8 with data) and the heap
def test_equal_timestamps_come_out_lower_cpu_first(cpus):
    p, r = pair(cpus, 4 * PAGE)
    for t in (5, 6):
        for c in reversed(range(cpus)):
            assert p.write(c, R.encode("getpid", tid=c + 1, pid=c + 1, ts=t))
    buf, _ = r.read()
    b = bytes(buf)
    po = abi.HDR_DTYPE.fields["pid"][1]
    got = [(int.from_bytes(b[o + 8:o + 16], "little"), int.from_bytes(b[o + po:o + po + 4], "little"))
           for o in range(0, len(b), 96)]
    want = [(t, c + 1) for t in (5, 6) for c in range(cpus)]   # pid c + 1 wrote ring c
    assert got == want
