"""Truncated, corrupted and hostile captures: one CaptureError with the byte offset, raised
only after every event before the damage was delivered; memory stays bounded."""

from __future__ import annotations

import gzip
import resource
import struct
import zlib

import numpy as np
import pytest

from collector.errors import CaptureError
from collector.sources.scap import ScapSource

from . import scapgen as g
from .conftest import capture_path, new_strings, read_all


def _read(data: bytes, tmp_path, backend, name="x.scap", batch_events=65536):
    p = tmp_path / name
    p.write_bytes(data)
    try:
        cols, src = read_all(p, backend, batch_events, new_strings())
    except CaptureError as e:       # raised by open(): header or metadata damage
        return {}, None, e
    return cols, src, src.error


def _prefix_ok(cols: dict, full: dict) -> None:
    n = len(cols.get("num", ()))
    for k, v in cols.items():
        if k[0] == "v" and k[1:].isdigit():
            continue                # ids depend on the table; values are checked elsewhere
        assert np.array_equal(v, full[k][:n]), k


def test_valid_generated_capture(tmp_path, backend):
    cols, src, err = _read(g.simple_capture(), tmp_path, backend)
    assert err is None
    assert src.stats()["events"] == 200
    assert len(cols["num"]) == 200
    assert src.snapshot["users"] == {0: "root", 1000: "alice"}


@pytest.mark.parametrize("name", ["libs/sample.scap", "falco-0.34.1/open-multiple-files.scap"])
def test_truncation_everywhere(tmp_path, name, backend):
    raw = capture_path(name).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    full, _, err = _read(raw, tmp_path, backend)
    assert err is None
    step = max(1, len(raw) // 60)
    for cut in list(range(7, len(raw), step)) + [len(raw) - 1, len(raw) - 4]:
        cols, src, err = _read(raw[:cut], tmp_path, backend)
        if err is None:
            # only a cut exactly at a block boundary after the first event is a valid file
            assert src.stats()["events"] > 0
        else:
            assert isinstance(err, CaptureError)
            assert err.offset is not None and 0 <= err.offset <= cut
            assert str(x := err).startswith(str(tmp_path)), x
        _prefix_ok(cols, full)


def test_truncated_gzip(tmp_path, backend):
    data = capture_path("libs/curl_google.scap").read_bytes()
    full, _, _ = _read(data, tmp_path, backend)
    for cut in (10, 100, 1000, len(data) // 2, len(data) - 9, len(data) - 1):
        cols, _, err = _read(data[:cut], tmp_path, backend, "t.scap.gz")
        assert isinstance(err, CaptureError), cut
        assert err.offset is not None
        _prefix_ok(cols, full)


def test_corrupted_gzip(tmp_path, backend):
    data = bytearray(capture_path("libs/curl_google.scap").read_bytes())
    _full, _, _ = _read(bytes(data), tmp_path, backend)
    for pos in (len(data) // 3, len(data) // 2, len(data) - 20):
        bad = bytearray(data)
        for i in range(pos, pos + 8):
            bad[i] ^= 0x5A
        _cols, _, err = _read(bytes(bad), tmp_path, backend)
        # the deflate stream may still inflate (into garbage the block checks catch) or not
        # (zlib error, CRC error): one CaptureError either way
        assert isinstance(err, CaptureError)
        assert err.offset is not None


def test_garbage_after_gzip(tmp_path, backend):
    data = capture_path("libs/test_ipv6_client.scap").read_bytes() + b"not gzip at all"
    cols, _src, err = _read(data, tmp_path, backend)
    assert isinstance(err, CaptureError) and "after the end of the gzip stream" in str(err)
    assert len(cols["num"]) > 0


@pytest.mark.parametrize("data, words", [
    (b"", "section header"),
    (b"hello world this is not a capture", "section header"),
    (g.shb(magic=0x4D3C2B1A) + g.mi(), "byte-swapped"),
    (g.shb(magic=0x12345678) + g.mi(), "byte-order magic"),
    (g.shb(major=2) + g.mi(), "major version 2"),
    (g.block(0x0A0D0D0A, b"\x4d\x3c\x2b\x1a\x01\x00", total=8), "impossible"),
])
def test_bad_headers(tmp_path, backend, data, words):
    cols, _, err = _read(data, tmp_path, backend)
    assert isinstance(err, CaptureError) and words in str(err), err
    assert err.offset is not None
    assert not cols


def test_no_events(tmp_path, backend):
    _, _, err = _read(g.header(), tmp_path, backend)
    assert isinstance(err, CaptureError) and "no events" in str(err)


def _with_bad_event(bad: bytes) -> tuple[bytes, int]:
    good = g.simple_capture(5)
    return good + bad + g.close_pair(100, 3, 1), len(good)


@pytest.mark.parametrize("make, words", [
    (lambda: g.block(0x216, b"\0" * 40, total=4), "smaller than an event header"),
    (lambda: g.block(0x216, b"\0" * 40, total=0xFFFFFFF0), "exceeds the event-block limit"),
    (lambda: g.block(0x221, b"\0" * 40, total=0x7FFFFFF0), "exceeds the large-block limit"),
    (lambda: g.event(3, 100, [g.param("i64", 3)])[:-4] + b"\x01\x00\x00\x00", "trailer"),
    (lambda: g.event(3, 100, [g.param("i64", 3)], elen_delta=1000), "does not fit in its block"),
    (lambda: g.event(3, 100, [g.param("i64", 3)], nparams=0xFFFFFFFF), "claims 4294967295"),
    (lambda: g.event(3, 100, [g.param("i64", 3)], nparams=3), "parameters"),
    (lambda: g.event(3, 100, [g.param("i64", 3)], v2=False, elen_delta=1),
     "no parameter count matches"),
    (lambda: g.block(0x1234, b"x" * 8, total=0xFFFFFFF0), "impossible length"),
    (lambda: g.block(0x1234, b"x" * 8, trailer=7), "trailer"),
    (lambda: g.block(0x215, b"\xff\xff\xff\x7f" + b"\0" * 60), "process list entry length"),
])
def test_hostile_blocks(tmp_path, backend, make, words):
    data, good_len = _with_bad_event(make())
    full, _, err0 = _read(g.simple_capture(5) + g.close_pair(100, 3, 1), tmp_path, backend)
    assert err0 is None
    cols, _src, err = _read(data, tmp_path, backend)
    assert isinstance(err, CaptureError), err
    assert words in str(err), str(err)
    assert good_len <= err.offset < len(data)
    assert len(cols["num"]) == 20           # every event before the damage
    _prefix_ok(cols, full)


def test_error_after_many_batches(tmp_path, backend):
    data = g.simple_capture(300) + g.block(0x216, b"\0" * 40, total=4)
    cols, src, err = _read(data, tmp_path, backend, batch_events=64)
    assert isinstance(err, CaptureError)
    assert len(cols["num"]) == 1200 and src.stats()["events"] == 1200


def test_impossible_parameter_lengths_are_not_misread(tmp_path, backend):
    """A 3-byte fd and a 5-byte sockaddr are treated as absent (counted), not read."""
    bad = g.event(g.CODE["SYSCALL_CLOSE_E"], 100, [g.param("raw", b"\x01\x02\x03")]) + \
        g.event(g.CODE["SOCKET_CONNECT_E"], 100, [g.param("i64", 4), g.param("raw", b"\x02abcd")])
    cols, src, err = _read(g.header() + bad, tmp_path, backend)
    assert err is None and len(cols["num"]) == 2
    assert cols["a0"][0] == 0 and cols["v0"][1] == 0 and cols["a0"][1] == 4
    assert src.stats()["scap_bad_params"] == 2


def test_unknown_event_types_and_blocks_are_skipped(tmp_path, backend):
    weird = g.event(60000 % 65536, 100, [g.param("u64", 1)]) + g.block(0x999, b"abcdefgh")
    data = g.simple_capture(2) + weird + g.close_pair(100, 3, 1)
    cols, src, err = _read(data, tmp_path, backend)
    assert err is None
    st = src.stats()
    assert st["skipped"]["not modelled: unknown event type"] == 1
    assert st["blocks"]["unknown 0x999"] == 1
    assert len(cols["num"]) == 10 and st["events"] == 11


def test_state_only_events_are_not_rows(tmp_path, backend):
    ev = g.event(g.CODE["SYSCALL_CLOSE_E"], 100, [g.param("i64", 3)], flags=1) + \
        g.event(g.CODE["SYSCALL_CLOSE_E"], 100, [g.param("i64", 3)], flags=0)
    cols, src, err = _read(g.header() + ev, tmp_path, backend)
    assert err is None and len(cols["num"]) == 1 and cols["num"][0] == 2
    assert src.stats()["skipped"]["state-only events"] == 1


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_gzip_bomb_is_bounded(tmp_path, backend):
    """1 GiB of zeros behind a valid header: one error at the first zero block, no 1 GiB
    buffer (the stream is inflated in bounded steps)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [comp.compress(g.simple_capture(3))]
    zeros = b"\0" * (1 << 20)
    for _ in range(1024):
        parts.append(comp.compress(zeros))
    parts.append(comp.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 2 << 20
    before = _peak_kb()
    cols, _, err = _read(bomb, tmp_path, backend, "bomb.scap.gz")
    assert isinstance(err, CaptureError) and "impossible length 0" in str(err)
    assert len(cols["num"]) == 12
    assert _peak_kb() - before < 200 * 1024


def test_huge_declared_metadata_block_is_refused(tmp_path, backend):
    data = g.header() + struct.pack("<II", 0x215, 0xFFFFFFF0)
    _, _, err = _read(data, tmp_path, backend)
    assert isinstance(err, CaptureError) and "impossible" in str(err)


def test_source_error_not_raised_mid_stream(tmp_path, backend):
    """batches() ends normally; the error is on the source, for the pipeline to report."""
    p = tmp_path / "t.scap"
    p.write_bytes(g.simple_capture(10) + b"\x16\x02\x00\x00")
    src = ScapSource(str(p), backend=backend)
    src.open()
    n = sum(b.n for b in src.batches())
    assert n == 40 and isinstance(src.error, CaptureError)
    assert "ends inside a block header" in str(src.error)


@pytest.mark.parametrize("backend_name", ["pure", "c"])
def test_thread_table_is_bounded(tmp_path, backend_name):
    """Events of many distinct threads: per-thread state stops at max_threads (counted)."""
    from collector.sources import scap as scap_mod

    from .conftest import c_available
    if backend_name == "c" and not c_available():
        pytest.skip("C extension not built")
    evs = b"".join(g.event(g.CODE["SYSCALL_CLOSE_E"], 10_000 + i, [g.param("i64", 3)])
                   for i in range(3000))
    p = tmp_path / "many.scap"
    p.write_bytes(g.header() + evs)
    old = scap_mod.MAX_THREADS
    scap_mod.MAX_THREADS = 1000
    try:
        cols, src = read_all(p, backend_name, 65536, new_strings())
    finally:
        scap_mod.MAX_THREADS = old
    st = src.stats()
    assert len(cols["num"]) == 3000 and src.error is None
    assert st["scap_threads"] <= 1000 and st["scap_threads_full"] > 0
