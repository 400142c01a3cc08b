"""Guest-side reader for the VM test: collector.sources.live.LiveSource writing what it reads.

    reader.py --out FILE [--seconds S] [--raw] [--interest getpid,openat,...]

Writes the merged records to FILE, FILE.stats.json (the source's stats: per-CPU kernel
counters) at the end, and FILE.ready once capture has started.  Stops on SIGTERM/SIGINT or
after --seconds.  --raw drains per-CPU chunks without merging (benchmark reader).
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

from collector import abi
from collector.sources.live import LiveSource


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--interest", default="")
    ap.add_argument("--discard", action="store_true", help="count bytes, write nothing")
    a = ap.parse_args()
    interest = None
    if a.interest:
        interest = {abi.BY_NAME[n].num for n in a.interest.split(",")}
    src = LiveSource(interest=interest)
    signal.signal(signal.SIGTERM, lambda *_: src.stop())
    signal.signal(signal.SIGINT, lambda *_: src.stop())
    src.open()
    if a.seconds:
        threading.Timer(a.seconds, src.stop).start()
    with open(a.out + ".ready", "w") as f:
        f.write(str(os.getpid()))
    t0 = time.monotonic()
    n = 0
    with open(os.devnull if a.discard else a.out, "wb") as out:
        if a.raw:
            for _cpu, chunk in src.raw_chunks():
                n += len(chunk)
                out.write(chunk)
        else:
            for buf in src.raw_batches():
                n += len(buf)
                out.write(buf)
    src.close()
    stats = src.stats()
    stats["seconds"] = time.monotonic() - t0
    stats["bytes_written"] = n
    with open(a.out + ".stats.json", "w") as f:
        json.dump(stats, f, indent=1)
    print("READER", json.dumps({k: v for k, v in stats.items() if k != "per_cpu"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
