"""Decode benchmark: synthetic ABI records -> EventBatch, C decoder and pure-numpy twin.

    python benchmarks/bench_decode.py [--events N] [--batch-events B] [--repeat R]
                                      [--cardinality C] [--seed S] [--json]

The records come from SyntheticSource (the realistic mix: openat/close dominate, network,
process lifecycles; file names from `--cardinality` distinct paths).  They are generated once,
outside the timing; each repetition decodes every buffer of the stream with one decoder into a
fresh string table (so interning cost is included, warm-up table effects are not), and the
reported rates are records / median time over the repetitions, both as wall time and as the
CPU time of the decoding thread (the decoder is single-threaded, so CPU time is what one
core spends; on a loaded, shared host it is the steadier of the two).  Both paths run in the
same process, interleaved repetition by repetition, and must agree on the record count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from collector import batch, decode_py, native
from collector.sources.synthetic import SyntheticSource


def run(impl: str, bufs: list[bytes]) -> tuple[float, float, int]:
    """One pass over every buffer: (wall s, thread CPU s, records)."""
    if impl == "c":
        dec = native.CDecoder(native.CStringTable())
    else:
        dec = decode_py.Decoder(batch.StringTable())
    num = 1
    t0, c0 = time.perf_counter(), time.thread_time()
    for b in bufs:
        out, _ = dec.decode(b, num)
        num += out.n
    return time.perf_counter() - t0, time.thread_time() - c0, num - 1


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
    walls: dict[str, list[float]] = {i: [] for i in impls}
    cpus: dict[str, list[float]] = {i: [] for i in impls}
    records = {}
    for impl in impls:
        run(impl, bufs[:1])                              # warm caches and imports
    for _ in range(a.repeat):
        for impl in impls:
            w, c, records[impl] = run(impl, bufs)
            walls[impl].append(w)
            cpus[impl].append(c)
    res = {}
    for impl in impls:
        mw, mc = statistics.median(walls[impl]), statistics.median(cpus[impl])
        res[impl] = {"records": records[impl], "median_wall_s": mw, "median_cpu_s": mc,
                     "events_per_s_wall": records[impl] / mw, "events_per_s_cpu": records[impl] / mc,
                     "MB_per_s_cpu": nbytes / mc / 1e6}
    counts = {r["records"] for r in res.values()}
    assert counts == {a.events}, counts
    info = {"events": a.events, "batch_events": a.batch_events, "bytes": nbytes,
            "bytes_per_record": nbytes / a.events, "cardinality": a.cardinality,
            "repeat": a.repeat, "python": platform.python_version(), "numpy": np.__version__,
            "loadavg": os.getloadavg()[0], "results": res}
    if a.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{a.events} records in {len(bufs)} buffers of {a.batch_events}, "
          f"{nbytes / a.events:.0f} B/record, {a.cardinality} distinct paths, "
          f"median of {a.repeat}, load average {info['loadavg']:.1f}")
    print(f"{'path':6} {'events/s (CPU)':>16} {'events/s (wall)':>16} {'MB/s (CPU)':>11}")
    for impl, r in res.items():
        print(f"{impl:6} {r['events_per_s_cpu']:16,.0f} {r['events_per_s_wall']:16,.0f} "
              f"{r['MB_per_s_cpu']:11.0f}")
    if len(res) == 2:
        print(f"C / pure (CPU): {res['c']['events_per_s_cpu'] / res['pure']['events_per_s_cpu']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
