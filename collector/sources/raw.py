"""Adapt a producer of raw ABI record buffers (live kernel rings, the synthetic generator)
to the Source interface, decoding with the shared decoder."""

from __future__ import annotations

from typing import Any, Iterator

from .. import native
from ..batch import EventBatch
from . import Source


class DecodingSource(Source):
    """``raw`` has ``open()``, ``raw_batches()`` (iterator of bytes of whole records),
    ``stop()``, ``close()``, ``stats()`` and optionally ``snapshot`` and ``boot_ns``."""

    batches_owned = True    # yields native.Decoder's batches as they are: they own their columns

    def __init__(self, raw: Any, name: str = "raw", strings=None):
        super().__init__()
        self.raw = raw
        self.name = name
        self.strings = strings

    def _open(self) -> None:
        if hasattr(self.raw, "open"):
            self.raw.open()
        if self.strings is None:
            self.strings = native.StringTable()
        self.snapshot = getattr(self.raw, "snapshot", None)
        self._decoder = native.Decoder(self.strings)
        self._num = 1

    def _batches(self) -> Iterator[EventBatch]:
        boot_ns = int(getattr(self.raw, "boot_ns", 0) or 0)
        for buf in self.raw.raw_batches():
            batch, st = self._decoder.decode(buf, self._num)
            for cause, n in getattr(st, "skipped", {}).items():
                self.skip(cause, n)
            self._num += batch.n
            batch.boot_ns = boot_ns
            yield batch
            if self._stop.is_set():
                break

    def stop(self) -> None:
        super().stop()
        if hasattr(self.raw, "stop"):
            self.raw.stop()

    def _close(self) -> None:
        if hasattr(self.raw, "close"):
            self.raw.close()

    def stats(self) -> dict:
        s = super().stats()
        if hasattr(self.raw, "stats"):
            s["producer"] = self.raw.stats()
        return s
