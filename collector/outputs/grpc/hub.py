"""The fan-out hub behind the gRPC services: a bounded history and one queue per subscriber.

Falco's gRPC server keeps one unbounded queue that every client pops from, so two clients
split the alerts between them (Falco issue 857) and alerts pile up in memory until someone
reads them.  Here:

* every published alert goes into a bounded history (a deque of ``history_capacity``) *and*
  into the queue of every live subscriber whose filter matches it;
* a subscriber's queue is bounded too; when it is full the subscriber is marked
  ``overflowed`` and removed -- publishing never waits for a subscriber, and one slow reader
  costs only itself (it may reconnect and resume from the history);
* subscribing snapshots the history after a sequence number and registers the queue under
  the same lock, so a resuming client gets every alert exactly once, with nothing falling in
  between backlog and live stream.

The hub knows nothing of gRPC: it stores ready-made protobuf messages (built once per alert by
the gRPC channel) plus the few plain fields the filters need.
"""

from __future__ import annotations

import collections
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_CURSORS = 4096


@dataclass(slots=True, eq=False)
class Item:
    """One alert as the gRPC services hand it out."""

    seq: int
    priority: int
    rule: str
    source: str
    tags: frozenset[str]
    response: bytes  # serialised falco.outputs.response
    event: bytes     # serialised falconet.outputs.v1.event carrying the same alert


Filter = Callable[[Item], bool]


class Subscriber:
    """A bounded queue with a condition variable, fed by the publisher, drained by one RPC."""

    def __init__(self, capacity: int, accept: Filter | None = None):
        self.capacity = capacity
        self.accept = accept
        self._q: collections.deque[Item] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self.overflowed = False
        self.closed = False
        self.last_seq = 0

    def offer(self, item: Item) -> bool:
        """Queue ``item`` if it matches; False when the queue was full (the caller drops us)."""
        if self.accept is not None and not self.accept(item):
            return True
        with self._cond:
            if len(self._q) >= self.capacity:
                self.overflowed = True
                self._cond.notify_all()
                return False
            self._q.append(item)
            self._cond.notify()
        return True

    def get(self, timeout: float) -> Item | None:
        """The next item, or None after ``timeout`` or once overflowed/closed and empty."""
        with self._cond:
            if not self._q and not (self.overflowed or self.closed):
                self._cond.wait(timeout)
            if self._q and not self.overflowed:
                return self._q.popleft()
            return None

    def pending(self) -> int:
        return len(self._q)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


@dataclass
class Resume:
    """What a subscription starts with: the backlog and, if any, a gap or restart notice."""

    backlog: list[Item]
    subscriber: Subscriber
    first_available: int = 0
    missed: int = 0
    restarted: bool = False


class Hub:
    def __init__(self, history_capacity: int = 10000, subscriber_capacity: int = 10000):
        self.epoch = uuid.uuid4().hex[:16]
        self.history: collections.deque[Item] = collections.deque(maxlen=history_capacity)
        self.history_capacity = history_capacity
        self.subscriber_capacity = subscriber_capacity
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._cursors: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.published = 0
        self.subscribers_dropped = 0
        self.last_seq = 0
        self.closed = False

    # -- publishing -------------------------------------------------------------------------

    def publish(self, item: Item) -> None:
        with self._lock:
            self.history.append(item)
            self.published += 1
            self.last_seq = item.seq
            slow = [s for s in self._subs if not s.offer(item)]
            for s in slow:
                self._subs.discard(s)
                self.subscribers_dropped += 1

    # -- subscribing ------------------------------------------------------------------------

    def subscribe(self, accept: Filter | None = None, after: int | None = None,
                  epoch: str = "", capacity: int | None = None) -> Resume:
        """Register a subscriber; ``after`` None = live only, N = everything held after N."""
        sub = Subscriber(capacity or self.subscriber_capacity, accept)
        res = Resume([], sub)
        with self._lock:
            if self.closed:
                sub.close()
                return res
            if after is not None:
                if epoch and epoch != self.epoch:
                    res.restarted = True
                    after = 0
                first = self.history[0].seq if self.history else self.last_seq + 1
                if after + 1 < first:
                    # Alerts after+1 .. first-1 existed and were evicted from the history.
                    res.missed = first - after - 1
                res.first_available = first
                res.backlog = [i for i in self.history
                               if i.seq > after and (accept is None or accept(i))]
            self._subs.add(sub)
        return res

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)
        sub.close()

    def snapshot_after(self, after: int) -> list[Item]:
        with self._lock:
            return [i for i in self.history if i.seq > after]

    # -- per-client cursors for Falco's API -------------------------------------------------

    def cursor(self, key: str | None) -> int:
        if key is None:
            return 0
        with self._lock:
            return self._cursors.get(key, 0)

    def advance(self, key: str | None, seq: int) -> None:
        if key is None:
            return
        with self._lock:
            if seq > self._cursors.get(key, 0):
                self._cursors[key] = seq
            self._cursors.move_to_end(key)
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)

    # -- state ------------------------------------------------------------------------------

    def info(self) -> dict[str, int | str]:
        with self._lock:
            return {"epoch": self.epoch,
                    "first_seq": self.history[0].seq if self.history else 0,
                    "last_seq": self.last_seq,
                    "history": len(self.history),
                    "subscribers": len(self._subs),
                    "subscribers_dropped": self.subscribers_dropped}

    def close(self) -> None:
        with self._lock:
            self.closed = True
            subs, self._subs = self._subs, set()
        for s in subs:
            s.close()


@dataclass
class Criteria:
    """Server-side filters of the native service; empty sets match everything."""

    min_priority: int | None = None
    rules: frozenset[str] = field(default_factory=frozenset)
    tags: frozenset[str] = field(default_factory=frozenset)
    sources: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, item: Item) -> bool:
        if self.min_priority is not None and item.priority > self.min_priority:
            return False
        if self.rules and item.rule not in self.rules:
            return False
        if self.sources and item.source not in self.sources:
            return False
        return not self.tags or bool(self.tags & item.tags)

    def empty(self) -> bool:
        return (self.min_priority is None and not self.rules and not self.tags
                and not self.sources)
