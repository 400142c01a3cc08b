"""Every reference capture reads to the end with the inventory's event and block counts, its
metadata becomes the snapshot, and the rows follow the conversion rules."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from collector import abi
from collector.sources import scap as scap_mod
from collector.sources.open import open_capture
from collector.sources.scap import ScapSource, sniff
from collector.sources.scap_convert import GENERIC_SC
from collector.sources.scap_ppm import EVENTS

from .conftest import CAPTURES, NAMES, capture_path, decoded, new_strings, read_all

EVENT_BLOCKS = {"EV", "EV_V2", "EV_V2_LARGE", "EVF", "EVF_V2", "EVF_V2_LARGE"}


@pytest.mark.parametrize("name", NAMES)
def test_capture_reads_whole(name, backend):
    inv = CAPTURES[name]
    cols, src = read_all(capture_path(name), backend)
    st = src.stats()
    assert src.error is None
    assert st["events"] == inv["events"]
    assert st["backend"] == backend
    meta = {k: v for k, v in inv["blocks"].items() if k not in EVENT_BLOCKS}
    assert st["blocks"] == meta
    # every event is either a row or counted as skipped, never both, never lost
    skipped = sum(n for k, n in st["skipped"].items())
    forks = int((cols["type"] == abi.BY_NAME["procfork"].num).sum()) if cols else 0
    assert st["rows"] - forks + skipped == inv["events"]
    if cols:
        # a PROC_FORK row shares the number of the child's clone exit it comes from
        step = np.diff(cols["num"].astype(np.int64))
        assert np.all(step >= 0)
        assert np.all((step > 0) | (cols["type"][:-1] == abi.BY_NAME["procfork"].num))
        assert cols["num"][-1] <= inv["events"]
        assert set(np.unique(cols["dir"])) <= {0, 1}
        assert abi.KNOWN_TYPE[cols["type"]].all()


@pytest.mark.parametrize("name", NAMES)
def test_skipped_counts_match_inventory_types(name):
    """The per-type counts of the inventory ('top' lists) agree with rows + skipped counts."""
    inv = CAPTURES[name]
    cols, src = read_all(capture_path(name))
    by_enum = {e[0]: e for e in EVENTS}
    st = src.stats()
    for enum, n in inv["top"]:
        e = by_enum[enum[5:]]
        d = 1 if e[2] == ">" else 0
        got = st["skipped"].get(f"not modelled: {e[1]} {e[2]}", 0)
        names = list(GENERIC_SC.values()) if e[1] == "syscall" else [e[1]]
        for nm in names:
            if nm in abi.BY_NAME:
                got += int(((cols["type"] == abi.BY_NAME[nm].num) & (cols["dir"] == d)).sum())
        # names may be shared by several versions of an event: at least this many
        assert got >= n, (enum, got, n)


def test_snapshot_from_metadata():
    _, src = read_all(capture_path("falco-0.34.1/cat_write.scap"))
    snap = src.snapshot
    assert snap["hostname"] == CAPTURES["falco-0.34.1/cat_write.scap"]["host"]
    assert snap["num_cpus"] == CAPTURES["falco-0.34.1/cat_write.scap"]["ncpu"]
    assert snap["users"] and snap["groups"]
    assert snap["users"].get(0) == "root"
    tids = {t["tid"]: t for t in snap["threads"]}
    assert 1 in tids and tids[1]["pid"] == 1
    # 73 fd-list blocks (some empty: threads share their process's table)
    assert src.stats()["blocks"]["FDL"] == 73
    assert sum(1 for t in snap["threads"] if t["fds"]) >= 20
    fds = [fd for t in snap["threads"] for fd in t["fds"]]
    assert any(fd["type"] == "file" and fd["name"].startswith("/") for fd in fds)
    for t in snap["threads"]:
        assert isinstance(t.get("args", []), list)


def test_snapshot_v9_fields_and_sockets():
    _, src = read_all(capture_path("libs/sample.scap"))
    th = [t for t in src.snapshot["threads"] if "comm" in t]
    assert len(th) == 94
    assert all("loginuid" in t and "cap_eff" in t and "tty" in t for t in th)
    init = next(t for t in th if t["tid"] == 1)
    assert init["loginuid"] == 0xFFFFFFFF and init["cap_eff"] != 0
    _, src = read_all(capture_path("libs/single_ipv6_conn.scap"))
    th = src.snapshot["threads"]
    socks = [fd for t in th for fd in t["fds"] if fd["type"] in ("ipv4", "ipv6")]
    for fd in socks:
        assert "sip" in fd and "sport" in fd and fd["name"]


def test_rows_follow_falco_semantics():
    """cat_write: open enter rows (no params in 2016) and exit rows; close exits carry the fd
    of their enter event; open flags in the kernel's encoding; procexit as an enter row."""
    strings = new_strings()
    cols, src = read_all(capture_path("falco-0.34.1/cat_write.scap"), strings=strings)
    d = decoded(cols, strings)
    num = cols["num"].tolist()
    i = num.index(141)
    assert cols["type"][i] == abi.BY_NAME["open"].num and cols["dir"][i] == 0
    assert cols["ret"][i] == 3 and d["v0"][i] == b"/etc/ld.so.cache"
    assert cols["a0"][i] == 0o2000000                 # O_RDONLY|O_CLOEXEC
    j = num.index(140)
    assert cols["dir"][j] == 1 and d["v0"][j] is None
    k = num.index(147)                                # close < : fd only on the enter
    assert cols["type"][k] == abi.BY_NAME["close"].num and cols["dir"][k] == 0
    assert cols["a0"][k] == 3 and cols["ret"][k] == 0
    x = num.index(131)                                # execve <, argv = exe + args
    assert d["v1"][x] == b"cat\x00/dev/null" and d["v3"][x] == b"cat"
    assert cols["a4"][x] == 11310                     # ppid
    assert cols["pid"][x] == 20072
    p = num.index(215)
    assert cols["type"][p] == abi.BY_NAME["procexit"].num and cols["dir"][p] == 1
    assert src.stats()["scap_paired"] >= 6


def test_child_clone_exit_gets_a_procfork_row():
    """run_as_user_0_container: bash (25754) forks 32052 inside a container (the parent's
    clone returns the namespace pid 6); the child's clone exit is preceded by PROC_FORK."""
    strings = new_strings()
    cols, _ = read_all(capture_path("falco-psp/run_as_user_0_container.scap"), strings=strings)
    d = decoded(cols, strings)
    pf = np.flatnonzero(cols["type"] == abi.BY_NAME["procfork"].num)
    assert len(pf) >= 1
    i = int(pf[0])
    assert cols["tid"][i] == 25754 and cols["a0"][i] == 32052 and cols["a1"][i] == 32052
    assert d["v0"][i] == b"bash"
    assert cols["a2"][i] == 0x1200000                 # CLONE_CHILD_CLEARTID|SETTID
    nxt = i + 1
    assert cols["type"][nxt] == abi.BY_NAME["clone"].num and cols["ret"][nxt] == 0
    assert cols["num"][nxt] == cols["num"][i] and cols["tid"][nxt] == 32052


def test_tuples_become_sockaddrs():
    strings = new_strings()
    cols, _ = read_all(capture_path("libs/single_ipv6_conn.scap"), strings=strings)
    d = decoded(cols, strings)
    conn = [i for i in np.flatnonzero((cols["type"] == abi.BY_NAME["connect"].num) &
                                      (cols["dir"] == 0)) if d["v0"][i][:2] == b"\x0a\x00"]
    assert conn
    i = int(conn[0])
    peer, local = d["v0"][i], d["v1"][i]
    assert len(peer) == 20 and int.from_bytes(peer[:2], "little") == 10
    assert int.from_bytes(peer[2:4], "little") == 1234
    assert local is not None and len(local) == 20


def test_sniff(tmp_path):
    assert sniff(str(capture_path("libs/sample.scap")))
    assert sniff(str(capture_path("falco-0.34.1/cat_write.scap")))
    other = tmp_path / "x.bin"
    other.write_bytes(b"hello world, not a capture")
    assert not sniff(str(other))
    assert not sniff(str(tmp_path / "missing.scap"))


def test_open_capture_picks_scap():
    src = open_capture(str(capture_path("falco-0.34.1/syscall.scap")))
    assert isinstance(src, ScapSource)


def _raw(name: str) -> bytes:
    data = capture_path(name).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


@pytest.mark.parametrize("mode", ["plain", "gzip-members", "mixed"])
def test_concatenated_captures(tmp_path, mode, backend):
    """A second section after events restarts the metadata and the events go on."""
    a, b = "falco-0.34.1/cat_write.scap", "libs/test_ipv6_client.scap"
    out = tmp_path / "cat.scap"
    if mode == "plain":
        out.write_bytes(_raw(a) + _raw(b))
    elif mode == "gzip-members":
        out.write_bytes(gzip.compress(_raw(a)) + gzip.compress(_raw(b)))
    else:
        out.write_bytes(capture_path(a).read_bytes() + gzip.compress(_raw(b)))
    cols, src = read_all(out, backend)
    assert src.error is None
    st = src.stats()
    assert st["events"] == CAPTURES[a]["events"] + CAPTURES[b]["events"]
    assert st["sections"] == 2
    ca, _ = read_all(capture_path(a), backend)
    cb, _ = read_all(capture_path(b), backend)
    assert len(cols["num"]) == len(ca["num"]) + len(cb["num"])
    assert cols["num"][len(ca["num"])] == cb["num"][0] + CAPTURES[a]["events"]
    tids = {t["tid"] for t in src.snapshot["threads"]}
    assert {t["tid"] for t in read_all(capture_path(b))[1].snapshot["threads"]} <= tids


def test_plain_and_gzip_give_the_same_rows(tmp_path, backend):
    name = "libs/curl_google.scap"
    plain = tmp_path / "plain.scap"
    plain.write_bytes(_raw(name))
    s1, s2 = new_strings(), new_strings()
    c1, _ = read_all(capture_path(name), backend, strings=s1)
    c2, _ = read_all(plain, backend, strings=s2)
    for k in c1:
        assert np.array_equal(c1[k], c2[k]), k


def test_small_batches_equal_one_batch(backend):
    name = "falco-psp/run_as_user_0_container.scap"
    s1, s2 = new_strings(), new_strings()
    big, _ = read_all(capture_path(name), backend, 65536, s1)
    small, _ = read_all(capture_path(name), backend, 5, s2)
    for k in big:
        assert np.array_equal(big[k], small[k]), k


def test_replay_cli_reads_scap(tmp_path, capsys):
    from collector.cli import main
    plain = tmp_path / "copy.scap"
    shutil.copy(capture_path("libs/sample.scap"), plain)
    rc = main(["replay", "--events", str(plain)])
    assert rc == 0
    assert capsys.readouterr().out.strip()


def test_memory_module_constants():
    assert scap_mod.MAX_EVENT_BLOCK >= 1 << 20
    assert scap_mod.MAX_THREADS >= 1 << 16
