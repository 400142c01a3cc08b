"""Decode benchmark: synthetic ABI records -> EventBatch, C decoder and pure-numpy twin.

    python benchmarks/bench_decode.py [--events N] [--batch-events B] [--repeat R]
                                      [--cardinality C] [--seed S] [--json]

The records come from SyntheticSource (the realistic mix: openat/close dominate, network,
process lifecycles; file names from `--cardinality` distinct paths).  They are generated once,
outside the timing; each repetition decodes every buffer of the stream with one decoder into a
fresh string table (so interning cost is included, warm-up table effects are not), and the
reported rate is records / median wall time over the repetitions, on one core (the decoder
is single-threaded).  Both paths run in the same process, side by side, and must agree on
the record count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from collector import batch, decode_py, native  # noqa: E402
from collector.sources.synthetic import SyntheticSource  # noqa: E402


def run(impl: str, bufs: list[bytes], repeat: int) -> tuple[list[float], int]:
    times, records = [], 0
    for _ in range(repeat):
        if impl == "c":
            dec = native.CDecoder(native.CStringTable())
        else:
            dec = decode_py.Decoder(batch.StringTable())
        num = 1
        t0 = time.perf_counter()
        for b in bufs:
            out, _ = dec.decode(b, num)
            num += out.n
        times.append(time.perf_counter() - t0)
        records = num - 1
    return times, records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--batch-events", type=int, default=65536)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cardinality", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    src = SyntheticSource(events=a.events, seed=a.seed, batch_events=a.batch_events,
                          string_cardinality=a.cardinality)
    bufs = list(src.raw_batches())
    nbytes = sum(map(len, bufs))
    impls = (["c"] if native.BACKEND == "c" else []) + ["pure"]
    res = {}
    for impl in impls:
        run(impl, bufs[:1], 1)                          # warm caches and imports
        times, records = run(impl, bufs, a.repeat)
        med = statistics.median(times)
        res[impl] = {"records": records, "median_s": med, "min_s": min(times),
                     "events_per_s": records / med, "MB_per_s": nbytes / med / 1e6}
    counts = {r["records"] for r in res.values()}
    assert counts == {a.events}, counts
    info = {"events": a.events, "batch_events": a.batch_events, "bytes": nbytes,
            "bytes_per_record": nbytes / a.events, "cardinality": a.cardinality,
            "repeat": a.repeat, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "results": res}
    if a.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{a.events} records in {len(bufs)} buffers of {a.batch_events}, "
          f"{nbytes / a.events:.0f} B/record, {a.cardinality} distinct paths, "
          f"median of {a.repeat}")
    print(f"{'path':6} {'events/s':>14} {'MB/s':>8} {'median s':>9} {'min s':>8}")
    for impl, r in res.items():
        print(f"{impl:6} {r['events_per_s']:14,.0f} {r['MB_per_s']:8.0f} {r['median_s']:9.4f} "
              f"{r['min_s']:8.4f}")
    if len(res) == 2:
        print(f"C / pure: {res['c']['events_per_s'] / res['pure']['events_per_s']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
