"""SQLite storage for the web UI: one file, WAL mode, no server to run.

Writes go through one writer thread that commits in groups: an HTTP receiver thread hands
over its record and waits until the transaction holding it is committed, so a 200 means the
alert is on disk (``synchronous: full``, the default, survives power loss; ``normal`` survives
a crash of the process).  Many concurrent senders share one commit, which is what makes
thousands of alerts per second possible with an fsync per commit.

The same thread enforces retention between batches (by age since the alert was received,
as a TTL, and by count, newest kept), deleting in small chunks so that readers and senders never wait long.
Readers use a small pool of their own connections; WAL lets them read while the writer writes.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import OutputError
from .query import TEXT_MATCH_CAP, Filters, fts_query, uses_fts, where_sql

log = logging.getLogger("falconet.ui.store")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT NOT NULL UNIQUE,
    time_ns       INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    rule          TEXT NOT NULL,
    source        TEXT NOT NULL,
    hostname      TEXT NOT NULL,
    output        TEXT NOT NULL,
    tags          TEXT NOT NULL,            -- JSON list
    output_fields TEXT NOT NULL,            -- JSON object
    received_ns   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ns);
CREATE INDEX IF NOT EXISTS events_received ON events(received_ns);
CREATE INDEX IF NOT EXISTS events_priority ON events(priority, time_ns);
CREATE INDEX IF NOT EXISTS events_rule ON events(rule, time_ns);
CREATE INDEX IF NOT EXISTS events_source ON events(source, time_ns);
CREATE INDEX IF NOT EXISTS events_hostname ON events(hostname, time_ns);
CREATE TABLE IF NOT EXISTS event_tags (     -- one row per (alert, tag); time copied for ranges
    event_id INTEGER NOT NULL,
    tag      TEXT NOT NULL,
    time_ns  INTEGER NOT NULL,
    PRIMARY KEY (event_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_tags_tag ON event_tags(tag, time_ns);
CREATE TABLE IF NOT EXISTS tag_names (tag TEXT PRIMARY KEY) WITHOUT ROWID;   -- every tag ever seen
CREATE TRIGGER IF NOT EXISTS events_tags_ad AFTER DELETE ON events BEGIN
    DELETE FROM event_tags WHERE event_id = old.id;
END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL,
    created_ns INTEGER NOT NULL, expires_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL, last_used_ns INTEGER NOT NULL DEFAULT 0);
"""
# Trigram full-text index over rule and output (external content: the text is not stored twice).
_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(
    rule, output, content='events', content_rowid='id', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS events_fts_ai AFTER INSERT ON events BEGIN
    INSERT INTO events_fts(rowid, rule, output) VALUES (new.id, new.rule, new.output);
END;
CREATE TRIGGER IF NOT EXISTS events_fts_ad AFTER DELETE ON events BEGIN
    INSERT INTO events_fts(events_fts, rowid, rule, output) VALUES ('delete', old.id, old.rule, old.output);
END;
"""
_COLUMNS = ("e.id, e.uuid, e.time_ns, e.priority, e.rule, e.source, e.hostname, e.output, e.tags,"
            " e.output_fields")
_DELETE_CHUNK = 2000


class _Pending:
    __slots__ = ("done", "error", "ids", "records")

    def __init__(self, records: list[dict[str, Any]], wait: bool):
        self.records = records
        self.done = threading.Event() if wait else None
        self.error: BaseException | None = None
        self.ids: list[int] = []


def _row_to_record(row: tuple) -> dict[str, Any]:
    return {
        "id": row[0], "uuid": row[1], "time_ns": row[2], "priority": row[3], "rule": row[4],
        "source": row[5], "hostname": row[6], "output": row[7],
        "tags": json.loads(row[8]), "output_fields": json.loads(row[9]),
    }


class Store:
    """The alert database.  ``start()`` the writer before adding; ``close()`` flushes."""

    def __init__(self, path: str, max_age_s: float = 0, max_events: int = 0,
                 retention_interval_s: float = 10.0, synchronous: str = "full",
                 queue_size: int = 10000):
        self.path = path
        self.max_age_s = max_age_s
        self.max_events = max_events
        self.retention_interval_s = retention_interval_s
        self.synchronous = synchronous.upper()
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=queue_size)
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._listeners: list[Callable[[int], None]] = []
        self._writer: threading.Thread | None = None
        self._closed = False
        self._meta_lock = threading.Lock()
        self.deleted_total = 0
        self.fts = False
        directory = os.path.dirname(os.path.abspath(path))
        try:
            if path != ":memory:":
                os.makedirs(directory, exist_ok=True)
            self._meta = self._connect()
            self._meta.executescript(_SCHEMA)
            try:
                self._meta.executescript(_FTS)
                self.fts = True
            except sqlite3.OperationalError as e:   # SQLite without FTS5 trigram: LIKE scans
                log.warning("full-text index unavailable (%s); free-text search will scan", e)
            self._meta.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                               (str(SCHEMA_VERSION),))
            self._meta.commit()
            found = self._meta.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise OutputError(f"{path}: cannot open the web UI database: {e}") from None
        except OSError as e:
            raise OutputError(f"{directory}: cannot create the web UI database directory: "
                              f"{e.strerror}") from None
        if found != str(SCHEMA_VERSION):
            self._meta.close()
            raise OutputError(f"{path}: the web UI database has layout version {found}, this Falconet "
                              f"uses {SCHEMA_VERSION}; point webui.db_path at a new file")

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-32768")
        conn.isolation_level = ""   # implicit BEGIN before writes; we commit explicitly
        return conn

    def _reader(self) -> _ReaderLease:
        return _ReaderLease(self)

    def add_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(last_id)`` after every commit that stored alerts."""
        self._listeners.append(fn)

    # -- writing -----------------------------------------------------------------------

    def start(self) -> Store:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="webui-writer", daemon=True)
            self._writer.start()
        return self

    def add(self, records: list[dict[str, Any]], timeout: float = 30.0) -> list[int]:
        """Store records and return once they are committed (their ids; 0 for duplicates)."""
        pending = _Pending(records, wait=True)
        self._put(pending, timeout)
        if not pending.done.wait(timeout):
            raise OutputError("the web UI database did not commit within "
                              f"{timeout:.0f} s (disk full or locked?)")
        if pending.error is not None:
            raise OutputError(f"{self.path}: cannot store alerts: {pending.error}")
        return pending.ids

    def submit(self, record: dict[str, Any], timeout: float | None = None) -> None:
        """Queue a record without waiting for the commit (blocks while the queue is full)."""
        self._put(_Pending([record], wait=False), timeout)

    def _put(self, pending: _Pending, timeout: float | None) -> None:
        if self._closed or self._writer is None:
            raise OutputError("the web UI store is not running")
        try:
            self._queue.put(pending, timeout=timeout)
        except queue.Full:
            raise OutputError("the web UI store is overloaded (write queue full)") from None

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far is committed."""
        if self._writer is not None and not self._closed:
            self.add([], timeout)

    def close(self) -> None:
        if self._closed:
            return
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(60)
        self._closed = True
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break
        with self._meta_lock:
            self._meta.close()

    def _write_loop(self) -> None:
        conn = self._connect()
        next_retention = 0.0
        stopping = False
        try:
            while not stopping:
                wait = max(0.0, next_retention - time.monotonic())
                batch: list[_Pending] = []
                try:
                    item = self._queue.get(timeout=wait if wait > 0 else 0.001)
                    if item is None:
                        stopping = True
                    else:
                        batch.append(item)
                    while len(batch) < 2000:
                        item = self._queue.get_nowait()
                        if item is None:
                            stopping = True
                            break
                        batch.append(item)
                except queue.Empty:
                    pass
                if batch:
                    self._write_batch(conn, batch)
                if time.monotonic() >= next_retention or stopping:
                    try:
                        self._count_deleted(self._enforce(conn))
                    except sqlite3.Error as e:
                        log.error("retention failed: %s", e)
                    next_retention = time.monotonic() + self.retention_interval_s
        finally:
            conn.close()

    def _write_batch(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        now = time.time_ns()
        stored = 0
        try:
            for pending in batch:
                for r in pending.records:
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO events(uuid, time_ns, priority, rule, source, hostname,"
                        " output, tags, output_fields, received_ns) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (r["uuid"], r["time_ns"], r["priority"], r["rule"], r["source"], r["hostname"],
                         r["output"], json.dumps(r["tags"]),
                         json.dumps(r["output_fields"], ensure_ascii=False, default=str), now))
                    if cur.rowcount == 1:
                        rowid = cur.lastrowid
                        stored += 1
                        if r["tags"]:
                            conn.executemany("INSERT OR IGNORE INTO event_tags(event_id, tag, time_ns)"
                                             " VALUES (?,?,?)", [(rowid, t, r["time_ns"]) for t in r["tags"]])
                            conn.executemany("INSERT OR IGNORE INTO tag_names(tag) VALUES (?)",
                                             [(t,) for t in r["tags"]])
                        pending.ids.append(rowid)
                    else:
                        pending.ids.append(0)
            conn.commit()
        except (sqlite3.Error, TypeError, ValueError) as e:
            conn.rollback()
            log.error("storing %d alert batches failed: %s", len(batch), e)
            for pending in batch:
                pending.error = e
                pending.ids = []
        for pending in batch:
            if pending.done is not None:
                pending.done.set()
        if stored:
            last = conn.execute("SELECT max(id) FROM events").fetchone()[0] or 0
            for fn in list(self._listeners):
                try:
                    fn(last)
                except Exception:   # a listener must never stop the writer
                    log.exception("live-update listener failed")

    # -- retention -----------------------------------------------------------------------

    def enforce_retention(self) -> int:
        """Apply retention now (normally done by the writer); returns rows deleted."""
        conn = self._connect()
        try:
            n = self._enforce(conn)
            self._count_deleted(n)
            return n
        finally:
            conn.close()

    def _count_deleted(self, n: int) -> None:
        with self._meta_lock:
            self.deleted_total += n

    def _enforce(self, conn: sqlite3.Connection) -> int:
        deleted = 0
        if self.max_age_s > 0:
            cutoff = time.time_ns() - int(self.max_age_s * 1_000_000_000)
            deleted += self._delete_chunks(
                conn, "SELECT id FROM events WHERE received_ns < ? LIMIT ?", (cutoff,))
        if self.max_events > 0:
            row = conn.execute("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?",
                               (self.max_events,)).fetchone()
            if row is not None:
                deleted += self._delete_chunks(
                    conn, "SELECT id FROM events WHERE id <= ? ORDER BY id LIMIT ?", (row[0],))
        if deleted:
            log.info("retention removed %d alerts", deleted)
        return deleted

    @staticmethod
    def _delete_chunks(conn: sqlite3.Connection, select: str, params: tuple) -> int:
        total = 0
        while True:
            cur = conn.execute(f"DELETE FROM events WHERE id IN ({select})", params + (_DELETE_CHUNK,))
            conn.commit()
            total += cur.rowcount
            if cur.rowcount < _DELETE_CHUNK:
                return total

    # -- reading -------------------------------------------------------------------------

    def search(self, f: Filters, page: int = 1, limit: int = 100) -> tuple[list[dict], int]:
        """Newest first: (one page of records, total matching)."""
        source, where, params = where_sql(f, self.fts)
        with self._reader() as conn:
            total = conn.execute(f"SELECT count(*) FROM {source} {where}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM {source} {where} ORDER BY e.time_ns DESC, e.id DESC"
                " LIMIT ? OFFSET ?", params + [limit, (page - 1) * limit]).fetchall()
        return [_row_to_record(r) for r in rows], total

    def iter_records(self, f: Filters, limit: int) -> Iterator[dict[str, Any]]:
        """Newest first, up to ``limit`` records (for export)."""
        source, where, params = where_sql(f, self.fts)
        with self._reader() as conn:
            cur = conn.execute(f"SELECT {_COLUMNS} FROM {source} {where}"
                               " ORDER BY e.time_ns DESC, e.id DESC LIMIT ?", params + [limit])
            while True:
                rows = cur.fetchmany(500)
                if not rows:
                    return
                for r in rows:
                    yield _row_to_record(r)

    def count(self, f: Filters) -> int:
        source, where, params = where_sql(f, self.fts)
        with self._reader() as conn:
            return conn.execute(f"SELECT count(*) FROM {source} {where}", params).fetchone()[0]

    def text_capped(self, f: Filters) -> bool:
        """True when more alerts match the free text than queries look at (TEXT_MATCH_CAP)."""
        if not uses_fts(f, self.fts):
            return False
        with self._reader() as conn:
            n = conn.execute("SELECT count(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ?"
                             " LIMIT ?)", (fts_query(f.text), TEXT_MATCH_CAP + 1)).fetchone()[0]
        return n > TEXT_MATCH_CAP

    def count_by(self, field: str, f: Filters, limit: int = 1000) -> list[tuple[Any, int]]:
        """[(value, count)] most frequent first; ``field`` in query.GROUP_FIELDS."""
        if field == "tags" and _only_priority_and_time(f) and not f.priorities:
            return self._count_tags_by_ranges(f, limit)
        source, where, params = where_sql(f, self.fts)
        if field == "tags":
            # alerts first (time index), then their tags by primary key: never the other way
            sql = (f"SELECT t.tag, count(*) AS n FROM {source} CROSS JOIN event_tags t ON t.event_id = e.id"
                   f" {where} GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?")
        elif field in ("priority", "rule", "source", "hostname"):
            sql = (f"SELECT e.{field}, count(*) AS n FROM {source} {where}"
                   f" GROUP BY e.{field} ORDER BY n DESC, e.{field} LIMIT ?")
        else:
            raise ValueError(f"cannot count by {field!r}")
        with self._reader() as conn:
            return [(r[0], r[1]) for r in conn.execute(sql, params + [limit])]

    def timeline(self, f: Filters, start_ns: int, end_ns: int, buckets: int) -> list[tuple[int, int, int]]:
        """[(bucket index, priority, count)] over [start_ns, end_ns) cut into ``buckets``."""
        step = max(1, -(-(end_ns - start_ns) // buckets))      # ceil: the last alert fits
        if _only_priority_and_time(f):
            return self._timeline_by_ranges(f, start_ns, end_ns, step, buckets)
        source, where, params = where_sql(f, self.fts)
        extra = "e.time_ns >= ? AND e.time_ns < ?"
        where = f"{where} AND {extra}" if where else f"WHERE {extra}"
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT (e.time_ns - ?) / ? AS b, e.priority, count(*) FROM {source} {where}"
                " GROUP BY b, e.priority", [start_ns, step] + params + [start_ns, end_ns]).fetchall()
        return [(int(b), int(p), int(n)) for b, p, n in rows if 0 <= b < buckets]

    def _count_tags_by_ranges(self, f: Filters, limit: int) -> list[tuple[Any, int]]:
        """Tag counts over a time range from the (tag, time_ns) index, one range per tag."""
        lo = f.since_ns if f.since_ns is not None else -(1 << 63)
        hi = f.until_ns if f.until_ns is not None else (1 << 63) - 1
        out = []
        with self._reader() as conn:
            for (tag,) in conn.execute("SELECT tag FROM tag_names").fetchall():
                n = conn.execute("SELECT count(*) FROM event_tags WHERE tag = ? AND time_ns >= ?"
                                 " AND time_ns < ?", (tag, lo, hi)).fetchone()[0]
                if n:
                    out.append((tag, n))
        out.sort(key=lambda kv: (-kv[1], kv[0]))
        return out[:limit]

    def _timeline_by_ranges(self, f: Filters, start_ns: int, end_ns: int, step: int,
                            buckets: int) -> list[tuple[int, int, int]]:
        """One index range count per (priority, bucket) on events(priority, time_ns): no sort
        of every row in the range, which is what makes a week at a million alerts cheap."""
        lo = max(start_ns, f.since_ns) if f.since_ns is not None else start_ns
        hi = min(end_ns, f.until_ns) if f.until_ns is not None else end_ns
        out = []
        with self._reader() as conn:
            for p in (f.priorities or range(8)):
                for b in range(buckets):
                    a, z = max(lo, start_ns + b * step), min(hi, start_ns + (b + 1) * step)
                    if a >= z:
                        continue
                    n = conn.execute("SELECT count(*) FROM events WHERE priority = ? AND time_ns >= ?"
                                     " AND time_ns < ?", (p, a, z)).fetchone()[0]
                    if n:
                        out.append((b, p, n))
        return out

    def max_time(self, f: Filters) -> int | None:
        """The newest alert time among the matches (None when nothing matches)."""
        source, where, params = where_sql(f, self.fts)
        with self._reader() as conn:
            return conn.execute(f"SELECT max(e.time_ns) FROM {source} {where}", params).fetchone()[0]

    def get(self, key: str | int) -> dict[str, Any] | None:
        """One record by uuid (or numeric id)."""
        column = "e.id" if isinstance(key, int) else "e.uuid"
        with self._reader() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM events e WHERE {column} = ?", (key,)).fetchone()
        return _row_to_record(row) if row else None

    def last_id(self) -> int:
        with self._reader() as conn:
            return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        with self._reader() as conn:
            n, oldest, newest = conn.execute(
                "SELECT count(*), min(time_ns), max(time_ns) FROM events").fetchone()
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return {"events": n, "oldest_ns": oldest, "newest_ns": newest, "db_bytes": size,
                "deleted_by_retention": self.deleted_total, "full_text_index": self.fts}

    # -- small tables (meta, sessions, tokens) ---------------------------------------------

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement on the small tables and commit (used by auth)."""
        with self._meta_lock:
            try:
                rows = self._meta.execute(sql, params).fetchall()
                self._meta.commit()
                return rows
            except sqlite3.Error:
                self._meta.rollback()
                raise

    def meta_get(self, key: str) -> str | None:
        rows = self.execute("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def meta_set(self, key: str, value: str) -> None:
        self.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def _only_priority_and_time(f: Filters) -> bool:
    return not (f.rules or f.sources or f.hostnames or f.tags or f.text or f.after_id is not None)


class _ReaderLease:
    def __init__(self, store: Store):
        self.store = store
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn = self.store._readers.get_nowait()
        except queue.Empty:
            self.conn = self.store._connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        assert self.conn is not None
        if self.store._closed or self.store._readers.qsize() >= 8:
            self.conn.close()
        else:
            self.store._readers.put(self.conn)
