"""`falconet run`: live detection from the kernel module (or the synthetic generator)."""

from __future__ import annotations

import argparse
import sys

from ..pipeline import Pipeline
from ..sources.raw import DecodingSource
from . import common

HELP = "live detection: capture syscalls, match the rules, deliver alerts"
DESCRIPTION = """\
Attach to the falconet kernel module, capture the system calls the loaded rules need, track
process and file state, match the rules on whole batches of events and deliver alerts to the
configured outputs (stdout, file, program, HTTP/falcosidekick, syslog, gRPC, web UI).

Needs root and the module loaded (`falconet driver load`). Stop with Ctrl-C or SIGTERM:
events already captured are still matched, outputs are flushed, and the kernel's counters
(events, drops by cause) are reported.

With webserver.enabled an embedded web server answers /healthz, /versions and (with
webserver.prometheus_metrics_enabled) Prometheus /metrics: events, drops by cause (the
kernel's per-CPU counters included), alerts by rule and priority, output queues,
rule-evaluation time.
"""
EPILOG = """\
examples:
  sudo falconet run
  sudo falconet run -r /etc/falco/falco_rules.yaml -o json_output=true
  falconet run --source synthetic --events 1000000 --stats   # no kernel needed
  sudo falconet run -o webserver.enabled=true -o webserver.prometheus_metrics_enabled=true
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=("kernel", "synthetic"), default="kernel",
                   help="where events come from (default: kernel)")
    p.add_argument("--events", type=int, default=None, metavar="N",
                   help="synthetic source: how many events to generate (default 1000000)")
    p.add_argument("--seed", type=int, default=1, help="synthetic generator seed")
    common.add_rules_options(p)
    common.add_config_options(p)
    common.add_stats_options(p)
    p.add_argument("--no-reload", action="store_true",
                   help="do not watch the rules and configuration files (by default a change "
                        "is compiled in the background and swapped in; a broken change keeps "
                        "the running rules and is reported)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print rule-loading warnings")


def _interest(engine) -> set[int] | None:
    """What the module captures: the event types some rule needs, plus those the state
    engine needs to keep processes, credentials and fds right (else a rule on user.uid or
    fd.name would see stale state); None (everything) without rules."""
    types = getattr(engine, "event_types", None) if engine is not None else None
    if not types:
        return None
    from ..state import STATE_EVENT_TYPES
    return set(types) | STATE_EVENT_TYPES


def _raw_source(args: argparse.Namespace, engine, cfg):
    if args.source == "synthetic":
        from ..sources.synthetic import SyntheticSource
        return DecodingSource(SyntheticSource(events=args.events or 1_000_000, seed=args.seed),
                              name="synthetic")
    from ..sources.live import LiveSource
    interest = _interest(engine)
    # LiveSource decodes itself: with the C extension the records are merged and decoded
    # where they lie in the rings (no copy); its stats carry the kernel's counters.
    from ..config import string_table_caps
    max_ids, max_bytes = string_table_caps(cfg)     # the string table rolls over past them
    live = LiveSource(interest=interest, strings_max_ids=max_ids, strings_max_bytes=max_bytes)
    from ..state.procscan import scan_snapshot
    live.snapshot = scan_snapshot()
    return live


def _say(msg: str) -> None:
    print(f"falconet: {msg}", file=sys.stderr, flush=True)


def _engine(args: argparse.Namespace, cfg, on_reload):
    """The rule engine; unless --no-reload, one that follows edits of its files."""
    if args.no_reload:
        return common.build_engine(args, cfg)
    from ..rules.reload import watch_rules
    return watch_rules(common.rules_paths(args, cfg), getattr(args, "config", None),
                       getattr(args, "option", []),
                       on_error=lambda m: _say(f"rules reload failed, keeping the running rules: {m}"),
                       on_reload=on_reload, warn=lambda m: _say(f"warning: {m}"),
                       tags=args.tags, disable_tags=args.disable_tags,
                       disable_substrings=args.disable_substrings, all_events=args.all_events)


def run(args: argparse.Namespace) -> int:
    cfg = common.load_config(args)
    source = None

    def reloaded(new_engine) -> None:
        _say(f"rules reloaded: {new_engine.stats().get('rules_enabled', '?')} rules enabled")
        # The kernel captures only what some rule needs: follow the new rules' event types.
        setter = getattr(source, "set_interest", None)
        if setter is not None:
            setter(_interest(new_engine))

    engine = _engine(args, cfg, reloaded)
    source = _raw_source(args, engine, cfg)
    outputs = common.build_outputs(cfg)
    source.open()
    state = common.build_state(source.strings, source.snapshot, live=args.source == "kernel")
    pipe = Pipeline(source, state=state, engine=engine, outputs=outputs,
                    queue_batches=cfg.typed("pipeline.queue_batches", int, 8),
                    drop_when_full=args.source == "kernel", lossless=args.source != "kernel",
                    stats_interval=common.stats_interval(args, cfg))
    from ..webserver import start_for
    web = None
    try:
        web = start_for(cfg, pipe, outputs=outputs, engine=engine, stream=sys.stderr)
        common.run_and_report(pipe, engine, args)
    finally:
        if web is not None:
            web.stop()
        if hasattr(engine, "stop"):
            engine.stop()  # the rules file watcher
        source.close()  # idempotent; needed when the web server failed and nothing ran
    return 0
