"""Benchmark of the web UI: sustained ingestion and search latency at 1 million stored alerts.

    python benchmarks/bench_webui.py                      # 1,000,000 alerts (a few minutes)
    python benchmarks/bench_webui.py --events 100000 --seconds 10

1. Fills a fresh database with --events realistic alerts (20 rules, 8 priorities, 50 hosts,
   tags, ~250-character outputs, 10 output fields; times spread over 7 days) through the
   store's own write path (what `falconet run` uses in-process), and reports the rate.
2. Starts `falconet ui` on it in a separate process, as in production.
3. Sends Falco JSON alerts over HTTP from --senders threads on keep-alive connections (as
   Falco's http_output does) for --seconds, while another thread runs a search every 0.25 s:
   reports acknowledged alerts/s and the search latencies seen meanwhile.
4. Times typical API queries on the full database (median of --repeat runs, over HTTP,
   including JSON rendering).
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from urllib.parse import quote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from collector.ui.store import Store  # noqa: E402

RULES = [f"Rule number {i:02d} " + w for i, w in enumerate(
    ["Read sensitive file untrusted", "Terminal shell in container", "Write below etc",
     "Netcat remote code execution", "Launch privileged container", "Modify binary dirs",
     "Create symlink over sensitive files", "Clear log activities", "Packet socket created",
     "Redirect stdout to network", "Drop and execute new binary", "Disallowed SSH connection",
     "Search private keys", "Contact K8S API server", "Run shell untrusted", "Fileless execution",
     "PTRACE attached to process", "Debugfs launched", "Mount launched in container",
     "Detect crypto miners"])]
TAGS = ["T1555", "container", "filesystem", "host", "maturity_stable", "mitre_credential_access",
        "mitre_execution", "network", "process", "shell"]
PROCS = ["bash", "sh", "cat", "nc", "python3", "curl", "sshd", "node", "java", "xmrig"]


def make_alert(rng: random.Random, t_ns: int) -> dict:
    proc = rng.choice(PROCS)
    path = f"/etc/{rng.choice(['shadow', 'passwd', 'sudoers', 'hosts'])}{rng.randrange(1000)}"
    fields = {"evt.time": t_ns, "evt.type": "openat", "proc.name": proc,
              "proc.cmdline": f"{proc} -c {path}", "proc.pid": rng.randrange(1, 1 << 22),
              "user.name": rng.choice(["root", "www-data", "alice"]), "fd.name": path,
              "container.id": f"{rng.randrange(1 << 48):012x}", "proc.pname": rng.choice(PROCS),
              "k8s.pod.name": None}
    rule = rng.choice(RULES)
    output = (f"{rule.split(' ', 3)[3]} (user={fields['user.name']} command={fields['proc.cmdline']} "
              f"pid={fields['proc.pid']} file={path} parent={fields['proc.pname']} "
              f"container_id={fields['container.id']} image=docker.io/library/app:{rng.randrange(99)})")
    return {"uuid": str(uuidlib.uuid4()), "time_ns": t_ns, "priority": rng.choice(range(8)),
            "rule": rule, "source": "syscall", "hostname": f"node{rng.randrange(50):02d}",
            "output": output, "output_fields": fields, "tags": sorted(rng.sample(TAGS, 3))}


def falco_json(rec: dict) -> bytes:
    from collector.ui.ingest import falco_json as fj
    return json.dumps(fj(rec)).encode()


def fill(db: str, n: int) -> float:
    rng = random.Random(1)
    now = time.time_ns()
    span = 7 * 86400 * 10**9
    store = Store(db, synchronous="normal").start()
    t0 = time.perf_counter()
    batch: list[dict] = []
    for i in range(n):
        batch.append(make_alert(rng, now - span + (span * i) // n))
        if len(batch) == 5000:
            store.add(batch, timeout=600)
            batch = []
            if (i + 1) % 100_000 == 0:
                print(f"  filled {i + 1:,} ({(i + 1) / (time.perf_counter() - t0):,.0f}/s)", file=sys.stderr)
    if batch:
        store.add(batch, timeout=600)
    elapsed = time.perf_counter() - t0
    store.close()
    return n / elapsed


class Api:
    def __init__(self, port: int, password: str):
        self.port = port
        self.auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> tuple[float, dict]:
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=self.auth)
        r = self.conn.getresponse()
        body = r.read()
        ms = (time.perf_counter() - t0) * 1000
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {body[:200]!r}")
        return ms, json.loads(body)


def sustained(port: int, password: str, senders: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds
    counts = [0] * senders
    errors: list[str] = []

    def send(k: int) -> None:
        rng = random.Random(100 + k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop:
            body = falco_json({**make_alert(rng, time.time_ns()), "id": 0})
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                counts[k] += 1
            else:
                errors.append(str(r.status))
        conn.close()

    latencies: list[float] = []

    def search() -> None:
        api = Api(port, password)
        queries = ["/api/v1/events/search?limit=100", "/api/v1/events/search?priority=Warning&since=24h",
                   "/api/v1/events/search?filter=shadow12&limit=50"]
        i = 0
        while time.monotonic() < stop:
            latencies.append(api.get(queries[i % len(queries)])[0])
            i += 1
            time.sleep(0.25)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
    threads.append(threading.Thread(target=search))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {"alerts_per_s": sum(counts) / elapsed, "acknowledged": sum(counts), "errors": len(errors),
            "search_ms_median": statistics.median(latencies) if latencies else None,
            "search_ms_p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
            "search_ms_max": latencies[-1] if latencies else None, "searches": len(latencies)}


QUERIES = [
    ("newest page (limit 100)", "/api/v1/events/search?limit=100"),
    ("page 50 (limit 100)", "/api/v1/events/search?limit=100&page=50"),
    ("priority=Warning", "/api/v1/events/search?priority=Warning"),
    ("priority=Warning,Error since 24h", "/api/v1/events/search?priority=Warning,Error&since=24h"),
    ("rule=<one rule>", "/api/v1/events/search?rule=" + quote(RULES[3])),
    ("hostname + tag", "/api/v1/events/search?hostname=node07&tags=shell"),
    ("free text (rare: 'shadow123')", "/api/v1/events/search?filter=shadow123"),
    ("free text (common: 'sudoers')", "/api/v1/events/search?filter=sudoers"),
    ("free text + priority", "/api/v1/events/search?filter=xmrig&priority=Critical"),
    ("count (all)", "/api/v1/events/count"),
    ("count/priority since 24h", "/api/v1/events/count/priority?since=24h"),
    ("count/rule since 24h", "/api/v1/events/count/rule?since=24h"),
    ("count/tags since 24h", "/api/v1/events/count/tags?since=24h"),
    ("timeline 24h, 60 buckets", "/api/v1/events/timeline?since=24h&buckets=60"),
    ("count/rule all time", "/api/v1/events/count/rule"),
    ("timeline 7d, 60 buckets", "/api/v1/events/timeline?since=7d&buckets=60"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--synchronous", default="full", choices=["full", "normal"])
    ap.add_argument("--dir", default=None, help="where to put the database (default: a temp dir)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the database already in --dir instead of filling a new one")
    args = ap.parse_args()
    workdir = args.dir or tempfile.mkdtemp(prefix="falconet-bench-ui-")
    db = os.path.join(workdir, "bench.db")
    fill_rate = None
    if not (args.reuse and os.path.exists(db)):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        print(f"filling {args.events:,} alerts into {db} ...", file=sys.stderr)
        fill_rate = fill(db, args.events)
    size = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
    pw = subprocess.run([sys.executable, "-m", "collector", "ui", "--db", db, "--reset-password"],
                        cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip().rsplit(" ", 1)[1]
    with socketserver_port() as port:
        pass
    cmd = [sys.executable, "-m", "collector", "ui", "--db", db, "--port", str(port),
           "--max-events", "0", "--max-age", "0", "-o", f"webui.synchronous={args.synchronous}"]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                Api(port, pw).get("/api/v1/healthz")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        api = Api(port, pw)
        print(f"sending over HTTP for {args.seconds:.0f} s with {args.senders} senders ...", file=sys.stderr)
        live = sustained(port, pw, args.senders, args.seconds)
        rows = []
        for label, path in QUERIES:
            times = []
            for _ in range(args.repeat):
                ms, body = api.get(path)
                times.append(ms)
            total = body.get("statistics", {}).get("all", "")
            rows.append((label, statistics.median(times), max(times), total))
    finally:
        server.terminate()
        server.wait(30)
    held = rows[0][3]
    print(f"\n## Web UI at {held:,} stored alerts (synchronous={args.synchronous})\n")
    if fill_rate is not None:
        print(f"- fill through the store (in-process path): {fill_rate:,.0f} alerts/s")
    print(f"- database: {size / 2**20:,.0f} MiB")
    print(f"- HTTP ingestion, {args.senders} keep-alive senders, {args.seconds:.0f} s: "
          f"{live['alerts_per_s']:,.0f} alerts/s acknowledged (committed), {live['errors']} errors")
    print(f"- searches during ingestion ({live['searches']}): median {live['search_ms_median']:.0f} ms, "
          f"p95 {live['search_ms_p95']:.0f} ms, max {live['search_ms_max']:.0f} ms\n")
    print("| query | median ms | max ms | matching |")
    print("|---|---:|---:|---:|")
    for label, med, worst, total in rows:
        print(f"| {label} | {med:.1f} | {worst:.1f} | {total} |")
    return 0


class socketserver_port:
    """A free TCP port on loopback (bound and released)."""

    def __enter__(self) -> int:
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


if __name__ == "__main__":
    sys.exit(main())
