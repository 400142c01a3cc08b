"""The live source's pure parts, testable without the module: record framing, merging CPUs
by timestamp, interest bits, ioctl numbers and struct packing against the ABI header."""
import pytest

from collector import abi, native
from collector import records as R
from collector.errors import DriverError
from collector.sources import live


def test_ioctl_numbers_follow_the_header():
    # _IOR('f', 1, struct fnet_info): dir=2, size=40, type='f', nr=1
    assert live.IOC_GET_INFO == (2 << 30) | (abi.SIZEOF["fnet_info"] << 16) | (0x66 << 8) | 1
    assert live.IOC_START == (0x66 << 8) | 2 and live.IOC_STOP == (0x66 << 8) | 3
    assert live.IOC_GET_STATS >> 30 == 3


def test_pack_and_unpack_roundtrip():
    b = live._pack("fnet_cpu_stats", cpu=3)
    d = live._unpack("fnet_cpu_stats", bytes(b))
    assert d["size"] == abi.SIZEOF["fnet_cpu_stats"] and d["cpu"] == 3 and d["events"] == 0
    b = live._pack("fnet_interest", bits=live.interest_bits({1, 100}))
    d = live._unpack("fnet_interest", bytes(b))
    assert d["bits"] == [1 << 1, 1 << (100 - 64)]


def test_interest_bits():
    assert live.interest_bits(None) == [2**64 - 1] * 2
    assert live.interest_bits({abi.EV["GETPID"]}) == [0, 1 << (100 - 64)]
    with pytest.raises(ValueError):
        live.interest_bits({200})


def test_merge_by_ts_orders_cpus_and_keeps_records_whole():
    cpu0 = R.encode("getpid", tid=1, pid=1, ts=10) + R.encode(
        "openat", tid=1, pid=1, ts=30, vars={"name": "/etc/shadow", "fullpath": "/etc/shadow"})
    cpu1 = R.encode("close", tid=2, pid=2, ts=20, args=(5,)) + R.encode("getpid", tid=2, pid=2, ts=40)
    buf, ts, lens = live.merge_by_ts([cpu0, cpu1, b""])
    assert list(ts) == [10, 20, 30, 40] and len(buf) == len(cpu0) + len(cpu1)
    b, st = native.decode(buf, native.StringTable())
    assert list(b["type"]) == [abi.EV["GETPID"], abi.EV["CLOSE"], abi.EV["OPENAT"], abi.EV["GETPID"]]
    assert st.bad_length == 0
    assert b.strings.get(int(b["v0"][2])) == b"/etc/shadow"


def test_split_records_rejects_a_torn_buffer():
    rec = R.encode("getpid", tid=1, pid=1, ts=1)
    with pytest.raises(DriverError, match="corrupt record"):
        live.split_records(rec + rec[:50])


def test_empty():
    buf, ts, lens = live.merge_by_ts([b"", b""])
    assert buf == b"" and len(ts) == 0


def test_snaplen_validated():
    with pytest.raises(DriverError, match="snaplen"):
        live.LiveSource(snaplen=0)
