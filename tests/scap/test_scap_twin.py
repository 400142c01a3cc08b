"""The C reader (ext/scap.c) and its numpy twin (scap_pure) give identical batches: same
rows, same string ids in fresh tables, same stats, same errors at the same offsets."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from collector.errors import CaptureError

from . import scapgen as g
from .conftest import NAMES, c_available, capture_path, new_strings, read_all

pytestmark = pytest.mark.skipif(not c_available(), reason="C extension not built (pure only)")


def _both(path, batch_events=65536):
    out = []
    for backend in ("c", "pure"):
        strings = new_strings()
        try:
            cols, src = read_all(path, backend, batch_events, strings)
            err = src.error
            st = src.stats()
        except CaptureError as e:
            cols, st, err = {}, {}, e
        st.pop("backend", None)
        st.pop("scap_threads", None)
        out.append((cols, strings, st, None if err is None else (str(err), err.offset)))
    return out


def assert_same(path, batch_events=65536):
    (c1, s1, st1, e1), (c2, s2, st2, e2) = _both(path, batch_events)
    assert e1 == e2
    assert c1.keys() == c2.keys()
    for k in c1:
        assert c1[k].dtype == c2[k].dtype, k
        assert np.array_equal(c1[k], c2[k]), k
    assert len(s1) == len(s2)
    assert all(s1.get(i) == s2.get(i) for i in range(len(s1)))
    assert st1 == st2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch_events", [65536, 3])
def test_captures_identical(name, batch_events):
    assert_same(capture_path(name), batch_events)


def test_concatenated_identical(tmp_path):
    raw = b"".join(gzip.decompress(capture_path(n).read_bytes()) for n in
                   ("falco-psp/run_as_user_0_container.scap", "libs/curl_google.scap"))
    p = tmp_path / "two.scap"
    p.write_bytes(raw)
    assert_same(p, 1000)


@pytest.mark.parametrize("cut", [1000, 5000, 20011, 40000])
def test_truncated_identical(tmp_path, cut):
    raw = gzip.decompress(capture_path("libs/single_ipv6_conn.scap").read_bytes())
    p = tmp_path / "cut.scap"
    p.write_bytes(raw[:cut])
    assert_same(p)


def test_generated_identical(tmp_path):
    p = tmp_path / "gen.scap"
    p.write_bytes(g.simple_capture(200))
    assert_same(p, 7)
