"""The syslog channel: Falco's ``syslog_output``, one message per alert at the matching level.

Falco calls syslog(3); we speak the protocol ourselves (RFC 3164, as glibc's syslog(3) sends
it) so the destination is configurable and testable: the local ``/dev/log`` datagram socket
by default, or ``udp://host:port`` / ``tcp://host:port`` (TCP frames end with a newline).
Falco's priorities have the same numbers as syslog severities (Emergency=0 ... Debug=7), so
the PRI value is ``facility * 8 + priority``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse

from ..alert import Alert
from ..errors import OutputError
from .base import Channel, Formatter

FACILITIES = {name: num for num, name in enumerate(
    ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
     "authpriv", "ftp"))}
FACILITIES.update({f"local{i}": 16 + i for i in range(8)})


class SyslogChannel(Channel):
    name = "syslog"

    def __init__(self, formatter: Formatter, address: str = "/dev/log", facility: str = "user",
                 ident: str = "falconet"):
        super().__init__()
        if facility not in FACILITIES:
            raise OutputError(f"syslog_output.facility: unknown facility {facility!r} "
                              f"(expected one of: {', '.join(FACILITIES)})")
        self.formatter = formatter
        self.facility = FACILITIES[facility]
        self.ident = ident
        self.address = address
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        if "://" in address:
            u = urllib.parse.urlsplit(address)
            if u.scheme not in ("udp", "tcp") or not u.hostname or not u.port:
                raise OutputError(f"syslog_output.address: {address!r}: expected a unix socket "
                                  "path, udp://host:port or tcp://host:port")
            self.kind, self.target = u.scheme, (u.hostname, u.port)
        else:
            self.kind, self.target = "unix", address

    def start(self) -> None:
        if self.kind == "unix" and not os.path.exists(self.target):
            raise OutputError(f"syslog_output.address: {self.target} does not exist "
                              "(is a syslog daemon running?)")
        with self._lock:
            self._connect()

    def _connect(self) -> socket.socket:
        if self.kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        elif self.kind == "udp":
            s = socket.socket(socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET,
                              socket.SOCK_DGRAM)
        else:
            s = socket.create_connection(self.target, timeout=5)
        try:
            if self.kind != "tcp":
                s.connect(self.target)
        except OSError as e:
            s.close()
            raise OutputError(f"syslog_output.address: cannot connect to {self.address}: "
                              f"{e.strerror}") from None
        self._sock = s
        return s

    def message(self, alert: Alert) -> bytes:
        """One RFC 3164 message: ``<PRI>Mmm dd hh:mm:ss ident[pid]: line``."""
        pri = self.facility * 8 + int(alert.priority)
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(alert.time_ns // 1_000_000_000))
        msg = f"<{pri}>{stamp} {self.ident}[{os.getpid()}]: {self.formatter.line(alert)}"
        return (msg + "\n").encode() if self.kind == "tcp" else msg.encode()

    def deliver(self, alert: Alert) -> None:
        data = self.message(alert)
        with self._lock:
            for attempt in range(2):
                sock = self._sock or self._connect()
                try:
                    sock.sendall(data) if self.kind == "tcp" else sock.send(data)
                    return
                except OSError:
                    # The daemon restarted (or the TCP peer went away): reconnect once.
                    sock.close()
                    self._sock = None
                    if attempt:
                        raise

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
