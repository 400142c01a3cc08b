"""The embedded web server over real HTTP: /healthz, /versions and Prometheus /metrics checked
against a replay's own summary (and scraped while the replay runs), the kernel's per-CPU
counters, TLS with a falco.pem-style file, and a port in use as one clear error."""

from __future__ import annotations

import datetime
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from collector import __version__
from collector.config import Config
from collector.errors import ConfigError, OutputError
from collector.outputs import OutputManager
from collector.pipeline import Pipeline, summary
from collector.rules import RuleEngine
from collector.sources.fcap import FcapSource
from collector.webserver import PROMETHEUS_CONTENT_TYPE, WebServer, render_metrics

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules" / "falconet_rules.yaml"

# -- a strict reader of Prometheus text format 0.0.4 ------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Family name -> [(labels, value)].  Fails on anything Prometheus would reject: a sample
    without its # TYPE, a family declared twice, bad label syntax, a duplicate series."""
    assert text.endswith("\n")
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    types: dict[str, str] = {}
    seen: set[tuple[str, tuple]] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in types, f"family {name} declared twice"
            assert kind in ("counter", "gauge", "untyped", "histogram", "summary")
            types[name] = kind
            families[name] = []
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, raw_labels, value = m.groups()
        assert name in types, f"sample of {name} before its # TYPE"
        labels: dict[str, str] = {}
        if raw_labels:
            pos = 0
            for lm in _LABEL.finditer(raw_labels):
                assert lm.start() == pos, f"bad labels in {line!r}"
                labels[lm.group(1)] = re.sub(r'\\(.)', lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                                             lm.group(2))
                pos = lm.end()
            assert pos == len(raw_labels), f"bad labels in {line!r}"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"duplicate series {key}"
        seen.add(key)
        families[name].append((labels, float(value)))
    return families


def by_label(fam, label: str) -> dict[str, float]:
    return {labels[label]: v for labels, v in fam}


def scalar(fams, name: str) -> float:
    [(labels, v)] = fams[name]
    assert labels == {}
    return v


def get(url: str, context=None) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def falconet(*args):
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    p = tmp_path_factory.mktemp("cap") / "s.fcap"
    r = falconet("capture", "-w", str(p), "--source", "synthetic", "--events", "40000",
                 "--seed", "11")
    assert r.returncode == 0, r.stderr
    return p


def web_cfg(*extra: str) -> Config:
    return Config.load(None, ["stdout_output.enabled=false", "webserver.enabled=true",
                              "webserver.listen_address=127.0.0.1", "webserver.listen_port=0",
                              *extra])


def check_against_summary(fams, s: dict) -> None:
    """Every count /metrics reports equals the replay's own summary."""
    assert scalar(fams, "falconet_events_total") == s["events"] == 40000
    assert by_label(fams["falconet_events_skipped_total"], "cause") == s["skipped"]
    assert by_label(fams["falconet_events_dropped_total"], "cause") == \
        {"pipeline_queue_full": s["queue_drops"]}
    rules = fams["falcosecurity_falco_rules_matches_total"]
    assert by_label(rules, "rule_name") == s["alerts"] and len(s["alerts"]) >= 2
    assert by_label(fams["falconet_alerts_total"], "priority") == s["alerts_by_priority"]
    # Falco's labels: the priority as its number, the source, one tag_<tag>="true" per tag.
    from collector.alert import Priority
    for labels, _ in rules:
        assert labels["source"] == "syscall" and any(k.startswith("tag_") for k in labels)
        assert 0 <= int(labels["priority"]) <= 7
    by_prio: dict[str, float] = {}
    for labels, v in rules:
        p = Priority(int(labels["priority"])).label
        by_prio[p] = by_prio.get(p, 0) + v
    assert by_prio == s["alerts_by_priority"]
    assert scalar(fams, "falconet_rules_enabled") == s["engine"]["rules_enabled"]
    assert scalar(fams, "falconet_rule_evaluation_batches_total") >= 1
    assert 0 < scalar(fams, "falconet_rule_evaluation_seconds_total") < s["elapsed_s"] + 1
    for ch, st in s["outputs"].items():
        assert by_label(fams["falconet_outputs_delivered_total"], "channel")[ch] == st["delivered"]
        assert by_label(fams["falconet_outputs_drops_total"], "channel")[ch] == st["dropped"]
        assert by_label(fams["falconet_outputs_queue_depth"], "channel")[ch] == 0
    assert scalar(fams, "falcosecurity_falco_outputs_queue_num_drops_total") == \
        sum(st["dropped"] for st in s["outputs"].values())


def test_endpoints_match_a_replay_scraped_while_it_runs(capture, tmp_path):
    alerts_file = tmp_path / "alerts.txt"
    cfg = web_cfg("webserver.prometheus_metrics_enabled=true", "file_output.enabled=true",
                  f"file_output.filename={alerts_file}", "file_output.keep_alive=true")
    engine = RuleEngine.load([str(RULES)], cfg)
    source = FcapSource(str(capture), batch_events=2048)  # many batches: scrapes see progress
    source.open()
    from collector.cli.common import build_state
    state = build_state(source.strings, source.snapshot)
    outputs = OutputManager(cfg, hostname="web-test")
    pipe = Pipeline(source, state=state, engine=engine, outputs=outputs, lossless=True,
                    close_outputs=False)
    web = WebServer(cfg, pipeline=pipe, outputs=outputs, engine=engine)
    web.start()
    seen: list[float] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def scrape() -> None:
        try:
            while not done.is_set():
                code, _, body = get(web.url + "/metrics")
                assert code == 200
                seen.append(scalar(parse_metrics(body), "falconet_events_total"))
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    t = threading.Thread(target=scrape)
    t.start()
    try:
        pipe.run()
        s = summary(pipe, engine)
        done.set()
        t.join(30)
        assert not errors, errors[0]
        assert seen and seen == sorted(seen) and seen[-1] <= 40000  # scrapes never go back

        code, ctype, body = get(web.url + "/healthz")
        assert (code, ctype, json.loads(body)) == (200, "application/json", {"status": "ok"})
        code, ctype, body = get(web.url + "/versions")
        v = json.loads(body)
        assert code == 200 and ctype == "application/json"
        assert v["falconet_version"] == __version__
        assert v["engine_version_semver"] == f"0.{v['engine_version']}.0"
        assert v["backend"] in ("c", "pure") and v["abi_version"].isdigit()
        # falcoctl reads the answer into a map of strings: every value must be one.
        assert all(isinstance(x, str) for x in v.values())
        code, ctype, body = get(web.url + "/metrics")
        assert code == 200 and ctype == PROMETHEUS_CONTENT_TYPE
        fams = parse_metrics(body)
        check_against_summary(fams, s)
        assert s["outputs"]["file"]["delivered"] == s["alerts_total"] > 0
        assert len(alerts_file.read_text().splitlines()) == s["alerts_total"]
        assert scalar(fams, "falconet_capture_finished") == 1
        assert by_label(fams["falcosecurity_evt_hostname_info"], "hostname") == {"web-test": 1}
        # The replayed capture's kernel, not this host's.
        assert list(by_label(fams["falcosecurity_falco_kernel_release_info"],
                             "kernel_release")) == [source.snapshot["kernel"]]
        assert "falcosecurity_scap_n_evts_total" not in fams  # no kernel behind a replay
        assert get(web.url + "/nothing")[0] == 404
    finally:
        done.set()
        outputs.close()
        web.stop()
    with pytest.raises(OSError):  # stopped means the port is closed
        urllib.request.urlopen(web.url + "/healthz", timeout=2)


def test_falco_defaults_metrics_off_and_custom_healthz_path():
    web = WebServer(web_cfg("webserver.k8s_healthz_endpoint=/livez"))
    web.start()
    try:
        assert get(web.url + "/livez")[:2] == (200, "application/json")
        assert get(web.url + "/healthz")[0] == 404
        assert get(web.url + "/metrics")[0] == 404  # prometheus_metrics_enabled is false
        assert get(web.url + "/versions")[0] == 200
    finally:
        web.stop()
    d = Config.load(None, []).get("webserver")
    assert (d["listen_address"], d["listen_port"], d["k8s_healthz_endpoint"],
            d["prometheus_metrics_enabled"], d["ssl_enabled"]) == \
        ("0.0.0.0", 8765, "/healthz", False, False)  # Falco's defaults (enabled aside)


def test_kernel_per_cpu_counters():
    """A live source's counters, in the exact shape LiveSource.stats() gives them (wrapped by
    DecodingSource under "producer"), become Falco's scap metrics and per-cause drops."""
    from collector.sources.live import STAT_KEYS
    per_cpu = [{"cpu": c, **{k: (c + 1) * (i + 1) * 10 for i, k in enumerate(STAT_KEYS)}}
               for c in range(3)]
    producer = {"events": 0, "skipped": {}, "per_cpu": per_cpu}
    for k in STAT_KEYS:
        producer["kernel_" + k] = sum(c[k] for c in per_cpu)
    snap = {"events": 500, "queue_drops": 7, "finished": False,
            "source": {"events": 500, "skipped": {"bad record": 2}, "producer": producer}}
    fams = parse_metrics(render_metrics(snap, hostname="h", start_ns=1, now_ns=5 * 10**9 + 1))
    causes = ("drops_full", "drops_fault", "drops_toolong", "drops_compat")
    assert scalar(fams, "falcosecurity_scap_n_evts_total") == sum(c["events"] for c in per_cpu)
    assert by_label(fams["falcosecurity_scap_n_evts_cpu_total"], "cpu") == \
        {str(c["cpu"]): c["events"] for c in per_cpu}
    assert by_label(fams["falcosecurity_scap_n_drops_cpu_total"], "cpu") == \
        {str(c["cpu"]): sum(c[k] for k in causes) for c in per_cpu}
    assert scalar(fams, "falcosecurity_scap_n_drops_total") == \
        sum(c[k] for c in per_cpu for k in causes)
    dropped = by_label(fams["falconet_events_dropped_total"], "cause")
    assert dropped == {"pipeline_queue_full": 7,
                       **{"kernel_" + k: producer["kernel_" + k] for k in causes}}
    cpu2 = {lb["cause"]: v for lb, v in fams["falconet_kernel_drops_cpu_total"] if lb["cpu"] == "2"}
    assert cpu2 == {k[len("drops_"):]: per_cpu[2][k] for k in causes}
    assert by_label(fams["falconet_events_skipped_total"], "cause") == {"bad record": 2}
    assert scalar(fams, "falcosecurity_falco_duration_seconds_total") == 5
    assert scalar(fams, "falconet_capture_finished") == 0


def test_label_values_are_escaped():
    snap = {"alerts_by_rule": {'Odd "rule"\\ with\nnewline': 3},
            "rule_info": {'Odd "rule"\\ with\nnewline': (4, "syscall", ("a-b", "c.d"))}}
    fams = parse_metrics(render_metrics(snap, hostname="h"))
    [(labels, v)] = fams["falcosecurity_falco_rules_matches_total"]
    assert labels["rule_name"] == 'Odd "rule"\\ with\nnewline' and v == 3
    assert labels["tag_a_b"] == labels["tag_c_d"] == "true"


def _self_signed_pem(path: Path) -> None:
    """One PEM with the private key and a certificate for 127.0.0.1 (as Falco's falco.pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
                     + cert.public_bytes(serialization.Encoding.PEM))


def test_tls_with_one_pem_file(tmp_path):
    pem = tmp_path / "falconet.pem"
    _self_signed_pem(pem)
    web = WebServer(web_cfg("webserver.ssl_enabled=true", f"webserver.ssl_certificate={pem}",
                            "webserver.prometheus_metrics_enabled=true"))
    web.start()
    try:
        assert web.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(pem))
        assert get(web.url + "/healthz", ctx)[0] == 200
        # A client speaking plain HTTP (or one that does not trust the certificate) fails
        # alone; the server keeps serving.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(web.url.replace("https", "http") + "/healthz", timeout=5)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(web.url + "/healthz", timeout=5,
                                   context=ssl.create_default_context())
        code, _, body = get(web.url + "/metrics", ctx)
        assert code == 200 and "falconet_events_total" in parse_metrics(body)
    finally:
        web.stop()


def test_bad_certificate_names_the_setting(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for path, why in ((junk, "not a PEM file"), (tmp_path / "missing.pem", "not found")):
        web = WebServer(web_cfg("webserver.ssl_enabled=true", f"webserver.ssl_certificate={path}"))
        with pytest.raises(ConfigError) as ei:
            web.start()
        assert "webserver.ssl_certificate" in str(ei.value) and why in str(ei.value)


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match="webserver.listen_port"):
        WebServer(web_cfg("webserver.listen_port=70000"))
    with pytest.raises(ConfigError, match="webserver.listen_port"):
        WebServer(web_cfg("webserver.listen_port=http"))
    with pytest.raises(ConfigError, match="webserver.k8s_healthz_endpoint"):
        WebServer(web_cfg("webserver.k8s_healthz_endpoint=healthz"))


@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


def test_port_in_use_is_one_clear_error(busy_port, capture):
    web = WebServer(web_cfg(f"webserver.listen_port={busy_port}"))
    with pytest.raises(OutputError) as ei:
        web.start()
    msg = str(ei.value)
    assert f"127.0.0.1:{busy_port}" in msg and "webserver.listen_port" in msg
    assert "in use" in msg
    # From the command line: one line, exit 1, no traceback, nothing replayed.
    for cmd in (["replay", str(capture)],
                ["run", "--source", "synthetic", "--events", "1000"]):
        r = falconet(*cmd, "-o", "webserver.enabled=true", "-o",
                     "webserver.listen_address=127.0.0.1", "-o",
                     f"webserver.listen_port={busy_port}")
        assert r.returncode == 1, r.stderr
        assert r.stderr.strip().splitlines() == [f"falconet: {msg}"]
        assert r.stdout == ""


def test_run_serves_metrics_of_a_synthetic_run():
    """`falconet run` starts the server too; the listening line names the port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "run", "--source", "synthetic", "--events",
         str(10**9), "-o", "stdout_output.enabled=false", "-o", "webserver.enabled=true",
         "-o", "webserver.listen_address=127.0.0.1", "-o", "webserver.listen_port=0",
         "-o", "webserver.prometheus_metrics_enabled=true", "--stats-json"],
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert m, line
        url = m.group(1)
        values = []
        for _ in range(3):
            fams = parse_metrics(get(url + "/metrics")[2])
            values.append(scalar(fams, "falconet_events_total"))
            assert scalar(fams, "falconet_capture_finished") == 0
            threading.Event().wait(0.3)
        assert values == sorted(values) and values[-1] > 0
        proc.send_signal(__import__("signal").SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    s = json.loads(err.strip().splitlines()[-1])
    assert s["events"] >= values[-1]
