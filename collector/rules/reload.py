"""Reload rules without a restart.

:class:`Watcher` watches files (rules files, rules directories, the config file) with inotify
through ctypes, on their *directories* so that editors' write-and-rename and Kubernetes
ConfigMap symlink swaps are seen.  When inotify cannot be initialized (``inotify_init1``
fails with EMFILE when ``fs.inotify.max_user_instances`` is exhausted, or a watch cannot be
added with ENOSPC past ``max_user_watches``: the classic Falco CrashLoopBackOff on busy
Kubernetes nodes) it warns once and polls ``stat()`` instead, and keeps running.

:class:`ReloadingEngine` holds the current :class:`RuleEngine`; a change is compiled on the
watcher's thread and swapped in with one reference assignment, so ``process()`` always uses
one complete engine.  A broken change keeps the old engine running and reports the errors
through ``on_error`` (and ``last_error``).  String predicate tables are shared across
reloads, so a reload does not recompute what the old rules already knew.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import threading
from collections.abc import Callable

from ..errors import FalconetError
from .plan import LutCache

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
        IN_DELETE | IN_DELETE_SELF)
_EVENT = struct.Struct("iIII")


class InotifyUnavailable(OSError):
    pass


class _Inotify:
    """Minimal inotify over libc (no third-party dependency)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c") or "libc.so.6"
        self.libc = ctypes.CDLL(name, use_errno=True)
        fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise InotifyUnavailable(e, f"inotify_init1: {os.strerror(e)}")
        self.fd = fd

    def add(self, path: str) -> int:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), MASK)
        if wd < 0:
            e = ctypes.get_errno()
            raise InotifyUnavailable(e, f"inotify_add_watch({path}): {os.strerror(e)}")
        return wd

    def read(self) -> list[tuple[int, int, str]]:
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i + _EVENT.size <= len(buf):
            wd, mask, _cookie, ln = _EVENT.unpack_from(buf, i)
            name = buf[i + _EVENT.size:i + _EVENT.size + ln].rstrip(b"\0").decode("utf-8", "replace")
            out.append((wd, mask, name))
            i += _EVENT.size + ln
        return out

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def _signature(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    if os.path.isdir(path):
        entries = []
        for f in sorted(os.listdir(path)):
            if f.endswith((".yaml", ".yml")):
                entries.append((f, _signature(os.path.join(path, f))))
        return ("dir", tuple(entries))
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Watcher:
    """Calls ``on_change()`` (on its own thread) after the watched files change.

    ``mode`` is "inotify" or "poll".  ``inotify_factory`` is for tests (raise
    InotifyUnavailable to exercise the fallback).
    """

    def __init__(self, paths: list[str], on_change: Callable[[], None], interval: float = 2.0,
                 debounce: float = 0.2, warn: Callable[[str], None] | None = None,
                 inotify_factory: Callable[[], _Inotify] = _Inotify):
        self.paths = [os.path.abspath(p) for p in paths]
        self.on_change = on_change
        self.interval = interval
        self.debounce = debounce
        self.warn = warn or (lambda msg: None)
        self.warnings: list[str] = []
        self._factory = inotify_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ino: _Inotify | None = None
        self.mode = "poll"
        self._sigs = {p: _signature(p) for p in self.paths}
        self._setup()

    def _setup(self) -> None:
        try:
            ino = self._factory()
        except (InotifyUnavailable, OSError, AttributeError) as e:
            self._fallback(e)
            return
        try:
            dirs = set()
            for p in self.paths:
                dirs.add(p if os.path.isdir(p) else os.path.dirname(p))
            for d in sorted(dirs):
                if os.path.isdir(d):
                    ino.add(d)
        except (InotifyUnavailable, OSError) as e:
            ino.close()
            self._fallback(e)
            return
        self._ino = ino
        self.mode = "inotify"

    def _fallback(self, e: Exception) -> None:
        msg = (f"cannot watch rules with inotify ({e}); falling back to polling every "
               f"{self.interval:g}s (raise fs.inotify.max_user_instances / max_user_watches "
               "to restore inotify)")
        self.warnings.append(msg)
        self.warn(msg)
        self.mode = "poll"

    def start(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, name="falconet-rules-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._ino is not None:
            self._ino.close()

    def _changed(self) -> bool:
        new = {p: _signature(p) for p in self.paths}
        changed = new != self._sigs
        self._sigs = new
        return changed

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._ino is not None:
                r, _, _ = select.select([self._ino.fd], [], [], 0.2)
                if not r:
                    continue
                self._ino.read()
                # let a burst of writes settle, then compare contents' signatures
                while not self._stop.wait(self.debounce):
                    r, _, _ = select.select([self._ino.fd], [], [], 0)
                    if not r:
                        break
                    self._ino.read()
                if self._changed():
                    self._fire()
            else:
                if self._stop.wait(self.interval):
                    break
                if self._changed():
                    self._fire()

    def _fire(self) -> None:
        try:
            self.on_change()
        except Exception as e:  # noqa: BLE001 - never kill the watcher thread
            self.warn(f"reload failed: {type(e).__name__}: {e}")


class ReloadingEngine:
    """The current RuleEngine, rebuilt when rules or config files change.

    ``build(luts)`` returns a new engine or raises FalconetError; ``paths`` are the files to
    watch.  ``process``/``stats``/``columns``/``event_types`` delegate to the current engine.
    """

    def __init__(self, build: Callable[[LutCache], object], paths: list[str],
                 on_error: Callable[[str], None] | None = None,
                 on_reload: Callable[[object], None] | None = None,
                 warn: Callable[[str], None] | None = None, interval: float = 2.0,
                 inotify_factory: Callable[[], _Inotify] = _Inotify):
        self._build = build
        self.luts = LutCache()
        self.engine = build(self.luts)       # errors on the first load are the caller's
        self.on_error = on_error or (lambda msg: None)
        self.on_reload = on_reload or (lambda eng: None)
        self.last_error: str | None = None
        self.reloads = 0
        self.failures = 0
        self._lock = threading.Lock()
        self.watcher = Watcher(paths, self.reload, interval=interval, warn=warn,
                               inotify_factory=inotify_factory)

    def start(self) -> ReloadingEngine:
        self.watcher.start()
        return self

    def stop(self) -> None:
        self.watcher.stop()

    def reload(self) -> bool:
        with self._lock:
            try:
                new = self._build(self.luts)
            except FalconetError as e:
                self.failures += 1
                self.last_error = str(e)
                self.on_error(f"rules not reloaded, keeping the previous rules: {e}")
                return False
            self.engine = new      # one reference assignment: process() sees old or new
            self.reloads += 1
            self.last_error = None
            self.on_reload(new)
            return True

    def process(self, batch):
        return self.engine.process(batch)

    @property
    def columns(self):
        return self.engine.columns

    @property
    def event_types(self):
        return self.engine.event_types

    @property
    def warnings(self):
        return self.engine.warnings

    def stats(self) -> dict:
        s = dict(self.engine.stats())
        s.update(reloads=self.reloads, reload_failures=self.failures, watch_mode=self.watcher.mode)
        return s


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def watch_rules(paths: list[str], config_path: str | None = None, overrides=(), *,
                on_error: Callable[[str], None] | None = None,
                on_reload: Callable[[object], None] | None = None,
                warn: Callable[[str], None] | None = None, interval: float = 2.0,
                **load_kwargs) -> ReloadingEngine:
    """The pipeline's entry point: a started ReloadingEngine over ``paths`` (rules files or
    directories) and the configuration file, re-reading both (with the same ``-o``
    overrides) on every change.  ``load_kwargs`` go to RuleEngine.load (tags, disable_tags,
    disable_substrings, all_events, hostname).  The first load raises RuleError/ConfigError
    as RuleEngine.load does; later failures keep the running rules."""
    from ..config import Config
    from .engine import RuleEngine

    def build(luts: LutCache):
        cfg = Config.load(config_path, list(overrides))
        return RuleEngine.load(list(paths), cfg, luts=luts, **load_kwargs)
    watched = list(paths) + ([config_path] if config_path else [])
    return ReloadingEngine(build, watched, on_error=on_error, on_reload=on_reload, warn=warn,
                           interval=interval).start()
