"""Bytes of a .scap file, plain or gzip-compressed, read in bounded pieces.

:class:`ByteStream` decompresses with zlib in steps of at most ``chunk`` output bytes, so a
gzip bomb costs time, never memory; concatenated gzip members are read as one stream (as
zlib's gzread does).  Damage in the compressed data is reported only after every byte before
it was handed out.

:class:`Window` keeps the not-yet-consumed bytes of the stream in one ``bytearray`` with their
stream offset, so block parsers always see a block whole, and offsets in error messages are
offsets in the (uncompressed) stream.
"""

from __future__ import annotations

import zlib

GZIP_MAGIC = b"\x1f\x8b"


class StreamError(Exception):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


class ByteStream:
    """``read(n)`` returns up to n bytes, ``b""`` at the end; raises StreamError on damage."""

    def __init__(self, f, chunk: int = 1 << 20):
        self.f = f
        self.chunk = chunk
        head = f.read(2)
        self.gzip = head == GZIP_MAGIC
        self._pending = head          # compressed (or plain) bytes not yet used
        self._d = zlib.decompressobj(31) if self.gzip else None
        self._members = 1
        self.produced = 0             # uncompressed bytes handed out
        self._eof = False
        self._error: StreamError | None = None

    def _fill_input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self.f.read(self.chunk)

    def read(self, n: int) -> bytes:
        if self._error is not None:
            raise self._error
        if self._eof:
            return b""
        if not self.gzip:
            data = self._pending[:n]
            self._pending = self._pending[len(data):]
            if len(data) < n:
                data += self.f.read(n - len(data))
            if not data:
                self._eof = True
            self.produced += len(data)
            return data
        out: list[bytes] = []
        try:
            self._inflate(n, out)
        except StreamError as e:
            if not out:
                raise
            self._error = e         # hand out the good bytes first, fail on the next call
        data = b"".join(out)
        self.produced += len(data)
        return data

    def readinto(self, mv: memoryview) -> int:
        """Fill ``mv`` as far as the stream allows; 0 only at the end."""
        if not self.gzip and not self._pending and self._error is None:
            if self._eof:
                return 0
            got = self.f.readinto(mv) or 0
            if got == 0:
                self._eof = True
            self.produced += got
            return got
        data = self.read(len(mv))
        mv[:len(data)] = data
        return len(data)

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
                                  self.produced)
            try:
                piece = d.decompress(src, n - got)
            except zlib.error as e:
                raise StreamError(f"the gzip data is corrupted ({e})",
                                  self.produced + got) from None
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
                    self._eof = True        # end of the last member (zero padding allowed)
                    return got
                if rest[:2] != GZIP_MAGIC:
                    raise StreamError("bytes after the end of the gzip stream are not gzip",
                                      self.produced + got)
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
