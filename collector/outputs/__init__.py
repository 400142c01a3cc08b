"""Alert delivery: channels behind bounded queues, so capture never waits for an output.

The pipeline builds one :class:`OutputManager` from the configuration, calls ``start()``,
``emit(alert)`` for every alert (never blocks), ``stats()`` for the stats line and
``close()`` at the end.  Channels (one module each): ``stdout``, ``file``, ``program``,
``http`` (falcosidekick-compatible), ``syslog`` and ``grpc`` (Falco 0.43's gRPC API with
fan-out, plus Falconet's filtered, resumable service).  Other parts add their own channel by
subclassing :class:`Channel` and calling ``add_channel`` before ``start()``.
"""

from .base import Channel, Formatter
from .manager import DROP_RULE, OutputManager

__all__ = ["DROP_RULE", "Channel", "Formatter", "OutputManager"]
