"""Bounded-time fuzzing (Hypothesis): mutated captures never crash the reader, never give
anything but rows and at most one CaptureError, and the C reader agrees with the twin.

FALCONET_FUZZ_EXAMPLES sets the number of examples per test (default 150; CI bound)."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.errors import CaptureError
from collector.sources.scap import ScapSource

from . import scapgen as g
from .conftest import c_available, capture_path, new_strings

EXAMPLES = int(os.environ.get("FALCONET_FUZZ_EXAMPLES", "150"))
SEEDS = [
    g.simple_capture(30),
    gzip.decompress(capture_path("libs/test_ipv6_client.scap").read_bytes()),
    gzip.decompress(capture_path("falco-0.34.1/cat_write.scap").read_bytes()),
]
INTERESTING = [0, 1, 2, 3, 4, 7, 8, 11, 12, 22, 26, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF,
               0xFFFFFFFF, 0x204, 0x216, 0x221, 0x222, 0x215, 0x0A0D0D0A]


@st.composite
def mutated(draw):
    data = bytearray(SEEDS[draw(st.integers(0, len(SEEDS) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "u32", "u16", "cut", "insert", "dup", "zero"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op in ("u32", "u16") and pos + 4 <= len(data):
            v = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 0xFFFFFFFF)))
            if op == "u32":
                struct.pack_into("<I", data, pos, v)
            else:
                struct.pack_into("<H", data, pos, v & 0xFFFF)
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "dup":
            n = draw(st.integers(1, 512))
            data[pos:pos] = data[pos:pos + n]
        elif op == "zero":
            n = draw(st.integers(1, 64))
            data[pos:pos + n] = bytes(min(n, len(data) - pos))
    return bytes(data)


def _run(path, backend):
    src = ScapSource(path, batch_events=97, strings=new_strings(), backend=backend)
    rows = []
    try:
        src.open()
    except CaptureError as e:
        assert e.offset is not None
        return rows, (str(e), e.offset), None
    for b in src.batches():
        rows.append({k: v.copy() for k, v in b.cols.items() if not k.startswith("v")})
    st_ = src.stats()
    assert st_["rows"] <= st_["events"]
    err = src.error
    if err is not None:
        assert isinstance(err, CaptureError) and err.offset is not None
    return rows, None if err is None else (str(err), err.offset), st_


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated(), st.booleans())
def test_mutations(tmp_path_factory, data, compress):
    p = tmp_path_factory.mktemp("fuzz") / "m.scap"
    p.write_bytes(gzip.compress(data, 1) if compress else data)
    rows_p, err_p, st_p = _run(str(p), "pure")
    if c_available():
        rows_c, err_c, st_c = _run(str(p), "c")
        assert err_c == err_p
        assert len(rows_c) == len(rows_p)
        for a, b in zip(rows_c, rows_p):
            for k in a:
                assert np.array_equal(a[k], b[k]), k
        if st_c is not None:
            st_c.pop("backend")
            st_p.pop("backend")
            st_c.pop("scap_threads")
            st_p.pop("scap_threads")
            assert st_c == st_p
