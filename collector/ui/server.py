"""The HTTP server of ``falconet ui``: receiver, pages, JSON API and live stream.

Routes (all under ``webui.url_prefix`` when one is set; see API.md for the API):

    POST /  and /api/v1/events/add   falcosidekick-compatible receiver (token or loopback)
    GET  /healthz, /api/v1/healthz   {"status": "ok"}, no authentication
    GET  /ping                       "pong", no authentication
    GET  /login, POST /login         sign in; POST /logout signs out (CSRF-protected)
    GET  /, /events, /events/<uuid>  dashboard, events table, alert detail (session)
    GET  /api/v1/...                 JSON API (session cookie, or HTTP Basic with the admin password)
    GET  /static/<file>              the front end (plain JS and CSS)
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ..errors import FalconetError, OutputError
from . import api, pages
from .auth import Auth, RateLimiter, Session
from .ingest import SIDEKICK_MESSAGE, PayloadError, parse_payload
from .live import LiveHub
from .query import QueryError
from .settings import UISettings, normalize_prefix
from .sessions import SessionRoutes
from .store import Store

log = logging.getLogger("falconet.ui")

_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".md": "text/markdown; charset=utf-8"}
_FORWARD_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


def _ignore_sigpipe() -> None:
    """A browser closing a live-update stream must cost a BrokenPipeError, not the process.

    `falconet`'s entry point restores the default SIGPIPE action (so `falconet ... | head`
    ends quietly); a server cannot live with that.  Only the main thread may change it.
    """
    if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


class UIServer:
    """The web UI: bind with the constructor, then ``start()`` (thread) or ``serve_forever()``."""

    def __init__(self, settings: UISettings, store: Store | None = None, auth: Auth | None = None):
        self.settings = settings
        self.owns_store = store is None
        self.store = store or Store(settings.db_path, settings.max_age_s, settings.max_events,
                                    settings.retention_interval_s, settings.synchronous).start()
        self.auth = auth or Auth(self.store, settings.username, settings.password_hash,
                                 settings.ingest_tokens, settings.session_ttl_s,
                                 RateLimiter(settings.login_max_failures, settings.login_window_s))
        self.hub = LiveHub(self.store.last_id())
        self.store.add_listener(self.hub.publish)
        self.tls = bool(settings.tls_certificate)
        handler = type("Handler", (_Handler,), {"ui": self})
        cls = _HTTPServer6 if ":" in settings.listen_address else _HTTPServer
        try:
            self.httpd = cls((settings.listen_address, settings.listen_port), handler)
        except OSError as e:
            if self.owns_store:
                self.store.close()
            what = "port in use" if e.errno == 98 else (e.strerror or str(e))
            raise OutputError(f"web UI: cannot listen on {settings.listen_address}:"
                              f"{settings.listen_port}: {what}") from None
        if self.tls:
            try:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                ctx.load_cert_chain(settings.tls_certificate, settings.tls_key)
            except (OSError, ssl.SSLError) as e:
                self.httpd.server_close()
                if self.owns_store:
                    self.store.close()
                raise OutputError(f"web UI: cannot load webui.tls certificate/key: {e}") from None
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None
        _ignore_sigpipe()
        self._basic_cache: dict[str, float] = {}

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.settings.listen_address
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{self.settings.url_prefix}/"

    def start(self) -> UIServer:
        self._thread = threading.Thread(target=self.serve_forever, name="webui-http", daemon=True)
        self._thread.start()
        return self

    poll_interval = 0.5      # how soon close() is noticed

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=self.poll_interval)

    def close(self) -> None:
        self.hub.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self.owns_store:
            self.store.close()

    def basic_ok(self, header: str, client: str) -> tuple[bool, float]:
        """Check ``Authorization: Basic``; (ok, seconds to wait when rate-limited)."""
        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (ValueError, IndexError, UnicodeDecodeError):
            return False, 0.0
        key = hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()
        if self._basic_cache.get(key, 0) > time.monotonic():
            return True, 0.0
        wait = self.auth.limiter.check(client)
        if wait:
            return False, wait
        if self.auth.check_password(user, password):
            self.auth.limiter.success(client)
            self._basic_cache = {k: v for k, v in self._basic_cache.items() if v > time.monotonic()}
            self._basic_cache[key] = time.monotonic() + 60
            return True, 0.0
        self.auth.limiter.failure(client)
        return False, 0.0


class _Handler(SessionRoutes, BaseHTTPRequestHandler):
    ui: UIServer
    server_version = "falconet-ui"
    protocol_version = "HTTP/1.1"

    # -- plumbing --------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle's algorithm and the
        # peer's delayed ACK add ~40 ms to every small response on a keep-alive connection.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], fmt % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path or "/"
        prefix = self.ui.settings.url_prefix
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix):] or "/"
        self.route = path
        self.params = parse_qs(parts.query, keep_blank_values=False)
        self._session: Session | None = None
        self._session_token: str | None = None
        self._body_read = False
        try:
            self._route(method, path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except QueryError as e:
            self._json(400, {"error": str(e)})
        except FalconetError as e:
            log.error("%s %s: %s", method, path, e)
            self._json(503, {"error": str(e)})
        except Exception:
            log.exception("%s %s failed", method, path)
            self._json(500, {"error": "internal error (see the server log)"})

    def _send(self, status: int, body: bytes, ctype: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self._security_headers()
        for k, v in headers:
            self.send_header(k, v)
        if not self._body_read and (self.headers.get("Content-Length", "0") not in ("", "0")
                                    or self.headers.get("Transfer-Encoding")):
            # Answered without reading the body (e.g. 401): it must not be taken for the next
            # request on a keep-alive connection.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _security_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", pages.CSP)
        self.send_header("Cache-Control", "no-store")

    def _json(self, status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        pretty = (self.params.get("pretty") or [""])[-1] == "true" if hasattr(self, "params") else False
        body = json.dumps(obj, ensure_ascii=False, indent=2 if pretty else None).encode()
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _text(self, status: int, text: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8", headers)

    def _html(self, status: int, text: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8", headers)

    def _redirect(self, location: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._send(303, b"", "text/plain", [("Location", location), *headers])

    def _body(self) -> bytes | None:
        """The request body, or None after answering 411/413."""
        self._body_read = True
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._chunked()
            self._text(411, "Content-Length required\n")
            self.close_connection = True
            return None
        if length > self.ui.settings.max_body_bytes:
            self._text(413, f"body larger than {self.ui.settings.max_body_bytes} bytes\n")
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _chunked(self) -> bytes | None:
        data = bytearray()
        while True:
            try:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self._text(400, "malformed chunked body\n")
                self.close_connection = True
                return None
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()
            if len(data) > self.ui.settings.max_body_bytes:
                self._text(413, f"body larger than {self.ui.settings.max_body_bytes} bytes\n")
                self.close_connection = True
                return None

    # -- who is asking ---------------------------------------------------------------------

    @property
    def base(self) -> str:
        """The external path prefix ending in '/', for <base href> and redirects."""
        prefix = self.ui.settings.url_prefix
        if not prefix:
            try:
                prefix = normalize_prefix(self.headers.get("X-Forwarded-Prefix", ""))
            except ValueError:
                prefix = ""
        return prefix + "/"

    def _client_is_loopback(self) -> bool:
        if any(self.headers.get(h) for h in _FORWARD_HEADERS):
            return False        # relayed by a proxy: the real client is elsewhere
        try:
            ip = ipaddress.ip_address(self.client_address[0])
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)      # ::ffff:127.0.0.1 on a dual-stack bind
        return (mapped or ip).is_loopback

    # -- routing ---------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> None:
        if path in ("/healthz", "/api/v1/healthz"):
            return self._json(200, {"status": "ok"})
        if path == "/favicon.ico":
            return self._static("favicon.svg")
        if path == "/ping":
            return self._text(200, "pong\n")
        if method == "POST" and path in ("/", "/api/v1/events/add", "/api/v1/"):
            return self._ingest()
        if method == "GET" and path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/login":
            if method == "GET":
                return self._login_form()
            return self._login() if method == "POST" else self._405()
        if path == "/logout" and method == "POST":
            return self._logout()
        if path.startswith("/api/"):
            return self._api(method, path)
        if method != "GET":
            return self._405()
        page, event_uuid = None, ""
        if path in ("/", "/dashboard"):
            page = "dashboard"
        elif path in ("/events", "/events/"):
            page = "events"
        elif path.startswith("/events/") and path.count("/") == 2:
            page, event_uuid = "detail", path.split("/")[2]
        if page is None:
            return self._html(404, pages.error_page(self.base, 404, "No such page."))
        session = self._load_session()
        if session is None:
            nxt = path + (("?" + urlsplit(self.path).query) if urlsplit(self.path).query else "")
            return self._redirect(self.base + "login?next=" + quote(nxt, safe=""))
        self._html(200, pages.app_page(self.base, session.csrf, page, session.username, event_uuid))

    def _405(self) -> None:
        self._text(405, "method not allowed\n", [("Allow", "GET, POST")])

    def _static(self, name: str) -> None:
        if not name or "/" in name or name.startswith("."):
            return self._text(404, "not found\n")
        resource = resources.files("collector.ui").joinpath("static", name)
        ext = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        if ext not in _STATIC_TYPES or not resource.is_file():
            return self._text(404, "not found\n")
        self._send(200, resource.read_bytes(), _STATIC_TYPES[ext])

    # -- receiver --------------------------------------------------------------------------

    def _ingest(self) -> None:
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        token = token or self.headers.get("X-Falconet-Token") or (self.params.get("token") or [None])[-1]
        if token:
            if not self.ui.auth.check_token(token):
                return self._text(401, "invalid ingestion token\n")
        elif not (self.ui.settings.trust_loopback and self._client_is_loopback()):
            return self._text(401, "ingestion needs a token: send 'Authorization: Bearer <token>' or "
                                   "add ?token=<token> to the URL (falconet ui --token-create NAME)\n")
        elif (self.headers.get("Origin")
              or self.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin")):
            # A web page in a local browser must not be able to inject alerts.
            return self._text(403, "ingestion from a web page needs a token\n")
        body = self._body()
        if body is None:
            return
        try:
            record = parse_payload(body)
        except PayloadError as e:
            return self._text(400, f"{SIDEKICK_MESSAGE}: {e}\n")
        self.ui.store.add([record])      # returns once committed: 200 means stored
        self._json(200, {"status": "ok", "uuid": record["uuid"]})

    # -- API -------------------------------------------------------------------------------

    def _api(self, method: str, path: str) -> None:
        store = self.ui.store
        if method == "POST" and path == "/api/v1/password":
            return self._change_password()
        if method != "GET":
            return self._405()
        user = self._api_user()
        if user is None:
            return
        if path == "/api/v1/events/search":
            return self._json(200, api.search(store, self.params))
        if path == "/api/v1/events/count":
            return self._json(200, api.count(store, self.params))
        if path.startswith("/api/v1/events/count/"):
            return self._json(200, api.count_by(store, path.rsplit("/", 1)[1], self.params))
        if path == "/api/v1/events/timeline":
            return self._json(200, api.timeline(store, self.params))
        if path == "/api/v1/events/export":
            return self._export()
        if path == "/api/v1/events/stream":
            return self._stream()
        if path.startswith("/api/v1/events/") and path.count("/") == 4:
            rec = store.get(path.rsplit("/", 1)[1])
            if rec is None:
                return self._json(404, {"error": "no such alert (removed by retention?)"})
            return self._json(200, api.event_detail(rec))
        if path == "/api/v1/info":
            return self._json(200, api.info(store, self.ui.settings, user))
        if path == "/api/v1/docs":
            doc = resources.files("collector.ui").joinpath("static", "API.md").read_bytes()
            return self._send(200, doc, _STATIC_TYPES[".md"])
        self._json(404, {"error": f"no API endpoint {path}"})

    def _export(self) -> None:
        fmt, filename = api.export_name(self.params)
        chunks = api.export(self.ui.store, self.params)
        first = next(chunks)            # raises QueryError before any header is sent
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8" if fmt == "json"
                         else "text/csv; charset=utf-8")
        self.send_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.send_header("Connection", "close")
        self._security_headers()
        self.end_headers()
        self.close_connection = True
        self.wfile.write(first)
        for chunk in chunks:
            self.wfile.write(chunk)

    def _stream(self) -> None:
        """Server-Sent Events: ``alerts`` with the newest id whenever alerts are stored."""
        hub = self.ui.hub
        try:
            after = int(self.headers.get("Last-Event-ID") or (self.params.get("after_id") or ["-1"])[-1])
        except ValueError:
            after = -1
        if after < 0:
            after = hub.last_id
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Connection", "close")
        self._security_headers()
        self.end_headers()
        self.close_connection = True
        self.wfile.write(f"retry: 3000\nevent: hello\ndata: {json.dumps({'last_id': after})}\n\n".encode())
        self.wfile.flush()
        token = self._session_token
        while not hub.closed:
            last = hub.wait(after, 15.0)
            if hub.closed:
                break
            if token and self.ui.auth.get_session(token) is None:
                break                   # signed out or expired
            if last > after:
                msg = f"id: {last}\nevent: alerts\ndata: {json.dumps({'last_id': last})}\n\n"
                after = last
                time.sleep(0.05)        # coalesce bursts into one notification
            else:
                msg = ": keepalive\n\n"
            self.wfile.write(msg.encode())
            self.wfile.flush()
