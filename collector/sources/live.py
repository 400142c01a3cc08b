"""The live source: records straight from the kernel module through /dev/falconet.

With the C extension, the rings are read by ext/ring.c + ext/ring_read.c (batches() decodes
records where they lie in the rings; raw_batches() copies them out for captures).  Below is
the pure-Python twin (numpy + mmap + fcntl), used without it.  What it does, in order
(kmod/include/falconet_abi.h, section 2, is the contract):

    open()         open the device, check ABI version and layout hash (ABIMismatch names both
                   sides), set the snaplen and the interest set, map each CPU's producer page
                   (read-only), consumer page (read-write) and data (read-only, mapped twice
                   by the kernel so a record never wraps), set the wakeup watermark, START.
    raw_batches()  wait with poll() (the kernel wakes us when a ring crosses the watermark,
                   or when data is older than FNET_POLL_FLUSH_NS), copy each CPU's committed
                   bytes [consumer_pos, producer_pos) out, release them by storing the new
                   consumer_pos, merge the CPUs by timestamp and yield the records as bytes.
    stop()         ask raw_batches() to finish (safe from a signal handler or another thread);
                   the records still in the rings are drained and yielded first.
    close()        STOP, unmap, close; stats() keeps the per-CPU counters of the module.

Memory ordering: Python reads producer_pos as one aligned 8-byte load and writes
consumer_pos as one aligned 8-byte store, with the copy of the data in between.  On x86-64
(TSO) plain loads are acquires and plain stores are releases, which is what the kernel's
smp_store_release/smp_load_acquire pair with.  On weakly ordered CPUs the C reader is
required (it uses __atomic_load_n/__atomic_store_n); this reader refuses to run there.

String table: strings are interned into a table that never evicts, so past a cap
(``strings_max_ids`` ids or ``strings_max_bytes`` bytes; settings pipeline.string_table_max_*)
the decoder starts a fresh table before the next batch (collector.decode_py.Rollover),
``self.strings`` follows it and ``stats()["string_rollovers"]`` counts the switches; the state
engine re-homes when it meets the first batch of the new table.

Ordering across CPUs: a record's ts is taken before it is committed, so a record with an
older ts can still appear on another CPU shortly after a newer one was read.  Records newer
than (now - holdback_ns) are therefore held back one round; everything yielded is in ts order.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import platform
import select
import struct
import time
from collections.abc import Iterator

import numpy as np

from .. import abi
from ..batch import DEFAULT_STRINGS_MAX_BYTES, DEFAULT_STRINGS_MAX_IDS
from ..errors import ABIMismatch, DriverError
from . import Source

# ioctl numbers: computed by collector.abi from the header's _IO/_IOR/_IOW definitions.
IOC_GET_INFO = abi.IOCTL["GET_INFO"]
IOC_START = abi.IOCTL["START"]
IOC_STOP = abi.IOCTL["STOP"]
IOC_SET_INTEREST = abi.IOCTL["SET_INTEREST"]
IOC_SET_SNAPLEN = abi.IOCTL["SET_SNAPLEN"]
IOC_GET_STATS = abi.IOCTL["GET_STATS"]

CPU_SHIFT = abi.CONST["FNET_MMAP_CPU_SHIFT"]
REGION = {"producer": abi.CONST["FNET_MMAP_PRODUCER"], "consumer": abi.CONST["FNET_MMAP_CONSUMER"],
          "data": abi.CONST["FNET_MMAP_DATA"]}
PAGE = mmap.PAGESIZE


def _field_off(struct_name: str, field: str) -> int:
    return next(f[3] for f in abi.STRUCTS[struct_name] if f[0] == field)


_PROD_POS = _field_off("fnet_ring_producer", "producer_pos")
_CONS_POS = _field_off("fnet_ring_consumer", "consumer_pos")
_CONS_WM = _field_off("fnet_ring_consumer", "watermark")
_U64 = struct.Struct("<Q")
_HDR_TS = _field_off("fnet_event_hdr", "ts")
_HDR_LEN = struct.Struct("<H")
STAT_KEYS = ("events", "drops_full", "drops_fault", "drops_toolong", "drops_compat", "bytes")


def _pack(name: str, **values) -> bytearray:
    """A zeroed struct of the ABI with `size` and the given fields set."""
    buf = bytearray(abi.SIZEOF[name])
    for fname, ctype, count, off, size in abi.STRUCTS[name]:
        v = values.get(fname, abi.SIZEOF[name] if fname == "size" else None)
        if v is None:
            continue
        if count > 1:
            for i, x in enumerate(v):
                struct.pack_into("<Q" if size // count == 8 else "<I", buf, off + i * (size // count), x)
        else:
            struct.pack_into({1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size], buf, off, v)
    return buf


def _unpack(name: str, buf: bytes) -> dict:
    rec = np.frombuffer(buf, abi.DTYPES[name], count=1)[0]
    return {fname: rec[fname].tolist() for fname, *_ in abi.STRUCTS[name]}


def interest_bits(interest: set[int] | None) -> list[int]:
    """Two u64 words with bit n set for each event type n (None = every type)."""
    if interest is None:
        return [(1 << 64) - 1, (1 << 64) - 1]
    bits = [0, 0]
    for t in interest:
        t = int(t)
        if not 0 < t < abi.NUM_EVENT_TYPES:
            raise ValueError(f"event type {t} outside 1..{abi.NUM_EVENT_TYPES - 1}")
        bits[t // 64] |= 1 << (t % 64)
    return bits


def split_records(buf: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, lengths, timestamps) of the records in a buffer of whole records."""
    n = len(buf)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint64)
    b = np.frombuffer(buf, np.uint8)
    nslots = n // 8
    lens = b[: nslots * 8].view("<u2")[::4]
    step = np.where((lens >= abi.HDR_SIZE) & ((lens & 7) == 0), lens >> 3, 0).astype(np.uint32)
    st = memoryview(step)
    offs: list[int] = []
    app = offs.append
    p = 0
    while p < nslots:                   # the one per-record loop: chase the lengths
        s = st[p]
        if not s:
            break
        app(p)
        p += s
    if p * 8 != n:
        raise DriverError(f"corrupt record in the ring at byte {p * 8} of {n}; this is a bug in "
                          "falconet.ko or a second process releasing ring space (only one "
                          "reader may consume the rings)")
    o = np.asarray(offs, np.int64)
    ts = b[: nslots * 8].view("<u8")[o + _HDR_TS // 8]
    return o * 8, lens[o].astype(np.int64), ts


def merge_by_ts(chunks: list[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Concatenate per-CPU chunks (each already in ts order) into one ts-ordered buffer;
    returns (buffer, timestamps, record lengths)."""
    parts = [(c, *split_records(c)) for c in chunks if c]
    if not parts:
        return b"", np.zeros(0, np.uint64), np.zeros(0, np.int64)
    if len(parts) == 1:
        return parts[0][0], parts[0][3], parts[0][2]
    blob = b"".join(p[0] for p in parts)
    base = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
    offs = np.concatenate([p[1] + b for p, b in zip(parts, base)])
    lens = np.concatenate([p[2] for p in parts])
    ts = np.concatenate([p[3] for p in parts])
    order = np.argsort(ts, kind="stable")
    offs, lens, ts = offs[order], lens[order], ts[order]
    # Gather: byte index = record start + position inside the record.
    starts_out = np.cumsum(lens) - lens
    idx = np.repeat(offs - starts_out, lens) + np.arange(int(lens.sum()))
    return np.frombuffer(blob, np.uint8)[idx].tobytes(), ts, lens


class _Ring:
    """The three mappings of one CPU's ring."""

    def __init__(self, fd: int, cpu: int, data_size: int):
        self.cpu = cpu
        self.size = data_size
        base = cpu << CPU_SHIFT
        self.prod = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ,
                              offset=(base | REGION["producer"]) * PAGE)
        self.cons = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                              offset=(base | REGION["consumer"]) * PAGE)
        self.data = mmap.mmap(fd, 2 * data_size, mmap.MAP_SHARED, mmap.PROT_READ,
                              offset=(base | REGION["data"]) * PAGE)
        self.view = memoryview(self.data)

    def producer_pos(self) -> int:
        return _U64.unpack_from(self.prod, _PROD_POS)[0]

    def consumer_pos(self) -> int:
        return _U64.unpack_from(self.cons, _CONS_POS)[0]

    def release(self, pos: int) -> None:
        _U64.pack_into(self.cons, _CONS_POS, pos)

    def set_watermark(self, wm: int) -> None:
        _U64.pack_into(self.cons, _CONS_WM, wm)

    def take(self) -> bytes:
        """Copy the committed bytes out and release them."""
        cons = self.consumer_pos()
        prod = self.producer_pos()
        n = prod - cons
        if n <= 0:
            return b""
        if n > self.size:
            raise DriverError(f"CPU {self.cpu}: ring positions inconsistent (producer {prod}, "
                              f"consumer {cons}); is another reader attached?")
        start = cons & (self.size - 1)
        out = bytes(self.view[start:start + n])
        self.release(prod)
        return out

    def close(self) -> None:
        self.view.release()
        for m in (self.prod, self.cons, self.data):
            m.close()


class LiveSource(Source):
    """Events from falconet.ko.  ``raw_batches()`` yields ABI records; ``batches()`` decodes
    them into EventBatch with collector.native's decoder."""

    name = "live"
    drains_after_stop = True    # after stop(): STOP, then what is in the rings is still yielded
    batches_owned = True    # yields native.Decoder's batches as they are: they own their columns

    def __init__(self, device: str = "/dev/falconet", interest: set[int] | None = None,
                 snaplen: int = abi.DEFAULT_SNAPLEN, watermark: int = 256 << 10,
                 poll_ms: int = 100, holdback_ns: int = 20_000_000,
                 strings_max_ids: int = DEFAULT_STRINGS_MAX_IDS,
                 strings_max_bytes: int = DEFAULT_STRINGS_MAX_BYTES) -> None:
        super().__init__()
        if strings_max_ids < 0 or strings_max_bytes < 0:
            raise DriverError("string table caps must be >= 0 (0 = no cap)")
        # The string table never evicts; past either cap the decoder rolls over to a fresh
        # one between batches (collector.decode_py.Rollover) and the state engine follows.
        self.strings_max_ids = strings_max_ids
        self.strings_max_bytes = strings_max_bytes
        self._decoder = None
        if not 1 <= snaplen <= abi.CONST["FNET_MAX_SNAPLEN"]:
            raise DriverError(f"snaplen {snaplen} must be between 1 and "
                              f"{abi.CONST['FNET_MAX_SNAPLEN']}")
        self.device = device
        self.interest = interest
        self.snaplen = snaplen
        self.watermark = watermark
        self.poll_ms = poll_ms
        self.holdback_ns = holdback_ns
        self.info: dict = {}
        self.boot_ns = 0
        self.fd = -1
        self.rings: list[_Ring] = []
        self.records = 0
        self.bytes = 0
        self._final: dict | None = None
        self._pending = b""
        self._pending_ts = np.zeros(0, np.uint64)

    # -- opening --------------------------------------------------------------------------
    def _open(self) -> None:
        if platform.machine() not in ("x86_64", "AMD64", "i686", "i386"):
            raise DriverError(f"the Python ring reader relies on x86 memory ordering; on "
                              f"{platform.machine()} use the C reader (collector._native)")
        try:
            self.fd = os.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DriverError(f"{self.device} does not exist: falconet.ko is not loaded; run "
                              "`falconet driver load` (as root)") from None
        except PermissionError:
            raise DriverError(f"{self.device}: permission denied; live capture needs root "
                              "(run with sudo)") from None
        except OSError as e:
            raise DriverError(f"cannot open {self.device}: {e.strerror}") from None
        try:
            self._attach()
        except BaseException:
            self._close()
            raise

    def _ioctl(self, req: int, buf: bytearray | None = None, what: str = "") -> None:
        try:
            fcntl.ioctl(self.fd, req, buf if buf is not None else 0)
        except OSError as e:
            if e.errno == errno.EBUSY:
                raise DriverError(f"{self.device}: another reader is already capturing "
                                  "(one reader at a time); stop it first") from None
            raise DriverError(f"{self.device}: {what} failed: {e.strerror}") from None

    def set_interest(self, interest: set[int] | None) -> None:
        """Change the event types captured while running (None = every type): the module
        takes the new set at once (e.g. when `falconet run` reloads its rules)."""
        self.interest = interest
        if self.fd >= 0:
            self._ioctl(IOC_SET_INTEREST, _pack("fnet_interest", bits=interest_bits(interest)),
                        "set interest")

    def _attach(self) -> None:
        from .. import native
        from ..capture import boot_epoch_ns
        self.boot_ns = boot_epoch_ns()      # record ts are ns since boot: evt.time adds this
        if self.strings is None:            # the state engine interns into it from the start
            self.strings = native.StringTable()
        self.info = read_info(self.fd, self.device)
        check_abi(self.info)
        self._ioctl(IOC_SET_SNAPLEN, _pack("fnet_snaplen", snaplen=self.snaplen), "set snaplen")
        self._ioctl(IOC_SET_INTEREST, _pack("fnet_interest", bits=interest_bits(self.interest)),
                    "set interest")
        size = self.info["data_size"]
        wm = max(abi.HDR_SIZE, min(self.watermark, size // 2))
        for cpu in range(self.info["nr_cpus"]):
            try:
                ring = _Ring(self.fd, cpu, size)
            except OSError as e:
                if e.errno == errno.ENXIO:   # not a possible CPU
                    continue
                raise DriverError(f"{self.device}: cannot map the ring of CPU {cpu}: "
                                  f"{e.strerror}") from None
            ring.set_watermark(wm)
            self.rings.append(ring)
        self._ioctl(IOC_START, None, "start capture")

    # -- reading --------------------------------------------------------------------------
    def raw_batches(self) -> Iterator[bytes]:
        """Yield buffers of whole ABI records in timestamp order until stop().

        With the C extension, the rings are read by ext/ring.c (per-CPU batches released
        once per call, merged by timestamp in C); the Python reader below is the pure twin.
        """
        self.open()
        reader = self._c_reader()
        if reader is not None:
            yield from self._c_batches(reader)
            return
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        while not self._stop.is_set():
            try:
                p.poll(self.poll_ms)
            except InterruptedError:  # pragma: no cover - PEP 475 retries; signals set _stop
                pass
            out = self._round(final=False)
            if out:
                yield out
        # STOP first, then drain: everything the module counted is then delivered.
        self._ioctl(IOC_STOP, None, "stop capture")
        out = self._round(final=True)
        if out:
            yield out

    def _c_reader(self):
        from .. import native
        if native.BACKEND != "c":
            return None
        from ..state.ring import RingReader
        size = self.info["data_size"]
        wm = max(abi.HDR_SIZE, min(self.watermark, size // 2))
        try:
            reader = RingReader.from_device_fd(self.fd, watermark=wm)
        except OSError as e:
            raise DriverError(f"{self.device}: the C ring reader cannot attach: {e}") from None
        reader.set_holdback(self.holdback_ns)
        return reader

    def _c_drain(self, reader, take) -> Iterator:
        """Run ``take()`` -> (payload or None when gone, info) until stop(), then STOP and
        drain; yields the payloads of the calls that moved records."""
        from ..state.ring import GONE
        gone = DriverError(f"{self.device} went away while capturing (module unloaded?)")
        try:
            while not self._stop.is_set():
                if reader.wait(self.poll_ms) == GONE:
                    raise gone
                payload, info = take()
                if payload is None:
                    raise gone
                if info["records"]:
                    self.records += info["records"]
                    self.bytes += info["bytes"]
                    yield payload
            # STOP first (nothing is in flight after it: no holdback), then drain until
            # nothing is left or held back (bounded: a read that moves nothing three times
            # in a row means there is nothing more to move).
            self._ioctl(IOC_STOP, None, "stop capture")
            reader.set_holdback(0)
            idle = 0
            while idle < 3:
                payload, info = take()
                if payload is None or not (info["records"] or info["held_back"]):
                    break
                idle = 0 if info["records"] else idle + 1
                if info["records"]:
                    self.records += info["records"]
                    self.bytes += info["bytes"]
                    yield payload
        finally:
            reader.close()

    def _c_batches(self, reader) -> Iterator[bytes]:
        def take():
            buf, info = reader.read()
            return (None if buf is None else bytes(buf)), info
        return self._c_drain(reader, take)

    def raw_chunks(self) -> Iterator[tuple[int, bytes]]:
        """Yield (cpu, records) per CPU as copied out, without merging CPUs (each chunk is in
        ts order on its own).  The cheapest way to drain the rings: for benchmarks and for
        writers that sort later."""
        self.open()
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        final = False
        while True:
            final = self._stop.is_set()
            if not final:
                p.poll(self.poll_ms)
            if final:
                self._ioctl(IOC_STOP, None, "stop capture")
            for r in self.rings:
                chunk = r.take()
                if chunk:
                    self.bytes += len(chunk)
                    yield r.cpu, chunk
            if final:
                return

    def _round(self, final: bool) -> bytes:
        cut = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - self.holdback_ns
        chunks = [r.take() for r in self.rings]
        if self._pending:
            chunks.insert(0, self._pending)
        buf, ts, lens = merge_by_ts(chunks)
        if not final and len(ts) and ts[-1] > cut:
            # Hold back the records too recent to be sure no other CPU has an older one.
            keep = int(np.searchsorted(ts, cut, side="right"))
            split = int(lens[:keep].sum())
            self._pending, self._pending_ts = buf[split:], ts[keep:]
            buf = buf[:split]
            ts = ts[:keep]
        else:
            self._pending, self._pending_ts = b"", np.zeros(0, np.uint64)
        self.records += len(ts)
        self.bytes += len(buf)
        return buf

    def _batches(self):
        from .. import native
        dec = native.Decoder(self.strings if self.strings is not None else None,
                             max_ids=self.strings_max_ids, max_bytes=self.strings_max_bytes)
        self._decoder = dec
        self.strings = dec.strings
        num = 1
        self.open()
        reader = self._c_reader()
        if reader is not None:
            # merged and decoded in one pass where the records lie (ext/ring_read.c)
            def take():
                batch, st, info = dec.decode_ring(reader, num)
                self.strings = dec.strings          # a new table after a rollover
                for cause, n in st.skipped.items():
                    self.skip(cause, n)
                return batch, info
            for batch in self._c_drain(reader, take):
                num += batch.n
                if batch.n:
                    batch.boot_ns = self.boot_ns
                    yield batch
            return
        for raw in self.raw_batches():
            batch, st = dec.decode(raw, first_num=num)
            self.strings = dec.strings
            batch.boot_ns = self.boot_ns
            num += batch.n
            for cause, n in st.skipped.items():
                self.skip(cause, n)
            yield batch

    # -- counters and closing -------------------------------------------------------------
    def cpu_stats(self) -> list[dict]:
        """The module's counters for each CPU (events, drops by cause, bytes)."""
        out = []
        for r in self.rings:
            buf = _pack("fnet_cpu_stats", cpu=r.cpu)
            self._ioctl(IOC_GET_STATS, buf, "read counters")
            d = _unpack("fnet_cpu_stats", bytes(buf))
            out.append({"cpu": r.cpu, **{k: d[k] for k in STAT_KEYS}})
        return out

    def stats(self) -> dict:
        s = super().stats()
        per_cpu = self._final["per_cpu"] if self._final else (self.cpu_stats() if self.fd >= 0 else [])
        s.update({"records": self.records, "bytes_read": self.bytes, "per_cpu": per_cpu,
                  "string_rollovers": self._decoder.rollovers if self._decoder else 0})
        for k in STAT_KEYS:
            s["kernel_" + k] = sum(c[k] for c in per_cpu)
        s["drops"] = s.get("kernel_drops_full", 0)
        return s

    def _close(self) -> None:
        if self.fd >= 0:
            try:
                fcntl.ioctl(self.fd, IOC_STOP, 0)
            except OSError:
                pass
            try:
                self._final = {"per_cpu": self.cpu_stats()}
            except DriverError:
                pass
        for r in self.rings:
            r.close()
        self.rings = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read_info(fd: int, device: str = "/dev/falconet") -> dict:
    buf = _pack("fnet_info")
    try:
        fcntl.ioctl(fd, IOC_GET_INFO, buf)
    except OSError as e:
        if e.errno in (errno.ENOTTY, errno.EINVAL):
            raise ABIMismatch(f"{device} does not answer Falconet's GET_INFO ioctl "
                              f"({e.strerror}): the loaded module is not a falconet.ko this "
                              f"userspace understands (userspace ABI {abi.ABI_VERSION}); "
                              "rebuild and reload it: `falconet driver build && falconet driver "
                              "unload && falconet driver load`") from None
        raise DriverError(f"{device}: GET_INFO failed: {e.strerror}") from None
    return _unpack("fnet_info", bytes(buf))


def check_abi(info: dict) -> None:
    kv, kh = info["abi_version"], info["layout_hash"]
    if kv != abi.ABI_VERSION or kh != abi.LAYOUT_HASH:
        raise ABIMismatch(
            f"kernel module ABI {kv} (layout {kh:#018x}) differs from this Falconet's ABI "
            f"{abi.ABI_VERSION} (layout {abi.LAYOUT_HASH:#018x}); rebuild and reload the "
            "module from this version: `falconet driver build && falconet driver unload && "
            "falconet driver load`")
