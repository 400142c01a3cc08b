"""The falcosidekick-compatible receiver: what it accepts, what it rejects and why, who may
send, and that a 200 means the alert is stored."""

from __future__ import annotations

import json

import pytest

from collector.ui.ingest import PayloadError, parse_payload, parse_time, strip_prefix
from collector.ui.query import Filters

from .helpers import ALERT, alert

BAD = "Please send a valid request body"


def test_falco_json_alert_is_stored_with_every_field(ui):
    c = ui.client()
    r = c.post("/", ALERT)
    assert r.status == 200, r.text
    uuid = r.json()["uuid"]
    rec = ui.store.get(uuid)
    assert rec["rule"] == ALERT["rule"] and rec["priority"] == 4 and rec["hostname"] == "node1"
    assert rec["time_ns"] == 1743606903434319636
    assert rec["output_fields"] == ALERT["output_fields"]           # typed values, nulls kept
    assert rec["tags"] == sorted(ALERT["tags"])
    assert rec["output"] == ALERT["output"]


@pytest.mark.parametrize("change, reason", [
    ({"priority": None}, "priority is missing"),
    ({"priority": "loud"}, "unknown priority 'loud'"),
    ({"rule": ""}, "rule is missing or empty"),
    ({"rule": None}, "rule is missing or empty"),
    ({"time": None}, "time is missing"),
    ({"time": "0001-01-01T00:00:00Z"}, "time is zero"),
    ({"time": "yesterday"}, "not an RFC 3339 time"),
    ({"time": 1743606903}, "time must be an RFC 3339 string"),
    ({"output_fields": {}}, "output_fields is missing or empty"),
    ({"output_fields": None}, "output_fields is missing or empty"),
    ({"output_fields": ["a"]}, "output_fields must be a JSON object"),
    ({"tags": "a,b"}, "tags must be a list of strings"),
])
def test_sidekick_validation_answers_400_with_reason(ui, change, reason):
    body = dict(ALERT)
    for k, v in change.items():
        if v is None:
            body.pop(k)
        else:
            body[k] = v
    before = ui.store.count(Filters())
    r = ui.client().post("/", body)
    assert r.status == 400
    assert r.text.startswith(BAD) and reason in r.text, r.text
    assert ui.store.count(Filters()) == before


def test_not_json_and_not_an_object(ui):
    c = ui.client()
    r = c.post("/", "17:15:03.434319636: Warning text output", headers={"Content-Type": "text/plain"})
    assert r.status == 400 and "body is not JSON" in r.text
    r = c.post("/", "[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "one JSON object" in r.text


def test_priority_case_insensitive_info_and_source_default(ui):
    body = alert(priority="info")
    body.pop("source")
    r = ui.client().post("/", body)
    assert r.status == 200
    rec = ui.store.get(r.json()["uuid"])
    assert rec["priority"] == 6 and rec["source"] == "syscall"


def test_falcosidekick_webui_envelope_and_add_path(ui):
    env = {"event": alert(uuid="0f3d5b6e-9f3c-4a4b-9c51-6b1c9f0e2a11"), "outputs": ["WebUI"]}
    r = ui.client().post("/api/v1/events/add", env)
    assert r.status == 200
    assert r.json()["uuid"] == "0f3d5b6e-9f3c-4a4b-9c51-6b1c9f0e2a11"
    # a retry of the same event is not stored twice
    assert ui.client().post("/", env).status == 200
    assert ui.store.count(Filters()) == 1


def test_body_too_large_is_413(make_ui):
    ui = make_ui(max_body_bytes=2000)
    big = alert(output="x" * 5000)
    assert ui.client().post("/", big).status == 413


def test_healthz_and_ping_need_no_auth(ui):
    c = ui.client()
    r = c.get("/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    assert r.headers["Content-Type"].startswith("application/json")
    assert c.get("/api/v1/healthz").json() == {"status": "ok"}
    assert c.get("/ping").text == "pong\n"


# -- who may send ---------------------------------------------------------------------------

REMOTE = {"X-Forwarded-For": "203.0.113.7"}     # relayed by a proxy: not loopback


def test_remote_ingestion_needs_a_token(ui):
    c = ui.client()
    r = c.post("/", alert(), headers=REMOTE)
    assert r.status == 401 and "token" in r.text
    token = ui.server.auth.create_token("node1")
    assert c.post("/", alert(), headers={**REMOTE, "Authorization": f"Bearer {token}"}).status == 200
    assert c.post(f"/?token={token}", alert(), headers=REMOTE).status == 200      # Falco's url
    assert c.post("/", alert(), headers={**REMOTE, "X-Falconet-Token": token}).status == 200
    assert c.post("/", alert(), headers={**REMOTE, "Authorization": "Bearer wrong"}).status == 401
    assert ui.server.auth.revoke_token("node1")
    assert c.post("/", alert(), headers={**REMOTE, "Authorization": f"Bearer {token}"}).status == 401


def test_config_tokens_are_accepted(make_ui):
    ui = make_ui(ingest_tokens=["s3cret-from-config-0123456789"])
    h = {**REMOTE, "Authorization": "Bearer s3cret-from-config-0123456789"}
    assert ui.client().post("/", alert(), headers=h).status == 200


def test_a_web_page_cannot_inject_through_loopback(ui):
    r = ui.client().post("/", alert(), headers={"Origin": "http://evil.example"})
    assert r.status == 403
    r = ui.client().post("/", alert(), headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403


def test_loopback_trust_can_be_turned_off(make_ui):
    ui = make_ui(trust_loopback=False)
    assert ui.client().post("/", alert()).status == 401


def test_wrong_methods(ui):
    assert ui.client().request("PUT", "/", alert()).status == 405


# -- parsing units --------------------------------------------------------------------------

def test_parse_time_formats():
    assert parse_time("2025-04-02T15:15:03.434319636Z") == 1743606903434319636
    assert parse_time("2025-04-02T17:15:03.434319636+02:00") == 1743606903434319636
    assert parse_time("2025-04-02T15:15:03Z") == 1743606903000000000
    assert parse_time("2025-04-02T15:15:03.5Z") == 1743606903500000000
    assert parse_time("0001-01-01T00:00:00Z") == 0
    with pytest.raises(PayloadError):
        parse_time("2025-13-02T15:15:03Z")


def test_strip_prefix():
    assert strip_prefix("17:15:03.434319636: Warning Sensitive file") == "Sensitive file"
    assert strip_prefix("2025-04-02T17:15:03.434319636+0200: Critical x y") == "x y"
    assert strip_prefix("no prefix here") == "no prefix here"


def test_parse_payload_accepts_message_when_output_is_absent():
    body = alert()
    body.pop("output")
    body["message"] = "just the message"
    assert parse_payload(json.dumps(body))["output"] == "just the message"


def test_keep_alive_connections_as_falco_uses_them(ui):
    """Falco's http_output (keep_alive: true) sends many alerts on one connection."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", ui.server.port, timeout=10)
    body = json.dumps(alert()).encode()
    hdrs = {"Content-Type": "application/json", "User-Agent": "falcosecurity/falco"}
    statuses = []
    for payload in (body, body, b'{"rule": "x"}', body):
        conn.request("POST", "/", body=payload, headers=hdrs)
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
    assert statuses == [200, 200, 400, 200]
    sock = conn.sock
    assert sock is not None                        # still the same open connection
    # a request answered before its body is read must close the connection, not desync it
    conn.request("POST", "/", body=body, headers={**hdrs, **REMOTE})
    r = conn.getresponse()
    r.read()
    assert r.status == 401 and r.getheader("Connection") == "close"
    conn.request("POST", "/", body=body, headers=hdrs)     # http.client reconnects
    r = conn.getresponse()
    assert r.status == 200, r.read()
    conn.close()


def test_chunked_bodies_are_accepted_and_malformed_ones_rejected(ui):
    import http.client
    body = json.dumps(alert()).encode()
    conn = http.client.HTTPConnection("127.0.0.1", ui.server.port, timeout=10)
    conn.request("POST", "/", body=iter([body[:50], body[50:]]),
                 headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                 encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200, r.read()
    conn.close()
    import socket
    with socket.create_connection(("127.0.0.1", ui.server.port), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 400")
