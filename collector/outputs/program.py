"""The program channel: Falco's ``program_output``, one line per alert on a command's stdin.

The command runs through ``/bin/sh -c`` as Falco's ``popen`` does.  With ``keep_alive: true``
one process receives every line; if it exits or its pipe breaks, it is restarted (with a
short, growing back-off so a command that dies at once does not spin) and the line is
written to the new process.  With ``keep_alive: false`` (Falco's default) a process is
started per alert, given one line, and waited for.  SIGHUP/SIGUSR1 restart it.
"""

from __future__ import annotations

import subprocess
import threading
import time

from ..alert import Alert
from ..errors import OutputError
from .base import Channel, Formatter

MAX_BACKOFF = 5.0


class ProgramChannel(Channel):
    name = "program"

    def __init__(self, formatter: Formatter, program: str, keep_alive: bool = False,
                 buffered: bool = False):
        super().__init__()
        if not program.strip():
            raise OutputError("program_output.program: must be set when "
                              "program_output.enabled is true")
        self.formatter = formatter
        self.program = program
        self.keep_alive = keep_alive
        self.buffered = buffered
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._backoff = 0.0
        self._dead = False
        self.extra_stats["restarts"] = 0

    def _spawn(self) -> subprocess.Popen:
        try:
            return subprocess.Popen(self.program, shell=True, stdin=subprocess.PIPE,
                                    text=True, encoding="utf-8", bufsize=-1 if self.buffered else 1)
        except OSError as e:
            raise OutputError(f"program_output.program: cannot start {self.program!r}: "
                              f"{e.strerror}") from None

    def start(self) -> None:
        if self.keep_alive:
            self._proc = self._spawn()

    def _stop(self, proc: subprocess.Popen, grace: float = 2.0) -> None:
        """Close its stdin (end of input), give it ``grace`` seconds to finish, then kill."""
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _write(self, proc: subprocess.Popen, line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line)
        if not self.buffered:
            proc.stdin.flush()

    def deliver(self, alert: Alert) -> None:
        line = self.formatter.line(alert) + "\n"
        if not self.keep_alive:
            proc = self._spawn()
            try:
                self._write(proc, line)
            finally:
                self._stop(proc)
            return
        with self._lock:
            if self.take_reopen() and self._proc is not None:
                self._stop(self._proc)
                self._proc = None
            for attempt in range(2):
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    proc = self._restart(proc)
                try:
                    self._write(proc, line)
                    self._backoff = 0.0
                    return
                except (BrokenPipeError, OSError, ValueError):
                    # The process died (or closed its stdin) between poll() and write:
                    # restart it and retry this line once; a second failure is the error.
                    self._retire(proc)
                    if attempt == 1:
                        raise

    def _retire(self, old: subprocess.Popen) -> None:
        """Put away a process that can no longer take input; the next write restarts."""
        self._stop(old, grace=0.2)
        self._proc = None
        self._dead = True

    def _restart(self, old: subprocess.Popen | None) -> subprocess.Popen:
        if old is not None:
            self._stop(old, grace=0.2)
            self._dead = True
        if self._dead:
            self.extra_stats["restarts"] += 1
            if self._backoff:
                time.sleep(self._backoff)
            self._backoff = min(MAX_BACKOFF, (self._backoff or 0.05) * 2)
            self._dead = False
        self._proc = self._spawn()
        return self._proc

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._stop(self._proc)
                self._proc = None
