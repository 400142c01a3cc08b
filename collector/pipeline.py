"""The runner: source -> (state) -> rules -> outputs, with a bounded queue between stages.

    reader thread                         main thread
    source.batches() --copy--> queue -->  state.enrich(batch) -> engine.process(batch)
                     (bounded)            -> outputs.emit(alert)   (never blocks)

The reader blocks when the queue is full for finite sources (a replay loses nothing); a live
source is built with ``drop_when_full=True``: the reader never blocks (the kernel's rings
would overflow), batches arriving while the queue is full are merged and handed over as one
when there is room, and only beyond BACKLOG_EVENTS held events are the oldest dropped
(counted in queue_drops).  SIGINT/SIGTERM stop the source; what was already read is
still processed, outputs are flushed and closed, and the final stats are returned.

Each stage is optional: without rules the pipeline decodes (and enriches) only, which is
what ``falconet replay --events`` and the benchmarks use.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .alert import Alert
from .batch import EventBatch
from .errors import CaptureError
from .sources import Source

_END = object()
# Live sources: events held while the queue is full, at most (then the oldest are dropped).
BACKLOG_EVENTS = 1 << 18

# In lossless mode (replay) outputs are drained every this many alerts, so a burst of alerts
# never overflows a channel queue (whose default capacity is larger than this).
LOSSLESS_CHUNK = 256


@dataclass
class PipelineStats:
    events: int = 0
    batches: int = 0
    alerts: int = 0
    queue_drops: int = 0
    elapsed: float = 0.0
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    alerts_by_priority: dict[str, int] = field(default_factory=dict)
    # What /metrics reports besides the counts: cumulative seconds spent in the rules engine
    # (engine.process) and in state enrichment (state.enrich), the batches the engine saw,
    # and each rule's (priority number, source, tags) as its alerts carry them.
    engine_seconds: float = 0.0
    engine_batches: int = 0
    enrich_seconds: float = 0.0
    rule_info: dict[str, tuple[int, str, tuple[str, ...]]] = field(default_factory=dict)


class Pipeline:
    """Wires one source to the optional state engine, rule engine and outputs."""

    def __init__(self, source: Source, *, state: Any = None, engine: Any = None,
                 outputs: Any = None, on_batch: Callable[[EventBatch], None] | None = None,
                 on_alert: Callable[[Alert], None] | None = None,
                 queue_batches: int = 8, drop_when_full: bool = False, lossless: bool = False,
                 stats_interval: float = 0.0, stats_stream=None, close_outputs: bool = True):
        self.source = source
        self.state = state
        self.engine = engine
        self.outputs = outputs
        self.on_batch = on_batch
        self.on_alert = on_alert
        self.drop_when_full = drop_when_full
        self.lossless = lossless
        self.stats_interval = stats_interval
        self.stats_stream = stats_stream or sys.stderr
        # close_outputs=False leaves the outputs (and the gRPC server they own) open after the
        # source ends, drained rather than closed: `falconet replay --serve` closes them later.
        self.close_outputs = close_outputs
        self.stats = PipelineStats()
        self._q: queue.Queue = queue.Queue(maxsize=max(1, queue_batches))
        self._reader_error: BaseException | None = None
        self._stopping = threading.Event()
        # Guards the dicts of self.stats against snapshot() from another thread (the web
        # server); taken once per batch, never while delivering.
        self._stats_lock = threading.Lock()
        self.started_ns = 0
        self.finished = False
        self._final_source_stats: dict | None = None

    # -- control --------------------------------------------------------------------------
    def stop(self, *_: Any) -> None:
        """Ask the pipeline to finish: safe from a signal handler."""
        self._stopping.set()
        self.source.stop()

    @property
    def stop_requested(self) -> bool:
        """True once stop() was called (a signal, or a reader error) rather than the source
        simply ending."""
        return self._stopping.is_set()

    def _install_signals(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        old = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            old.append((sig, signal.signal(sig, self.stop)))
        return old

    # -- stages ---------------------------------------------------------------------------
    def _put(self, item: EventBatch) -> None:
        while not self._stopping.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _reader(self) -> None:
        backlog: list[EventBatch] = []   # live: what a full queue could not take yet
        backlog_n = 0
        try:
            for batch in self.source.batches():
                if self._stopping.is_set():
                    break
                # decoders that reuse their buffers need a copy; owned batches go as they are
                item = batch if getattr(self.source, "batches_owned", False) else batch.copy()
                if not self.drop_when_full:
                    self._put(item)
                    continue
                # Live: never block the reader (the kernel's rings would overflow unseen).
                # While the queue is full, batches are held and handed over merged as one
                # (a slow engine pays its per-batch cost once for many small batches); only
                # beyond BACKLOG_EVENTS are the oldest dropped, and counted.
                backlog.append(item)
                backlog_n += item.n
                if not self._q.full():      # one producer: a put now cannot block
                    self._q.put_nowait(backlog[0] if len(backlog) == 1
                                       else EventBatch.concat(backlog))
                    backlog, backlog_n = [], 0
                while backlog_n > BACKLOG_EVENTS and len(backlog) > 1:
                    old = backlog.pop(0)
                    backlog_n -= old.n
                    self.stats.queue_drops += old.n
            if backlog:
                self._put(EventBatch.concat(backlog))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self._reader_error = e
        finally:
            while True:
                try:
                    self._q.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    if self._stopping.is_set():
                        # Main thread is draining; make room for the sentinel.
                        try:
                            self._q.get_nowait()
                        except queue.Empty:
                            pass

    def _process(self, batch: EventBatch) -> None:
        st = self.stats
        st.events += batch.n
        st.batches += 1
        if self.state is not None:
            cols = getattr(self.engine, "columns", None) if self.engine is not None else None
            t0 = time.perf_counter()
            batch = self.state.enrich(batch, cols)
            st.enrich_seconds += time.perf_counter() - t0
        if self.on_batch is not None:
            self.on_batch(batch)
        if self.engine is None:
            return
        t0 = time.perf_counter()
        alerts = self.engine.process(batch)
        st.engine_seconds += time.perf_counter() - t0
        st.engine_batches += 1
        if not alerts:
            return
        n = st.alerts
        with self._stats_lock:
            for a in alerts:
                by_rule = st.alerts_by_rule
                if a.rule not in by_rule:
                    st.rule_info[a.rule] = (int(a.priority), a.source, tuple(sorted(a.tags)))
                by_rule[a.rule] = by_rule.get(a.rule, 0) + 1
                label = a.priority.label
                st.alerts_by_priority[label] = st.alerts_by_priority.get(label, 0) + 1
            st.alerts = n + len(alerts)
        for a in alerts:
            n += 1
            if self.outputs is not None:
                self.outputs.emit(a)
                if self.lossless and n % LOSSLESS_CHUNK == 0:
                    self.outputs.drain(timeout=60.0)
            if self.on_alert is not None:
                self.on_alert(a)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the counters, safe to take from another thread (the web
        server): the stats fields, the source's stats (its final ones once the source is
        closed), the depth of the batch queue and whether the source has ended."""
        with self._stats_lock:
            st = self.stats
            snap: dict[str, Any] = {
                "events": st.events, "batches": st.batches, "alerts": st.alerts,
                "queue_drops": st.queue_drops, "engine_seconds": st.engine_seconds,
                "engine_batches": st.engine_batches, "enrich_seconds": st.enrich_seconds,
                "alerts_by_rule": dict(st.alerts_by_rule),
                "alerts_by_priority": dict(st.alerts_by_priority),
                "rule_info": dict(st.rule_info),
            }
        snap["queue_depth"] = self._q.qsize()
        snap["queue_capacity"] = self._q.maxsize
        snap["started_ns"] = self.started_ns
        snap["finished"] = self.finished
        final = self._final_source_stats
        snap["source"] = final if final is not None else self.source.stats()
        return snap

    def _stats_line(self, start: float) -> None:
        st = self.stats
        el = max(time.monotonic() - start, 1e-9)
        src = self.source.stats()
        skipped = sum(src.get("skipped", {}).values())
        extra = ""
        if self.outputs is not None and hasattr(self.outputs, "stats"):
            dropped = sum(int(c.get("dropped", 0)) for c in self.outputs.stats().values()
                          if isinstance(c, dict))
            extra = f" output_drops={dropped}"
        print(f"falconet: stats: events={st.events} eps={st.events / el:.0f} alerts={st.alerts} "
              f"skipped={skipped} queue_drops={st.queue_drops}{extra}",
              file=self.stats_stream, flush=True)

    # -- run ------------------------------------------------------------------------------
    def run(self) -> PipelineStats:
        """Run to the end of the source (or a stop request); returns the stats."""
        old = self._install_signals()
        start = time.monotonic()
        self.started_ns = time.time_ns()
        next_stats = start + self.stats_interval if self.stats_interval > 0 else None
        if self.outputs is not None and hasattr(self.outputs, "start"):
            self.outputs.start()
        self.source.open()
        reader = threading.Thread(target=self._reader, name="falconet-reader", daemon=True)
        reader.start()
        try:
            while True:
                try:
                    item = self._q.get(timeout=0.2)
                except queue.Empty:
                    item = None
                if item is _END:
                    break
                if item is not None:
                    self._process(item)
                if next_stats is not None and time.monotonic() >= next_stats:
                    self._stats_line(start)
                    next_stats += self.stats_interval
        finally:
            self.stop() if self._reader_error is not None else None
            reader.join(timeout=5)
            self.stats.elapsed = time.monotonic() - start
            if self.outputs is not None:
                if self.close_outputs:
                    self.outputs.close()
                elif hasattr(self.outputs, "drain"):
                    self.outputs.drain(timeout=60.0)
            try:
                self._final_source_stats = self.source.stats()
            except Exception:  # noqa: BLE001, S110 - stats of a broken source: keep the live call
                pass
            self.finished = True
            self.source.close()
            for sig, handler in old:
                signal.signal(sig, handler)
        if self._reader_error is not None:
            raise self._reader_error
        if getattr(self.source, "error", None) is not None:
            raise self.source.error  # type: ignore[misc]
        return self.stats


def summary(pipe: Pipeline, engine: Any = None) -> dict:
    """The final summary as one dict (``--stats-json``): events, skipped, alerts (by rule)."""
    src = pipe.source.stats()
    out: dict[str, Any] = {
        "events": src.get("events", pipe.stats.events),
        "skipped": src.get("skipped", {}),
        "alerts": dict(sorted(pipe.stats.alerts_by_rule.items())),
        "alerts_by_priority": dict(sorted(pipe.stats.alerts_by_priority.items())),
        "alerts_total": pipe.stats.alerts,
        "queue_drops": pipe.stats.queue_drops,
        "elapsed_s": round(pipe.stats.elapsed, 3),
        "source": {k: v for k, v in src.items() if k not in ("events", "skipped")},
    }
    if pipe.outputs is not None and hasattr(pipe.outputs, "stats"):
        out["outputs"] = pipe.outputs.stats()
    if engine is not None and hasattr(engine, "stats"):
        out["engine"] = engine.stats()
    return out


__all__ = ["CaptureError", "Pipeline", "PipelineStats", "summary"]
