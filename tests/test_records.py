"""collector.records: the record encoder used by tests, sources and other engineers' tests."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import abi, batch, native
from collector import records as R


def test_layout_of_one_record():
    rec = R.encode("openat", tid=7, pid=5, ts=123, ret=-13, cpu=3, flags=abi.RF_FAULT,
                   args={"dirfd": R.AT_FDCWD, "mode": 0o600}, vars={"fullpath": "/x", "name": "ab"})
    assert len(rec) == 104 and len(rec) % 8 == 0
    h = np.frombuffer(rec[:96], abi.HDR_DTYPE)[0]
    assert (h["len"], h["type"], h["flags"], h["cpu"], h["ts"], h["tid"], h["pid"], h["ret"]) == \
        (104, abi.EV["OPENAT"], abi.RF_FAULT, 3, 123, 7, 5, -13)
    assert h["arg"].tolist() == [2**64 - 100, 0, 0o600, 0, 0, 0]
    assert h["vlen"].tolist() == [2, 2, 0, 0, 0, 0] and h["_pad"] == 0
    assert rec[96:] == b"ab/x" + b"\0" * 4


def test_type_by_falco_name_c_name_or_number():
    a = R.encode("procexit", tid=1, pid=1, ts=1)
    assert a == R.encode("PROC_EXIT", tid=1, pid=1, ts=1) == R.encode(abi.EV["PROC_EXIT"], tid=1, pid=1, ts=1)
    with pytest.raises(ValueError, match="unknown event type"):
        R.encode("nosuch", tid=1, pid=1, ts=1)
    with pytest.raises(ValueError, match="unknown event type"):
        R.encode(39, tid=1, pid=1, ts=1)
    assert struct.unpack_from("<H", R.encode(39, tid=1, pid=1, ts=1, raw_type=True), 2)[0] == 39


def test_named_slots_are_checked():
    with pytest.raises(ValueError, match="no argument named 'bogus'"):
        R.encode("close", tid=1, pid=1, ts=1, args={"bogus": 1})
    with pytest.raises(ValueError, match="no variable part named 'name'"):
        R.encode("close", tid=1, pid=1, ts=1, vars={"name": "x"})
    with pytest.raises(ValueError, match="at most 6"):
        R.encode("close", tid=1, pid=1, ts=1, args=range(7))


def test_snaplen_truncates_and_flags():
    rec = R.encode("openat", tid=1, pid=1, ts=1, vars=("a" * 10, "b" * 3), snaplen=4)
    h = np.frombuffer(rec[:96], abi.HDR_DTYPE)[0]
    assert h["flags"] == abi.RF_TRUNC and h["vlen"].tolist()[:2] == [4, 3]
    rec = R.encode("openat", tid=1, pid=1, ts=1, vars=("a" * 4,), snaplen=4)
    assert np.frombuffer(rec[:96], abi.HDR_DTYPE)[0]["flags"] == 0


def test_max_record():
    ok = R.encode("execve", tid=1, pid=1, ts=1, vars=[b"x" * 10000] * 5 + [b"y" * (abi.MAX_RECORD - 96 - 50000)])
    assert len(ok) == abi.MAX_RECORD
    with pytest.raises(ValueError, match="FNET_MAX_RECORD"):
        R.encode("execve", tid=1, pid=1, ts=1, vars=[b"x" * (abi.MAX_RECORD - 96 + 1)])


def test_sockaddr_helpers():
    v4 = R.sockaddr("inet", "10.1.2.3", 443)
    assert len(v4) == abi.SIZEOF["fnet_sockaddr"] == 20
    s = np.frombuffer(v4, abi.SOCKADDR_DTYPE)[0]
    assert (s["family"], s["port"], bytes(s["addr"][:4])) == (2, 443, bytes([10, 1, 2, 3]))
    assert R.parse_sockaddr(v4) == ("inet", "10.1.2.3", 443)
    v6 = R.sockaddr("inet6", "fd00::1", 22)
    assert len(v6) == 20 and R.parse_sockaddr(v6) == ("inet6", "fd00::1", 22)
    ux = R.sockaddr("unix", "/run/x.sock")
    assert ux == struct.pack("<HH", 1, 0) + b"/run/x.sock" and R.parse_sockaddr(ux) == ("unix", "/run/x.sock", 0)
    assert R.parse_sockaddr(R.sockaddr("unix", "\0abstract"))[1] == "\0abstract"
    assert R.sockaddr(abi.CONST["FNET_AF_INET"], "127.0.0.1", 1) == R.sockaddr("inet", "127.0.0.1", 1)


def test_argv():
    assert R.argv(["ls", "-l", b"/tmp"]) == b"ls\0-l\0/tmp"
    assert R.argv([]) == b""


def _cols(n, rng):
    return {"type": rng.choice(sorted(abi.BY_NUM), n), "tid": rng.integers(0, 2**32, n),
            "pid": rng.integers(0, 2**32, n), "ts": rng.integers(0, 2**63, n).astype(np.uint64),
            "ret": rng.integers(-(2**63), 2**63 - 1, n), "flags": rng.integers(0, 8, n),
            "cpu": rng.integers(0, 64, n), **{f"a{i}": rng.integers(-(2**63), 2**63 - 1, n) for i in range(6)},
            **{f"v{i}": rng.integers(0, 6, n) for i in range(6)}}


POOL = [None, b"", b"/etc/passwd", b"bash", b"x" * 1000, R.sockaddr("inet", "1.2.3.4", 80)]


@pytest.mark.parametrize("pool", [POOL, "pool", "table"])
def test_encode_many_equals_encode(pool):
    rng = np.random.default_rng(5)
    cols = _cols(300, rng)
    if pool == "pool":
        strings = R.Pool()
        assert [strings.add(p or b"") for p in POOL[2:]] == [2, 3, 4, 5]
    elif pool == "table":
        strings = batch.StringTable()
        strings.intern_many(POOL[2:])
    else:
        strings = POOL
    many, offs = R.encode_many(cols, strings, offsets=True)
    one = b"".join(
        R.encode(int(cols["type"][i]), tid=int(cols["tid"][i]), pid=int(cols["pid"][i]), ts=int(cols["ts"][i]),
                 ret=int(cols["ret"][i]), flags=int(cols["flags"][i]), cpu=int(cols["cpu"][i]),
                 args=[int(cols[f"a{j}"][i]) for j in range(6)],
                 vars=[POOL[int(cols[f"v{j}"][i])] for j in range(6)], raw_type=True)
        for i in range(300))
    assert many == one
    assert offs[0] == 0 and offs[-1] == len(many) and len(offs) == 301
    assert R.encode_many({"type": np.zeros(0)}) == b""


def test_encode_many_decodes_back():
    rng = np.random.default_rng(9)
    cols = _cols(500, rng)
    t = native.StringTable()
    t.intern_many(POOL[2:])
    b, s = native.decode(R.encode_many(cols, t), t, first_num=1)
    assert s.records == 500 and s.skipped == {}
    for k in ("type", "tid", "pid", "ts", "ret", "flags", "cpu", *(f"a{i}" for i in range(6))):
        np.testing.assert_array_equal(b[k], np.asarray(cols[k]).astype(b[k].dtype), err_msg=k)
    named = np.array([[bool(abi.BY_NUM[int(x)].vars[i]) for i in range(6)] for x in cols["type"]])
    for i in range(6):
        want = np.where(cols[f"v{i}"] == 0, named[:, i].astype(int), cols[f"v{i}"])   # absent -> empty if named
        want = np.where(cols[f"v{i}"] == 1, named[:, i].astype(int), want)
        np.testing.assert_array_equal(b[f"v{i}"], want)


def test_encode_many_limits():
    with pytest.raises(ValueError, match="FNET_MAX_RECORD"):
        R.encode_many({"type": np.array([2]), "v0": np.array([2]), "v1": np.array([2])},
                      [None, b"", b"x" * 40000])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(abi.BY_NUM)), st.integers(0, 2**32 - 1),
                          st.lists(st.binary(max_size=30), max_size=6)), max_size=20))
def test_decode_inverts_encode(rows):
    buf = b"".join(R.encode(t, tid=tid, pid=tid, ts=i, vars=vs) for i, (t, tid, vs) in enumerate(rows))
    b, s = native.decode(buf, native.StringTable())
    assert s.records == len(rows)
    for i, (t, tid, vs) in enumerate(rows):
        r = b.row(i)
        assert (r["type"], r["tid"], r["ts"]) == (t, tid, i)
        names = abi.BY_NUM[t].vars
        for j in range(6):
            v = vs[j] if j < len(vs) else b""
            want = v if v else (b"" if names[j] else None)
            assert r[f"v{j}"] == want
