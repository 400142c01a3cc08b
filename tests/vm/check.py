"""Host-side checks of a VM run (tests/vm/run_vm.sh calls this after qemu exits).

    check.py test|bench|demo OUTDIR REPO

Prints one line per check ("ok"/"FAIL"), writes OUTDIR/check.json and exits 0 only if every
check passed.
"""
import ipaddress
import json
import os
import subprocess
import re
import sys

OUT = sys.argv[2]
sys.path.insert(0, sys.argv[3])
from collector import abi, native

CHECKS: list[dict] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    CHECKS.append({"name": name, "ok": bool(ok), "detail": detail})
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
    return ok


def results() -> dict:
    res = {}
    path = os.path.join(OUT, "results.txt")
    if not os.path.exists(path):
        return res
    for line in open(path):
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] == "RESULT":
            res[parts[1]] = parts[2].strip() if len(parts) > 2 else ""
    return res


def rc(res: dict, key: str):
    m = re.search(r"rc=(\d+)", res.get(key, ""))
    return int(m.group(1)) if m else None


def kv(s: str) -> dict:
    return {k: int(v) for k, v in re.findall(r"(\w+):?=(\d+)", s)}


def sockaddr(b: bytes) -> str:
    if len(b) < 4:
        return ""
    fam, port = int.from_bytes(b[0:2], "little"), int.from_bytes(b[2:4], "little")
    if fam == 2 and len(b) >= 8:
        return f"inet:{ipaddress.IPv4Address(b[4:8])}:{port}"
    if fam == 10 and len(b) >= 20:
        return f"inet6:{ipaddress.IPv6Address(b[4:20])}:{port}"
    if fam == 1:
        return "unix:" + b[4:].decode("utf-8", "replace")
    return f"family{fam}"


def dmesg_problems(text: str) -> list[str]:
    """Kernel log lines that mean trouble (case matters: "BUG:" is the kernel's, "bug" in
    a firmware message is not)."""
    bad = re.compile(r"WARNING:|BUG[: ]|Oops|Call Trace|general protection|Kernel panic|"
                     r"list_add corruption|scheduling while atomic|sleeping function called|"
                     r"refcount_t|[Ll]eak|falconet:.*([Ee]rror|[Ff]ail)")
    benign = re.compile(r"module verification failed|calibrate_delay|MP-BIOS bug")
    return [ln for ln in text.splitlines() if bad.search(ln) and not benign.search(ln)]


class Capture:
    def __init__(self, path: str):
        raw = open(path, "rb").read() if os.path.exists(path) else b""
        self.strings = native.StringTable()
        self.batch, self.stats = native.decode(raw, self.strings)
        self.bytes = len(raw)
        b = self.batch
        self.cols = {k: b[k] for k in b.cols}
        self.n = b.n

    def text(self, sid: int) -> bytes:
        return self.strings.get(int(sid)) or b""

    def find(self, exp: dict) -> tuple[int, str]:
        """Number of records matching the expectation, and why the closest one did not."""
        import numpy as np
        types = exp["type"].split("|")
        nums = [abi.BY_NAME[t].num for t in types]
        mask = np.isin(self.cols["type"], nums)
        if exp.get("pid") is not None:
            mask &= self.cols["pid"] == exp["pid"]
        rows = np.flatnonzero(mask)
        fields = dict(exp["fields"])
        count = fields.pop("count", None)
        if count is not None:
            return len(rows), f"{len(rows)} records"
        why = f"no {exp['type']} record for pid {exp.get('pid')}"
        good = 0
        for i in rows:
            et = abi.BY_NUM[int(self.cols["type"][i])]
            bad = []
            for name, want in fields.items():
                if want is None:
                    continue
                if name == "ret":
                    got = int(self.cols["ret"][i])
                else:
                    slot = next((et.slot(n) for n in name.split("|") if et.slot(n)), None)
                    if slot is None:
                        bad.append(f"{et.falco} has no {name}")
                        continue
                    kind, k = slot
                    if kind == "a":
                        got = int(self.cols[f"a{k}"][i])
                    else:
                        raw = self.text(self.cols[f"v{k}"][i])
                        got = sockaddr(raw) if name in ("addr", "laddr") else raw.decode("utf-8", "replace")
                if isinstance(want, str):
                    ok = got in want.split("|") if "\0" not in want else got == want
                else:
                    ok = got == want
                if not ok:
                    bad.append(f"{name}={got!r} (want {want!r})")
            if not bad:
                good += 1
            else:
                why = f"{et.falco} pid {int(self.cols['pid'][i])}: " + ", ".join(bad)
        return good, why


CONTAINER_RULES = """
- macro: container
  condition: (container.id != host)
- macro: falconet_vm_spawn
  condition: evt.type in (execve, execveat) and evt.rawres = 0
- rule: Falconet VM container exec
  desc: a successful exec inside a container (tests/vm/check.py)
  condition: falconet_vm_spawn and container
  output: "container exec pid=%proc.pid container_id=%container.id"
  priority: WARNING
- rule: Falconet VM host exec
  desc: a successful exec on the host (tests/vm/check.py)
  condition: falconet_vm_spawn and not container
  output: "host exec pid=%proc.pid container_id=%container.id"
  priority: NOTICE
"""


def check_containers(cap: "Capture", wl: dict, repo: str) -> None:
    """EXECVE's `cgroup` slot on live capture: the workload's execs inside container-like
    cgroups (v2 docker scope, v1 cpuset kubepods) carry their cgroup path, every other exec
    carries "/"; the state engine derives container.id from it (first 12 hex digits of the
    id, "host" otherwise), and rules see the same through the `container` macro."""
    import numpy as np
    from collector.capture import FcapWriter
    from collector.state.engine import StateEngine
    conts = wl.get("containers") or []
    want_n = 2 if wl.get("cpuset_v1", True) else 1     # v1 cpuset: not built in Debian's 6.12
    check("container-like cgroups set up in the guest", not wl.get("containers_error") and len(conts) == want_n,
          wl.get("containers_error") or f"{len(conts)} of {want_n}"
          + ("" if want_n == 2 else " (kernel without cgroup v1 cpuset: v1 case skipped)"))
    if cap.n == 0:
        return
    ex = np.flatnonzero(np.isin(cap.cols["type"], [abi.BY_NAME["execve"].num, abi.BY_NAME["execveat"].num])
                        & (cap.cols["ret"] == 0))
    eng = StateEngine(cap.strings)
    cid_col = eng.enrich(cap.batch, columns=["container_id"])["container_id"]
    slot = abi.BY_NAME["execve"].slot("cgroup")[1]
    got = {}
    for i in ex:
        got.setdefault(int(cap.cols["pid"][i]), []).append(
            (cap.text(cap.cols[f"v{slot}"][i]).decode("utf-8", "replace"), cap.text(cid_col[i]).decode()))
    for c in conts:
        rows = got.get(c["pid"], [])
        check(f"container.id derived from the live cgroup slot: {c['what']}",
              (c["cgroup"], c["container_id"]) in rows,
              f"pid {c['pid']}: (cgroup, container.id) {rows} (want {(c['cgroup'], c['container_id'])})")
    rt = wl.get("preempt_rt", False)   # PREEMPT_RT guest: the module leaves the slot empty
    root = "" if rt else "/"
    hp = wl.get("host_exec_pid")
    check("container.id of an ordinary exec is host", (root, "host") in got.get(hp, []),
          f"pid {hp}: {got.get(hp)}")
    cpids = {c["pid"] for c in conts}
    others = [(p, r) for p, rs in got.items() if p not in cpids for r in rs]
    bad = [(p, r) for p, r in others if r != (root, "host")]
    check(f"every other exec: cgroup {root!r}, container.id host", others and not bad,
          f"{len(others)} execs" + (f"; not: {bad[:5]}" if bad else ""))

    # the same through the rules engine, as `falconet replay` of the live records
    fcap, rules = os.path.join(OUT, "containers.fcap"), os.path.join(OUT, "containers_rules.yaml")
    with FcapWriter(fcap) as w:
        w.write_records(open(os.path.join(OUT, "capture.bin"), "rb").read())
    with open(rules, "w") as f:
        f.write(CONTAINER_RULES)
    p = subprocess.run([sys.executable, "-m", "collector", "replay", fcap, "-r", rules, "--json"],
                       capture_output=True, text=True, cwd=repo, timeout=600)
    alerts = []
    for line in p.stdout.splitlines():
        try:
            a = json.loads(line)
            alerts.append((a["rule"], a["output_fields"]["proc.pid"], a["output_fields"]["container.id"]))
        except (ValueError, KeyError):
            pass
    in_cont = sorted((pid, cid) for r, pid, cid in alerts if r == "Falconet VM container exec")
    want = sorted((c["pid"], c["container_id"]) for c in conts if c["container_id"] != "host")
    check("rules: the `container` macro fires on exactly the container execs, with container.id"
          + (" (PREEMPT_RT: none, the slot is empty there)" if rt else ""),
          p.returncode == 0 and in_cont == want and (bool(want) or rt),
          f"alerts {in_cont} want {want}" + (f" (replay rc={p.returncode}: {p.stderr[-300:]})"
                                             if p.returncode else ""))
    check("rules: an ordinary exec is a host exec",
          ("Falconet VM host exec", hp, "host") in alerts, f"{len(alerts)} alerts")


def check_live_run(repo: str) -> None:
    """`falconet run` on the live module raised, with enriched fields, every rule that a
    replay of this boot's `falconet capture` of the same session raises."""
    alerts = []
    for line in open(os.path.join(OUT, "run_alerts.json"), errors="replace"):
        line = line.strip()
        if line.startswith("{"):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if "rule" in d:
                alerts.append(d)
    live = {a["rule"] for a in alerts}
    p = subprocess.run([sys.executable, "-m", "collector", "replay",
                        os.path.join(OUT, "demo.fcap"), "--json"],
                       capture_output=True, text=True, cwd=repo, timeout=300)
    replayed = {json.loads(x)["rule"] for x in p.stdout.splitlines() if x.startswith("{")}
    check("live run: every rule the replayed capture of the session raises, raised live",
          len(replayed) >= 12 and replayed <= live,
          f"missing live: {sorted(replayed - live)}; live {len(live)} rules, replay "
          f"{len(replayed)} (rc={p.returncode} {p.stderr[-200:]})")
    shadow = [a for a in alerts if a.get("output_fields", {}).get("fd.name") == "/etc/shadow"]
    check("live run: alerts carry state (proc.name, user.name, fd.name of /etc/shadow)",
          bool(shadow) and all(a["output_fields"].get("proc.name") not in (None, "", "<NA>")
                               and a["output_fields"].get("user.name") not in (None, "", "<NA>")
                               for a in shadow),
          f"{len(shadow)} /etc/shadow alerts; first: {shadow[:1]}")


def check_test() -> None:
    res = results()
    check("guest ran to the end", "done" in res, res.get("kernel", ""))
    check("insmod falconet.ko", rc(res, "insmod") == 0)
    check("/dev/falconet created", rc(res, "device") == 0)
    check("live reader attached", res.get("reader_ready") == "yes")
    check("workload ran", rc(res, "workload") == 0,
          open(os.path.join(OUT, "workload.log")).read()[-600:] if rc(res, "workload") else "")
    busy = open(os.path.join(OUT, "rmmod_busy.txt")).read().strip() if os.path.exists(
        os.path.join(OUT, "rmmod_busy.txt")) else ""
    check("rmmod refused while a reader has the rings mapped", rc(res, "rmmod_while_reading") not in (0, None)
          and "in use" in busy, busy)
    check("CPU 1 taken offline and back online while capturing",
          rc(res, "cpu1_offline") == 0 and rc(res, "cpu1_online") == 0)
    check("reader stopped cleanly on SIGTERM", rc(res, "reader") == 0)
    check("rmmod with no reader, under load", rc(res, "rmmod_under_load") == 0)
    for i in (1, 2, 3):
        check(f"cycle {i}: load, capture, unload under load",
              all(rc(res, f"cycle{i}_{s}") == 0 for s in ("insmod", "reader", "rmmod")),
              " ".join(f"{s}:{rc(res, f'cycle{i}_{s}')}" for s in ("insmod", "reader", "rmmod")))
        st = os.path.join(OUT, f"cycle{i}.bin.stats.json")
        ev = json.load(open(st))["kernel_events"] if os.path.exists(st) else 0
        check(f"cycle {i}: events captured under load", ev > 0, f"{ev} events")
    check("reader SIGKILLed while mapped, then rmmod",
          rc(res, "cycle4_insmod") == 0 and rc(res, "cycle4_rmmod_after_kill") == 0)
    # After the warm-up cycle, six more rounds allocate and free rings (5 x 2 x 16 MiB and
    # the killed reader's 2 x 32 MiB): a leak of each round's rings costs >= 224 MiB.
    # Caches are dropped before each reading, yet MemFree still moves by up to ~48 MiB
    # between readings under TCG (seen on 2026-11-29 with VmallocUsed, Slab and every other
    # /proc/meminfo category unchanged; meminfo_*.txt and ps_*.txt are kept to investigate),
    # so a single one-off leak of one ring (>= 16 MiB) is below what this check can see.
    before, after = kv(res.get("mem_warm", "")), kv(res.get("mem_after", ""))
    if before and after:
        drop = (before["MemAvailable"] - after["MemAvailable"]) // 1024
        check("no memory leak across the load/unload cycles (MemAvailable)", drop < 64,
              f"MemAvailable {before['MemAvailable'] // 1024} -> {after['MemAvailable'] // 1024} MiB")
    dm = open(os.path.join(OUT, "dmesg.txt"), errors="replace").read() if os.path.exists(
        os.path.join(OUT, "dmesg.txt")) else ""
    probs = dmesg_problems(dm)
    check("kernel log: no warning, oops or leak", bool(dm) and not probs, "; ".join(probs[:5]))
    check("kernel log: module loaded and unloaded", dm.count("falconet: ABI") >= 5 and
          dm.count("falconet: unloaded") >= 5)

    # --- what the live reader captured ---
    stats_path = os.path.join(OUT, "capture.bin.stats.json")
    st = json.load(open(stats_path)) if os.path.exists(stats_path) else {}
    cap = Capture(os.path.join(OUT, "capture.bin"))
    summary = {"records": cap.n, "bytes": cap.bytes,
               **{k: v for k, v in st.items() if k.startswith("kernel_")}}
    check("capture decodes cleanly", cap.n > 0 and not cap.stats.bad_length and
          cap.stats.bad_offset is None, json.dumps(summary))
    check("records merged in timestamp order", bool((cap.cols["ts"][1:] >= cap.cols["ts"][:-1]).all()))
    check("kernel counted what the reader got", st.get("kernel_events") == st.get("records"),
          f"kernel {st.get('kernel_events')} reader {st.get('records')}")
    check("no drops (buffer full)", st.get("kernel_drops_full", -1) == 0,
          f"drops_full={st.get('kernel_drops_full')}")
    wl0 = json.load(open(os.path.join(OUT, "workload.json")))
    check("32-bit syscalls counted and skipped (drops_compat)",
          st.get("kernel_drops_compat", 0) >= wl0.get("compat_n", 0) > 0,
          f"drops_compat={st.get('kernel_drops_compat')}")
    wl = json.load(open(os.path.join(OUT, "workload.json")))
    for exp in wl["expect"]:
        got, why = cap.find(exp)
        want = exp["fields"].get("count", 1)
        if want == 0:
            check(f"absent: {exp['what']}", got == 0, f"{got} records")
            continue
        check(f"captured: {exp['what']}", got >= want and (want == 1 or got <= want + 5),
              why if got < want else f"{got} records")
    check_containers(cap, wl, sys.argv[3])
    check("falconet run (live) stopped cleanly on SIGINT", rc(res, "run") == 0,
          open(os.path.join(OUT, "run.log"), errors="replace").read()[-600:]
          if os.path.exists(os.path.join(OUT, "run.log")) else "no run.log")
    check_live_run(sys.argv[3])
    import check_demo
    check_demo.run(OUT, check, copy=False)
    json.dump({"checks": CHECKS, "summary": summary}, open(os.path.join(OUT, "check.json"), "w"),
              indent=1)


def main() -> int:
    mode = sys.argv[1]
    if mode == "test":
        check_test()
    else:
        import importlib
        importlib.import_module(f"check_{mode}").run(OUT, check)
        json.dump({"checks": CHECKS}, open(os.path.join(OUT, "check.json"), "w"), indent=1)
    failed = [c for c in CHECKS if not c["ok"]]
    print(f"{len(CHECKS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not CHECKS else 0


if __name__ == "__main__":
    sys.exit(main())
