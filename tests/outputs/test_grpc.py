"""The gRPC server with real grpcio clients: Falco 0.43's API over a unix socket and over
mutual TLS, fan-out to several clients, Falconet's filters, resume, gap and restart notices,
and a slow subscriber dropped alone."""

from __future__ import annotations

import os
import pathlib
import stat
import threading

import grpc
import pytest

from collector.alert import Priority
from collector.errors import ConfigError, OutputError
from collector.outputs.grpc import (
    falconet_pb2,
    falconet_pb2_grpc,
    outputs_pb2,
    outputs_pb2_grpc,
    schema_pb2,
    version_pb2,
    version_pb2_grpc,
)

from .conftest import T0, config, make_alert, wait_for


def unix_cfg(tmp_path, *extra):
    sock = tmp_path / "run" / "falconet.sock"
    return config("grpc.enabled=true", "grpc_output.enabled=true",
                  f"grpc.bind_address=unix://{sock}", *extra), f"unix://{sock}"


def tls_cfg(certs, *extra):
    return config("grpc.enabled=true", "grpc_output.enabled=true",
                  "grpc.bind_address=localhost:0", f"grpc.private_key={certs['server_key']}",
                  f"grpc.cert_chain={certs['server_crt']}", f"grpc.root_certs={certs['ca']}",
                  *extra)


def tls_channel(address, certs, cert="client_crt", key="client_key"):
    creds = grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(certs["ca"]).read_bytes(),
        private_key=pathlib.Path(certs[key]).read_bytes(),
        certificate_chain=pathlib.Path(certs[cert]).read_bytes())
    return grpc.secure_channel(address, creds)


def emit_all(m, n, **kw):
    alerts = [make_alert(i, **kw) for i in range(n)]
    for a in alerts:
        m.emit(a)
    assert m.drain(10)
    return alerts


def collect(it, n, out):
    for r in it:
        out.append(r)
        if len(out) >= n:
            return


def test_falco_get_over_unix_socket(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    path = addr[len("unix://"):]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    emit_all(m, 5, priority=Priority.CRITICAL)
    with grpc.insecure_channel(addr) as ch:
        got = list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=10))
    assert len(got) == 5
    r = got[3]
    assert r.time.ToNanoseconds() == T0 + 3
    assert r.priority == schema_pb2.CRITICAL == 2
    assert r.source == "syscall" and r.source_deprecated == schema_pb2.SYSCALL
    assert r.rule == "Read sensitive file" and r.hostname == "node1"
    assert r.output.endswith(": Critical Sensitive file opened (file=/etc/shadow n=3)")
    # Falco stringifies fields: strings as-is, other values JSON-dumped.
    assert r.output_fields["fd.name"] == "/etc/shadow"
    assert r.output_fields["proc.tty"] == "34817" and r.output_fields["k8s.pod.name"] == "null"
    assert list(r.tags) == ["T1555", "filesystem"]


def test_wire_method_paths_are_falcos(managers, tmp_path):
    """Call by the raw paths Falco's client-go uses, decoding the bytes ourselves."""
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    emit_all(m, 2)
    with grpc.insecure_channel(addr) as ch:
        get = ch.unary_stream("/falco.outputs.service/get")
        raw = list(get(b"", timeout=10))
        v = ch.unary_unary("/falco.version.service/version")(b"", timeout=10)
    assert [outputs_pb2.response.FromString(b).output_fields["n"] for b in raw] == ["0", "1"]
    ver = version_pb2.response.FromString(v)
    from collector import __version__
    assert ver.version == __version__
    assert (ver.major, ver.minor, ver.patch) == tuple(int(x) for x in __version__.split(".")[:3])
    assert ver.engine_version == f"{ver.engine_major}.{ver.engine_minor}.{ver.engine_patch}"


def test_get_remembers_what_each_identified_client_received(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    emit_all(m, 3)
    with grpc.insecure_channel(addr) as ch:
        stub = outputs_pb2_grpc.serviceStub(ch)
        md = (("falconet-client-id", "exporter-1"),)
        assert len(list(stub.get(outputs_pb2.request(), metadata=md, timeout=10))) == 3
        assert list(stub.get(outputs_pb2.request(), metadata=md, timeout=10)) == []
        m.emit(make_alert(9))
        assert m.drain(5)
        again = list(stub.get(outputs_pb2.request(), metadata=md, timeout=10))
        assert [r.output_fields["n"] for r in again] == ["9"]
        # Another client still gets everything: fan-out, not a shared queue.
        other = list(stub.get(outputs_pb2.request(), metadata=(("falconet-client-id", "b"),),
                              timeout=10))
        assert len(other) == 4


def test_several_sub_clients_each_receive_every_alert(managers, tmp_path):
    """Falco issue 857: with Falco, concurrent clients split the alerts. Not here."""
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    emit_all(m, 10)  # raised before anyone connected (a replay): held in the history
    results = [[] for _ in range(4)]
    channels = [grpc.insecure_channel(addr) for _ in results]
    threads = []
    for ch, out in zip(channels, results):
        stream = outputs_pb2_grpc.serviceStub(ch).sub(iter([outputs_pb2.request()]), timeout=20)
        t = threading.Thread(target=collect, args=(stream, 60, out), daemon=True)
        t.start()
        threads.append((t, stream))
    assert wait_for(lambda: m.stats()["grpc"]["subscribers"] == 4)
    for i in range(10, 60):
        m.emit(make_alert(i))
    for t, _ in threads:
        t.join(15)
    for out in results:
        assert [int(r.output_fields["n"]) for r in out] == list(range(60))
    for ch in channels:
        ch.close()


def test_mutual_tls_over_tcp(managers, certs):
    m = managers(tls_cfg(certs))
    m.start()
    addr = m.grpc_server.address
    emit_all(m, 3)
    with tls_channel(addr, certs) as ch:
        got = list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=10))
        assert len(got) == 3
        ver = version_pb2_grpc.serviceStub(ch).version(version_pb2.request(), timeout=10)
        assert ver.version
    # A client certificate from another CA is refused during the handshake.
    with tls_channel(addr, certs, "rogue_crt", "rogue_key") as ch:
        with pytest.raises(grpc.RpcError) as e:
            list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=5))
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    # So is a client with no certificate at all.
    creds = grpc.ssl_channel_credentials(root_certificates=pathlib.Path(certs["ca"]).read_bytes())
    with grpc.secure_channel(addr, creds) as ch, pytest.raises(grpc.RpcError):
        list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=5))
    # And plain text.
    with grpc.insecure_channel(addr) as ch, pytest.raises(grpc.RpcError):
        list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(), timeout=5))


def test_tcp_without_tls_is_refused_unless_allowed(managers, tmp_path):
    with pytest.raises(ConfigError, match="grpc.private_key.*mutual TLS"):
        managers(config("grpc.enabled=true", "grpc.bind_address=127.0.0.1:0",
                        "grpc.private_key=", "grpc.cert_chain=", "grpc.root_certs="))
    m = managers(config("grpc.enabled=true", "grpc_output.enabled=true",
                        "grpc.bind_address=127.0.0.1:0", "grpc.private_key=", "grpc.cert_chain=",
                        "grpc.root_certs=", "grpc.allow_insecure_tcp=true"))
    m.start()
    emit_all(m, 1)
    with grpc.insecure_channel(m.grpc_server.address) as ch:
        assert len(list(outputs_pb2_grpc.serviceStub(ch).get(outputs_pb2.request(),
                                                             timeout=5))) == 1


def test_missing_tls_file_names_the_key(managers, certs, tmp_path):
    with pytest.raises(ConfigError, match=r"'grpc.root_certs': cannot read .*nope.crt"):
        managers(tls_cfg(certs, f"grpc.root_certs={tmp_path}/nope.crt"))


def test_socket_in_use_and_stale_socket(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m1 = managers(cfg)
    m1.start()
    m2 = managers(unix_cfg(tmp_path)[0])
    with pytest.raises(OutputError, match="is in use by another process"):
        m2.start()
    m1.close()
    # A socket file left behind by a crashed process is replaced.
    import socket as _s
    path = addr[len("unix://"):]
    s = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)
    s.bind(path)
    s.close()
    m3 = managers(unix_cfg(tmp_path)[0])
    m3.start()
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def native(addr):
    ch = grpc.insecure_channel(addr)
    return ch, falconet_pb2_grpc.alertsStub(ch)


def test_native_filters(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    m.emit(make_alert(0, priority=Priority.DEBUG))
    m.emit(make_alert(1, priority=Priority.CRITICAL, rule="Shell in container"))
    m.emit(make_alert(2, priority=Priority.ERROR, tags=("network",)))
    m.emit(make_alert(3, priority=Priority.WARNING, source="k8s_audit"))
    m.emit(make_alert(4, priority=Priority.EMERGENCY, rule="Shell in container",
                      tags=("network",)))
    assert m.drain(5)
    ch, stub = native(addr)

    def seqs(expected, **kw):
        """Collect as many alerts as expected (a short filter runs into the deadline), then
        one more sentinel alert (seq 6+) proves nothing unexpected was queued before it."""
        out = []
        for ev in stub.subscribe(falconet_pb2.subscribe_request(resume_after=0, **kw),
                                 timeout=5):
            out.append(ev.alert.seq)
            if len(out) == len(expected):
                break
        return out

    assert seqs([1, 2, 3, 4, 5]) == [1, 2, 3, 4, 5]
    assert seqs([2, 3, 5], min_priority=schema_pb2.ERROR) == [2, 3, 5]
    assert seqs([2, 5], rules=["Shell in container"]) == [2, 5]
    assert seqs([3, 5], tags=["network", "nope"]) == [3, 5]
    assert seqs([4], sources=["k8s_audit"]) == [4]
    assert seqs([5], min_priority=schema_pb2.CRITICAL, tags=["network"]) == [5]
    # Debug is the least severe: min_priority=DEBUG lets everything through, EMERGENCY only 5.
    assert seqs([5], min_priority=schema_pb2.EMERGENCY) == [5]
    ch.close()


def test_native_event_carries_seq_epoch_and_falco_json(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path, "json_output=true")
    m = managers(cfg)
    m.start()
    [a] = emit_all(m, 1)
    ch, stub = native(addr)
    ev = next(iter(stub.subscribe(falconet_pb2.subscribe_request(resume_after=0), timeout=5)))
    assert ev.epoch == m.grpc_server.hub.epoch == stub.info(falconet_pb2.info_request()).epoch
    assert ev.alert.seq == a.seq == 1
    assert ev.alert.json == a.json_line()
    assert ev.alert.response.output == a.text_line()
    ch.close()


def test_native_resume_gap_and_restart(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path, "grpc_output.history_size=5")
    m = managers(cfg)
    m.start()
    emit_all(m, 8)  # seqs 1..8, history keeps 4..8
    ch, stub = native(addr)
    evs = []
    for ev in stub.subscribe(falconet_pb2.subscribe_request(resume_after=5,
                                                            epoch=m.grpc_server.hub.epoch),
                             timeout=5):
        evs.append(ev)
        if len(evs) == 3:
            break
    assert [e.alert.seq for e in evs] == [6, 7, 8]

    evs = []
    for ev in stub.subscribe(falconet_pb2.subscribe_request(resume_after=1), timeout=5):
        evs.append(ev)
        if len(evs) == 6:
            break
    assert evs[0].WhichOneof("body") == "notice"
    n = evs[0].notice
    assert n.what == falconet_pb2.notice.GAP and n.missed == 2 and n.first_available == 4
    assert [e.alert.seq for e in evs[1:]] == [4, 5, 6, 7, 8]

    evs = []
    for ev in stub.subscribe(falconet_pb2.subscribe_request(resume_after=7, epoch="old-epoch"),
                             timeout=5):
        evs.append(ev)
        if len(evs) == 3:
            break
    assert evs[0].notice.what == falconet_pb2.notice.RESTARTED
    assert evs[1].notice.what == falconet_pb2.notice.GAP  # 1..3 evicted since the restart
    assert evs[2].alert.seq == 4
    ch.close()


def test_live_only_subscription_gets_no_history(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path)
    m = managers(cfg)
    m.start()
    emit_all(m, 3)
    ch, stub = native(addr)
    stream = stub.subscribe(falconet_pb2.subscribe_request(), timeout=10)
    got = []
    t = threading.Thread(target=collect, args=(stream, 1, got), daemon=True)
    t.start()
    assert wait_for(lambda: m.stats()["grpc"]["subscribers"] == 1)
    m.emit(make_alert(77))
    t.join(5)
    assert got[0].alert.seq == 4
    ch.close()


def test_slow_subscriber_is_dropped_alone_and_can_resume(managers, tmp_path):
    cfg, addr = unix_cfg(tmp_path, "grpc_output.subscriber_queue_capacity=20",
                         "grpc_output.history_size=5000")
    m = managers(cfg)
    m.start()
    n = 1500
    big = "x" * 16384  # ~25 MB in total: more than the transport buffers of a stalled client
    fast_ch, fast = native(addr)
    slow_ch, slow = native(addr)
    fast_got: list = []
    t = threading.Thread(target=collect, args=(
        fast.subscribe(falconet_pb2.subscribe_request(), timeout=30), n, fast_got), daemon=True)
    t.start()
    slow_stream = slow.subscribe(falconet_pb2.subscribe_request(), timeout=30)
    assert wait_for(lambda: m.stats()["grpc"]["subscribers"] == 2)
    m.emit(make_alert(0))
    first = next(slow_stream)  # the slow client reads one alert ... and then stops reading
    assert first.alert.seq == 1
    for i in range(1, n):
        m.emit(make_alert(i, blob=big))
        if i % 10 == 0:  # a reader that keeps up: never more than 20 alerts behind
            assert wait_for(lambda i=i: len(fast_got) >= i - 5)
    t.join(30)
    # The fast subscriber got everything, in order, although the other one stalled.
    assert [e.alert.seq for e in fast_got] == list(range(1, n + 1))
    assert wait_for(lambda: m.stats()["grpc"]["subscribers_dropped"] == 1, timeout=10)
    assert m.stats()["grpc"]["dropped"] == 0  # the channel itself lost nothing
    # The slow client reads what was in flight, then learns it was dropped and why.
    seen = [first.alert.seq]
    with pytest.raises(grpc.RpcError) as e:
        for ev in slow_stream:
            seen.append(ev.alert.seq)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "resume after seq" in e.value.details()
    assert len(seen) < n
    # Resuming from the last one it saw gets the rest, each alert exactly once.
    for ev in slow.subscribe(falconet_pb2.subscribe_request(resume_after=seen[-1],
                                                            epoch=first.epoch), timeout=30):
        seen.append(ev.alert.seq)
        if ev.alert.seq == n:
            break
    assert seen == list(range(1, n + 1))
    fast_ch.close()
    slow_ch.close()


def test_grpc_output_without_grpc_server_is_not_streamed(managers):
    m = managers(config("grpc.enabled=false", "grpc_output.enabled=true"))
    assert m.grpc_server is None and "grpc" not in m.stats()
