"""Bench mode of check.py: medians per (config, workload) from OUT/bench.txt, added cost per
syscall over the no-module baseline, Falconet/Falco ratio; writes OUT/bench.json and a
markdown table OUT/bench.md (with the reader's backlog figures and the runs that are missing,
e.g. a sysdig step that stalled and was cut by its timeout).

Also usable on its own, on a partial run: python3 tests/vm/check_bench.py OUTDIR"""
import json
import os
import re
import statistics


def parse(path: str) -> tuple[dict, list[dict]]:
    head, rows = {}, []
    for line in open(path):
        if not line.startswith("BENCH "):
            continue
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        if "config" in kv:
            rows.append(kv)
            if kv["config"] == "falconet" and "path" in kv:
                head.setdefault("paths", set()).add(kv["path"])
        else:
            head.update(kv)
    return head, rows


def num(x: str):
    try:
        return float(x)
    except ValueError:
        return None


def summarize(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        key = (r["config"], r["mode"])
        d = out.setdefault(key, {"ns": [], "events": [], "drops": [], "max_pending": [],
                                 "max_gap_ms": [], "max_proc_ms": [], "loop_cpu_s": [],
                                 "reader_cpu_s": []})
        for k, src in (("ns", "ns_per_syscall"), ("events", "events"), ("drops", "drops"),
                       ("max_pending", "max_pending"), ("max_gap_ms", "max_gap_ms"),
                       ("max_proc_ms", "max_proc_ms"), ("loop_cpu_s", "loop_cpu_s"),
                       ("reader_cpu_s", "reader_cpu_s")):
            v = num(r.get(src, ""))
            if v is not None:
                d[k].append(v)
    res = {}
    for (cfg, mode), d in out.items():
        res.setdefault(mode, {})[cfg] = {
            "ns_median": statistics.median(d["ns"]) if d["ns"] else None,
            "ns_min": min(d["ns"]) if d["ns"] else None,
            "reps": len(d["ns"]),
            "events_median": statistics.median(d["events"]) if d["events"] else None,
            "drops_median": statistics.median(d["drops"]) if d["drops"] else None,
            "drops_max": max(d["drops"]) if d["drops"] else None,
            "drops_all": d["drops"],
        }
        for k in ("max_pending", "max_gap_ms", "max_proc_ms", "loop_cpu_s", "reader_cpu_s"):
            if d[k]:
                res[mode][cfg][k + "_median"] = statistics.median(d[k])
                res[mode][cfg][k + "_max"] = max(d[k])
    for mode, cfgs in res.items():
        base = cfgs.get("baseline", {}).get("ns_median")
        for cfg, s in cfgs.items():
            s["added_ns"] = (s["ns_median"] - base) if base is not None and s["ns_median"] else None
        f, s = cfgs.get("falconet", {}).get("added_ns"), cfgs.get("scap", {}).get("added_ns")
        cfgs["ratio_falconet_over_scap"] = (f / s) if f is not None and s else None
        # the same from the fastest run of each configuration (contention only adds time, but
        # one lucky run moves a minimum: on a loaded host neither estimate is steady)
        bm = cfgs.get("baseline", {}).get("ns_min")
        fm, sm = cfgs.get("falconet", {}).get("ns_min"), cfgs.get("scap", {}).get("ns_min")
        cfgs["ratio_of_minima"] = ((fm - bm) / (sm - bm)) if None not in (bm, fm, sm) and sm != bm else None
    return res


def missing(head: dict, rows: list[dict]) -> list[str]:
    """'config/mode: k of N' for every measured pair with fewer complete runs than planned."""
    try:
        reps = int(head.get("reps", "0"))
    except ValueError:
        reps = 0
    done: dict = {}
    for r in rows:
        if r["config"] in ("baseline", "falconet", "scap") and num(r.get("ns_per_syscall", "")) is not None:
            done[(r["config"], r["mode"])] = done.get((r["config"], r["mode"]), 0) + 1
    out = []
    for cfg in ("baseline", "falconet", "scap"):
        for mode in ("getpid", "openclose", "mixed"):
            k = done.get((cfg, mode), 0)
            if k < reps:
                out.append(f"{cfg}/{mode}: {k} of {reps} done")
    return out


def markdown(head: dict, res: dict, miss: list[str] | None = None) -> str:
    lines = [f"Kernel {head.get('kernel', '?')}, {head.get('cpus', '?')} vCPUs, qemu TCG, "
             f"clocksource {head.get('clocksource', '?')}, {head.get('reps', '?')} repetitions; "
             f"reader {head.get('reader', '?')} watermark {head.get('watermark', '?')} "
             f"poll {head.get('poll_ms', '?')} ms decode {head.get('decode', '?')} "
             f"wait {head.get('wait', 'reader')} path {','.join(sorted(head.get('paths', ()))) or head.get('path', '?')}, "
             f"falconet ring_bytes {head.get('ring_bytes', 'default')}.",
             "",
             "| workload | baseline ns/syscall | falconet.ko + reader | scap.ko + sysdig -w /dev/null "
             "| falconet added | scap added | ratio | ratio of minima | falconet drops (median/max) | scap drops (median/max) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for mode in ("getpid", "openclose", "mixed"):
        c = res.get(mode)
        if not c:
            continue
        b, f, s = c.get("baseline", {}), c.get("falconet", {}), c.get("scap", {})

        def fmt(x, d=0):
            return "n/a" if x is None else f"{x:,.{d}f}"
        lines.append(
            f"| {mode} | {fmt(b.get('ns_median'))} | {fmt(f.get('ns_median'))} | {fmt(s.get('ns_median'))} "
            f"| {fmt(f.get('added_ns'))} | {fmt(s.get('added_ns'))} | {fmt(c.get('ratio_falconet_over_scap'), 2)} "
            f"| {fmt(c.get('ratio_of_minima'), 2)} "
            f"| {fmt(f.get('drops_median'))}/{fmt(f.get('drops_max'))} "
            f"| {fmt(s.get('drops_median'))}/{fmt(s.get('drops_max'))} |")
    lines += ["", "falconet reader, per workload (median/max over runs): largest backlog in one "
              "ring just before a read (KiB), longest read+decode of one batch (ms), reader CPU "
              "time from START to the end of the drain (s); drops per run.", "",
              "| workload | backlog KiB | batch ms | reader CPU s | falconet drops per run | scap drops per run |",
              "|---|---|---|---|---|---|"]
    for mode in ("getpid", "openclose", "mixed"):
        c = res.get(mode)
        if not c:
            continue
        f, s = c.get("falconet", {}), c.get("scap", {})

        def mm(k, scale=1.0, d=0, f=f):
            a, b = f.get(k + "_median"), f.get(k + "_max")
            return "n/a" if a is None else f"{a / scale:,.{d}f}/{b / scale:,.{d}f}"
        lines.append(f"| {mode} | {mm('max_pending', 1024)} | {mm('max_proc_ms')} "
                     f"| {mm('loop_cpu_s', d=2)} | {' '.join(str(int(x)) for x in f.get('drops_all', []))} "
                     f"| {' '.join(str(int(x)) for x in s.get('drops_all', []))} |")
    if miss:
        lines += ["", "Missing runs: " + "; ".join(miss) + "."]
    alts = sorted({cfg for c in res.values() for cfg in c if cfg.startswith("falconet_wait_")})
    for alt in alts:
        lines += ["", f"Same boot, falconet with the reader's other wait ({alt}), interleaved with the "
                  "first:", "", "| workload | falconet ns/syscall | added | ratio to scap | ratio of minima "
                  "| drops median/max | reader CPU s |", "|---|---|---|---|---|---|---|"]
        for mode in ("getpid", "openclose", "mixed"):
            c = res.get(mode)
            if not c or alt not in c:
                continue
            a, b, s = c[alt], c.get("baseline", {}), c.get("scap", {})
            fm = (None if None in (a.get("ns_min"), b.get("ns_min"), s.get("ns_min"))
                  or s["ns_min"] == b["ns_min"]
                  else (a["ns_min"] - b["ns_min"]) / (s["ns_min"] - b["ns_min"]))
            r = a["added_ns"] / s["added_ns"] if a.get("added_ns") is not None and s.get("added_ns") else None

            def g(x, d=0):
                return "n/a" if x is None else f"{x:,.{d}f}"
            lines.append(f"| {mode} | {g(a.get('ns_median'))} | {g(a.get('added_ns'))} | {g(r, 2)} | {g(fm, 2)} "
                         f"| {g(a.get('drops_median'))}/{g(a.get('drops_max'))} "
                         f"| {g(a.get('loop_cpu_s_median'), 2)} |")
    return "\n".join(lines) + "\n"


def run(out: str, check) -> None:
    path = os.path.join(out, "bench.txt")
    check("benchmark ran", os.path.exists(path))
    if not os.path.exists(path):
        return
    head, rows = parse(path)
    check("benchmark finished", "done" in open(path).read())
    errors = [r for r in open(path) if "error=" in r]
    check("all three configurations ran", not errors, "; ".join(e.strip() for e in errors))
    res = summarize(rows)
    miss = missing(head, rows)
    head = {k: (sorted(v) if isinstance(v, set) else v) for k, v in head.items()}
    json.dump({"head": head, "results": res, "missing": miss, "errors": [e.strip() for e in errors]},
              open(os.path.join(out, "bench.json"), "w"), indent=1)
    md = markdown(head, res, miss)
    if errors:
        md += "\nErrors: " + "; ".join(e.strip()[6:] for e in errors) + "\n"
    open(os.path.join(out, "bench.md"), "w").write(md)
    print(md)
    for mode in ("getpid", "openclose", "mixed"):
        c = res.get(mode, {})
        r = c.get("ratio_falconet_over_scap")
        check(f"{mode}: falconet added cost <= 0.7x scap's", r is not None and r <= 0.7,
              "ratio n/a" if r is None else f"ratio {r:.2f}")


if __name__ == "__main__":
    import sys

    failed = []
    run(sys.argv[1], lambda what, ok, why="": ok or failed.append(f"{what}: {why}"))
    for f in failed:
        print("FAIL", f)
    sys.exit(1 if failed else 0)
