"""`falconet replay FILE`: the detection pipeline over a capture (.fcap or .scap)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ..errors import ConfigError
from ..pipeline import Pipeline
from ..sources.open import open_capture
from . import common

HELP = "run the rules over a capture file (.fcap or Falco/sysdig .scap) and print alerts"
DESCRIPTION = """\
Replay a capture through the same pipeline as live detection: decode, track process and
file state, match the rules, deliver alerts to the configured outputs (stdout by default,
in Falco's text format, or Falco's JSON lines with --json).

Captures are Falconet's own .fcap files (written by `falconet capture`) or Falco/sysdig
.scap files, plain or gzip-compressed. A damaged capture is replayed up to the damage, then
one error names the byte offset and the exit status is 1.

With --serve the process stays up after the capture ends, with its gRPC server
(grpc.enabled, grpc_output.enabled) and web server (webserver.enabled: /healthz, /versions,
/metrics), until SIGINT or SIGTERM, so clients can read what the replay raised: a Falco gRPC
`get` streams the alerts held (grpc_output.history_size) that this client has not received
yet, then ends (a client is told apart by its falconet-client-id metadata or its TCP
connection; anonymous unix-socket clients get everything held); `falconet subscribe`
resumes from its last sequence number. When everything is delivered one
line on stderr says "falconet: replay done; serving ... until SIGINT/SIGTERM". A signal
during the replay itself stops it without serving.
"""
EPILOG = """\
examples:
  falconet replay tests/data/demo.fcap
  falconet replay -r /etc/falco/falco_rules.yaml --json incident.scap.gz
  falconet replay -t maturity_stable -D "shell" --stats trace.fcap
  falconet replay --events trace.fcap | head     # show decoded events, no rules
  falconet replay --serve -o grpc.enabled=true -o grpc_output.enabled=true \
      -o grpc.bind_address=unix:///tmp/falconet.sock trace.fcap    # then: falconet subscribe
  falconet replay --serve -o webserver.enabled=true \
      -o webserver.prometheus_metrics_enabled=true trace.fcap      # curl :8765/metrics

exit status: 0 replayed to the end, 1 error (bad capture, bad rules, bad config), 2 usage.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="capture file to replay (.fcap, .scap, .scap.gz)")
    common.add_rules_options(p)
    common.add_config_options(p)
    common.add_stats_options(p)
    p.add_argument("--events", action="store_true",
                   help="print the decoded events instead of matching rules (one line each)")
    p.add_argument("--serve", action="store_true",
                   help="after the capture ends, keep the gRPC and web servers up (until "
                        "SIGINT/SIGTERM) so clients can read the alerts it raised; needs "
                        "grpc.enabled or webserver.enabled")
    p.add_argument("-v", "--verbose", action="store_true", help="also print rule-loading warnings")


def _check_serve(cfg) -> None:
    if not (cfg.get("grpc.enabled", False) is True or cfg.get("webserver.enabled", False) is True):
        raise ConfigError("--serve: nothing to serve: enable the gRPC server (-o grpc.enabled=true "
                          "-o grpc_output.enabled=true) or the web server "
                          "(-o webserver.enabled=true)")


def run(args: argparse.Namespace) -> int:
    cfg = common.load_config(args)
    serve = getattr(args, "serve", False)
    if serve:
        _check_serve(cfg)
    batch_events = cfg.typed("pipeline.batch_events", int, 65536)
    source = open_capture(args.file, batch_events=batch_events)
    engine = None if args.events else common.build_engine(args, cfg)
    source.open()
    state = common.build_state(source.strings, source.snapshot)
    outputs = None
    on_batch = None
    if args.events:
        from ..eventfmt import EventPrinter
        on_batch = EventPrinter(sys.stdout)
    else:
        outputs = common.build_outputs(cfg)
    pipe = Pipeline(source, state=state, engine=engine, outputs=outputs, on_batch=on_batch,
                    queue_batches=cfg.typed("pipeline.queue_batches", int, 8),
                    stats_interval=common.stats_interval(args, cfg), lossless=True,
                    close_outputs=not serve)
    from ..webserver import start_for
    web = None
    # With --serve our handlers are in place before the replay: the pipeline installs its
    # own while it runs and restores these, so a signal between the end of the replay and
    # serving still ends the process cleanly.
    stop = threading.Event()
    old = _catch_signals(stop) if serve else {}
    try:
        web = start_for(cfg, pipe, outputs=outputs, engine=engine, stream=sys.stderr)
        common.run_and_report(pipe, engine, args)
        if serve and not pipe.stop_requested and not stop.is_set():
            serve_until_signal(outputs, web, stop)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if serve and outputs is not None and pipe.started_ns:
            outputs.close()  # the pipeline left them open for serving
        if web is not None:
            web.stop()
        source.close()  # idempotent; needed when the web server failed and nothing ran
    return 0


def _catch_signals(stop: threading.Event) -> dict:
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, lambda *_: stop.set())
    return old


def serve_until_signal(outputs, web, stop: threading.Event) -> None:
    """Keep the servers up (the outputs open, the gRPC history held) until ``stop`` is set
    by SIGINT or SIGTERM."""
    where = []
    grpc_server = getattr(outputs, "grpc_server", None)
    if grpc_server is not None:
        where.append(f"gRPC at {grpc_server.address}")
    if web is not None:
        where.append(f"web at {web.url}")
    print(f"falconet: replay done; serving {', '.join(where) or 'nothing'} until "
          "SIGINT/SIGTERM", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass


