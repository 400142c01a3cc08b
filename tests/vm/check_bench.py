"""Bench mode of check.py: medians per (config, workload) from OUT/bench.txt, added cost per
syscall over the no-module baseline, Falconet/Falco ratio; writes OUT/bench.json and a
markdown table OUT/bench.md."""
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
        d = out.setdefault(key, {"ns": [], "events": [], "drops": []})
        for k, src in (("ns", "ns_per_syscall"), ("events", "events"), ("drops", "drops")):
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
        }
    for mode, cfgs in res.items():
        base = cfgs.get("baseline", {}).get("ns_median")
        for cfg, s in cfgs.items():
            s["added_ns"] = (s["ns_median"] - base) if base is not None and s["ns_median"] else None
        f, s = cfgs.get("falconet", {}).get("added_ns"), cfgs.get("scap", {}).get("added_ns")
        cfgs["ratio_falconet_over_scap"] = (f / s) if f is not None and s else None
    return res


def markdown(head: dict, res: dict) -> str:
    lines = [f"Kernel {head.get('kernel', '?')}, {head.get('cpus', '?')} vCPUs, qemu TCG, "
             f"clocksource {head.get('clocksource', '?')}, {head.get('reps', '?')} repetitions.",
             "",
             "| workload | baseline ns/syscall | falconet.ko + reader | scap.ko + sysdig -w /dev/null "
             "| falconet added | scap added | ratio | falconet drops (median/max) | scap drops (median/max) |",
             "|---|---|---|---|---|---|---|---|---|"]
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
            f"| {fmt(f.get('drops_median'))}/{fmt(f.get('drops_max'))} "
            f"| {fmt(s.get('drops_median'))}/{fmt(s.get('drops_max'))} |")
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
    json.dump({"head": head, "results": res}, open(os.path.join(out, "bench.json"), "w"), indent=1)
    md = markdown(head, res)
    open(os.path.join(out, "bench.md"), "w").write(md)
    print(md)
    for mode in ("getpid", "openclose", "mixed"):
        c = res.get(mode, {})
        r = c.get("ratio_falconet_over_scap")
        check(f"{mode}: falconet added cost <= 0.7x scap's", r is not None and r <= 0.7,
              "ratio n/a" if r is None else f"ratio {r:.2f}")
