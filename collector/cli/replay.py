"""`falconet replay FILE`: the detection pipeline over a capture (.fcap or .scap)."""

from __future__ import annotations

import argparse
import json
import sys

from ..pipeline import Pipeline, summary
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
"""
EPILOG = """\
examples:
  falconet replay examples/demo.fcap
  falconet replay -r /etc/falco/falco_rules.yaml --json incident.scap.gz
  falconet replay -t maturity_stable -D "shell" --stats trace.fcap
  falconet replay --events trace.fcap | head     # show decoded events, no rules

exit status: 0 replayed to the end, 1 error (bad capture, bad rules, bad config), 2 usage.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="capture file to replay (.fcap, .scap, .scap.gz)")
    common.add_rules_options(p)
    common.add_config_options(p)
    common.add_stats_options(p)
    p.add_argument("--events", action="store_true",
                   help="print the decoded events instead of matching rules (one line each)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print rule-loading warnings")


def run(args: argparse.Namespace) -> int:
    cfg = common.load_config(args)
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
    elif engine is not None:
        outputs = common.build_outputs(cfg)
    else:
        from ..eventfmt import EventPrinter
        print("falconet: the rules engine is not built yet; showing decoded events",
              file=sys.stderr)
        on_batch = EventPrinter(sys.stdout)
    pipe = Pipeline(source, state=state, engine=engine, outputs=outputs, on_batch=on_batch,
                    queue_batches=cfg.typed("pipeline.queue_batches", int, 8),
                    stats_interval=common.stats_interval(args, cfg), lossless=True)
    err = None
    try:
        pipe.run()
    except Exception as e:  # noqa: BLE001 - reported after the summary, then re-raised
        err = e
    if args.stats or args.stats_json:
        s = summary(pipe, engine)
        if args.stats_json:
            print(json.dumps(s, sort_keys=True, default=str), file=sys.stderr)
        else:
            print_summary(s, sys.stderr)
    if err is not None:
        raise err
    return 0


def print_summary(s: dict, out) -> None:
    print(f"Events read: {s['events']}", file=out)
    skipped = s.get("skipped") or {}
    print(f"Events skipped: {sum(skipped.values())}", file=out)
    for cause, n in sorted(skipped.items()):
        print(f"   {cause}: {n}", file=out)
    print(f"Alerts: {s['alerts_total']}", file=out)
    for prio, n in s.get("alerts_by_priority", {}).items():
        print(f"   {prio}: {n}", file=out)
    if s["alerts"]:
        print("Alerts by rule:", file=out)
        for rule, n in sorted(s["alerts"].items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"   {rule}: {n}", file=out)
    print(f"Elapsed: {s['elapsed_s']:.3f} s", file=out)
