"""The web UI: a falcosidekick-compatible receiver, SQLite storage, pages and a JSON API.

    settings.py   the ``webui:`` block of falconet.yaml
    ingest.py     falcosidekick's payload check; records from JSON alerts and Alert objects
    store.py      SQLite (WAL) storage, group commit, retention
    query.py      filters from query strings, and their SQL
    auth.py       password hashes, sessions, CSRF, ingestion tokens, login rate limiting
    api.py        the JSON API (search, counts, timeline, export); reference in API.md
    server.py     the HTTP server and its routes
    pages.py      server-rendered HTML (login page, application shell)
    live.py       live-update notifications for Server-Sent Events
    channel.py    UIChannel: feed the UI from ``falconet run`` in the same process
    static/       the front end (plain JavaScript and CSS, no build step)
"""

from __future__ import annotations

from .settings import UISettings
from .store import Store

__all__ = ["Store", "UIChannel", "UIServer", "UISettings"]


def __getattr__(name: str):
    if name == "UIServer":
        from .server import UIServer
        return UIServer
    if name == "UIChannel":
        from .channel import UIChannel
        return UIChannel
    raise AttributeError(name)
