"""The stdout channel: Falco's ``stdout_output``, one text or JSON line per alert.

Lines are flushed one by one unless ``buffered_outputs`` is true (Falco's default is
unbuffered, so `falconet run | jq` shows alerts as they happen).
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..alert import Alert
from .base import Channel, Formatter


class StdoutChannel(Channel):
    name = "stdout"

    def __init__(self, formatter: Formatter, buffered: bool = False, stream: TextIO | None = None):
        super().__init__()
        self.formatter = formatter
        self.buffered = buffered
        self._stream = stream

    def deliver(self, alert: Alert) -> None:
        stream = self._stream or sys.stdout
        stream.write(self.formatter.line(alert) + "\n")
        if not self.buffered:
            stream.flush()

    def close(self) -> None:
        stream = self._stream or sys.stdout
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
