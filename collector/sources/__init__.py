"""Event sources: one small interface, several plugs.

Every source (synthetic generator, .fcap capture file, .scap capture, live kernel module)
implements :class:`Source`, so the pipeline, the tests and the benchmarks run the same way
over any of them.

    src.open()            acquire resources; after it, ``snapshot`` and ``strings`` are set
    src.batches()         iterator of EventBatch, in event order, until the source ends or
                          ``stop()`` is called; batches may reuse buffers -> copy to keep
    src.stop()            ask ``batches()`` to finish soon (thread-safe, signal-safe)
    src.close()           release resources (idempotent)
    src.stats()           dict of counters: at least ``events`` (read) and ``skipped``
                          (dict cause -> count); sources add their own
    src.error             a CaptureError that ended the source early (after every valid event
                          before the damage was delivered), else None

The state snapshot (``src.snapshot``, the same dict a .fcap stores and the state engine
seeds from; missing keys mean unknown):

    {"hostname": str, "kernel": str, "boot_ns": int (epoch ns of boot),
     "users": {uid(int): name}, "groups": {gid(int): name},
     "threads": [{"tid", "pid", "ppid", "comm", "exe", "exepath", "args": [str],
                  "cwd", "uid", "gid", "euid", "egid", "loginuid", "tty", "sid", "vpgid",
                  "start_ts", "cgroup", "cap_eff",
                  "fds": [{"fd": int, "type": "file|directory|ipv4|ipv6|unix|pipe|event|
                                           signalfd|eventpoll|inotify|timerfd|memfd|bpf|other",
                           "name": str, "flags": int,
                           "sip", "sport", "dip", "dport", "l4proto"}]}]}
"""

from __future__ import annotations

import threading
from typing import Iterator

from ..batch import EventBatch, StringTable
from ..errors import CaptureError


class Source:
    """Base class; subclasses implement ``_open``, ``_batches`` and optionally ``_close``."""

    name = "source"
    # True when _batches() itself ends after stop(), having yielded what it still held
    # (the live source drains the kernel's rings): batches() then does not cut it short.
    drains_after_stop = False
    # True when every batch owns its columns (no later batch overwrites them): the pipeline
    # then hands batches to the engine thread as they are instead of copying each one.
    batches_owned = False

    def __init__(self) -> None:
        self.strings: StringTable | None = None
        self.snapshot: dict | None = None
        self.error: CaptureError | None = None
        self.events = 0
        self.skipped: dict[str, int] = {}
        self._stop = threading.Event()
        self._opened = False

    def open(self) -> None:
        if not self._opened:
            self._open()
            self._opened = True

    def batches(self) -> Iterator[EventBatch]:
        self.open()
        for b in self._batches():
            self.events += b.n
            yield b
            if self._stop.is_set() and not self.drains_after_stop:
                break

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self._opened:
            self._opened = False
            self._close()

    def stats(self) -> dict:
        return {"events": self.events, "skipped": dict(self.skipped)}

    def skip(self, cause: str, n: int = 1) -> None:
        if n:
            self.skipped[cause] = self.skipped.get(cause, 0) + n

    # -- for subclasses --
    def _open(self) -> None:
        raise NotImplementedError

    def _batches(self) -> Iterator[EventBatch]:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
