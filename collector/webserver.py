"""The embedded web server, as Falco's: ``/healthz``, ``/versions`` and Prometheus ``/metrics``.

Configured by the ``webserver.*`` keys Falco uses (``enabled``, ``listen_address``,
``listen_port``, ``k8s_healthz_endpoint``, ``prometheus_metrics_enabled``, ``ssl_enabled``,
``ssl_certificate``, ``threadiness``), so a Falco deployment's probes, falcoctl's
``falcoversions`` URL and Prometheus scrape configs carry over:

* ``GET <k8s_healthz_endpoint>`` (default ``/healthz``): ``{"status": "ok"}``, as Falco;
* ``GET /versions``: JSON with Falconet's version, the Falco rules-engine version it implements
  under Falco's keys (``engine_version`` = the minor number as a string,
  ``engine_version_semver``; what falcoctl compares rules artifacts against), the kernel ABI
  version and the decoder backend;
* ``GET /metrics`` (only with ``prometheus_metrics_enabled``, as in Falco; 404 otherwise):
  Prometheus text format 0.0.4.  Where Falco has a metric for the same thing its name is used
  (``falcosecurity_falco_rules_matches_total{rule_name,priority,source,tag_*}``,
  ``falcosecurity_falco_outputs_queue_num_drops_total``, ``falcosecurity_scap_n_evts_total``,
  ``falcosecurity_scap_n_drops_cpu_total{cpu}`` ...); Falconet's own are ``falconet_*``
  (events read, skipped and dropped by cause, alerts by priority, rule-evaluation time,
  per-channel output queues).

The server is a stdlib ``ThreadingHTTPServer`` on a daemon thread; every request reads a
snapshot of counters (:meth:`collector.pipeline.Pipeline.snapshot`, ``OutputManager.stats``),
so scraping never slows capture down.  A port in use or a bad address is one OutputError
naming the address and the keys, raised by :meth:`WebServer.start`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import __version__
from .config import Config
from .errors import ConfigError, OutputError

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 8765
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
# The kernel module's per-CPU drop counters (collector.sources.live.STAT_KEYS) by cause.
KERNEL_DROP_CAUSES = ("drops_full", "drops_fault", "drops_toolong", "drops_compat")


# -- versions -------------------------------------------------------------------------------

def engine_version() -> tuple[int, int, int]:
    """The Falco rules-engine version whose language the rules engine implements."""
    try:
        from .rules.collector import ENGINE_VERSION
        major, minor, patch = (int(x) for x in ENGINE_VERSION)
        return major, minor, patch
    except (ImportError, ValueError, TypeError):
        return 0, 0, 0


def versions() -> dict[str, str]:
    """What ``/versions`` answers: Falco's engine keys plus Falconet's own.  Every value is a
    string, as falcoctl reads the answer into a map of strings (its FalcoVersions)."""
    major, minor, patch = engine_version()
    info: dict[str, str] = {
        "falconet_version": __version__,
        # Falco's two keys, read by falcoctl to match rules artifacts' requirements.
        "engine_version": str(minor),
        "engine_version_semver": f"{major}.{minor}.{patch}",
        "python_version": platform.python_version(),
    }
    try:
        from . import abi, native
        info["abi_version"] = str(abi.ABI_VERSION)
        info["abi_layout_hash"] = f"{abi.LAYOUT_HASH:#018x}"
        info["backend"] = native.BACKEND
    except ImportError:
        pass
    return info


# -- Prometheus text ------------------------------------------------------------------------

def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


class MetricsText:
    """Prometheus exposition text, one HELP/TYPE header per metric family."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str,
               samples: Iterable[tuple[dict[str, Any], Any]]) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{inner}}} {_num(value)}")
            else:
                self.lines.append(f"{name} {_num(value)}")

    def one(self, name: str, kind: str, help_: str, value: Any, **labels: Any) -> None:
        self.family(name, kind, help_, [(labels, value)])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""


def _kernel_counters(src: dict[str, Any]) -> dict[str, Any] | None:
    """The live source's kernel counters (``per_cpu`` list), directly or under ``producer``
    (a DecodingSource wrapping the LiveSource); None for sources without a kernel."""
    for s in (src, src.get("producer")):
        if isinstance(s, dict) and isinstance(s.get("per_cpu"), list):
            return s
    return None


def render_metrics(snap: dict[str, Any], *, engine_stats: dict[str, Any] | None = None,
                   outputs_stats: dict[str, dict[str, Any]] | None = None,
                   outputs_text: str = "", hostname: str = "", kernel_release: str = "",
                   start_ns: int = 0, now_ns: int | None = None) -> str:
    """The ``/metrics`` text from a pipeline snapshot (see Pipeline.snapshot) and the outputs'
    and the engine's stats."""
    m = MetricsText()
    now_ns = time.time_ns() if now_ns is None else now_ns
    ver = versions()
    major, minor, patch = engine_version()
    m.one("falconet_version_info", "gauge", "Falconet's version, rules-engine version, kernel "
          "ABI version and decoder backend.", 1, version=__version__,
          engine_version=f"{major}.{minor}.{patch}", abi_version=ver.get("abi_version", ""),
          backend=ver.get("backend", ""))
    m.one("falcosecurity_evt_hostname_info", "gauge", "The host name alerts carry.", 1,
          hostname=hostname)
    if kernel_release:
        m.one("falcosecurity_falco_kernel_release_info", "gauge",
              "The kernel release of the host the events come from.", 1,
              kernel_release=kernel_release)
    m.one("falcosecurity_falco_evt_source_info", "gauge", "Event sources.", 1,
          evt_source="syscall")
    m.one("falcosecurity_falco_host_num_cpus_total", "gauge", "CPUs of this host.",
          os.cpu_count() or 0)
    m.one("falcosecurity_falco_start_timestamp_nanoseconds", "gauge",
          "When this process started (epoch nanoseconds).", start_ns)
    m.one("falcosecurity_falco_duration_seconds_total", "counter",
          "Seconds since this process started.", max(0, (now_ns - start_ns) // 1_000_000_000))
    m.one("falconet_capture_finished", "gauge", "1 once the source has ended (a replay that "
          "is done, kept up by --serve), else 0.", bool(snap.get("finished")))

    # -- events, skips, drops ---------------------------------------------------------------
    src = snap.get("source") or {}
    m.one("falconet_events_total", "counter", "Events read from the source.",
          int(src.get("events", snap.get("events", 0))))
    m.one("falconet_batches_total", "counter", "Batches of events processed.",
          snap.get("batches", 0))
    skipped = src.get("skipped") or {}
    m.family("falconet_events_skipped_total", "counter",
             "Events the source read but could not use, by cause.",
             [({"cause": c}, n) for c, n in sorted(skipped.items())])
    kern = _kernel_counters(src)
    drops: list[tuple[dict[str, Any], Any]] = [
        ({"cause": "pipeline_queue_full"}, snap.get("queue_drops", 0))]
    if kern is not None:
        drops += [({"cause": "kernel_" + c}, int(kern.get("kernel_" + c, 0)))
                  for c in KERNEL_DROP_CAUSES]
    m.family("falconet_events_dropped_total", "counter", "Events lost, by cause: the "
             "pipeline's queue full (a live source that outran the engine) and the kernel "
             "module's drops (ring full, page fault, record too long, compat syscall).", drops)
    m.one("falconet_pipeline_queue_depth", "gauge", "Batches waiting between reader and "
          "engine.", snap.get("queue_depth", 0))
    m.one("falconet_pipeline_queue_capacity", "gauge", "Capacity of that queue, in batches.",
          snap.get("queue_capacity", 0))
    if kern is not None:
        per_cpu = kern.get("per_cpu") or []
        m.one("falcosecurity_scap_n_evts_total", "counter", "Events the kernel module "
              "captured.", int(kern.get("kernel_events", 0)))
        m.one("falcosecurity_scap_n_drops_total", "counter", "Events the kernel module "
              "dropped (all causes).", sum(int(kern.get("kernel_" + c, 0))
                                           for c in KERNEL_DROP_CAUSES))
        m.family("falcosecurity_scap_n_evts_cpu_total", "counter",
                 "Events the kernel module captured, per CPU.",
                 [({"cpu": c["cpu"]}, int(c.get("events", 0))) for c in per_cpu])
        m.family("falcosecurity_scap_n_drops_cpu_total", "counter",
                 "Events the kernel module dropped, per CPU.",
                 [({"cpu": c["cpu"]}, sum(int(c.get(k, 0)) for k in KERNEL_DROP_CAUSES))
                  for c in per_cpu])
        m.family("falconet_kernel_drops_cpu_total", "counter",
                 "Events the kernel module dropped, per CPU and cause.",
                 [({"cpu": c["cpu"], "cause": k[len("drops_"):]}, int(c.get(k, 0)))
                  for c in per_cpu for k in KERNEL_DROP_CAUSES])
        m.one("falconet_kernel_bytes_total", "counter", "Bytes the kernel module wrote into "
              "its rings.", int(kern.get("kernel_bytes", 0)))

    # -- rules and alerts ---------------------------------------------------------------------
    by_rule = snap.get("alerts_by_rule") or {}
    info = snap.get("rule_info") or {}
    samples = []
    for rule, n in sorted(by_rule.items()):
        prio, source, tags = info.get(rule, ("", "", ()))
        labels: dict[str, Any] = {"priority": prio, "rule_name": rule, "source": source}
        for t in tags:
            labels["tag_" + _LABEL_NAME.sub("_", str(t))] = "true"
        samples.append((labels, n))
    m.family("falcosecurity_falco_rules_matches_total", "counter", "Alerts raised, by rule "
             "(priority as Falco's number: 0 emergency .. 7 debug).", samples)
    m.family("falconet_alerts_total", "counter", "Alerts raised, by priority.",
             [({"priority": p}, n) for p, n in sorted((snap.get("alerts_by_priority") or {})
                                                      .items())])
    m.one("falconet_rule_evaluation_seconds_total", "counter", "Seconds spent matching rules "
          "(engine.process), cumulative.", float(snap.get("engine_seconds", 0.0)))
    m.one("falconet_rule_evaluation_batches_total", "counter", "Batches the rules were "
          "evaluated on.", snap.get("engine_batches", 0))
    m.one("falconet_state_enrich_seconds_total", "counter", "Seconds spent tracking process "
          "and file state (state.enrich), cumulative.", float(snap.get("enrich_seconds", 0.0)))
    if engine_stats:
        m.one("falconet_rules_loaded", "gauge", "Rules loaded.",
              int(engine_stats.get("rules_loaded", 0)))
        m.one("falconet_rules_enabled", "gauge", "Rules enabled.",
              int(engine_stats.get("rules_enabled", 0)))

    # -- outputs ------------------------------------------------------------------------------
    if outputs_stats is not None:
        m.one("falcosecurity_falco_outputs_queue_num_drops_total", "counter", "Alerts dropped "
              "by output channels whose queue was full (all channels).",
              sum(int(s.get("dropped", 0)) for s in outputs_stats.values()
                  if isinstance(s, dict)))
    return m.text() + outputs_text


# -- the server -----------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    server_version = "falconet/" + __version__
    sys_version = ""
    timeout = 30  # a client that stops sending (or never finishes a TLS handshake) is let go
    web: WebServer

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on stderr (Falco has none either)

    def _send(self, code: int, ctype: str, body: bytes, head: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        web = self.web
        path = self.path.split("?", 1)[0]
        try:
            if path == web.healthz_path:
                body = json.dumps({"status": "ok"}).encode()
                return self._send(200, "application/json", body, head)
            if path == "/versions":
                body = json.dumps(versions(), sort_keys=True).encode()
                return self._send(200, "application/json", body, head)
            if path == "/metrics" and web.prometheus:
                return self._send(200, PROMETHEUS_CONTENT_TYPE,
                                  web.metrics_text().encode(), head)
        except Exception as e:  # noqa: BLE001 - a broken counter must not kill the server
            body = f"falconet: {type(e).__name__}: {e}\n".encode()
            return self._send(500, "text/plain; charset=utf-8", body, head)
        self._send(404, "text/plain; charset=utf-8", b"not found\n", head)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up or failed the TLS handshake is its own problem


class WebServer:
    """Serves /healthz, /versions and /metrics for one running pipeline."""

    def __init__(self, cfg: Config, *, pipeline: Any = None, outputs: Any = None,
                 engine: Any = None, hostname: str | None = None,
                 kernel_release: str | None = None):
        from .outputs.base import Section
        sec = Section(cfg, "webserver")
        self.cfg = cfg
        self.pipeline = pipeline
        self.outputs = outputs
        self.engine = engine
        self.hostname = hostname or getattr(outputs, "hostname", None) or socket.gethostname()
        if kernel_release is None:
            # A replay reports the kernel of the host the capture was taken on.
            snap = getattr(getattr(pipeline, "source", None), "snapshot", None)
            kernel_release = (snap.get("kernel") if isinstance(snap, dict) else None) \
                or os.uname().release
        self.kernel_release = kernel_release
        self.enabled = sec.enabled(False)
        self.listen_address = sec.get("listen_address", str, "0.0.0.0") or "0.0.0.0"
        port = sec.get("listen_port", int, DEFAULT_PORT)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{cfg.source}: setting 'webserver.listen_port' must be a port "
                              f"number (0-65535), got {port!r}")
        self.listen_port = port
        path = sec.get("k8s_healthz_endpoint", str, "/healthz") or "/healthz"
        if not path.startswith("/"):
            raise ConfigError(f"{cfg.source}: setting 'webserver.k8s_healthz_endpoint' must be a "
                              f"path starting with /, got {path!r}")
        self.healthz_path = path
        self.prometheus = sec.get("prometheus_metrics_enabled", bool, False)
        self.threadiness = sec.positive("threadiness", int, 0, allow_zero=True)
        self.ssl_enabled = sec.get("ssl_enabled", bool, False)
        self.ssl_certificate = sec.get("ssl_certificate", str, "/etc/falconet/falconet.pem")
        self.start_ns = time.time_ns()
        self.port = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        key = "webserver.ssl_certificate"
        if not self.ssl_certificate:
            raise ConfigError(f"{self.cfg.source}: setting {key!r} must name a PEM file "
                              "(private key and certificate) when webserver.ssl_enabled is true")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            # As Falco's falco.pem: one file holding the private key and the certificate.
            ctx.load_cert_chain(self.ssl_certificate)
        except FileNotFoundError:
            raise ConfigError(f"{self.cfg.source}: setting {key!r}: {self.ssl_certificate} "
                              "not found") from None
        except (ssl.SSLError, OSError) as e:
            reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e)
            raise ConfigError(f"{self.cfg.source}: setting {key!r}: {self.ssl_certificate} is "
                              f"not a PEM file with a private key and its certificate "
                              f"({reason})") from None
        return ctx

    def start(self) -> None:
        ctx = self._ssl_context() if self.ssl_enabled else None
        host = self.listen_address.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        cls = type("_WebServer", (_Server,), {"address_family": family})
        handler = type("Handler", (_Handler,), {"web": self})
        where = f"[{host}]:{self.listen_port}" if family == socket.AF_INET6 \
            else f"{host}:{self.listen_port}"
        try:
            httpd = cls((host, self.listen_port), handler)
        except OSError as e:
            why = e.strerror or str(e)
            raise OutputError(f"webserver: cannot listen on {where} (webserver.listen_address, "
                              f"webserver.listen_port): {why}") from None
        if ctx is not None:
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                           do_handshake_on_connect=False)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="falconet-webserver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def url(self) -> str:
        """Where it serves, with the real port (``listen_port: 0`` picks a free one)."""
        host = self.listen_address.strip("[]")
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.ssl_enabled else 'http'}://{host}:{self.port}"

    def describe(self) -> str:
        paths = [self.healthz_path, "/versions"] + (["/metrics"] if self.prometheus else [])
        return f"{self.url} ({', '.join(paths)})"

    # -- content -------------------------------------------------------------------------------

    def metrics_text(self) -> str:
        snap = self.pipeline.snapshot() if self.pipeline is not None else {}
        engine_stats = None
        if self.engine is not None and hasattr(self.engine, "stats"):
            engine_stats = self.engine.stats()
        outputs_stats = None
        outputs_text = ""
        if self.outputs is not None and hasattr(self.outputs, "stats"):
            outputs_stats = self.outputs.stats()
            if hasattr(self.outputs, "metrics_text"):
                outputs_text = self.outputs.metrics_text()
        return render_metrics(snap, engine_stats=engine_stats, outputs_stats=outputs_stats,
                              outputs_text=outputs_text, hostname=self.hostname,
                              kernel_release=self.kernel_release, start_ns=self.start_ns)


def from_config(cfg: Config, **kw: Any) -> WebServer | None:
    """A WebServer when ``webserver.enabled`` is true (keys checked either way), else None."""
    web = WebServer(cfg, **kw)
    return web if web.enabled else None


def start_for(cfg: Config, pipeline: Any, *, outputs: Any = None, engine: Any = None,
              stream: Any = None) -> WebServer | None:
    """What `falconet run` and `falconet replay` do: when ``webserver.enabled``, start the
    server for ``pipeline`` and say where it listens on ``stream`` (stderr)."""
    web = from_config(cfg, pipeline=pipeline, outputs=outputs, engine=engine)
    if web is None:
        return None
    web.start()
    if stream is not None:
        print(f"falconet: web server listening on {web.describe()}", file=stream, flush=True)
    return web


__all__ = ["MetricsText", "WebServer", "from_config", "render_metrics", "start_for", "versions"]
