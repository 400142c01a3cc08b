"""The .fcap format: round trips bit for bit, and damage is reported, never guessed at."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import abi
from collector.capture import BLOCK_HDR, FILE_HDR, FcapReader, FcapWriter, record_offsets, sniff
from collector.errors import CaptureError, FormatMismatch


def make_records(n: int, seed: int = 0) -> bytes:
    """n valid ABI records with random variable parts (built from the header's dtype)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vl = rng.integers(0, 40, size=6) * (rng.random(6) < 0.4)
        body = bytes(rng.integers(0, 256, size=int(vl.sum()), dtype=np.uint8))
        total = (abi.HDR_SIZE + len(body) + 7) // 8 * 8
        h = np.zeros(1, dtype=abi.HDR_DTYPE)
        h["len"], h["type"], h["ts"] = total, abi.EVENTS[i % len(abi.EVENTS)].num, 1000 + i
        h["tid"], h["pid"], h["ret"] = 100 + i % 7, 100, i - 3
        h["vlen"][0] = vl
        out.append(h.tobytes() + body + b"\0" * (total - abi.HDR_SIZE - len(body)))
    return b"".join(out)


def write(path, data: bytes, chunks: int = 5, **kw) -> None:
    offs, _ = record_offsets(data)
    cuts = [offs[int(k * len(offs) / chunks)] for k in range(chunks)] + [len(data)]
    with FcapWriter(str(path), snapshot={"threads": [{"tid": 1, "comm": "init"}]},
                    meta={"source": "test"}, **kw) as w:
        for a, b in zip(cuts, cuts[1:]):
            w.write_records(data[a:b])


def read_all(path) -> tuple[bytes, FcapReader]:
    r = FcapReader(str(path))
    data = b"".join(r.raw_blocks())
    r.close()
    return data, r


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_bit_for_bit(tmp_path, compress):
    data = make_records(3000)
    p = tmp_path / "x.fcap"
    write(p, data, chunks=7, compress=compress, block_size=32 << 10)
    got, r = read_all(p)
    assert got == data
    assert r.error is None
    assert r.end["events"] == 3000
    assert r.snapshot["threads"][0]["comm"] == "init"
    assert r.meta["source"] == "test" and r.meta["kernel"] == os.uname().release
    assert r.blocks_read > 4
    r2 = FcapReader(str(p))
    sizes = [len(b) for b in r2.raw_blocks()]
    r2.close()
    assert max(sizes) <= 32 << 10 and sum(sizes) == len(data)


def test_partial_record_refused(tmp_path):
    data = make_records(3)
    with FcapWriter(str(tmp_path / "x.fcap")) as w:
        with pytest.raises(CaptureError, match="partial or invalid record"):
            w.write_records(data[:-8])


@pytest.mark.parametrize("compress", [True, False])
def test_truncation_yields_prefix_then_offset(tmp_path, compress):
    data = make_records(2000, seed=1)
    p = tmp_path / "x.fcap"
    write(p, data, compress=compress, block_size=16 << 10)
    full = p.read_bytes()
    for cut in sorted({len(full) - 1, len(full) // 2, len(full) // 3, 200, len(full) - 30}):
        q = tmp_path / "cut.fcap"
        q.write_bytes(full[:cut])
        try:
            got, r = read_all(q)
        except CaptureError as e:  # damage inside meta/snapshot: nothing to replay
            assert e.offset is not None and e.offset <= cut
            continue
        assert data.startswith(got), "a truncated file must yield an exact prefix"
        if not compress:
            # Nothing verifiable is lost: at most the one block that was cut short (plus the
            # block headers and meta before it, which are not record bytes).
            assert len(got) >= cut - (16 << 10) - 2048
        offs, end = record_offsets(got)
        assert end == len(got)
        assert r.error is not None and r.error.offset is not None and r.error.offset <= cut
        assert f"offset {r.error.offset}" in str(r.error)


def test_crc_damage_names_block_offset(tmp_path):
    data = make_records(1000, seed=2)
    p = tmp_path / "x.fcap"
    write(p, data, compress=False, block_size=8 << 10)
    raw = bytearray(p.read_bytes())
    # Flip a byte in the middle of the file: inside some records block.
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    got, r = read_all(p)
    assert data.startswith(got) and len(got) < len(data)
    assert r.error is not None and "checksum" in str(r.error)
    # The reported offset is the start of the damaged block, right after what was read.
    assert r.error.offset is not None and r.error.offset < len(raw) // 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(min_value=0), val=st.integers(min_value=1, max_value=255),
       cut=st.one_of(st.none(), st.integers(min_value=0)))
def test_random_damage_never_misreads(tmp_path, pos, val, cut):
    data = make_records(300, seed=3)
    p = tmp_path / "h.fcap"
    if not p.exists():
        write(p, data, compress=True, block_size=4 << 10)
    raw = bytearray(p.read_bytes())
    raw[pos % len(raw)] ^= val
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    q = tmp_path / "h2.fcap"
    q.write_bytes(bytes(raw))
    try:
        got, r = read_all(q)
    except CaptureError:
        return
    # Whatever is returned is an exact prefix of what was written, made of whole records,
    # or the file is intact.
    assert data.startswith(got)
    if got != data:
        assert r.error is not None


@pytest.mark.parametrize("head,kind", [
    (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a" + b"\0" * 20, "scap"),
    (b"\x1f\x8b\x08\x00" + b"\0" * 20, "gzip"),
    (b"\xd4\xc3\xb2\xa1" + b"\0" * 20, "pcap"),
    (b"\x7fELF\x02\x01", "ELF executable"),
    (b'{"a": 1}', "JSON text"),
    (b"hello world\n", "text"),
    (b"", "empty file"),
])
def test_other_formats_refused_by_name(tmp_path, head, kind):
    assert sniff(head) == kind
    p = tmp_path / "f.bin"
    p.write_bytes(head)
    with pytest.raises(FormatMismatch) as ei:
        FcapReader(str(p))
    assert kind in str(ei.value) and ei.value.detected == kind


def test_abi_mismatch_refused(tmp_path):
    p = tmp_path / "x.fcap"
    write(p, make_records(10))
    raw = bytearray(p.read_bytes())
    raw[12] ^= 0x7F  # ABI version field
    p.write_bytes(bytes(raw))
    with pytest.raises(CaptureError, match="ABI version"):
        FcapReader(str(p))


def test_header_layout_is_documented():
    assert FILE_HDR.size == 32 and BLOCK_HDR.size == 24


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_replay_refuses_other_formats_without_traceback(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("not a capture\n")
    r = run_cli("replay", str(p))
    assert r.returncode == 1
    assert "looks like text" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("replay", str(tmp_path / "missing.fcap"))
    assert r.returncode == 1 and "no such file" in r.stderr and "Traceback" not in r.stderr
