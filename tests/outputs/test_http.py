"""The HTTP channel against real servers on loopback: a falcosidekick look-alike that applies
sidekick's payload check, a flaky one (5xx), a stalled one (accepts, never answers), and
HTTPS with mutual TLS."""

from __future__ import annotations

import gzip
import http.server
import json
import re
import socket
import ssl
import threading
import time

import pytest

from collector.alert import Alert, Priority
from collector.errors import ConfigError, OutputError
from collector.outputs import DROP_RULE

from .conftest import Probe, config, make_alert, wait_for

PRIORITIES = {"emergency", "alert", "critical", "error", "warning", "notice", "informational",
              "info", "debug"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def sidekick_check(body: bytes) -> bool:
    """falcosidekick's FalcoPayload.Check(): what makes it answer 400."""
    try:
        p = json.loads(body)
    except ValueError:
        return False
    return (isinstance(p, dict)
            and str(p.get("priority", "")).lower() in PRIORITIES
            and bool(p.get("rule"))
            and bool(RFC3339.match(str(p.get("time", "")))) and not str(p["time"]).startswith("0001")
            and isinstance(p.get("output_fields"), dict) and len(p["output_fields"]) > 0)


class Sidekick(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fail_first: int = 0, status: int = 503):
        self.received: list[dict] = []
        self.headers_seen: list[dict] = []
        self.rejected = 0
        self.connections = 0
        self.fail_first = fail_first
        self.fail_status = status
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *a):
        pass

    def _answer(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        srv = self.server
        with srv.lock:
            if srv.fail_first > 0:
                srv.fail_first -= 1
                return self._answer(srv.fail_status, b"try later")
            srv.headers_seen.append(dict(self.headers))
        if not sidekick_check(body):
            with srv.lock:
                srv.rejected += 1
            return self._answer(400, b"Please send a valid request body")
        with srv.lock:
            srv.received.append(json.loads(body))
        self._answer(200, b"")


@pytest.fixture
def sidekick():
    servers = []

    def make(**kw):
        s = Sidekick(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def test_sidekick_accepts_every_alert_on_one_connection(managers, sidekick):
    sk = sidekick()
    m = managers(config("http_output.enabled=true", f"http_output.url={sk.url}",
                        "http_output.headers={X-Tenant: blue, Authorization: Bearer t0k}"))
    m.start()
    for i in range(20):
        m.emit(make_alert(i))
    assert wait_for(lambda: len(sk.received) == 20)
    assert sk.rejected == 0 and sk.connections == 1  # keep-alive
    p = sk.received[7]
    assert p["rule"] == "Read sensitive file" and p["priority"] == "Warning"
    assert p["output_fields"]["n"] == 7 and p["output_fields"]["k8s.pod.name"] is None
    assert p["time"] == "2025-04-02T15:15:03.434319643Z" and p["hostname"] == "node1"
    assert p["source"] == "syscall" and p["tags"] == ["T1555", "filesystem"]
    h = sk.headers_seen[0]
    assert h["Content-Type"] == "application/json" and h["User-Agent"] == "falcosecurity/falco"
    assert h["X-Tenant"] == "blue" and h["Authorization"] == "Bearer t0k"
    assert m.stats()["http"]["delivered"] == 20


def test_output_fields_always_sent_so_sidekick_never_rejects(managers, sidekick):
    """Falco drops output_fields with json_include_output_fields_property=false and sidekick
    then answers 400; Falconet's HTTP body always carries them (never empty)."""
    sk = sidekick()
    m = managers(config("http_output.enabled=true", f"http_output.url={sk.url}",
                        "json_output=false", "json_include_output_fields_property=false"))
    m.start()
    m.emit(make_alert(1))
    m.emit(Alert(time_ns=1, rule="Falconet internal: test", priority=Priority.INFORMATIONAL,
                 output="no fields at all", source="internal"))
    assert wait_for(lambda: len(sk.received) == 2)
    assert sk.rejected == 0
    assert sk.received[1]["output_fields"] == {"evt.time": 1}
    assert sk.received[1]["source"] == "internal"


def test_5xx_is_retried_with_backoff(managers, sidekick):
    sk = sidekick(fail_first=2)
    m = managers(config("http_output.enabled=true", f"http_output.url={sk.url}",
                        "http_output.retry_backoff=0.01"))
    m.start()
    m.emit(make_alert(1))
    assert wait_for(lambda: len(sk.received) == 1)
    s = m.stats()["http"]
    assert s["retries"] == 2 and s["status_5xx"] == 2 and s["errors"] == 0


def test_4xx_is_not_retried(managers, sidekick):
    sk = sidekick(fail_first=1, status=403)
    m = managers(config("http_output.enabled=true", f"http_output.url={sk.url}",
                        "http_output.retry_backoff=0.01"))
    m.start()
    m.emit(make_alert(1))
    m.emit(make_alert(2))
    assert wait_for(lambda: len(sk.received) == 1)
    s = m.stats()["http"]
    assert s["errors"] == 1 and s["retries"] == 0 and s["status_4xx"] == 1
    assert "403" in s["last_error"]
    assert sk.received[0]["output_fields"]["n"] == 2


def test_connection_refused_is_retried_then_counted(managers):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    m = managers(config("http_output.enabled=true", f"http_output.url=http://127.0.0.1:{port}/",
                        "http_output.retries=2", "http_output.retry_backoff=0.01"))
    m.start()
    m.emit(make_alert(1))
    assert wait_for(lambda: m.stats()["http"]["errors"] == 1)
    assert m.stats()["http"]["retries"] == 2


def test_gzip_upload(managers, sidekick):
    sk = sidekick()
    m = managers(config("http_output.enabled=true", f"http_output.url={sk.url}",
                        "http_output.compress_uploads=true"))
    m.start()
    m.emit(make_alert(3))
    assert wait_for(lambda: len(sk.received) == 1)
    assert sk.headers_seen[0]["Content-Encoding"] == "gzip"


class Stalled:
    """Accepts connections and reads requests but never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.conns: list[socket.socket] = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def close(self):
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


def test_stalled_endpoint_never_blocks_capture_and_drops_are_counted(managers):
    stalled = Stalled()
    try:
        m = managers(config("http_output.enabled=true", f"http_output.url={stalled.url}",
                            "http_output.timeout=30", "http_output.queue_capacity=50",
                            "outputs_queue.drop_alert_interval=0.2"))
        fast = Probe("fast")
        m.add_channel(fast)
        m.start()
        n = 20000
        worst = 0.0
        t0 = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            m.emit(make_alert(i))
            worst = max(worst, time.perf_counter() - t)
        total = time.perf_counter() - t0
        # Capture went on at full speed: no emit waited on the hung endpoint.
        assert total < 5.0 and worst < 0.25, (total, worst)
        assert wait_for(lambda: len(fast.got) >= n)
        s = m.stats()["http"]
        assert s["delivered"] == 0 and s["queued"] <= 50
        assert s["dropped"] >= n - 51
        # The drop was reported by an internal alert, which reached the healthy channel.
        assert wait_for(lambda: any(a.rule == DROP_RULE for a in fast.got), timeout=5)
        drop = next(a for a in fast.got if a.rule == DROP_RULE)
        assert drop.source == "internal" and int(drop.output_fields["n_drops_http"]) > 0
        assert 'falconet_outputs_drops_total{channel="http"}' in m.metrics_text()
        # close() does not hang on the stalled endpoint either.
        t = time.perf_counter()
        m.close(timeout=1)
        assert time.perf_counter() - t < 5
        assert m.stats()["http"]["queued"] == 0
    finally:
        stalled.close()


def test_https_with_mutual_tls(managers, certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["server_crt"], certs["server_key"])
    ctx.load_verify_locations(certs["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv = Sidekick()
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    url = f"https://localhost:{srv.server_address[1]}/"
    try:
        m = managers(config("http_output.enabled=true", f"http_output.url={url}",
                            f"http_output.ca_cert={certs['ca']}", "http_output.mtls=true",
                            f"http_output.client_cert={certs['client_crt']}",
                            f"http_output.client_key={certs['client_key']}"))
        m.start()
        m.emit(make_alert(1))
        assert wait_for(lambda: len(srv.received) == 1)
        # Without the client certificate the server refuses the handshake.
        m2 = managers(config("http_output.enabled=true", f"http_output.url={url}",
                             f"http_output.ca_cert={certs['ca']}", "http_output.retries=0"))
        m2.start()
        m2.emit(make_alert(2))
        assert wait_for(lambda: m2.stats()["http"]["errors"] == 1)
        assert len(srv.received) == 1
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("override, message", [
    ("http_output.url=", "'http_output.url' must be set"),
    ("http_output.url=ftp://x/", "http_output.url: 'ftp://x/' is not an http"),
    ("http_output.retries=-1", "'http_output.retries' must be zero or more"),
    ("http_output.timeout=fast", "'http_output.timeout' must be a number"),
    ("http_output.format=xml", "'http_output.format' must be json or text"),
    ("http_output.headers=[a]", "'http_output.headers' must be a mapping"),
])
def test_http_config_errors_name_the_key(managers, override, message):
    with pytest.raises((ConfigError, OutputError), match=re.escape(message)):
        managers(config("http_output.enabled=true", "http_output.url=http://127.0.0.1:9/",
                        override))


def test_mtls_with_missing_files_names_the_key(managers, tmp_path):
    with pytest.raises(OutputError, match="http_output.client_cert"):
        managers(config("http_output.enabled=true", "http_output.url=https://127.0.0.1:9/",
                        "http_output.mtls=true", f"http_output.client_cert={tmp_path}/none.crt",
                        f"http_output.client_key={tmp_path}/none.key"))


def test_server_closing_idle_keepalive_connections_is_not_an_error(managers, sidekick):
    sk = sidekick()
    orig = _Handler._answer

    def answer_and_hang_up(self, status, text):
        orig(self, status, text)
        self.close_connection = True  # closes without saying "Connection: close"

    _Handler._answer = answer_and_hang_up
    try:
        m = managers(config("http_output.enabled=true", f"http_output.url={sk.url}"))
        m.start()
        for i in range(5):
            m.emit(make_alert(i))
            assert wait_for(lambda i=i: len(sk.received) == i + 1)
            time.sleep(0.02)
    finally:
        _Handler._answer = orig
    s = m.stats()["http"]
    assert s["delivered"] == 5 and s["errors"] == 0 and s["retries"] == 0
    assert sk.connections == 5


def test_text_format_is_falcos_text_body(managers, sidekick):
    """format: text sends Falco's text line as text/plain -- which falcosidekick rejects,
    as it does with Falco and json_output: false (documented; counted as a 4xx error)."""
    sk = sidekick()
    m = managers(config("http_output.enabled=true", f"http_output.url={sk.url}",
                        "http_output.format=text"))
    m.start()
    m.emit(make_alert(1))
    assert wait_for(lambda: m.stats()["http"]["errors"] == 1)
    assert sk.rejected == 1 and sk.headers_seen[0]["Content-Type"] == "text/plain"
    assert m.stats()["http"]["status_4xx"] == 1
