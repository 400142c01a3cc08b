"""`falconet capture -w FILE`: record events into a Falconet capture (.fcap)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from ..capture import FcapWriter
from ..errors import ConfigError
from . import common

HELP = "record events (kernel module, or the synthetic generator) into a .fcap capture"
DESCRIPTION = """\
Record events exactly as the kernel module writes them, with a snapshot of the processes,
open files, users and groups at the start, into a Falconet capture file (.fcap) that
`falconet replay` reads on any machine. Stop with Ctrl-C (SIGINT) or SIGTERM; the file is
closed cleanly either way.

Sources: `kernel` (default; needs the falconet module loaded, see `falconet driver`) and
`synthetic` (a deterministic generator of realistic events, for tests and benchmarks).
"""
EPILOG = """\
examples:
  sudo falconet capture -w /tmp/session.fcap --duration 30
  falconet capture -w x.fcap --source synthetic --events 100000 --seed 7
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--write", required=True, metavar="FILE", help="capture file to write")
    p.add_argument("--source", choices=("kernel", "synthetic"), default="kernel",
                   help="where events come from (default: kernel)")
    p.add_argument("--events", type=int, default=None, metavar="N",
                   help="stop after N events (synthetic: how many to generate; default 100000)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after SECONDS")
    p.add_argument("--seed", type=int, default=1, help="synthetic generator seed (default 1)")
    p.add_argument("--snaplen", type=int, default=None,
                   help="kernel: longest string captured per argument (default 4096)")
    p.add_argument("--no-compress", action="store_true", help="store record blocks uncompressed")
    common.add_config_options(p)


def _synthetic(args: argparse.Namespace):
    from ..sources.synthetic import SyntheticSource
    n = 100_000 if args.events is None else args.events
    if n < 0:
        raise ConfigError("--events must be >= 0")
    return SyntheticSource(events=n, seed=args.seed)


def _kernel(args: argparse.Namespace):
    from ..sources.live import LiveSource
    from ..state.procscan import scan_snapshot
    kw = {}
    if args.snaplen is not None:
        kw["snaplen"] = args.snaplen
    src = LiveSource(**kw)
    src.snapshot = scan_snapshot()
    return src


def run(args: argparse.Namespace) -> int:
    common.load_config(args)  # validates -c/-o even though capture uses few keys
    raw = _synthetic(args) if args.source == "synthetic" else _kernel(args)
    stop = threading.Event()

    def on_signal(*_):
        stop.set()
        if hasattr(raw, "stop"):
            raw.stop()

    old = [(s, signal.signal(s, on_signal)) for s in (signal.SIGINT, signal.SIGTERM)]
    if hasattr(raw, "open"):
        raw.open()
    writer = FcapWriter(args.write, snapshot=getattr(raw, "snapshot", None) or {},
                        meta={"source": args.source}, compress=not args.no_compress)
    deadline = time.monotonic() + args.duration if args.duration else None
    limit = args.events if args.source == "kernel" else None
    from ..capture import record_offsets
    stopping = False
    try:
        for buf in raw.raw_batches():
            if limit is not None and writer.events + 4096 > limit:
                offs, _ = record_offsets(buf)
                keep = limit - writer.events
                if keep < len(offs):
                    buf = bytes(buf)[: offs[keep]] if keep > 0 else b""
            writer.write_records(buf)
            if not stopping and (stop.is_set() or (deadline and time.monotonic() >= deadline)
                                 or (limit is not None and writer.events >= limit)):
                # Ask the source to end: it still hands over what the kernel already holds,
                # so nothing captured before the stop is lost.
                stopping = True
                raw.stop()
    finally:
        stats = raw.stats() if hasattr(raw, "stats") else {}
        if hasattr(raw, "close"):
            raw.close()
        writer.close({"producer": stats})
        for s, h in old:
            signal.signal(s, h)
    if args.source == "kernel":
        print(f"falconet: kernel: {stats.get('kernel_events', 0)} events, drops: "
              f"buffer full {stats.get('kernel_drops_full', 0)}, user-memory faults "
              f"{stats.get('kernel_drops_fault', 0)}, too long {stats.get('kernel_drops_toolong', 0)}, "
              f"32-bit syscalls skipped {stats.get('kernel_drops_compat', 0)}", file=sys.stderr)
    print(f"falconet: wrote {writer.events} events in {writer.blocks} blocks to {args.write}",
          file=sys.stderr)
    return 0
