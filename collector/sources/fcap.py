"""Replay a Falconet capture (.fcap) through the same decoder as the live path."""

from __future__ import annotations

from typing import Iterator

from .. import native
from ..batch import EventBatch
from ..capture import FcapReader
from . import Source


class FcapSource(Source):
    """Batches from a .fcap file.  ``boot_ns`` of the batches comes from the capture's meta,
    so event times are the capture host's wall-clock times."""

    name = "fcap"
    batches_owned = True    # yields native.Decoder's batches as they are: they own their columns

    def __init__(self, path: str, batch_events: int = 65536, strings=None):
        super().__init__()
        self.path = path
        self.batch_events = batch_events
        self.strings = strings
        self.reader: FcapReader | None = None
        self.bytes = 0

    def _open(self) -> None:
        self.reader = FcapReader(self.path)
        self.snapshot = self.reader.snapshot
        self.meta = self.reader.meta
        if self.strings is None:
            self.strings = native.StringTable()
        self._decoder = native.Decoder(self.strings)

    def _decode(self, chunks: list[bytes], first: int) -> EventBatch:
        batch, st = self._decoder.decode(b"".join(chunks) if len(chunks) > 1 else chunks[0], first)
        for cause, n in getattr(st, "skipped", {}).items():
            self.skip(cause, n)
        batch.boot_ns = int(self.meta.get("boot_ns", 0))
        return batch

    def _batches(self) -> Iterator[EventBatch]:
        assert self.reader is not None
        pending: list[bytes] = []
        pending_bytes = 0
        # A records block of ~1 MiB holds ~8k records; group blocks up to batch_events.
        target = self.batch_events * 128
        num = 1
        for raw in self.reader.raw_blocks():
            self.bytes += len(raw)
            pending.append(raw)
            pending_bytes += len(raw)
            if pending_bytes >= target:
                batch = self._decode(pending, num)
                num += batch.n
                pending, pending_bytes = [], 0
                yield batch
                if self._stop.is_set():
                    return
        if pending:
            yield self._decode(pending, num)
        self.error = self.reader.error

    def _close(self) -> None:
        if self.reader is not None:
            self.reader.close()

    def stats(self) -> dict:
        s = super().stats()
        s["bytes"] = self.bytes
        if self.reader is not None and self.reader.end is not None:
            s["capture_end"] = self.reader.end
        return s
