"""The file channel: Falco's ``file_output``, appending one line per alert.

With ``keep_alive: true`` the file stays open; SIGHUP or SIGUSR1 (``OutputManager.reopen``)
makes the channel close and reopen it before the next line, which is what logrotate's
``postrotate`` needs (Falco itself reopens on SIGUSR1 only and does no rotation).  With
``keep_alive: false`` (Falco's default) the file is opened and closed for every alert, so a
rotated file is picked up without any signal.
"""

from __future__ import annotations

import os
import threading
from typing import TextIO

from ..alert import Alert
from ..errors import OutputError
from .base import Channel, Formatter


class FileChannel(Channel):
    name = "file"

    def __init__(self, formatter: Formatter, filename: str, keep_alive: bool = False,
                 buffered: bool = False):
        super().__init__()
        self.formatter = formatter
        self.filename = filename
        self.keep_alive = keep_alive
        self.buffered = buffered
        self._f: TextIO | None = None
        self._lock = threading.Lock()
        self.extra_stats["reopens"] = 0

    def _open(self) -> TextIO:
        try:
            return open(self.filename, "a", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"file_output.filename: cannot open {self.filename!r} for "
                              f"appending: {e.strerror}") from None

    def start(self) -> None:
        # Open once up front so a bad path is a start-up error naming the key, not a
        # stream of delivery errors later.
        f = self._open()
        if self.keep_alive:
            self._f = f
        else:
            f.close()

    def deliver(self, alert: Alert) -> None:
        line = self.formatter.line(alert) + "\n"
        with self._lock:
            if not self.keep_alive:
                with self._open() as f:
                    f.write(line)
                return
            if self.take_reopen() and self._f is not None:
                self._f.close()
                self._f = None
                self.extra_stats["reopens"] += 1
            if self._f is None:
                self._f = self._open()
            self._f.write(line)
            if not self.buffered:
                self._f.flush()

    def close(self) -> None:
        with self._lock:
            if self._f is not None:
                try:
                    self._f.close()
                except OSError:
                    pass
                self._f = None


def check_filename(filename: str) -> None:
    """Reject an empty or directory path at configuration time."""
    if not filename:
        raise OutputError("file_output.filename: must be set when file_output.enabled is true")
    if os.path.isdir(filename):
        raise OutputError(f"file_output.filename: {filename!r} is a directory")
