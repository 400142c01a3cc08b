"""SyntheticSource: deterministic, realistic and consistent record streams."""

from __future__ import annotations

import time

import numpy as np
import pytest

from collector import abi, batch, decode_py, native
from collector.sources import Source
from collector.sources.synthetic import SENSITIVE, SyntheticSource

EV = abi.EV


def raw(**kw) -> bytes:
    return b"".join(SyntheticSource(**kw).raw_batches())


def all_events(**kw):
    src = SyntheticSource(**kw)
    with src:
        got = [b.copy() for b in src.batches()]
    return src, batch.EventBatch.concat(got) if got else None


def test_deterministic_and_seeded():
    a = raw(events=5000, seed=3)
    assert a == raw(events=5000, seed=3)
    assert a != raw(events=5000, seed=4)
    assert SyntheticSource(events=10, seed=3).snapshot == SyntheticSource(events=10, seed=3).snapshot


@pytest.mark.parametrize("bs", [1, 777, 4096, 5000, 100_000])
def test_cutting_never_changes_content(bs):
    ref = raw(events=9001, seed=1)
    bufs = list(SyntheticSource(events=9001, seed=1, batch_events=bs).raw_batches())
    assert b"".join(bufs) == ref
    counts = [decode_py.decode(b, batch.StringTable())[1].records for b in bufs]
    assert sum(counts) == 9001 and all(c == bs for c in counts[:-1]) and 0 < counts[-1] <= bs


def test_zero_events():
    assert list(SyntheticSource(events=0).raw_batches()) == []
    src, b = all_events(events=0)
    assert b is None and src.stats()["events"] == 0


def test_batches_through_the_source_interface():
    src, b = all_events(events=20_000, seed=2, batch_events=3000)
    assert isinstance(src, Source) and b.n == 20_000
    assert b["num"].tolist() == list(range(1, 20_001))
    assert (np.diff(b["ts"].astype(np.int64)) > 0).all()
    assert src.stats()["events"] == 20_000 and src.stats()["skipped"] == {}
    assert src.decode_stats.records == 20_000 and src.stats()["bytes"] == len(raw(events=20_000, seed=2))
    assert b.boot_ns == src.snapshot["boot_ns"] and b.strings is src.strings
    assert set(b["cpu"].tolist()) == {0, 1, 2, 3}
    counts = np.bincount(b["type"], minlength=abi.NUM_EVENT_TYPES)
    for name in ("OPENAT", "CLOSE", "CONNECT", "EXECVE", "CLONE", "PROC_FORK", "PROC_EXIT", "DUP2",
                 "SOCKET", "ACCEPT4", "UNLINKAT"):
        assert counts[EV[name]] > 0, name
    assert counts[EV["OPENAT"]] == counts.max()


def test_snapshot_schema():
    snap = SyntheticSource(events=1, processes=40).snapshot
    assert {"hostname", "kernel", "boot_ns", "users", "groups", "threads"} <= set(snap)
    th = snap["threads"]
    assert len({t["pid"] for t in th}) == 40 and len(th) > 40          # some multi-threaded
    keys = {"tid", "pid", "ppid", "comm", "exe", "exepath", "args", "cwd", "uid", "gid", "euid", "egid",
            "loginuid", "tty", "sid", "vpgid", "start_ts", "cgroup", "cap_eff", "fds"}
    pids = {t["pid"] for t in th}
    for t in th:
        assert keys <= set(t)
        assert t["ppid"] in pids or t["ppid"] == 0
        assert isinstance(t["args"], list)
        for fd in t["fds"]:
            assert {"fd", "type", "name", "flags"} <= set(fd)
    assert next(t for t in th if t["pid"] == 1)["comm"] == "systemd"
    assert len({t["tid"] for t in th}) == len(th)


def test_processes_are_consistent():
    """Every actor exists (snapshot or an earlier fork) and never acts after its exit."""
    src, b = all_events(events=60_000, seed=5, processes=30)
    alive = {(t["tid"], t["pid"]) for t in src.snapshot["threads"]}
    forked, exited = set(), set()
    ty, tid, pid, a0 = b["type"], b["tid"], b["pid"], b["a0"]
    life = np.isin(ty, [EV["PROC_FORK"], EV["PROC_EXIT"], EV["EXECVE"]])
    first_seen = {}
    for i in np.flatnonzero(life).tolist():
        if ty[i] == EV["PROC_FORK"]:
            forked.add(int(a0[i]))
            first_seen[int(a0[i])] = i
        elif ty[i] == EV["PROC_EXIT"]:
            exited.add(int(pid[i]))
            first_seen.setdefault(("exit", int(pid[i])), i)
        else:
            assert int(pid[i]) in forked, "execve by a process nobody forked"
    assert forked and exited
    actors = set(zip(tid.tolist(), pid.tolist()))
    assert all(a in alive or a[1] in forked for a in actors)
    for p in exited:                                       # nothing after procexit
        rows = np.flatnonzero(pid == p)
        assert rows[-1] == first_seen[("exit", p)]
        assert rows[0] > first_seen[p]                     # nothing before its fork


def test_string_cardinality_and_sensitive_paths():
    _src, b = all_events(events=40_000, seed=1, string_cardinality=50)
    opens = b["type"] == EV["OPENAT"]
    names = {b.strings.get(int(i)) for i in np.unique(b["v0"][opens])}
    sens = {s.encode() for s in SENSITIVE}
    assert len(names - sens) <= 50 + 1
    assert names & sens                                    # rules have something to find
    _, b2 = all_events(events=40_000, seed=1, string_cardinality=5000)
    names2 = {b2.strings.get(int(i)) for i in np.unique(b2["v0"][b2["type"] == EV["OPENAT"]])}
    assert len(names2) > 5 * len(names)


@pytest.mark.skipif(native.BACKEND != "c", reason="C extension not built")
def test_c_and_pure_agree_on_synthetic_stream():
    for buf in SyntheticSource(events=30_000, seed=7, batch_events=10_000).raw_batches():
        c, cs = native.CDecoder(native.CStringTable()).decode(buf, 1)
        p, ps = decode_py.decode(buf, batch.StringTable(), 1)
        assert cs.as_dict() == ps.as_dict()
        for k in c.cols:
            np.testing.assert_array_equal(c[k], p[k], err_msg=k)
        assert [c.strings.get(i) for i in range(len(c.strings))] == \
            [p.strings.get(i) for i in range(len(p.strings))]


def test_rate_limit_and_stop():
    src = SyntheticSource(events=4000, rate=20_000, batch_events=1000)
    t0 = time.monotonic()
    with src:
        n = sum(b.n for b in src.batches())
    assert n == 4000 and time.monotonic() - t0 >= 0.14          # batches at 0, 50, 100, 150 ms
    src = SyntheticSource(events=10_000, rate=1000, batch_events=100)
    t0 = time.monotonic()
    got = 0
    with src:
        for b in src.batches():
            got += b.n
            if got >= 300:
                src.stop()
    assert got == 300 and time.monotonic() - t0 < 2


def test_shared_string_table():
    t = native.StringTable()
    pre = t.intern("/etc/shadow")
    src = SyntheticSource(events=5000, strings=t)
    with src:
        b = next(iter(src.batches()))
    assert b.strings is t and t.lookup("/etc/shadow") == pre


def test_bad_arguments():
    with pytest.raises(ValueError):
        SyntheticSource(events=-1)
    with pytest.raises(ValueError):
        SyntheticSource(batch_events=0)


def test_execve_credentials_follow_the_abi():
    src, b = all_events(events=30_000, seed=11)
    ex = np.flatnonzero(b["type"] == EV["EXECVE"])
    assert len(ex)
    uid_of = {t["pid"]: t["uid"] for t in src.snapshot["threads"]}
    for i in ex.tolist():
        r = b.row(i)
        uid, gid = r["a0"] & 0xFFFFFFFF, r["a0"] >> 32          # uid_gid = uid | gid << 32
        assert uid == gid and r["a1"] == r["a0"]
        assert r["a3"] in (0, 136 << 20)                       # kernel dev_t of the tty
        assert r["a2"] == (uid if uid else 0xFFFFFFFF)          # loginuid, -1 unset
        if r["a4"] in uid_of:                                   # parent from the snapshot
            assert uid == uid_of[r["a4"]]
        assert r["v3"] and r["v5"] == b"/system.slice/ssh.service"
