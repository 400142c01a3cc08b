"""What every output channel shares: the Channel base class, the alert formatter and config helpers.

A channel is deliberately tiny: ``deliver(alert)`` is called on the channel's own worker
thread (so it may block on a socket or a pipe), ``close()`` once at the end.  Everything that
keeps capture from waiting -- the bounded queue, the drop counters, the worker thread -- lives
in :mod:`collector.outputs.manager`, so a new channel (the web UI, a test probe) gets all of it
by subclassing :class:`Channel` and calling ``OutputManager.add_channel``.
"""

from __future__ import annotations

import threading
from typing import Any

from ..alert import Alert, Priority
from ..config import Config
from ..errors import ConfigError

DEFAULT_QUEUE_CAPACITY = 10000


class Channel:
    """One alert destination.

    Subclasses set ``name`` and implement :meth:`deliver`.  ``min_priority`` is the least
    severe priority the channel receives (Falco's order: a *lower* value is more severe, so
    an alert is delivered when ``alert.priority <= min_priority``).  ``queue_capacity`` bounds
    the channel's queue in the manager.  ``reopen()`` is called (from the worker thread's point
    of view, asynchronously) on SIGHUP/SIGUSR1: channels holding files or processes set a flag
    and act on it before their next write.
    """

    name: str = "channel"
    min_priority: Priority = Priority.DEBUG
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY

    def __init__(self) -> None:
        self._reopen = threading.Event()
        self.extra_stats: dict[str, int] = {}

    def start(self) -> None:
        """Open files, sockets or processes.  Called once before the worker starts."""

    def deliver(self, alert: Alert) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def request_reopen(self) -> None:
        """Ask the channel to reopen what it writes to before its next delivery."""
        self._reopen.set()

    def take_reopen(self) -> bool:
        """True once per :meth:`request_reopen` (checked by the worker side)."""
        if self._reopen.is_set():
            self._reopen.clear()
            return True
        return False

    def accepts(self, alert: Alert) -> bool:
        return alert.priority <= self.min_priority

    def close(self) -> None:
        """Release resources.  May be called while :meth:`deliver` is blocked elsewhere."""


class Formatter:
    """Renders alerts as Falco does, from the global output-shaping keys.

    Falco renders one string per alert and hands it to every channel; here each channel's
    worker renders it itself (so rendering cost lands on output threads, never on capture).
    """

    def __init__(self, cfg: Config, json_output: bool | None = None):
        self.json_output = (cfg.typed("json_output", bool, False)
                            if json_output is None else json_output)
        self.iso8601 = cfg.typed("time_format_iso_8601", bool, False)
        self.include = {
            "include_output": cfg.typed("json_include_output_property", bool, True),
            "include_tags": cfg.typed("json_include_tags_property", bool, True),
            "include_output_fields": cfg.typed("json_include_output_fields_property", bool, True),
            "include_message": cfg.typed("json_include_message_property", bool, False),
        }

    def text(self, alert: Alert) -> str:
        return alert.text_line(self.iso8601)

    def json(self, alert: Alert, force_output_fields: bool = False) -> str:
        include = dict(self.include)
        if force_output_fields:
            include["include_output_fields"] = True
        return alert.json_line(self.iso8601, **include)

    def line(self, alert: Alert) -> str:
        """The string Falco's stdout/file/program channels write (without newline)."""
        return self.json(alert) if self.json_output else self.text(alert)


class Section:
    """Typed access to one channel's config block, every error naming the full key.

    ``Section(cfg, "http_output").get("url", str, "")`` reads ``http_output.url`` and, on a
    wrong type, raises ConfigError naming ``http_output.url`` and the configuration file.
    """

    def __init__(self, cfg: Config, prefix: str):
        self.cfg = cfg
        self.prefix = prefix
        block = cfg.get(prefix, {})
        if block is None:
            block = {}
        if not isinstance(block, dict):
            raise ConfigError(f"{cfg.source}: setting {prefix!r} must be a mapping of keys, "
                              f"got {block!r}")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def get(self, name: str, kind: type, default: Any) -> Any:
        value = self.cfg.get(self.key(name), default)
        if value is None:
            value = default
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (kind in (int, float) and isinstance(value, bool)) or not isinstance(value, kind):
            raise ConfigError(f"{self.cfg.source}: setting {self.key(name)!r} must be "
                              f"{_kind_name(kind)}, got {value!r}")
        return value

    def enabled(self, default: bool = False) -> bool:
        return self.get("enabled", bool, default)

    def positive(self, name: str, kind: type, default: Any, allow_zero: bool = False) -> Any:
        value = self.get(name, kind, default)
        if value < 0 or (value == 0 and not allow_zero):
            raise ConfigError(f"{self.cfg.source}: setting {self.key(name)!r} must be "
                              f"{'zero or more' if allow_zero else 'greater than zero'}, got {value!r}")
        return value

    def priority(self, name: str = "min_priority", default: str = "debug") -> Priority:
        raw = self.cfg.get(self.key(name), default)
        try:
            return Priority.parse(raw if raw is not None else default)
        except ValueError as e:
            raise ConfigError(f"{self.cfg.source}: setting {self.key(name)!r}: {e}") from None

    def apply_common(self, channel: Channel, default_capacity: int) -> Channel:
        """Set the keys every channel has: ``min_priority`` and ``queue_capacity``."""
        channel.min_priority = self.priority()
        channel.queue_capacity = self.positive("queue_capacity", int, default_capacity)
        return channel


def _kind_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            dict: "a mapping", list: "a list"}.get(kind, kind.__name__)
