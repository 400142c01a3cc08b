"""Bytes of a .scap file, plain or gzip-compressed, read in bounded pieces.

:class:`ByteStream` decompresses with zlib in pieces of at most ``2 * chunk`` output bytes
(on a helper thread, at most two pieces ahead, for ScapSource), so a gzip bomb costs time,
never memory; concatenated gzip members are read as one stream (as zlib's gzread does).  Damage in the compressed data is reported only after every byte before
it was handed out.

:class:`Window` keeps the not-yet-consumed bytes of the stream in one ``bytearray`` with their
stream offset, so block parsers always see a block whole, and offsets in error messages are
offsets in the (uncompressed) stream.
"""

from __future__ import annotations

import collections
import queue
import threading
import zlib

GZIP_MAGIC = b"\x1f\x8b"


class StreamError(Exception):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


class ByteStream:
    """``read(n)`` / ``readinto(mv)`` hand out the file's (uncompressed) bytes in order, ``b""``
    / 0 at the end; damage raises StreamError after every byte before it was handed out.

    With ``prefetch`` a gzip stream is inflated by a helper thread, at most two pieces of
    ``2 * chunk`` bytes ahead (zlib releases the GIL, so inflating overlaps the reader's and
    the pipeline's work); ``close()`` stops it.
    """

    def __init__(self, f, chunk: int = 4 << 20, prefetch: bool = False):
        self.f = f
        self.chunk = chunk
        head = f.read(2)
        self.gzip = head == GZIP_MAGIC
        self._pending = head          # compressed (or plain) bytes not yet used
        self._d = zlib.decompressobj(31) if self.gzip else None
        self._members = 1
        self.produced = 0             # uncompressed bytes handed out
        self._inflated = 0            # uncompressed bytes inflated (>= produced)
        self._eof = False             # plain: end reached
        self._in_eof = False          # gzip: the inflater reached the end
        self._gz_done = False         # gzip: the consumer saw the end
        self._error: StreamError | None = None
        self._later: StreamError | None = None
        self._pieces: collections.deque[bytes] = collections.deque()
        self._off = 0
        self._prefetch = prefetch and self.gzip
        self._q: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _fill_input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self.f.read(self.chunk)

    # -- plain ----------------------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        if self.gzip:
            return self._gz(n, None)  # type: ignore[return-value]
        if self._eof:
            return b""
        data = self._pending[:n]
        self._pending = self._pending[len(data):]
        if len(data) < n:
            data += self.f.read(n - len(data))
        if not data:
            self._eof = True
        self.produced += len(data)
        return data

    def readinto(self, mv: memoryview) -> int:
        """Fill ``mv`` as far as the stream allows; 0 only at the end."""
        if self.gzip:
            return self._gz(len(mv), mv)  # type: ignore[return-value]
        if self._pending:
            data = self.read(len(mv))
            mv[:len(data)] = data
            return len(data)
        if self._eof:
            return 0
        got = self.f.readinto(mv) or 0
        if got == 0:
            self._eof = True
        self.produced += got
        return got

    # -- gzip -----------------------------------------------------------------------------------
    def _gz(self, n: int, mv: memoryview | None) -> bytes | int:
        if self._error is not None:
            raise self._error
        got = 0
        parts: list[bytes] = []
        while got < n:
            if not self._pieces:
                if self._gz_done:
                    break
                try:
                    nxt = self._next_pieces()
                except StreamError as e:
                    if got == 0:
                        raise
                    self._error = e     # hand out the good bytes first, fail on the next call
                    break
                if nxt is None:
                    self._gz_done = True
                    break
                self._pieces.extend(nxt)
                self._off = 0
                continue
            p = self._pieces[0]
            take = min(len(p) - self._off, n - got)
            if mv is not None:
                mv[got:got + take] = memoryview(p)[self._off:self._off + take]
            else:
                parts.append(p[self._off:self._off + take])
            got += take
            self._off += take
            if self._off == len(p):
                self._pieces.popleft()
                self._off = 0
        self.produced += got
        return got if mv is not None else b"".join(parts)

    def _next_pieces(self) -> list[bytes] | None:
        """The next inflated pieces, None at the end; raises StreamError on damage."""
        if self._prefetch:
            if self._thread is None:
                self._q = queue.Queue(maxsize=2)
                self._thread = threading.Thread(target=self._produce, name="falconet-gunzip",
                                                daemon=True)
                self._thread.start()
            assert self._q is not None
            item = self._q.get()
            if isinstance(item, StreamError):
                raise item
            return item
        return self._inflate_pieces()

    def _inflate_pieces(self) -> list[bytes] | None:
        if self._later is not None:
            e, self._later = self._later, None
            raise e
        if self._in_eof:
            return None
        out: list[bytes] = []
        try:
            self._inflate(2 * self.chunk, out)
        except StreamError as e:
            if not out:
                raise
            self._later = e
        if not out:
            return None
        self._inflated += sum(len(p) for p in out)
        return out

    def _produce(self) -> None:
        """Helper thread: inflate ahead into the bounded queue; the end is None."""
        def put(item) -> bool:
            while not self._stop.is_set():
                try:
                    self._q.put(item, timeout=0.2)  # type: ignore[union-attr]
                    return True
                except queue.Full:
                    continue
            return False
        try:
            while True:
                try:
                    item = self._inflate_pieces()
                except StreamError as e:
                    put(e)
                    return
                if not put(item) or item is None:
                    return
        except Exception as e:  # noqa: BLE001 - an I/O error: one StreamError, not a hang
            put(StreamError(f"reading the file failed ({e})", self._inflated))

    def _inflate(self, n: int, out: list[bytes]) -> int:
        got = 0
        d = self._d
        assert d is not None
        while got < n:
            src = d.unconsumed_tail or self._fill_input()
            if not src:
                if got:
                    return got
                raise StreamError("the gzip stream ends early: the file is truncated",
                                  self._inflated)
            try:
                piece = d.decompress(src, n - got)
            except zlib.error as e:
                raise StreamError(f"the gzip data is corrupted ({e})",
                                  self._inflated + got) from None
            if piece:
                out.append(piece)
                got += len(piece)
            if d.eof:
                rest = d.unused_data
                while len(rest) < 2:
                    more = self.f.read(self.chunk)
                    if not more:
                        break
                    rest += more
                if not rest or not rest.strip(b"\0"):
                    self._in_eof = True     # end of the last member (zero padding allowed)
                    return got
                if rest[:2] != GZIP_MAGIC:
                    raise StreamError("bytes after the end of the gzip stream are not gzip",
                                      self._inflated + got)
                self._members += 1
                self._pending = rest
                self._d = d = zlib.decompressobj(31)
        return got


class Window:
    """Unconsumed stream bytes: ``buf[pos:end]`` starts at stream offset ``base + pos``.

    ``buf`` is a fixed-capacity ``bytearray`` filled in place (``readinto`` for plain files,
    one copy of the inflated bytes for gzip); a refill moves only the unconsumed tail (less
    than one block) to the front.  It grows only for a block larger than the capacity.
    """

    def __init__(self, stream: ByteStream, capacity: int = 8 << 20):
        self.s = stream
        self.buf = bytearray(capacity)
        self.pos = 0
        self.end = 0
        self.base = 0
        self.eof = False

    @property
    def offset(self) -> int:
        """Stream offset of the next unconsumed byte."""
        return self.base + self.pos

    def avail(self) -> int:
        return self.end - self.pos

    def ensure(self, n: int) -> int:
        """Try to have n bytes available; returns how many are (less only at the end)."""
        while self.end - self.pos < n and not self.eof:
            rem = self.end - self.pos
            if self.pos:
                self.buf[:rem] = self.buf[self.pos:self.end]
                self.base += self.pos
                self.pos, self.end = 0, rem
            if n > len(self.buf):
                self.buf.extend(bytes(n - len(self.buf)))
            with memoryview(self.buf) as mv:
                got = self.s.readinto(mv[self.end:])
            if not got:
                self.eof = True
                break
            self.end += got
        return self.end - self.pos

    def skip(self, n: int) -> None:
        self.pos += n
