"""``UIChannel``: ``falconet run`` feeding the web UI in the same process, without HTTP.

The channel writes alerts straight into the UI's SQLite store.  With ``serve=True`` (or
``webui.enabled: true`` through :meth:`UIChannel.from_config`) it also runs the UI's HTTP
server on a background thread, so one process detects, stores and shows alerts.  Nothing is
opened before :meth:`start` (called by the output manager, or by the first ``deliver()``).

Wiring, in the output manager: ``if cfg.get("webui.enabled", False):
add_channel(UIChannel.from_config(cfg))``.

``deliver()`` queues the alert for the store's writer thread and returns; it blocks only when
the write queue is full (the output worker absorbs that, never the capture).  ``close()``
waits until everything delivered is committed.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from ..alert import Alert, Priority
from .ingest import record_from_alert
from .settings import UISettings
from .store import Store

try:  # the outputs package is written in parallel; work with or without it
    from ..outputs import Channel as _ChannelBase
except ImportError:  # pragma: no cover - depends on the checkout
    _ChannelBase = object  # type: ignore[assignment,misc]


class UIChannel(_ChannelBase):  # type: ignore[misc,valid-type]
    """An output channel whose destination is the web UI's database."""

    name = "webui"

    def __init__(self, settings: UISettings | None = None, *, store: Store | None = None,
                 min_priority: Priority = Priority.DEBUG, serve: bool = False):
        super().__init__()
        self.settings = settings or UISettings()
        self.min_priority = Priority(min_priority)
        self.owns_store = store is None
        self.store: Store | None = store
        self.serve = serve
        self.server = None
        self.generated_password: str | None = None
        self.delivered = 0
        self._start_lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Any, serve: bool | None = None) -> UIChannel:
        """Build from a Config: ``webui.enabled`` decides whether the HTTP server runs too."""
        settings = UISettings.from_config(cfg)
        if serve is None:
            serve = bool(cfg.get("webui.enabled", False)) if cfg is not None else False
        minimum = cfg.get("webui.minimum_priority", "debug") if cfg is not None else "debug"
        return cls(settings, min_priority=Priority.parse(minimum or "debug"), serve=serve)

    def start(self) -> None:
        """Open the database and, with ``serve``, start the UI's HTTP server.

        Raises OutputError (unwritable database, port in use) before any alert flows.
        A password generated on this first start is printed once on stderr.
        """
        with self._start_lock:
            if self.store is not None and (self.server is not None or not self.serve):
                return
            s = self.settings
            if self.store is None:
                self.store = Store(s.db_path, s.max_age_s, s.max_events, s.retention_interval_s,
                                   s.synchronous).start()
            if self.serve:
                from .server import UIServer
                self.server = UIServer(s, store=self.store)
                self.generated_password = self.server.auth.ensure_password()
                if self.generated_password:
                    print(f"falconet: web UI: generated the password of user {s.username!r}; it is "
                          f"shown only this once:\n\n    {self.generated_password}\n",
                          file=sys.stderr, flush=True)
                print(f"falconet: web UI on {self.server.url}", file=sys.stderr, flush=True)
                self.server.start()

    def deliver(self, alert: Alert) -> None:
        if alert.priority > self.min_priority:
            return
        if self.store is None:
            self.start()
        self.store.submit(record_from_alert(alert))
        self.delivered += 1

    def flush(self) -> None:
        if self.store is not None:
            self.store.flush()

    def close(self) -> None:
        if self.server is not None:
            self.server.owns_store = False
            self.server.close()
            self.server = None
        if self.store is None:
            return
        if self.owns_store:
            self.store.close()
        else:
            self.store.flush()
