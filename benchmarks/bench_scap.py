"""`falconet replay` vs `sysdig -r` on the reference .scap captures, repeated to millions of
events; plus the .scap reader alone (C and pure numpy).

    python benchmarks/bench_scap.py [--events 3000000] [--reps 3] [--out /tmp/bench.scap]
                                    [--drop-procinfo] [--gzip] [--skip reader-pure,...]

The input is built once: the metadata of falco-psp/run_as_user_0_container.scap, then the
event blocks of the 14 captures sysdig 0.29 reads, concatenated and repeated until --events
(plain, uncompressed; every block kept as recorded: v1 and v2 events, 2- and 4-byte
parameter lengths; with --drop-procinfo without the procinfo events, which are 61 % of the
captures' events and which neither tool evaluates rules on).  Timed commands (wall clock of the whole process, medians of --reps):

  sysdig-read     sysdig -r BIG -q                        (read every event, no filter)
  sysdig-filter   sysdig -r BIG -p FMT "FILTER" >/dev/null
                  FILTER = the OR of the conditions of every enabled rule of Falco's stable
                  rules file that sysdig 0.29 can parse (macros and lists expanded by
                  Falconet's rules loader; rules sysdig rejects are listed and left out)
  falconet        falconet replay -r falco_rules.yaml BIG >/dev/null
                  (read, state engine, the stable rules, alerts to stdout)
  reader-c / reader-pure   ScapSource alone, batches of 65536, in this process

The official rules are read from $FALCONET_SHARED/testdata/falco-rules (default ../shared).
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("FALCONET_SHARED", REPO.parent / "shared"))
SCAP = SHARED / "testdata" / "scap"
STABLE = SHARED / "testdata" / "falco-rules" / "falco_rules.yaml"
BASE = "falco-psp/run_as_user_0_container.scap"
SKIP = {"libs/curl_google_comments.scap"}          # sysdig 0.29 cannot open it
EV_BLOCKS = {0x204, 0x8010ABCD, 0x216, 0x221, 0x208, 0x217, 0x222}
FMT = "%evt.num %evt.type %proc.name %fd.name"


def _raw(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


PROCINFO_E = 234


def _split(data: bytes, drop_procinfo: bool = False) -> tuple[bytes, bytes, int]:
    """(metadata blocks before the first event, the event blocks, number of events)."""
    pos, first, n, keep = 0, None, 0, []
    while pos + 8 <= len(data):
        code, total = struct.unpack_from("<II", data, pos)
        if code in EV_BLOCKS:
            first = pos if first is None else first
            etype = struct.unpack_from("<H", data, pos + 30 + (4 if code in (0x208, 0x217, 0x222)
                                                                 else 0))[0]
            if not (drop_procinfo and etype == PROCINFO_E):
                keep.append(data[pos:pos + total])
                n += 1
        pos += total
    return data[:first], b"".join(keep), n


def build(out: Path, events: int, drop_procinfo: bool = False, gz: bool = False) -> int:
    head, _, _ = _split(_raw(SCAP / BASE))
    chunks, per = [], 0
    for p in sorted(SCAP.glob("*/*.scap")):
        if str(p.relative_to(SCAP)) in SKIP:
            continue
        _, evs, n = _split(_raw(p), drop_procinfo)
        chunks.append(evs)
        per += n
    reps = -(-events // per)
    body = b"".join(chunks)
    with (gzip.open(out, "wb", 6) if gz else open(out, "wb")) as f:
        f.write(head)
        for _ in range(reps):
            f.write(body)
    return per * reps


def sysdig_filter(small: Path) -> tuple[str, list[str], int]:
    """The OR of the stable rules' conditions sysdig parses; (filter, rejected rules, kept)."""
    from collector.config import Config
    from collector.rules import RuleEngine
    from collector.rules.parser import to_text
    eng = RuleEngine.load([str(STABLE)], Config.load(None))
    kept, rejected = [], []
    for r in eng.enabled:
        text = to_text(r.ast)
        ok = subprocess.run(["sysdig", "-r", str(small), "-q", text], capture_output=True,
                            check=False).returncode == 0
        (kept if ok else rejected).append((r.name, text))
    return " or ".join(f"({t})" for _, t in kept), [n for n, _ in rejected], len(kept)


def timed(cmd, env=None, reps=3) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                           check=False)
        out.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"failed ({r.returncode}): {' '.join(map(str, cmd))[:200]}\n"
                             f"{r.stderr.decode(errors='replace')[-500:]}")
    return out


def reader(path: Path, backend: str, reps: int) -> tuple[list[float], int]:
    from collector.sources.scap import ScapSource
    times, rows = [], 0
    for _ in range(reps):
        src = ScapSource(str(path), backend=backend)
        t0 = time.perf_counter()
        src.open()
        rows = sum(b.n for b in src.batches())
        times.append(time.perf_counter() - t0)
        src.close()
    return times, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="/tmp/falconet-bench.scap")
    ap.add_argument("--skip", default="", help="comma list of rows to skip (e.g. reader-pure)")
    ap.add_argument("--gzip", action="store_true", help="write the input gzip-compressed")
    ap.add_argument("--drop-procinfo", action="store_true",
                    help="leave out the procinfo events (61%% of the captures' events)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    out = Path(args.out)
    n = build(out, args.events, args.drop_procinfo, args.gzip)
    print(f"input: {out} {out.stat().st_size / 2**20:.0f} MiB, {n} events", flush=True)
    filt, rejected, kept = sysdig_filter(SCAP / "libs" / "sample.scap")
    print(f"sysdig filter: {kept} stable rules ({len(filt)} characters); "
          f"rejected by sysdig 0.29: {rejected}", flush=True)
    py = [sys.executable, "-m", "collector"]
    rows = {}
    if "sysdig-read" not in skip:
        rows["sysdig-read"] = timed(["sysdig", "-r", str(out), "-q"], reps=args.reps)
    if "sysdig-filter" not in skip:
        rows["sysdig-filter"] = timed(["sysdig", "-r", str(out), "-p", FMT, filt], reps=args.reps)
    if "falconet" not in skip:
        rows["falconet"] = timed(py + ["replay", "-r", str(STABLE), str(out)], reps=args.reps)
    nrows = None
    for backend in ("c", "pure"):
        if f"reader-{backend}" not in skip:
            rows[f"reader-{backend}"], nrows = reader(out, backend, args.reps)
    if nrows is not None:
        print(f"rows (events of modelled types, enter and exit): {nrows}")
    print(f"\nmachine: {platform.machine()} {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}")
    print("| command | runs (s) | median (s) | events/s |")
    print("|---|---|---|---|")
    for k, v in rows.items():
        med = statistics.median(v)
        print(f"| {k} | {', '.join(f'{x:.2f}' for x in v)} | {med:.2f} | {n / med:,.0f} |")
    if "falconet" in rows and "sysdig-filter" in rows:
        print(f"\nfalconet vs sysdig-filter: "
              f"{statistics.median(rows['sysdig-filter']) / statistics.median(rows['falconet']):.2f}x")


if __name__ == "__main__":
    main()
