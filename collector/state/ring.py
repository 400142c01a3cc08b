"""Python face of ext/ring.c: the fast per-CPU ring reader and the memfd producer.

(Lives here with the rest of the C core glue; the live source wraps it.)

    r = RingReader.open_device("/dev/falconet")          # or RingReader.open_memfd(prod)
    while True:
        st = r.wait(timeout_ms=100)                      # 1 ready, 0 timeout, GONE
        if st == GONE: break
        buf, info = r.read()                             # merged, timestamp-ordered records
        batch, _ = decoder.decode(buf)                   # collector.native.Decoder
    # or, without the copy (the live collector): merged and decoded in one pass
        batch, stats, info = decoder.decode_ring(r, first_num)

``read()`` returns a memoryview of the reader's own buffer (valid until the next read) and a
dict with records, bytes, held_back, new_drops, cutoff_ts, cpus_with_data, corrupt.
Errors: OSError with the errno (ENOENT no device, EPROTO ABI mismatch, ENODEV gone).

MemRingProducer(nr_cpus, data_size) writes the exact ring layout into a memfd: tests and
benchmarks run the reader with it on any machine (threads or a forked child as producer).
"""

from __future__ import annotations

import errno
import os

import numpy as np

from .. import native as _nat

GONE = -19


def _lib():
    _nat.require_c()
    return _nat._native.ffi, _nat._native.lib


class MemRingProducer:
    def __init__(self, nr_cpus: int, data_size: int) -> None:
        ffi, lib = _lib()
        self.ffi, self.lib = ffi, lib
        err = ffi.new("int *")
        p = lib.fnet_uprod_new(nr_cpus, data_size, err)
        if p == ffi.NULL:
            raise OSError(-err[0], f"memfd rings: {os.strerror(-err[0])}")
        self._p = p
        self.nr_cpus, self.data_size = nr_cpus, data_size

    @property
    def memfd(self) -> int:
        return self.lib.fnet_uprod_memfd(self._p)

    @property
    def wake_fd(self) -> int:
        return self.lib.fnet_uprod_wake_fd(self._p)

    def write(self, cpu: int, rec: bytes) -> bool:
        return self.lib.fnet_uprod_write(self._p, cpu, rec, len(rec)) == 0

    def write_buf(self, cpu: int, buf, block: bool = False) -> int:
        mv = memoryview(buf).cast("B")
        src = self.ffi.from_buffer("uint8_t[]", mv)
        return self.lib.fnet_uprod_write_buf(self._p, cpu, src, mv.nbytes, int(block))

    def wake(self) -> None:
        self.lib.fnet_uprod_wake(self._p)

    def hangup(self) -> None:
        self.lib.fnet_uprod_hangup(self._p)

    def close(self) -> None:
        if self._p is not None:
            self.lib.fnet_uprod_free(self._p)
            self._p = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class RingReader:
    def __init__(self, ptr, buf_bytes: int) -> None:
        ffi, lib = _lib()
        if buf_bytes < 65536:
            lib.fnet_reader_close(ptr)
            raise ValueError("the read buffer must hold the largest record (64 KiB)")
        self.ffi, self.lib = ffi, lib
        self._r = ptr
        self._buf = np.empty(buf_bytes, np.uint8)
        self._cbuf = ffi.cast("uint8_t *", self._buf.ctypes.data)
        self._info = ffi.new("struct fnet_read_info *")
        self._info_keys = [k for k, _ in ffi.typeof("struct fnet_read_info").fields]

    @classmethod
    def open_device(cls, path: str = "/dev/falconet", buf_bytes: int = 8 << 20,
                    watermark: int = 1 << 20) -> "RingReader":
        ffi, lib = _lib()
        err = ffi.new("int *")
        return cls._device(lib.fnet_reader_open_dev(path.encode(), err), err, path, buf_bytes,
                           watermark)

    @classmethod
    def from_device_fd(cls, fd: int, buf_bytes: int = 8 << 20,
                       watermark: int = 1 << 20) -> "RingReader":
        """Map the rings of a /dev/falconet fd the caller opened and configured (the live
        source keeps doing snaplen/interest/START on its fd; the reader dups it)."""
        ffi, lib = _lib()
        err = ffi.new("int *")
        return cls._device(lib.fnet_reader_open_fd(fd, err), err, f"fd {fd}", buf_bytes,
                           watermark)

    @classmethod
    def _device(cls, r, err, what: str, buf_bytes: int, watermark: int) -> "RingReader":
        """The reader over a device the C side just attached, or its errno as OSError."""
        ffi, lib = _lib()
        if r == ffi.NULL:
            e = -err[0]
            why = ("ABI version or layout differs from this build" if e == errno.EPROTO
                   else os.strerror(e))
            raise OSError(e, f"{what}: {why}")
        self = cls(r, buf_bytes)
        lib.fnet_reader_set_watermark(r, watermark)
        return self

    @classmethod
    def open_memfd(cls, prod: MemRingProducer, buf_bytes: int = 8 << 20,
                   watermark: int = 1) -> "RingReader":
        return cls.attach_memfd(prod.memfd, prod.wake_fd, prod.nr_cpus, prod.data_size,
                                buf_bytes, watermark)

    @classmethod
    def attach_memfd(cls, memfd: int, wake_fd: int, nr_cpus: int, data_size: int,
                     buf_bytes: int = 8 << 20, watermark: int = 1) -> "RingReader":
        ffi, lib = _lib()
        err = ffi.new("int *")
        r = lib.fnet_reader_open_memfd(memfd, wake_fd, nr_cpus, data_size, err)
        if r == ffi.NULL:
            raise OSError(-err[0], f"memfd rings: {os.strerror(-err[0])}")
        self = cls(r, buf_bytes)
        lib.fnet_reader_set_watermark(r, watermark)
        return self

    def wait(self, timeout_ms: int = -1) -> int:
        n = self.lib.fnet_reader_wait(self._r, timeout_ms)
        if n < 0 and n != GONE:
            raise OSError(-n, os.strerror(-n))
        return n

    def info_dict(self) -> dict:
        """The last read's struct fnet_read_info as a dict."""
        i = self._info
        return {k: getattr(i, k) for k in self._info_keys}

    def set_holdback(self, ns: int) -> None:
        """Idle-CPU holdback (ext/ring.h): device readers default to 20 ms, memfd to 0.
        Set 0 once capture has stopped, to drain everything."""
        self.lib.fnet_reader_set_holdback(self._r, int(ns))

    def read_into(self, out: np.ndarray) -> tuple[int, dict]:
        n = self.lib.fnet_reader_read(self._r, self.ffi.cast("uint8_t *", out.ctypes.data),
                                      len(out), self._info)
        return int(n), self.info_dict()

    def read(self) -> tuple[memoryview | None, dict]:
        """(records, info); records is None once the source is gone and drained."""
        n, info = self.read_into(self._buf)
        if n == GONE:
            return None, info
        return memoryview(self._buf)[:n], info

    def stats(self) -> dict:
        s = self.ffi.new("struct fnet_reader_stats *")
        self.lib.fnet_reader_get_stats(self._r, s)
        return {k: getattr(s, k) for k, _ in self.ffi.typeof("struct fnet_reader_stats").fields}

    def fileno(self) -> int:
        return self.lib.fnet_reader_fd(self._r)

    def close(self) -> None:
        if self._r is not None:
            self.lib.fnet_reader_close(self._r)
            self._r = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
