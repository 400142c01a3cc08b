"""Alert delivery throughput: the highest alert rate at which no alert is lost.

For each target -- gRPC with 1 subscriber, gRPC with 8 subscribers (Falconet's native
``subscribe``, each subscriber a separate process, as real clients are), and HTTP POSTs to a
loopback receiver in another process -- the benchmark emits alerts through a real
OutputManager at increasing paced rates for ``--duration`` seconds each, then checks that
every subscriber (or the receiver) got every alert.  It reports, per rate, the alerts
received, lost (queue drops, dropped subscribers, missing), and the best lossless rate.

    python benchmarks/bench_outputs.py                        # all targets, default rates
    python benchmarks/bench_outputs.py --targets grpc1 --rates 5000,10000 --duration 3

Queues have their default capacities (10000 per channel and per subscriber), so a burst is
absorbed but a sustained rate above what delivery can do shows up as loss.
"""

from __future__ import annotations

import argparse
import http.server
import multiprocessing as mp
import os
import pathlib
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.alert import Alert, Priority
from collector.config import Config
from collector.outputs import OutputManager

FIELDS = {"evt.time": 0, "evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat",
          "proc.cmdline": "cat /etc/shadow", "proc.pid": 4242, "user.name": "root",
          "container.id": "host", "proc.tty": 34817, "k8s.pod.name": None}


def alert(i: int) -> Alert:
    t = time.time_ns()
    f = dict(FIELDS)
    f["evt.time"] = t
    return Alert(time_ns=t, rule="Read sensitive file untrusted", priority=Priority.WARNING,
                 output=f"Sensitive file opened for reading by non-trusted program | "
                        f"file=/etc/shadow command=cat /etc/shadow pid=4242 n={i}",
                 output_fields=f, tags=("T1555", "filesystem", "mitre_credential_access"))


# -- clients (child processes) ----------------------------------------------------------------

def grpc_client(address: str, counter, ready, stop) -> None:
    import grpc

    from collector.outputs.grpc import falconet_pb2, falconet_pb2_grpc
    ch = grpc.insecure_channel(address)
    stub = falconet_pb2_grpc.alertsStub(ch)
    ready.set()
    while not stop.is_set():
        try:
            for ev in stub.subscribe(falconet_pb2.subscribe_request()):
                if ev.WhichOneof("body") == "alert":
                    with counter.get_lock():
                        counter.value += 1
                if stop.is_set():
                    break
        except grpc.RpcError:
            time.sleep(0.05)  # dropped for being slow (counted by the server): come back live


def http_receiver(port_out, counter, stop) -> None:
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            with counter.get_lock():
                counter.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    port_out.value = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    stop.wait()
    srv.shutdown()


# -- one target --------------------------------------------------------------------------------

def run_target(name: str, rates: list[int], duration: float) -> list[dict]:
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    tmp = tempfile.mkdtemp(prefix="falconet-bench-")
    procs, counters = [], []
    overrides = ["stdout_output.enabled=false"]
    if name.startswith("grpc"):
        nsubs = int(name[4:])
        sock = f"unix://{tmp}/falconet.sock"
        overrides += ["grpc.enabled=true", "grpc_output.enabled=true",
                      f"grpc.bind_address={sock}"]
        m = OutputManager(Config.load(None, overrides), "bench")
        m.start()
        for _ in range(nsubs):
            c, ready = ctx.Value("q", 0), ctx.Event()
            p = ctx.Process(target=grpc_client, args=(sock, c, ready, stop), daemon=True)
            p.start()
            ready.wait(30)
            procs.append(p)
            counters.append(c)
        deadline = time.monotonic() + 30
        while m.stats()["grpc"]["subscribers"] < nsubs and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        c, port = ctx.Value("q", 0), ctx.Value("i", 0)
        p = ctx.Process(target=http_receiver, args=(port, c, stop), daemon=True)
        p.start()
        while not port.value:
            time.sleep(0.01)
        procs.append(p)
        counters.append(c)
        overrides += ["http_output.enabled=true", f"http_output.url=http://127.0.0.1:{port.value}/"]
        m = OutputManager(Config.load(None, overrides), "bench")
        m.start()
    chan = "grpc" if name.startswith("grpc") else "http"
    results = []
    try:
        for rate in rates:
            before = [c.value for c in counters]
            s0 = m.stats()[chan]
            n = int(rate * duration)
            tick = 0.005
            per_tick = max(1, int(rate * tick))
            t0 = time.perf_counter()
            sent = 0
            while sent < n:
                for _ in range(min(per_tick, n - sent)):
                    m.emit(alert(sent))
                    sent += 1
                delay = t0 + sent / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            emit_time = time.perf_counter() - t0
            # Wait for delivery to finish (no progress for 2 s = done).
            last, still = None, time.monotonic()
            while time.monotonic() - still < 2.0:
                now = [c.value for c in counters]
                if now != last:
                    last, still = now, time.monotonic()
                if all(v - b >= n for v, b in zip(now, before)):
                    break
                time.sleep(0.02)
            got = [c.value - b for c, b in zip(counters, before)]
            s1 = m.stats()[chan]
            expected = n * len(counters)
            lost = expected - sum(got)
            results.append({
                "target": name, "rate": rate, "achieved": round(n / emit_time),
                "expected": expected, "received": sum(got), "lost": lost,
                "queue_drops": s1["dropped"] - s0["dropped"],
                "subscribers_dropped": s1.get("subscribers_dropped", 0)
                - s0.get("subscribers_dropped", 0)})
            print(f"{name:6} rate={rate:>6}/s achieved={results[-1]['achieved']:>6}/s "
                  f"received={sum(got):>7}/{expected:<7} lost={lost:<6} "
                  f"queue_drops={results[-1]['queue_drops']} "
                  f"subscribers_dropped={results[-1]['subscribers_dropped']}", flush=True)
            if lost > expected // 2:
                break  # far past the limit: higher rates only lose more
    finally:
        stop.set()
        m.close(timeout=2)
        for p in procs:
            p.join(3)
            if p.is_alive():
                p.terminate()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="grpc1,grpc8,http")
    ap.add_argument("--rates", default="1000,2000,5000,10000,20000,40000")
    ap.add_argument("--duration", type=float, default=3.0)
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, duration {args.duration:g} s "
          "per rate", flush=True)
    summary = {}
    for target in args.targets.split(","):
        res = run_target(target, rates, args.duration)
        ok = [r["rate"] for r in res if r["lost"] == 0]
        summary[target] = max(ok) if ok else 0
    print("best lossless rate (alerts/s): " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
