"""The C ring reader against the memfd producer: wrap-around, ordering, drops, hangup."""

from __future__ import annotations

import errno
import os
import random
import threading

import numpy as np
import pytest

from collector import native
from collector import records as R

pytestmark = pytest.mark.skipif(native.BACKEND != "c", reason="the ring reader is C only")

PAGE = os.sysconf("SC_PAGESIZE")


def rec(ts: int, pid: int = 7, pad: int = 0) -> bytes:
    return R.encode("getpid", tid=pid, pid=pid, ts=ts) if not pad else \
        R.encode("unlink", tid=pid, pid=pid, ts=ts, vars={"path": "x" * pad})


def ts_of(buf) -> list[int]:
    b = bytes(buf)
    out, off = [], 0
    while off < len(b):
        ln = int.from_bytes(b[off:off + 2], "little")
        out.append(int.from_bytes(b[off + 8:off + 16], "little"))
        off += ln
    return out


def pair(nr_cpus=1, size=PAGE, **kw):
    from collector.state.ring import MemRingProducer, RingReader
    p = MemRingProducer(nr_cpus, size)
    return p, RingReader.open_memfd(p, **kw)


def test_round_trip_bytes():
    p, r = pair()
    recs = [rec(i, pad=i * 3) for i in range(1, 10)]
    for x in recs:
        assert p.write(0, x)
    buf, info = r.read()
    assert bytes(buf) == b"".join(recs)
    assert info["records"] == 9 and info["held_back"] == 0


@pytest.mark.parametrize("length", [96, 200, 1000])
def test_wrap_around_at_every_offset(length):
    p, r = pair(size=PAGE)
    x = rec(1, pad=length - 96 - 4) if length > 96 else rec(1)
    assert len(x) % 8 == 0
    for k in range(0, PAGE, 8):
        # the record starts k bytes before the end of the data area ... wraps across it
        y = bytearray(x)
        y[8:16] = (k + 2).to_bytes(8, "little")
        assert p.write(0, bytes(y)), k
        buf, _ = r.read()
        assert bytes(buf) == bytes(y), k
        # move the position forward by 8 bytes: one filler record then consume it
        f = rec(k + 3)
        p.write(0, f)
        r.read()
        if (k // 8) % 7 == 0:
            p.write(0, rec(k + 4, pad=4))   # odd sizes too
            r.read()


def test_ring_full_drops_counted_then_recovers():
    p, r = pair(size=PAGE)
    x = rec(1, pad=400)
    n = 0
    while p.write(0, x):
        n += 1
    assert n == PAGE // len(x)
    assert not p.write(0, x)
    buf, info = r.read()
    assert info["records"] == n and info["new_drops"] == 2
    assert r.stats()["drops_full"] == 2
    assert p.write(0, x)                      # space released by the read
    _, info = r.read()
    assert info["new_drops"] == 0


def test_merge_orders_across_cpus_and_holds_back_newer():
    p, r = pair(nr_cpus=3, size=16 * PAGE)
    for t in (10, 20, 30):
        p.write(0, rec(t, pid=1))
    p.write(1, rec(15, pid=2))
    for t in (5, 12, 40):
        p.write(2, rec(t, pid=3))
    buf, info = r.read()
    assert ts_of(buf) == [5, 10, 12, 15]     # cutoff = 15 (cpu 1's last)
    assert info["held_back"] == 3 and info["cutoff_ts"] == 15
    p.write(1, rec(35, pid=2))
    buf, _ = r.read()
    assert ts_of(buf) == [20, 30]             # cutoff 30 (cpu 0's last)
    buf, _ = r.read()
    assert ts_of(buf) == [35]                 # cutoff 35: cpu 2's 40 still held
    buf, _ = r.read()
    assert ts_of(buf) == [40]                 # only cpu 2 has data now


def test_merge_random_streams():
    rng = random.Random(5)
    p, r = pair(nr_cpus=8, size=64 * PAGE)
    sent = []
    for c in range(8):
        t = 0
        for _ in range(rng.randrange(0, 200)):
            t += rng.randrange(0, 50)
            p.write(c, rec(t, pid=c + 1))
            sent.append(t)
    got = []
    for _ in range(100):
        buf, info = r.read()
        got += ts_of(buf)
        if not info["held_back"] and not info["records"]:
            break
    assert got == sorted(got) and sorted(got) == sorted(sent)


def test_read_cap_splits_batches():
    p, r = pair(nr_cpus=2, size=16 * PAGE)
    for t in range(1, 101):
        p.write(t % 2, rec(t))
    out = np.empty(96 * 7, np.uint8)
    got = []
    while True:
        n, info = r.read_into(out)
        if n <= 0:
            break
        assert n <= len(out)
        got += ts_of(out[:n])
    assert got == list(range(1, 101))         # an idle CPU holds nothing back
    p.write(1, rec(101))
    n, _ = r.read_into(out)
    assert ts_of(out[:n]) == [101]


def test_concurrent_producers_threads():
    nr, per = 4, 20000
    p, r = pair(nr_cpus=nr, size=16 * PAGE)
    bufs = []
    for c in range(nr):
        b = b"".join(rec(i * nr + c + 1, pid=c + 1) for i in range(per))
        bufs.append(b)

    def produce(c):
        assert p.write_buf(c, bufs[c], block=True) == per
        p.wake()
    th = [threading.Thread(target=produce, args=(c,)) for c in range(nr)]
    for t in th:
        t.start()
    seen = {c + 1: [] for c in range(nr)}
    total = 0
    while total < nr * per:
        assert r.wait(2000) == 1
        buf, info = r.read()
        ts = ts_of(buf)
        assert ts == sorted(ts)               # ordered within every batch
        b = bytes(buf)
        off = 0
        while off < len(b):
            pid = int.from_bytes(b[off + 20:off + 24], "little")
            seen[pid].append(int.from_bytes(b[off + 8:off + 16], "little"))
            off += int.from_bytes(b[off:off + 2], "little")
        total += info["records"]
    for t in th:
        t.join()
    for c in range(nr):
        assert seen[c + 1] == [i * nr + c + 1 for i in range(per)]   # complete, in order
    assert r.stats()["drops_full"] == 0


def test_forked_producer_then_vanishes():
    p, r = pair(nr_cpus=2, size=8 * PAGE)
    n = 5000
    pid = os.fork()
    if pid == 0:                              # child: produce, then exit (pipe closes)
        try:
            for i in range(n):
                while not p.write(i % 2, rec(i + 1)):
                    pass
            p.wake()
        finally:
            os._exit(0)
    p.hangup()                                # the parent keeps no write end
    got = []
    while True:
        st = r.wait(5000)
        if st == -19:
            break
        assert st == 1
        buf, info = r.read()
        if buf is None:
            break
        got += ts_of(buf)
    os.waitpid(pid, 0)
    assert got == list(range(1, n + 1))
    assert r.wait(0) == -19
    buf, _ = r.read()
    assert buf is None
    assert r.stats()["gone"] == 1


def test_corrupt_record_is_skipped_not_fatal():
    p, r = pair()
    p.write(0, rec(1))
    bad = bytearray(rec(2))
    bad[0:2] = (13).to_bytes(2, "little")      # not a multiple of 8
    p.write(0, bytes(bad))
    buf, info = r.read()
    assert ts_of(buf) == [1] and info["corrupt"] == 1
    buf, info = r.read()
    assert bytes(buf) == b"" and r.stats()["corrupt"] >= 1
    p.write(0, rec(3))
    buf, _ = r.read()
    assert ts_of(buf) == [3]                   # the ring goes on after the skip


def test_wait_times_out_and_wakes():
    p, r = pair()
    assert r.wait(10) == 0
    p.write(0, rec(1))
    assert r.wait(0) == 1                      # data present: no poll needed


def test_open_device_errors(tmp_path):
    from collector.state.ring import RingReader
    with pytest.raises(OSError) as e:
        RingReader.open_device(str(tmp_path / "nope"))
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        RingReader.open_device("/dev/null")    # not the module: the info ioctl fails
    assert e.value.errno in (errno.ENOTTY, errno.EINVAL)
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            RingReader.from_device_fd(fd)
        assert e.value.errno in (errno.ENOTTY, errno.EINVAL)
        os.fstat(fd)                            # the caller's fd is left open
    finally:
        os.close(fd)


def test_small_cap_never_reorders():
    """A record too big for this call's budget still holds newer records of other CPUs."""
    p, r = pair(nr_cpus=2, size=16 * PAGE)
    p.write(0, rec(10, pad=600))                # big, oldest
    for t in (20, 30, 40):
        p.write(1, rec(t))
    out = np.empty(720, np.uint8)             # fits the big record, not it plus others
    got = []
    for _ in range(10):
        n, _ = r.read_into(out)
        if n > 0:
            got += ts_of(out[:n])
    assert got == sorted(got) and got[0] == 10 and set(got) == {10, 20, 30, 40}
