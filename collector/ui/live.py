"""Live updates: the store announces each commit, Server-Sent Events streams wait for one."""

from __future__ import annotations

import threading


class LiveHub:
    """The id of the newest stored alert, and a way to wait for a newer one."""

    def __init__(self, last_id: int = 0):
        self._cond = threading.Condition()
        self.last_id = last_id
        self.closed = False

    def publish(self, last_id: int) -> None:
        with self._cond:
            if last_id > self.last_id:
                self.last_id = last_id
                self._cond.notify_all()

    def wait(self, after_id: int, timeout: float) -> int:
        """Wait up to ``timeout`` s for an alert newer than ``after_id``; the newest id."""
        with self._cond:
            self._cond.wait_for(lambda: self.closed or self.last_id > after_id, timeout)
            return self.last_id

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
