"""The HTTP channel: Falco's ``http_output``, one POST per alert, falcosidekick-compatible.

Payload (the body of every request, ``Content-Type: application/json``): one alert as Falco's
JSON line, keys sorted -- ``hostname``, ``output``, ``output_fields``, ``priority``, ``rule``,
``source``, ``tags``, ``time`` -- with ``json_include_output_property`` /
``json_include_tags_property`` / ``json_include_message_property`` honoured.  Unlike Falco,
``output_fields`` is *always* present and never empty (``evt.time`` is added when an alert has
no fields): falcosidekick rejects a body without it (``400 Please send a valid request body``),
which with Falco happens silently when ``json_output`` is false.  ``http_output.format: text``
restores Falco's text body (``Content-Type: text/plain``) for endpoints that want it.

Delivery: a keep-alive connection (``keep_alive: true``) or one per request; custom
``headers``; TLS verification with ``ca_cert``/``ca_bundle``/``ca_path`` (or ``insecure``);
mutual TLS with ``mtls`` + ``client_cert``/``client_key``; gzip with ``compress_uploads``.
5xx answers, connection errors and timeouts are retried with exponential back-off up to
``retries`` times (timeouts at most ``max_consecutive_timeouts`` times); a 4xx answer is not
retried.  Either way the error is counted by the manager and the next alert goes on.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import socket
import ssl
import threading
import urllib.parse

from ..alert import Alert
from ..errors import OutputError
from .base import Channel, Formatter

log = logging.getLogger("falconet.outputs.http")


class HttpStatusError(OutputError):
    def __init__(self, status: int, reason: str):
        super().__init__(f"http_output: server answered {status} {reason}")
        self.status = status


class HttpChannel(Channel):
    name = "http"

    def __init__(self, formatter: Formatter, url: str, *, user_agent: str = "falcosecurity/falco",
                 headers: dict[str, str] | None = None, timeout: float = 5.0,
                 keep_alive: bool = True, compress: bool = False, echo: bool = False,
                 text_body: bool = False, retries: int = 3, backoff: float = 0.2,
                 max_backoff: float = 5.0, max_consecutive_timeouts: int = 5,
                 ssl_context: ssl.SSLContext | None = None):
        super().__init__()
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise OutputError(f"http_output.url: {url!r} is not an http:// or https:// URL")
        self.url = url
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        self.formatter = formatter
        self.timeout = timeout
        self.keep_alive = keep_alive
        self.compress = compress
        self.echo = echo
        self.text_body = text_body
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_timeouts = max_consecutive_timeouts
        self.ssl_context = ssl_context
        self.headers = {"User-Agent": user_agent,
                        "Content-Type": "text/plain" if text_body else "application/json"}
        if compress:
            self.headers["Content-Encoding"] = "gzip"
        if not keep_alive:
            self.headers["Connection"] = "close"
        self.headers.update(headers or {})
        self._conn: http.client.HTTPConnection | None = None
        self._closed = threading.Event()
        self.extra_stats.update(retries=0, status_4xx=0, status_5xx=0, timeouts=0)

    def body(self, alert: Alert) -> bytes:
        """The exact bytes POSTed for ``alert`` (see the module docstring)."""
        if self.text_body:
            data = self.formatter.text(alert).encode()
        else:
            if not alert.output_fields:
                alert = _with_evt_time(alert)
            data = self.formatter.json(alert, force_output_fields=True).encode()
        return gzip.compress(data) if self.compress else data

    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _post_once(self, data: bytes) -> None:
        reused = self._conn is not None
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            conn.request("POST", self.path, body=data, headers=self.headers)
            resp = conn.getresponse()
            payload = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self._drop_conn()
            if not reused:
                raise
            # The server closed an idle keep-alive connection: that is not a failure of
            # the endpoint, so try once more on a fresh connection right away.
            self._post_once(data)
            return
        except BaseException:
            self._drop_conn()
            raise
        if not self.keep_alive or resp.will_close:
            self._drop_conn()
        if self.echo and payload:
            log.info("http_output: %s answered: %s", self.url, payload.decode(errors="replace"))
        if resp.status >= 300:
            raise HttpStatusError(resp.status, resp.reason)

    def _drop_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def deliver(self, alert: Alert) -> None:
        data = self.body(alert)
        attempt = 0
        timeouts = 0
        delay = self.backoff
        while True:
            try:
                self._post_once(data)
                return
            except HttpStatusError as e:
                if e.status < 500:
                    self.extra_stats["status_4xx"] += 1
                    raise
                self.extra_stats["status_5xx"] += 1
                err: Exception = e
            except TimeoutError as e:
                self.extra_stats["timeouts"] += 1
                timeouts += 1
                err = OutputError(f"http_output: {self.url}: timed out after {self.timeout:g} s")
                if timeouts >= self.max_timeouts:
                    raise err from e
            except (OSError, http.client.HTTPException) as e:
                err = OutputError(f"http_output: {self.url}: {e}")
            attempt += 1
            if attempt > self.retries or self._closed.is_set():
                raise err
            self.extra_stats["retries"] += 1
            # Back off without holding up close(): the wait ends early when closing.
            if self._closed.wait(delay):
                raise err
            delay = min(self.max_backoff, delay * 2)

    def close(self) -> None:
        self._closed.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # Unblocks a worker stuck reading from a stalled server.
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _with_evt_time(alert: Alert) -> Alert:
    from dataclasses import replace
    return replace(alert, output_fields={"evt.time": alert.time_ns})


def build_ssl_context(section, insecure: bool) -> ssl.SSLContext:
    """The TLS context for https:// URLs from ``http_output.*`` keys (errors name the key)."""
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cafile = section.get("ca_cert", str, "") or section.get("ca_bundle", str, "")
    capath = section.get("ca_path", str, "")
    key = section.key("ca_cert") if section.get("ca_cert", str, "") else section.key("ca_bundle")
    try:
        if cafile:
            ctx.load_verify_locations(cafile=cafile)
        if capath:
            key = section.key("ca_path")
            ctx.load_verify_locations(capath=capath)
        if section.get("mtls", bool, False):
            cert = section.get("client_cert", str, "")
            pkey = section.get("client_key", str, "")
            key = section.key("client_cert")
            if not cert or not pkey:
                raise OutputError(f"{key}: http_output.mtls needs client_cert and client_key")
            ctx.load_cert_chain(cert, pkey)
    except (OSError, ssl.SSLError) as e:
        raise OutputError(f"{key}: cannot load TLS material: {e}") from None
    return ctx
