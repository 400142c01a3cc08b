"""The output manager: one bounded queue and one worker thread per channel.

Falco formats each alert on its event loop, pushes it onto one queue and has a single worker
fan it out to every channel in turn, so one slow channel (an HTTP endpoint that hangs) holds
up all of them.  Here capture and matching only ever call :meth:`OutputManager.emit`, which
never blocks: it numbers the alert and offers it to each channel's own queue
(``queue.put_nowait``).  A full queue means that channel alone loses the alert; the loss is
counted per channel, shown by :meth:`stats` / :meth:`metrics_text`, and an internal alert
(source ``internal``) reports it -- at most once per ``outputs_queue.drop_alert_interval``.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from typing import Any

from ..alert import Alert, Priority
from ..config import Config
from ..errors import ConfigError
from .base import Channel, Formatter, Section
from .build import build_channels, default_capacity

log = logging.getLogger("falconet.outputs")

DROP_RULE = "Falconet internal: alert delivery drops"
_ERROR_LOG_INTERVAL = 10.0


class _Lane:
    """A channel with its queue, worker thread and counters."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.queue: queue.Queue[Alert] = queue.Queue(maxsize=channel.queue_capacity)
        self.thread: threading.Thread | None = None
        self.delivered = 0
        self.dropped = 0
        self.dropped_reported = 0
        self.errors = 0
        self.last_error = ""
        self._last_logged = 0.0
        self.stopping = threading.Event()
        self.abort = False

    def run(self) -> None:
        ch = self.channel
        q = self.queue
        while True:
            if self.abort:
                self._discard()
                return
            try:
                alert = q.get(timeout=0.2)
            except queue.Empty:
                if self.stopping.is_set():
                    return
                continue
            try:
                ch.deliver(alert)
                self.delivered += 1
            except Exception as e:  # noqa: BLE001 - any channel error must not kill its worker
                self._failed(e)
            finally:
                q.task_done()

    def _failed(self, e: Exception) -> None:
        self.errors += 1
        self.last_error = str(e) or type(e).__name__
        now = time.monotonic()
        if now - self._last_logged >= _ERROR_LOG_INTERVAL:
            self._last_logged = now
            log.warning("output %s: delivery failed: %s", self.channel.name, self.last_error)

    def _discard(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return
            self.dropped += 1
            self.queue.task_done()


def _hostname(explicit: str | None) -> str:
    if explicit:
        return explicit
    return os.environ.get("FALCONET_HOSTNAME") or os.environ.get("FALCO_HOSTNAME") \
        or socket.gethostname()


class OutputManager:
    """Builds the enabled channels from config and delivers alerts to them without blocking."""

    def __init__(self, cfg: Config, hostname: str | None = None):
        self.cfg = cfg
        self.hostname = _hostname(hostname)
        sec = Section(cfg, "outputs_queue")
        self.drop_interval = sec.positive("drop_alert_interval", float, 30.0)
        raw = cfg.get("outputs_queue.drop_alert_priority", "warning")
        try:
            self.drop_priority = Priority.parse(raw)
        except ValueError as e:
            raise ConfigError(f"{cfg.source}: setting 'outputs_queue.drop_alert_priority': {e}") from None
        self.reopen_signals = Section(cfg, "outputs_queue").get("reopen_on_signals", bool, True)
        self._default_capacity = default_capacity(cfg)
        self._lanes: list[_Lane] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._started = False
        self._closed = False
        self._stop = threading.Event()
        self._house: threading.Thread | None = None
        self._last_drop_alert = 0.0
        self._old_handlers: dict[int, Any] = {}
        self.grpc_server = None
        for ch in build_channels(cfg):
            self.add_channel(ch)
        self._setup_grpc()

    def _setup_grpc(self) -> None:
        grpc_on = Section(cfg := self.cfg, "grpc").enabled(False)
        out = Section(cfg, "grpc_output")
        if not grpc_on:
            if out.enabled(False):
                log.warning("grpc_output.enabled is true but grpc.enabled is false: "
                            "no gRPC server, alerts are not streamed (as in Falco)")
            return
        from .grpc import load  # grpcio is needed only when enabled
        GrpcChannel, GrpcServer = load()
        self.grpc_server = GrpcServer(cfg)
        if out.enabled(False):
            ch = GrpcChannel(self.grpc_server.hub, Formatter(cfg))
            self.add_channel(out.apply_common(ch, self._default_capacity))

    # -- lifecycle ---------------------------------------------------------------------------

    def add_channel(self, channel: Channel) -> None:
        if self._started:
            raise RuntimeError("add_channel() must be called before start()")
        if any(l.channel.name == channel.name for l in self._lanes):
            raise ConfigError(f"output channel {channel.name!r} is configured twice")
        self._lanes.append(_Lane(channel))

    @property
    def channels(self) -> list[Channel]:
        return [l.channel for l in self._lanes]

    def start(self) -> None:
        """Open every channel and the gRPC server, then start the workers.

        If anything fails to open, what was opened is closed again and the error (an
        OutputError or ConfigError naming the key) propagates.
        """
        started: list[Channel] = []
        try:
            for lane in self._lanes:
                lane.channel.start()
                started.append(lane.channel)
            if self.grpc_server is not None:
                self.grpc_server.start()
        except BaseException:
            for ch in started:
                ch.close()
            raise
        for lane in self._lanes:
            lane.thread = threading.Thread(target=lane.run, daemon=True,
                                           name=f"falconet-output-{lane.channel.name}")
            lane.thread.start()
        self._house = threading.Thread(target=self._housekeeping, daemon=True,
                                       name="falconet-output-drops")
        self._house.start()
        self._started = True
        self._install_signals()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # A program output that exits or an HTTP/syslog peer that resets its connection must
        # cost that channel an error, never the whole process: with SIGPIPE at its default
        # action (as `falconet`'s entry point sets it for `| head`), one write to a dead pipe
        # or socket would kill capture.  Python's own default is to ignore it.
        try:
            self._old_handlers[signal.SIGPIPE] = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        except (ValueError, OSError, AttributeError):
            pass
        if not self.reopen_signals:
            return
        for sig in (signal.SIGHUP, signal.SIGUSR1):
            try:
                self._old_handlers[sig] = signal.signal(sig, lambda *_: self.reopen())
            except (ValueError, OSError):
                pass

    def reopen(self) -> None:
        """Reopen files and restart programs (what SIGHUP/SIGUSR1 do; logrotate-friendly)."""
        for lane in self._lanes:
            lane.channel.request_reopen()

    # -- the hot path ------------------------------------------------------------------------

    def emit(self, alert: Alert) -> None:
        """Number ``alert`` and queue it for every channel that wants it.  Never blocks."""
        with self._lock:
            self._seq += 1
            alert.seq = self._seq
            if not alert.hostname:
                alert.hostname = self.hostname
            for lane in self._lanes:
                if alert.priority > lane.channel.min_priority:
                    continue
                if self._closed:  # nothing delivers any more: count, do not queue
                    lane.dropped += 1
                    continue
                try:
                    lane.queue.put_nowait(alert)
                except queue.Full:
                    lane.dropped += 1

    # -- drops ---------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        while not self._stop.wait(min(1.0, self.drop_interval)):
            self.check_drops()

    def check_drops(self, now: float | None = None) -> Alert | None:
        """Emit the internal drop alert if channels dropped alerts and the interval has passed."""
        now = time.monotonic() if now is None else now
        if now - self._last_drop_alert < self.drop_interval and self._last_drop_alert:
            return None
        with self._lock:
            news = {l.channel.name: l.dropped - l.dropped_reported for l in self._lanes
                    if l.dropped > l.dropped_reported}
            for l in self._lanes:
                l.dropped_reported = l.dropped
        if not news:
            return None
        elapsed = now - self._last_drop_alert if self._last_drop_alert else None
        self._last_drop_alert = now
        total = sum(news.values())
        per = " ".join(f"{k}={v}" for k, v in sorted(news.items()))
        since = f"in the last {elapsed:.0f} s" if elapsed else "since start"
        msg = (f"Falconet internal: alerts dropped by output channels that could not keep up. "
               f"{total} alerts dropped {since} ({per})")
        log.warning("%s", msg)
        fields: dict[str, Any] = {"n_drops": str(total)}
        fields.update({f"n_drops_{k}": str(v) for k, v in news.items()})
        alert = Alert(time_ns=time.time_ns(), rule=DROP_RULE, priority=self.drop_priority,
                      output=msg, output_fields=fields, source="internal", tags=())
        self.emit(alert)
        return alert

    # -- reporting ---------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per channel: queued, delivered, dropped, errors (and channel-specific counters)."""
        out: dict[str, dict[str, Any]] = {}
        for l in self._lanes:
            ch = l.channel
            d: dict[str, Any] = {"queued": l.queue.qsize(), "delivered": l.delivered,
                                 "dropped": l.dropped, "errors": l.errors,
                                 "capacity": ch.queue_capacity,
                                 "min_priority": ch.min_priority.label}
            d.update(ch.extra_stats)
            d.update(getattr(ch, "live_stats", {}))
            if l.last_error:
                d["last_error"] = l.last_error
            out[ch.name] = d
        return out

    def stats_line(self) -> str:
        """One line for the periodic stats output: ``outputs: http q=0 ok=10 drop=2 err=1 ...``."""
        parts = [f"{n} q={s['queued']} ok={s['delivered']} drop={s['dropped']} err={s['errors']}"
                 for n, s in self.stats().items()]
        return "outputs: " + ("; ".join(parts) if parts else "none")

    def metrics_text(self) -> str:
        """Prometheus text lines for the embedded web server's ``/metrics``."""
        rows = [
            ("falconet_outputs_queue_depth", "gauge", "Alerts waiting in the channel's queue.",
             "queued"),
            ("falconet_outputs_queue_capacity", "gauge", "Capacity of the channel's queue.",
             "capacity"),
            ("falconet_outputs_delivered_total", "counter", "Alerts delivered by the channel.",
             "delivered"),
            ("falconet_outputs_drops_total", "counter",
             "Alerts dropped because the channel's queue was full.", "dropped"),
            ("falconet_outputs_errors_total", "counter", "Failed deliveries.", "errors"),
        ]
        stats = self.stats()
        lines: list[str] = []
        for name, kind, help_, key in rows:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for ch, s in stats.items():
                lines.append(f'{name}{{channel="{ch}"}} {s[key]}')
        if "grpc" in stats:
            lines.append("# HELP falconet_grpc_subscribers Connected gRPC subscribers.")
            lines.append("# TYPE falconet_grpc_subscribers gauge")
            lines.append(f"falconet_grpc_subscribers {stats['grpc'].get('subscribers', 0)}")
            lines.append("# HELP falconet_grpc_subscribers_dropped_total Subscribers "
                         "disconnected for falling behind.")
            lines.append("# TYPE falconet_grpc_subscribers_dropped_total counter")
            lines.append("falconet_grpc_subscribers_dropped_total "
                         f"{stats['grpc'].get('subscribers_dropped', 0)}")
        return "\n".join(lines) + "\n"

    @property
    def last_seq(self) -> int:
        return self._seq

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queue is empty and delivered (for replay and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(l.queue.unfinished_tasks == 0 for l in self._lanes):
                return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop everything."""
        if self._closed:
            return
        self._stop.set()
        if self._house is not None:
            self._house.join(2)
        # Report drops not reported yet, while the channels can still deliver the report.
        self.check_drops(now=time.monotonic() + self.drop_interval)
        self._closed = True
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.stopping.set()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))
        for lane in self._lanes:
            lane.abort = True  # whatever is still queued now is dropped, and counted
            try:
                lane.channel.close()
            except Exception as e:  # noqa: BLE001 - one channel must not stop the others closing
                log.warning("output %s: close failed: %s", lane.channel.name, e)
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(1.0)
        if self.grpc_server is not None:
            self.grpc_server.stop()
        for sig, old in self._old_handlers.items():
            try:
                signal.signal(sig, old)
            except (ValueError, OSError, TypeError):
                pass
        self._old_handlers.clear()
