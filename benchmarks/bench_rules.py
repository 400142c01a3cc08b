"""Rules engine benchmark: Falco's stable rules on a realistic synthetic mix and on replayed
captures, vectorized engine vs the scalar reference evaluator.

    python benchmarks/bench_rules.py [--events 1000000] [--reps 5] [--rules FILE ...]

Measures (medians over --reps runs, one core, events/s):
  rules      engine.process() on batches already decoded and enriched (state columns), warm
             string tables (the steady state of a long-running collector), alerts rendered
  rules-cold the same on a fresh engine (every string predicate computed for the first time)
  e2e        raw ABI records -> decode -> state enrich (only the columns the rules need)
             -> engine.process(), fresh decoder/state/engine per run
  reference  the scalar reference evaluator (one event at a time, the same event-type index,
             first match) on the first --ref-events events of the enriched batches
  replay     every .scap under ../shared/testdata/scap: read -> state -> rules
The official stable rules are read from $FALCONET_SHARED/testdata/falco-rules (default
../shared beside the repository).
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collector import native
from collector.config import Config
from collector.rules import RuleEngine
from collector.rules.reference import Evaluator
from collector.sources.synthetic import SyntheticSource
from collector.state.engine import StateEngine

SHARED = Path(os.environ.get("FALCONET_SHARED", REPO.parent / "shared"))
STABLE = SHARED / "testdata" / "falco-rules" / "falco_rules.yaml"


def load(rules):
    return RuleEngine.load(rules, Config.load(None))


def prepared(args, eng):
    """Decoded and enriched batches (owned copies), plus the raw buffers."""
    src = SyntheticSource(events=args.events, batch_events=args.batch, seed=args.seed)
    raws = list(src.raw_batches())
    strings = native.StringTable()
    dec = native.Decoder(strings)
    st = StateEngine(strings, snapshot=src.snapshot)
    out, num = [], 1
    for raw in raws:
        b, _ = dec.decode(raw, num)
        b = b.copy()
        b.boot_ns = src.boot_ns
        num += b.n
        out.append(st.enrich(b, eng.columns))
    return src, raws, out


def run_rules(eng, batches, cpu=None):
    t, c = time.perf_counter(), time.process_time()
    alerts = sum(len(eng.process(b)) for b in batches)
    if cpu is not None:
        cpu.append(time.process_time() - c)
    return time.perf_counter() - t, alerts


def run_e2e(args, rules, src, raws):
    eng = load(rules)
    strings = native.StringTable()
    dec = native.Decoder(strings)
    st = StateEngine(strings, snapshot=src.snapshot)
    cols = eng.columns
    t, c = time.perf_counter(), time.process_time()
    num, alerts = 1, 0
    stages = [0.0, 0.0, 0.0]
    for raw in raws:
        t0 = time.perf_counter()
        b, _ = dec.decode(raw, num)
        b.boot_ns = src.boot_ns
        num += b.n
        t1 = time.perf_counter()
        b = st.enrich(b, cols)
        t2 = time.perf_counter()
        alerts += len(eng.process(b))
        t3 = time.perf_counter()
        stages[0] += t1 - t0
        stages[1] += t2 - t1
        stages[2] += t3 - t2
    return time.perf_counter() - t, alerts, stages, time.process_time() - c


def run_reference(eng, batches, limit):
    """One event at a time: the rules of its type (Falco's index), first match wins."""
    by_type: dict = {}
    for r in eng.enabled:
        for t in r.types:
            by_type.setdefault(t, []).append(r)
    done = matched = 0
    t0 = time.perf_counter()
    for b in batches:
        ev = Evaluator(b)
        types = b.cols["type"].tolist()
        for i in range(b.n):
            if done >= limit:
                break
            done += 1
            for r in by_type.get(types[i], ()):
                if ev.run(r.ast, i):
                    matched += 1
                    break
        if done >= limit:
            break
    return time.perf_counter() - t0, done, matched


def run_replay(rules):
    from collector.sources.scap import ScapSource
    files = sorted(glob.glob(str(SHARED / "testdata" / "scap" / "*" / "*.scap")))
    if not files:
        return None
    eng = load(rules)
    t = time.perf_counter()
    n = alerts = 0
    for f in files:
        strings = native.StringTable()
        src = ScapSource(f, strings=strings)
        src.open()
        st = StateEngine(strings, snapshot=src.snapshot)
        for b in src.batches():
            n += b.n
            alerts += len(eng.process(st.enrich(b, eng.columns)))
        src.close()
    return time.perf_counter() - t, n, alerts, len(files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ref-events", type=int, default=50_000)
    ap.add_argument("--rules", nargs="*", default=[str(STABLE)])
    args = ap.parse_args()

    eng = load(args.rules)
    print(f"# rules: {', '.join(args.rules)}: {len(eng.enabled)} enabled, "
          f"{len(eng.event_types)} event types, {len(eng.columns)} columns")
    print(f"# backend={native.BACKEND} python={platform.python_version()} "
          f"machine={platform.machine()} events={args.events} batch={args.batch} reps={args.reps}")
    src, raws, batches = prepared(args, eng)
    n = sum(b.n for b in batches)

    cold = [run_rules(load(args.rules), batches)[0] for _ in range(args.reps)]
    run_rules(eng, batches)                               # warm the string tables
    warm, warm_cpu, alerts = [], [], 0
    for _ in range(args.reps):
        dt, alerts = run_rules(eng, batches, warm_cpu)
        warm.append(dt)
    e2e_runs = [run_e2e(args, args.rules, src, raws) for _ in range(args.reps)]
    e2e = [r[0] for r in e2e_runs]
    stage_rates = [n / statistics.median(r[2][k] for r in e2e_runs) for k in range(3)]
    ref = [run_reference(eng, batches, args.ref_events) for _ in range(max(1, args.reps // 2))]
    ref_rate = statistics.median(done / dt for dt, done, _ in ref)
    rules_rate = n / statistics.median(warm)

    print(f"{'stage':<12} {'events/s (median)':>18}  notes")
    print(f"{'rules':<12} {rules_rate:>18,.0f}  warm tables, {alerts} alerts per pass")
    print(f"{'rules-cpu':<12} {n / statistics.median(warm_cpu):>18,.0f}  the same per second of "
          "CPU time (process_time)")
    print(f"{'rules-cold':<12} {n / statistics.median(cold):>18,.0f}  fresh engine")
    print(f"{'e2e':<12} {n / statistics.median(e2e):>18,.0f}  decode + state + rules")
    print(f"{'e2e-cpu':<12} {n / statistics.median(r[3] for r in e2e_runs):>18,.0f}  the same "
          "per second of CPU time (process_time; the host is shared)")
    for name, rate in zip(("  decode", "  state", "  rules"), stage_rates):
        print(f"{name:<12} {rate:>18,.0f}  share of e2e (cold engine)")
    print(f"{'reference':<12} {ref_rate:>18,.0f}  scalar, {ref[0][1]} events, {ref[0][2]} matched")
    print(f"{'speedup':<12} {rules_rate / ref_rate:>17.1f}x  rules vs reference")
    try:
        rp = run_replay(args.rules)
    except Exception as e:  # noqa: BLE001 - the .scap reader is another part; report, do not fail the run
        print(f"{'replay':<12} {'-':>18}  unavailable: {type(e).__name__}: {e}")
        rp = None
    if rp:
        dt, rn, ra, nf = rp
        print(f"{'replay':<12} {rn / dt:>18,.0f}  {nf} .scap files, {rn} events, {ra} alerts "
              "(small files: open/setup dominated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
