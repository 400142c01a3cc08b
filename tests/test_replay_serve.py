"""`falconet replay --serve`: after the capture ends the process keeps its gRPC server (unix
socket) and web server up; real grpcio clients read what the replay raised (Falco's `get`
streams what this client has not received yet, then ends; every client gets everything),
/metrics agrees with the replay's summary, and SIGTERM/SIGINT end it cleanly with status 0."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import grpc
import pytest

from collector import __version__
from collector.outputs.grpc import (
    falconet_pb2,
    falconet_pb2_grpc,
    outputs_pb2,
    outputs_pb2_grpc,
    schema_pb2,
    version_pb2,
    version_pb2_grpc,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_webserver import by_label, check_against_summary, get, parse_metrics, scalar

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules" / "falconet_rules.yaml"
READY = "falconet: replay done; serving"


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    p = tmp_path_factory.mktemp("cap") / "s.fcap"
    r = subprocess.run([sys.executable, "-m", "collector", "capture", "-w", str(p), "--source",
                        "synthetic", "--events", "40000", "--seed", "11"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return p


class Served:
    """A `falconet replay --serve` process, its stderr lines read on a thread."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "collector", "replay", "--serve",
                                      "-o", "stdout_output.enabled=false", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_ready(self, timeout: float = 120) -> list[str]:
        while True:
            line = self.lines.get(timeout=timeout)
            assert line is not None, "exited before serving:\n" + "\n".join(self.stderr)
            self.stderr.append(line)
            if line.startswith(READY):
                return self.stderr

    def finish(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        while (line := self.lines.get(timeout=10)) is not None:
            self.stderr.append(line)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def served():
    made: list[Served] = []

    def start(*args: str) -> Served:
        s = Served(*args)
        made.append(s)
        return s

    yield start
    for s in made:
        s.kill()


def grpc_args(sock: Path, *extra: str) -> list[str]:
    return ["-o", "grpc.enabled=true", "-o", "grpc_output.enabled=true",
            "-o", f"grpc.bind_address=unix://{sock}", *extra]


def falco_get(addr: str, client: str | None) -> list:
    md = (("falconet-client-id", client),) if client else None
    with grpc.insecure_channel(addr) as ch:
        return list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), metadata=md,
                                                        timeout=30))


def det(msg) -> bytes:
    """A message's bytes with map entries in key order: the plain serialization orders
    output_fields by protobuf's per-process hash table, so two copies of one alert (Falco's
    response, and the same response inside Falconet's event) may list them differently."""
    return msg.SerializeToString(deterministic=True)


def test_grpc_clients_read_what_the_replay_raised_then_sigterm(capture, tmp_path, served):
    sock = tmp_path / "run" / "falconet.sock"
    addr = f"unix://{sock}"
    s = served(*grpc_args(sock), "-o", "webserver.enabled=true",
               "-o", "webserver.listen_address=127.0.0.1", "-o", "webserver.listen_port=0",
               "-o", "webserver.prometheus_metrics_enabled=true", "--stats-json", "-r", str(RULES),
               str(capture))
    lines = s.wait_ready()
    summary = json.loads(next(ln for ln in lines if ln.startswith("{")))
    n = summary["alerts_total"]
    assert summary["events"] == 40000 and n > 100
    assert summary["outputs"]["grpc"]["delivered"] == n
    url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", lines[0]).group(1)
    assert f"gRPC at {addr}" in lines[-1] and f"web at {url}" in lines[-1]
    assert (os.stat(sock).st_mode & 0o777) == 0o600

    # Falco's get: everything held that this client has not received, then the call ends.
    first = falco_get(addr, "exporter-1")
    assert len(first) == n
    assert Counter(r.rule for r in first) == summary["alerts"]
    prio_names = {p: schema_pb2.priority.Name(p).capitalize() for p in range(8)}
    assert Counter(prio_names[r.priority] for r in first) == summary["alerts_by_priority"]
    times = [r.time.ToNanoseconds() for r in first]
    assert times == sorted(times)  # in the order the replay raised them
    for r in first[:20]:
        assert r.source == "syscall" and r.output and r.hostname and r.output_fields
        assert r.output.split(" ", 2)[1] == prio_names[r.priority]
    assert falco_get(addr, "exporter-1") == []  # nothing new since
    # Every client receives every alert (Falco issue 857 fixed); anonymous ones too.
    assert [det(r) for r in falco_get(addr, "exporter-2")] == [det(r) for r in first]
    assert len(falco_get(addr, None)) == n

    with grpc.insecure_channel(addr) as ch:
        v = version_pb2_grpc.serviceStub(ch).version(version_pb2.request(), timeout=10)
        assert v.version == __version__
        native = falconet_pb2_grpc.alertsStub(ch)
        info = native.info(falconet_pb2.info_request(), timeout=10)
        assert (info.first_seq, info.last_seq) == (1, n)
        # Falconet's service resumes: after seq n-5, exactly the last five, then it waits.
        call = native.subscribe(falconet_pb2.subscribe_request(resume_after=n - 5),
                                timeout=30)
        got = []
        for ev in call:
            got.append(ev.alert)
            if len(got) == 5:
                call.cancel()
                break
        assert [a.seq for a in got] == list(range(n - 4, n + 1))
        assert [det(a.response) for a in got] == [det(r) for r in first[-5:]]

    # The web server agrees with the summary, and says the capture is done.
    code, _, body = get(url + "/healthz")
    assert code == 200 and json.loads(body) == {"status": "ok"}
    fams = parse_metrics(get(url + "/metrics")[2])
    check_against_summary(fams, summary)
    assert scalar(fams, "falconet_capture_finished") == 1
    assert by_label(fams["falconet_outputs_delivered_total"], "channel") == {"grpc": n}
    assert scalar(fams, "falconet_grpc_subscribers") == 0  # the clients above are gone

    rc = s.finish(signal.SIGTERM)
    assert rc == 0, "\n".join(s.stderr)
    assert not any("Traceback" in ln or "internal error" in ln for ln in s.stderr)
    assert not sock.exists()  # the socket file is removed on the way out
    with pytest.raises(OSError):
        get(url + "/healthz")


def test_get_streams_only_what_the_history_still_holds(capture, tmp_path, served):
    sock = tmp_path / "g.sock"
    s = served(*grpc_args(sock, "-o", "grpc_output.history_size=50"), "--stats-json",
               str(capture))
    summary = json.loads(next(ln for ln in s.wait_ready() if ln.startswith("{")))
    n = summary["alerts_total"]
    got = falco_get(f"unix://{sock}", "late-client")
    assert len(got) == 50
    with grpc.insecure_channel(f"unix://{sock}") as ch:
        info = falconet_pb2_grpc.alertsStub(ch).info(falconet_pb2.info_request(), timeout=10)
    assert (info.first_seq, info.last_seq, info.history_capacity) == (n - 49, n, 50)
    assert s.finish(signal.SIGINT) == 0, "\n".join(s.stderr)  # Ctrl-C is a clean stop too


def test_web_server_alone_is_enough_to_serve(capture, served):
    s = served("-o", "webserver.enabled=true", "-o", "webserver.listen_address=127.0.0.1",
               "-o", "webserver.listen_port=0", "-o", "webserver.prometheus_metrics_enabled=true",
               str(capture))
    lines = s.wait_ready()
    url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", lines[0]).group(1)
    assert "gRPC" not in lines[-1]
    fams = parse_metrics(get(url + "/metrics")[2])
    assert scalar(fams, "falconet_events_total") == 40000
    assert scalar(fams, "falconet_capture_finished") == 1
    assert s.finish() == 0, "\n".join(s.stderr)


def test_signal_during_the_replay_stops_it_without_serving(tmp_path, served):
    big = tmp_path / "big.fcap"
    r = subprocess.run([sys.executable, "-m", "collector", "capture", "-w", str(big),
                        "--source", "synthetic", "--events", "400000", "--seed", "3"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    sock = tmp_path / "g.sock"
    s = served(*grpc_args(sock), "-o", "webserver.enabled=true",
               "-o", "webserver.listen_address=127.0.0.1", "-o", "webserver.listen_port=0",
               "-o", "webserver.prometheus_metrics_enabled=true", "-o", "pipeline.queue_batches=1",
               "--stats-json", str(big))
    line = s.lines.get(timeout=120)
    url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line).group(1)
    for _ in range(2000):  # mid-replay: some events read, the source not finished
        fams = parse_metrics(get(url + "/metrics")[2])
        if scalar(fams, "falconet_events_total") > 0:
            break
    assert scalar(fams, "falconet_capture_finished") == 0, "the replay ended too soon"
    assert s.finish(signal.SIGTERM, timeout=60) == 0, "\n".join(s.stderr)
    assert not any(ln.startswith(READY) for ln in s.stderr)  # stopped, so not served
    summary = json.loads(next(ln for ln in s.stderr if ln.startswith("{")))
    assert 0 < summary["events"] < 400000
    assert not sock.exists()


def test_serve_with_nothing_to_serve_is_refused(capture):
    r = subprocess.run([sys.executable, "-m", "collector", "replay", "--serve", str(capture)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("falconet: --serve: nothing to serve") and "grpc.enabled" in line
    assert r.stdout == ""  # refused before replaying anything


def test_help_documents_serve():
    r = subprocess.run([sys.executable, "-m", "collector", "replay", "--help"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and "--serve" in r.stdout and "SIGTERM" in r.stdout
