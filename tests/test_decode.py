"""Decoding ABI records into EventBatches: the C decoder and its pure-numpy twin.

Every test runs against each available implementation ("pure" always, "c" when the extension
is built and FALCONET_PUREPYTHON is unset) and, where both exist, checks that they agree
exactly: columns, string ids (hence interning order) and skip counters.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import abi, batch, decode_py, native
from collector import records as R

IMPLS = ["pure"] + (["c"] if native.BACKEND == "c" else [])
HAVE_C = native.BACKEND == "c"


def new_table(impl):
    return native.CStringTable() if impl == "c" else batch.StringTable()


def dec(impl, buf, strings=None, first_num=1):
    strings = strings if strings is not None else new_table(impl)
    if impl == "c":
        b, s = native.CDecoder(strings).decode(buf, first_num)
        return b.copy(), s
    return decode_py.decode(buf, strings, first_num)


def both(buf, first_num=1):
    """Decode with every implementation; assert they agree; return the first's result."""
    results = [dec(impl, buf, first_num=first_num) for impl in IMPLS]
    b0, s0 = results[0]
    for b, s in results[1:]:
        assert_same(b0, b)
        assert s.as_dict() == s0.as_dict()
    return b0, s0


def assert_same(a, b):
    assert a.n == b.n
    assert list(a.cols) == list(b.cols)
    for k in a.cols:
        assert a.cols[k].dtype == b.cols[k].dtype, k
        np.testing.assert_array_equal(a.cols[k], b.cols[k], err_msg=k)
    assert len(a.strings) == len(b.strings)
    assert [a.strings.get(i) for i in range(len(a.strings))] == \
        [b.strings.get(i) for i in range(len(b.strings))]


OPEN = R.encode("openat", tid=7, pid=5, ts=1000, ret=3, cpu=2, flags=abi.RF_COMPAT,
                args={"dirfd": R.AT_FDCWD, "flags": 0o2101, "mode": 0o644},
                vars={"name": "x.txt", "fullpath": "/tmp/x.txt"})
CLOSE = R.encode("close", tid=7, pid=5, ts=1001, args=(3,))


@pytest.mark.parametrize("impl", IMPLS)
def test_fields(impl):
    execve = R.encode("execve", tid=4_000_000_000, pid=9, ts=2**64 - 1, ret=-2,
                      args=(-1, 2**63, 0, 0, 0, 2**64 - 1),
                      vars={"filename": "/bin/ls", "args": R.argv(["ls", "-l"]), "cwd": "/"})
    b, s = dec(impl, OPEN + CLOSE + execve, first_num=41)
    assert (s.records, s.bytes, s.skipped, s.bad_offset) == (3, len(OPEN + CLOSE + execve), {}, None)
    r = b.row(0)
    assert r["num"] == 41 and r["ts"] == 1000 and r["cpu"] == 2 and r["flags"] == abi.RF_COMPAT
    assert (r["tid"], r["pid"], r["type"], r["ret"]) == (7, 5, abi.EV["OPENAT"], 3)
    assert (r["a0"], r["a1"], r["a2"]) == (-100, 0o2101, 0o644)
    assert (r["v0"], r["v1"], r["v2"]) == (b"x.txt", b"/tmp/x.txt", None)
    assert b.row(1)["a0"] == 3 and b.row(1)["num"] == 42
    r = b.row(2)
    assert r["tid"] == 4_000_000_000 and r["ts"] == 2**64 - 1 and r["ret"] == -2
    assert (r["a0"], r["a1"], r["a5"]) == (-1, -(2**63), -1)
    assert (r["v0"], r["v1"], r["v2"]) == (b"/bin/ls", b"ls\0-l", b"/")
    for k, dt in batch.BASE_COLUMNS.items():
        assert b[k].dtype == dt


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_vs_absent(impl):
    """vlen 0 is the empty string in a slot the type names, absent in an unused slot."""
    buf = R.encode("execve", tid=1, pid=1, ts=1, vars={"filename": "", "comm": "sh"})
    buf += R.encode("close", tid=1, pid=1, ts=2)
    buf += R.encode("openat", tid=1, pid=1, ts=3, vars=(b"", b"", b"stray"))  # unused slot
    b, _ = dec(impl, buf)
    assert [b[f"v{i}"][0] for i in range(6)] == [batch.EMPTY] * 3 + [b.strings.lookup("sh")] + \
        [batch.EMPTY] * 2
    assert [b[f"v{i}"][1] for i in range(6)] == [batch.NA] * 6
    # data in a slot the type does not name is kept, not dropped
    assert b.strings.get(int(b["v2"][2])) == b"stray" and b["v0"][2] == batch.EMPTY


@pytest.mark.parametrize("impl", IMPLS)
def test_interning_order(impl):
    t = new_table(impl)
    pre = t.intern(b"/etc/passwd")                                      # id 2
    buf = b"".join(R.encode("openat", tid=1, pid=1, ts=i, vars=(n, f))
                   for i, (n, f) in enumerate([("b", "/b"), ("a", "/etc/passwd"), ("b", "c"),
                                               ("c", "a")]))
    b, _ = dec(impl, buf, t)
    assert pre == 2
    assert [t.get(i) for i in range(len(t))] == [None, b"", b"/etc/passwd", b"b", b"/b", b"a",
                                                 b"c"]
    assert b["v0"].tolist() == [3, 5, 3, 6] and b["v1"].tolist() == [4, 2, 6, 5]
    b2, _ = dec(impl, R.encode("openat", tid=1, pid=1, ts=9, vars=("new", "a")), t)
    assert b2["v0"].tolist() == [7] and b2["v1"].tolist() == [5]


@pytest.mark.parametrize("impl", IMPLS)
def test_unknown_types_are_skipped(impl):
    unk = [R.encode(n, tid=1, pid=1, ts=1, raw_type=True, vars=(b"zz",)) for n in (0, 39, 127, 128, 65535)]
    buf = OPEN + b"".join(unk) + CLOSE
    b, s = dec(impl, buf)
    assert b["type"].tolist() == [abi.EV["OPENAT"], abi.EV["CLOSE"]]
    assert b["num"].tolist() == [1, 2]
    assert s.skipped == {"unknown_type": 5}
    assert s.unknown_type_bytes == sum(map(len, unk)) and s.bad_offset is None
    assert s.bytes == len(OPEN) + len(CLOSE) and s.consumed == len(buf)
    assert b.strings.lookup(b"zz") is None          # skipped records intern nothing


def _set_len(rec: bytes, n: int) -> bytes:
    return struct.pack("<H", n) + rec[2:]


BAD_CASES = {  # name: (bad bytes, reason, whether valid records may follow in the buffer)
    "short": (OPEN[:95], "short", False),
    "tail_bytes": (b"\0\0\0\0", "short", False),
    "truncated": (OPEN[:-8], "len_beyond", False),
    "len_zero": (_set_len(OPEN, 0), "len_small", True),
    "len_small": (_set_len(OPEN, 88), "len_small", True),
    "len_unaligned": (_set_len(OPEN, len(OPEN) - 4), "len_unaligned", True),
    "len_beyond": (_set_len(OPEN, abi.MAX_RECORD), "len_beyond", True),
    "vlen": (OPEN[:80] + struct.pack("<H", 200) + OPEN[82:], "vlen", True),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_length_ends_the_buffer(impl, case):
    bad, reason, mid = BAD_CASES[case]
    good = OPEN + CLOSE
    buf = good + bad + (OPEN + CLOSE if mid else b"")   # valid records after the damage are lost
    b, s = dec(impl, buf)
    assert b.n == 2 and b["type"].tolist() == [abi.EV["OPENAT"], abi.EV["CLOSE"]]
    assert s.skipped == {"bad_length": 1}
    assert (s.bad_offset, s.bad_reason) == (len(good), reason)
    assert s.bad_length_bytes == len(buf) - len(good)
    assert s.bytes == len(good) and s.consumed == len(buf)


@pytest.mark.parametrize("impl", IMPLS)
def test_vlen_sum_checked_before_type(impl):
    rec = R.encode(99, tid=1, pid=1, ts=1, raw_type=True)
    rec = rec[:80] + struct.pack("<H", 8) + rec[82:]
    _, s = dec(impl, CLOSE + rec)
    assert s.skipped == {"bad_length": 1} and s.bad_reason == "vlen" and s.bad_offset == len(CLOSE)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_buffer(impl):
    b, s = dec(impl, b"")
    assert b.n == 0 and s.records == 0 and s.skipped == {} and s.consumed == 0
    assert set(b.cols) == set(batch.BASE_COLUMNS)


@pytest.mark.parametrize("impl", IMPLS)
def test_limits(impl):
    big = b"\xff" * (abi.MAX_RECORD - abi.HDR_SIZE)                   # exactly FNET_MAX_RECORD
    rec = R.encode("execve", tid=1, pid=1, ts=1, vars={"args": big})
    assert len(rec) == abi.MAX_RECORD
    with pytest.raises(ValueError):
        R.encode("execve", tid=1, pid=1, ts=1, vars={"args": big + b"x"})
    snap = abi.CONST["FNET_MAX_SNAPLEN"]
    long = "/" + "d" * (snap * 2)
    rec2 = R.encode("openat", tid=1, pid=1, ts=2, vars=(long, long[:-1]), snaplen=snap)
    six = R.encode("execve", tid=1, pid=1, ts=3, vars=[b"%d" % i * abi.DEFAULT_SNAPLEN for i in range(6)])
    b, s = dec(impl, rec + rec2 + six + CLOSE)
    assert s.records == 4 and s.skipped == {}
    assert b.strings.get(int(b["v1"][0])) == big
    assert b["flags"][1] == abi.RF_TRUNC
    assert b["v0"][1] == b["v1"][1]                       # equal after truncation: one id
    assert b.strings.get(int(b["v0"][1])) == long[:snap].encode()
    assert [len(b.strings.get(int(b[f"v{i}"][2]))) for i in range(6)] == [abi.DEFAULT_SNAPLEN] * 6


@pytest.mark.parametrize("impl", IMPLS)
def test_buffer_kinds(impl):
    buf = OPEN + CLOSE
    ref, _ = dec(impl, buf)
    odd = bytearray(b"\0" + buf)
    for kind in (bytearray(buf), memoryview(buf), np.frombuffer(buf, np.uint8),
                 memoryview(odd)[1:], np.frombuffer(buf, np.uint64)):
        b, s = dec(impl, kind)
        assert_same(ref, b)
        assert s.records == 2


@pytest.mark.skipif(not HAVE_C, reason="C extension not built")
def test_c_decoder_batches_own_their_columns():
    """A batch stays valid while referenced; the decoder reuses only column sets that no
    batch (nor any view of one) refers to any more, and keeps at most POOL of them."""
    t = native.CStringTable()
    d = native.CDecoder(t)
    assert d.batches_owned and native.Decoder(t).batches_owned
    b1, _ = d.decode(OPEN * 3, 1)
    b2, _ = d.decode(CLOSE, 4)
    assert b2.n == 1 and b2["num"].tolist() == [4]
    assert not np.shares_memory(b1["type"], b2["type"])
    assert b1["type"].tolist() == [abi.EV["OPENAT"]] * 3     # not overwritten by b2
    first = b1["type"].ctypes.data
    view = b1["ts"][1:]                     # a view of a column keeps the whole set in use
    del b1
    b3, _ = d.decode(CLOSE * 2, 5)
    assert b3["type"].ctypes.data != first and view.tolist() == [1000, 1000]
    del view
    b4, _ = d.decode(CLOSE, 7)              # the first set is free again: reused
    assert b4["type"].ctypes.data == first and b4["num"].tolist() == [7]
    held = [d.decode(CLOSE, 8 + i)[0] for i in range(2 * d.POOL)]   # a consumer holding all
    assert len(d._pool) == d.POOL
    assert [b["num"][0] for b in held] == list(range(8, 8 + 2 * d.POOL))
    assert len({b["num"].ctypes.data for b in held}) == len(held)
    big = CLOSE * 5000                      # more rows than any set: a bigger one
    b5, s5 = d.decode(big, 100)
    assert b5.n == 5000 and s5.records == 5000 and b5["num"][-1] == 5099
    assert b4["num"].tolist() == [7] and b3["num"].tolist() == [5, 6]
    with pytest.raises(TypeError):
        native.CDecoder(batch.StringTable())


@pytest.mark.skipif(not HAVE_C, reason="C extension not built")
def test_c_columns_full_reports_consumed():
    """With fewer rows than records the C function stops at a record boundary."""
    from collector import _native
    ffi, lib = _native.ffi, _native.lib
    arrays = {k: np.zeros(2, dt) for k, dt in batch.BASE_COLUMNS.items()}
    c = ffi.new("struct fnet_columns *")
    for k, a in arrays.items():
        p = ffi.cast({8: "int64_t *", 4: "uint32_t *", 2: "uint16_t *"}[a.itemsize], a.ctypes.data)
        if k[0] in "av" and k[1:].isdigit():
            getattr(c, k[0])[int(k[1:])] = ffi.cast(ffi.typeof(getattr(c, k[0])[0]), p)
        else:
            setattr(c, k, ffi.cast(ffi.typeof(getattr(c, k)), p))
    c.cap = 2
    s = ffi.new("struct fnet_decode_stats *")
    t = native.CStringTable()
    buf = OPEN + CLOSE + CLOSE
    assert lib.fnet_decode(buf, len(buf), 1, t._t, c, s) == 2
    assert s.consumed == len(OPEN + CLOSE) and s.records == 2 and s.bad_offset == -1


@pytest.mark.skipif(not HAVE_C, reason="C extension not built")
def test_event_info_matches_table():
    from collector import _native
    got = np.array([_native.lib.fnet_event_info(i) for i in range(70000)], np.uint8)
    np.testing.assert_array_equal(got[: 1 << 16], decode_py.EVENT_INFO)
    assert not got[1 << 16:].any()


# --- string tables: C-backed and pure have one interface and one numbering -------------------

@pytest.mark.parametrize("impl", IMPLS)
def test_string_table_interface(impl):
    t = new_table(impl)
    assert len(t) == 2 and t.get(0) is None and t.get(1) == b"" and t.text(0) is None
    assert t.intern("é") == 2 and t.intern(b"\xc3\xa9") == 2 and t.intern(b"\xff") == 3
    assert t.lookup("é") == 2 and t.lookup(b"") == 1 and t.lookup(b"nope") is None
    assert len(t) == 4
    assert t.intern_many([b"a", b"\xff", b"", b"a", b"b"]).tolist() == [4, 3, 1, 4, 5]
    assert t.intern_many([]).dtype == np.uint32
    assert t.text(3) == "\\xff" and t.text(2) == "é"
    assert t.texts() == [None, "", "é", "\\xff", "a", "b"]
    with pytest.raises(IndexError):
        t.get(len(t))
    assert isinstance(t, batch.StringTable)


def test_native_api_is_the_backend():
    t = native.StringTable()
    b, s = native.decode(OPEN, t)
    assert b.n == 1 and b.strings is t and s.records == 1
    b2, _ = native.Decoder(t).decode(OPEN, 2)
    assert b2["v0"].tolist() == b["v0"].tolist()
    assert (native.BACKEND == "c") == isinstance(t, native.CStringTable)


# --- properties: random records, random corruption --------------------------------------------

KNOWN = sorted(abi.BY_NUM)
words = st.sampled_from([b"", b"a", b"/etc/passwd", b"/tmp/x", b"\0", b"bash", b"\xff\xfe",
                         b"/usr/lib/x86_64-linux-gnu/libc.so.6", b"x" * 300])
record = st.builds(
    lambda t, tid, pid, ts, ret, args, vs, flags, cpu: R.encode(
        t, tid=tid, pid=pid, ts=ts, ret=ret, args=args, vars=vs, flags=flags, cpu=cpu, raw_type=True),
    st.one_of(st.sampled_from(KNOWN), st.integers(0, 65535)),
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
    st.integers(-(2**63), 2**63 - 1), st.lists(st.integers(-(2**63), 2**64 - 1), max_size=6),
    st.lists(st.one_of(words, st.binary(max_size=40)), max_size=6), st.integers(0, 7),
    st.integers(0, 255))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, max_size=40))
def test_random_records_roundtrip(recs):
    buf = b"".join(recs)
    b, s = both(buf, first_num=7)
    known = [r for r in recs if decode_py.EVENT_INFO[struct.unpack_from("<H", r, 2)[0]]]
    assert s.records == b.n == len(known) and s.unknown_type == len(recs) - len(known)
    assert s.bad_offset is None and s.consumed == len(buf)
    again = R.encode_many(b.cols, b.strings)
    assert again == b"".join(known)             # the encoder inverts the decoder


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=20), st.data())
def test_random_corruption_same_in_both(recs, data):
    buf = bytearray(b"".join(recs))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "len", "vlen", "garbage"]))
        if kind == "truncate":
            del buf[data.draw(st.integers(0, len(buf))):]
        elif kind == "garbage":
            buf += data.draw(st.binary(max_size=200))
        elif buf:
            pos = data.draw(st.integers(0, len(buf) - 1))
            if kind == "flip":
                buf[pos] ^= data.draw(st.integers(1, 255))
            else:
                # aim at a header's len (offset 0) or a vlen (offset 80..91) field
                base = pos - pos % 8
                at = base if kind == "len" else base + 80 + 2 * data.draw(st.integers(0, 5))
                if at + 2 <= len(buf):
                    buf[at:at + 2] = struct.pack("<H", data.draw(st.integers(0, 65535)))
    b, s = both(bytes(buf))
    assert s.bytes + s.unknown_type_bytes + s.bad_length_bytes == len(buf)
    assert s.records == b.n
    if s.bad_offset is not None:
        assert s.bad_length == 1 and s.bad_offset + s.bad_length_bytes == len(buf)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 15), st.booleans(), st.integers(0, 3)), min_size=1, max_size=12))
def test_records_hidden_in_strings_are_not_records(layout):
    """Variable parts that contain whole valid records (at any alignment) stay strings."""
    fake = OPEN + CLOSE
    recs = []
    for pad, unknown, k in layout:
        recs.append(R.encode("execve", tid=1, pid=2, ts=3, vars=(b"p" * pad + fake * k, fake)))
        if unknown:
            recs.append(R.encode(120, tid=1, pid=1, ts=1, raw_type=True, vars=(fake,)))
    buf = b"".join(recs)
    b, s = both(buf)
    assert b.n == len(layout) and (b["type"] == abi.EV["EXECVE"]).all()
    assert s.unknown_type == sum(u for _, u, _ in layout) and s.bad_offset is None
    assert b.strings.get(int(b["v1"][0])) == fake


@pytest.mark.parametrize("impl", IMPLS)
def test_string_table_growth(impl):
    """Ids stay dense and stable across many growths of the index and the arena."""
    t = new_table(impl)
    vals = [b"/p/%d" % i for i in range(150_000)] + [b"x" * 3_000_000]   # > one arena chunk
    ids = t.intern_many(vals)
    assert ids.tolist() == list(range(2, 2 + len(vals)))
    assert t.intern_many(vals[::-1]).tolist() == ids.tolist()[::-1]
    assert t.lookup(b"/p/149999") == 150_001 and t.get(150_002) == vals[-1]
    assert t.lookup(b"/p/150000") is None and len(t) == 2 + len(vals)


@pytest.mark.skipif(not HAVE_C, reason="C extension not built")
def test_c_table_shared_between_threads():
    """The reader thread decodes (GIL released in C) while another thread interns and reads
    the same table, as the pipeline does: no crash, one id per string, get() round-trips."""
    import threading

    from collector.sources.synthetic import SyntheticSource
    t = native.CStringTable()
    bufs = list(SyntheticSource(events=40_000, seed=3, string_cardinality=20_000,
                                batch_events=2000).raw_batches())
    errors = []

    def decoder():
        d = native.CDecoder(t)
        try:
            for _ in range(3):
                for b in bufs:
                    d.decode(b, 1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    th = threading.Thread(target=decoder)
    th.start()
    mine = {}
    i = 0
    while th.is_alive() or i < 20_000:
        s = b"/other/%d" % (i % 30_000)
        mine.setdefault(s, t.intern(s))
        assert mine[s] == t.intern(s)
        j = int(np.random.default_rng(i).integers(1, len(t)))
        assert t.get(j) is not None
        i += 1
    th.join()
    assert not errors
    vals = [t.get(k) for k in range(1, len(t))]
    assert len(set(vals)) == len(vals)                      # one id per string
    assert all(t.lookup(v) == k + 1 for k, v in enumerate(vals))
    assert all(t.get(v) == k for k, v in mine.items())


def test_decode_stats_accumulate():
    total = decode_py.DecodeStats()
    _, a = both(OPEN + R.encode(120, tid=1, pid=1, ts=1, raw_type=True))
    _, b = both(CLOSE + _set_len(OPEN, 0))
    total += a
    total += b
    assert (total.records, total.unknown_type, total.bad_length) == (2, 1, 1)
    assert total.bytes == len(OPEN) + len(CLOSE)
    assert total.skipped == {"unknown_type": 1, "bad_length": 1}
    assert total.skipped_bytes == {"unknown_type": 96, "bad_length": len(OPEN)}
    assert (total.bad_offset, total.bad_reason) == (len(CLOSE), "len_small")
    assert total.consumed == len(OPEN) + 96 + len(CLOSE) + len(OPEN)
    assert set(total.as_dict()) >= {"records", "bytes", "bad_offset", "bad_reason"}
