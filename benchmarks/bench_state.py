"""Ring -> enriched batch on one core: the C ring reader, the C decoder and the C state engine.

    python benchmarks/bench_state.py [--events 2000000] [--reps 5] [--cpus 4]

The synthetic source (collector/sources/synthetic.py: openat/close-heavy realistic mix with
process lifecycles, a process tree snapshot) makes the records; they are split by their CPU
field into per-CPU memfd rings of the kernel module's exact layout (ext/ring.c's userspace
producer).  The process is pinned to one core.  Each step the producer refills the rings
(untimed), then the consumer is timed: poll/wait -> fnet_reader_read (merge by timestamp,
release per CPU) -> decode -> StateEngine.enrich.  Time is the consumer thread's CPU time
(time.thread_time: the shared hosts run other work, so wall clock mostly measures the
neighbours; wall-clock rates are printed too).  Each step the consumer drains what the
producer wrote, in batches of at most BENCH_READ_CAP bytes (8 MiB) of records.  Stages reported (events/s, median of --reps
full passes):

  read                  ring reader only (merge into one ordered buffer: the capture path)
  read+decode (copy)    + ext/decode.c on that buffer
  read+decode (fused)   fnet_reader_decode: merged and decoded where the records lie, no
                        copy (the live collector's path; every stage below uses it)
  e2e-rules (eager)     + enrich, every column Falco's stable rules need materialised
  e2e-all (eager)       + enrich, every default state column materialised
  e2e-rules (lazy)      + enrich, columns left lazy (what the state stage itself costs)
  e2e + rule engine     + the stable rules evaluated (RuleEngine.process: the real pipeline,
                        columns gathered as the rules touch them)
  state-only            enrich(rules columns, eager) alone on already decoded batches

The pure twin is measured on a smaller slice for comparison (--pure-events).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # numpy must not add threads to "one core"
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collector import native  # noqa: E402
from collector.capture import record_offsets  # noqa: E402
from collector.sources.synthetic import SyntheticSource  # noqa: E402
from collector.state import StateEngine  # noqa: E402
from collector.state.ring import MemRingProducer, RingReader  # noqa: E402

SHARED = Path(os.environ.get("FALCONET_SHARED", REPO.parent / "shared"))
STABLE = SHARED / "testdata" / "falco-rules" / "falco_rules.yaml"
RING = 16 << 20
READ_CAP = int(os.environ.get("BENCH_READ_CAP", 8 << 20))


def rule_engine():
    try:
        from collector.config import Config
        from collector.rules import RuleEngine
        return RuleEngine.load([str(STABLE)], Config.load(None))
    except Exception as e:  # noqa: BLE001 - the bench still runs without the rules engine
        print(f"(rules engine not usable: {e}; using a fixed column list)", file=sys.stderr)
        return None


def rule_columns() -> set[str] | None:
    r = rule_engine()
    return set(r.columns) if r is not None else None


FALLBACK = {"proc_name", "proc_aname_1", "proc_aname_all", "proc_cmdline", "proc_acmdline_1",
            "proc_exepath", "proc_args", "proc_tty", "user_name", "user_uid", "user_loginuid",
            "fd_name", "fd_type", "fd_directory", "fd_num", "fd_l4proto", "container_id",
            "proc_aexe_1", "fd_sip", "fd_sport", "fd_lport", "fd_rport"}


def per_cpu_streams(src: SyntheticSource, cpus: int):
    """Records split by their CPU field: per CPU the bytes and the record start offsets."""
    parts: list[list[bytes]] = [[] for _ in range(cpus)]
    n = 0
    for raw in src.raw_batches():
        raw = bytes(raw)
        offs, end = record_offsets(raw)
        arr = np.frombuffer(raw, np.uint8)
        cpu = arr[np.array(offs) + 6] if offs else []
        offs.append(end)
        for i in range(len(offs) - 1):
            parts[int(cpu[i]) % cpus].append(raw[offs[i]:offs[i + 1]])
        n += len(offs) - 1
    streams = [b"".join(p) for p in parts]
    starts = [np.concatenate([[0], np.cumsum([len(r) for r in p])]).astype(np.int64)
              for p in parts]
    return streams, starts, n


def one_pass(streams, starts, nr_cpus, snapshot, stage, columns, rules=None):
    prod = MemRingProducer(nr_cpus, RING)
    reader = RingReader.open_memfd(prod, buf_bytes=READ_CAP, watermark=1)
    strings = native.StringTable()
    dec = native.Decoder(strings)
    eng = StateEngine(strings, snapshot, lazy="lazy" in stage or "engine" in stage) \
        if stage.startswith("e2e") else None
    fused = stage != "read" and stage != "read+decode (copy)"
    idx = [0] * nr_cpus
    views = [memoryview(s) for s in streams]
    timed = wall = 0.0
    events = 0
    num = 1
    while True:
        for c in range(nr_cpus):               # producer: refill every ring (untimed)
            st = starts[c]
            if idx[c] < len(st) - 1:
                hi = int(np.searchsorted(st, st[idx[c]] + RING, "right")) - 1
                idx[c] += prod.write_buf(c, views[c][st[idx[c]]:st[hi]], block=False)
        left = any(idx[c] < len(starts[c]) - 1 for c in range(nr_cpus))
        if not left:
            prod.hangup()
        t0, w0 = time.thread_time(), time.perf_counter()
        got = 0
        while reader.wait(0) == 1:
            if fused:
                b, _, info = dec.decode_ring(reader, num, READ_CAP)
                if b is None or not info["records"]:
                    break
                got += info["records"]
                num += b.n
                if eng is not None:
                    e = eng.enrich(b, columns)
                    if rules is not None:
                        rules.process(e)
                continue
            buf, info = reader.read()
            if buf is None or not info["records"]:
                break
            got += info["records"]
            if stage != "read":
                b, _ = dec.decode(buf, num)
                num += b.n
        timed += time.thread_time() - t0
        wall += time.perf_counter() - w0
        events += got
        if not left and got == 0:
            break
    reader.close()
    prod.close()
    return events, timed, wall


def state_only(raws, snapshot, columns):
    strings = native.StringTable()
    dec = native.Decoder(strings)
    batches, num = [], 1
    for raw in raws:
        b, _ = dec.decode(raw, num)
        num += b.n
        batches.append(b.copy())
    eng = StateEngine(strings, snapshot, lazy=False)
    t0, w0 = time.thread_time(), time.perf_counter()
    n = 0
    for b in batches:
        eng.enrich(b, columns)
        n += b.n
    return n, time.thread_time() - t0, time.perf_counter() - w0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cpus", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pure-events", type=int, default=100_000)
    args = ap.parse_args()
    native.require_c()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    src = SyntheticSource(events=args.events, seed=args.seed, cpus=args.cpus,
                          batch_events=65536)
    streams, starts, n = per_cpu_streams(src, args.cpus)
    raws = [bytes(r) for r in SyntheticSource(events=args.events, seed=args.seed, cpus=args.cpus,
                                              batch_events=65536).raw_batches()]
    cols = rule_columns()
    rcols = cols if cols is not None else FALLBACK
    state_cols = sorted(c for c in rcols if not c.startswith(("num", "ts", "type")))
    print(f"# {n} events, {sum(map(len, streams)) / n:.0f} B/record, {args.cpus} rings, "
          f"python {platform.python_version()}, {platform.machine()}, 1 core")
    print(f"# rule columns ({len(state_cols)}): {' '.join(state_cols)}")
    results, walls = {}, {}
    stages = [("read", None), ("read+decode (copy)", None), ("read+decode (fused)", None),
              ("e2e-rules (eager)", rcols),
              ("e2e-all (eager)", None), ("e2e-rules (lazy)", rcols)]
    if cols is not None:
        stages.append(("e2e + rule engine", rcols))
    for stage, c in stages:
        rates, wr = [], []
        for _ in range(args.reps):
            rules = rule_engine() if "engine" in stage else None
            ev, t, w = one_pass(streams, starts, args.cpus, src.snapshot, stage, c, rules)
            assert ev == n, (stage, ev, n)
            rates.append(ev / t)
            wr.append(ev / w)
        results[stage], walls[stage] = rates, wr
    rates, wr = [], []
    for _ in range(args.reps):
        ev, t, w = state_only(raws, src.snapshot, rcols)
        rates.append(ev / t)
        wr.append(ev / w)
    results["state-only (rules columns)"], walls["state-only (rules columns)"] = rates, wr
    os.environ["FALCONET_PUREPYTHON"] = "1"
    small = [r for r in raws][: max(1, args.pure_events // 65536 + 1)]
    strings = native.StringTable()
    dec = native.Decoder(strings)
    eng = StateEngine(strings, src.snapshot, backend="pure", lazy=False)
    bs, num = [], 1
    for raw in small:
        b, _ = dec.decode(raw, num)
        num += b.n
        bs.append(b.copy())
    t0, w0 = time.thread_time(), time.perf_counter()
    m = sum(eng.enrich(b, rcols).n for b in bs)
    results["state-only (pure twin)"] = [m / (time.thread_time() - t0)]
    walls["state-only (pure twin)"] = [m / (time.perf_counter() - w0)]
    print(f"# load average {os.getloadavg()[0]:.1f}")
    print("| stage | median events/s (CPU time) | min | max | median wall-clock | runs |")
    print("|---|---|---|---|---|---|")
    for k, v in results.items():
        print(f"| {k} | **{statistics.median(v) / 1e6:.2f} M** | {min(v) / 1e6:.2f} M | "
              f"{max(v) / 1e6:.2f} M | {statistics.median(walls[k]) / 1e6:.2f} M | {len(v)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
