"""The JSON API over HTTP, exports, live updates, sub-path serving and output escaping."""

from __future__ import annotations

import csv
import http.client
import io
import json
import threading
import time

from .helpers import alert, basic

XSS = "<script>alert(1)</script>"


def seed(ui, n=30):
    c = ui.client()
    prios = ["Critical", "Warning", "Notice"]
    for i in range(n):
        r = c.post("/", alert(priority=prios[i % 3], rule=f"Rule {i % 2}", hostname=f"node{i % 5}",
                              tags=["t-all", f"t{i % 2}"],
                              output=f"12:00:00.000000000: Warning n={i} proc={'bash' if i % 4 else 'nc'}"))
        assert r.status == 200


def test_search_shape_filters_and_pagination(ui):
    seed(ui)
    c = ui.logged_in()
    r = c.get("/api/v1/events/search?limit=7&page=2")
    body = r.json()
    assert r.headers["Content-Type"].startswith("application/json")
    assert body["statistics"] == {"returned": 7, "all": 30} and body["page"] == 2
    ev = body["results"][0]
    assert set(ev) >= {"uuid", "time", "priority", "rule", "source", "hostname", "output", "message",
                       "output_fields", "tags", "id"}
    assert ev["message"].startswith("n=")                      # prefix stripped for display
    body = c.get("/api/v1/events/search?priority=critical,notice&rule=Rule+0").json()
    assert body["statistics"]["all"] == 10
    assert {e["priority"] for e in body["results"]} == {"Critical", "Notice"}
    assert c.get("/api/v1/events/search?filter=proc%3Dnc&tags=t0").json()["statistics"]["all"] == 8
    assert c.get("/api/v1/events/search?hostname=null&source=syscall").json()["statistics"]["all"] == 30
    assert c.get("/api/v1/events/search?since=1h").json()["statistics"]["all"] == 30
    assert c.get("/api/v1/events/search?to=2000-01-01T00:00:00Z").json()["statistics"]["all"] == 0


def test_counts_in_falcosidekick_ui_shape(ui):
    seed(ui)
    c = ui.logged_in()
    assert c.get("/api/v1/events/count").json() == {"statistics": {"all": 30}}
    body = c.get("/api/v1/events/count/priority").json()
    assert body == {"results": {"Critical": 10, "Warning": 10, "Notice": 10},
                    "statistics": {"all": 30, "distincts": 3}}
    body = c.get("/api/v1/events/count/tags").json()
    assert body["results"] == {"t-all": 30, "t0": 15, "t1": 15}
    assert c.get("/api/v1/events/count/hostname?rule=Rule%201").json()["statistics"]["all"] == 15
    r = c.get("/api/v1/events/count/password")
    assert r.status == 400 and "cannot count by" in r.json()["error"]


def test_bad_parameters_are_400_with_a_reason(ui):
    c = ui.logged_in()
    for q, word in (("priority=loud", "priority"), ("since=soon", "duration"), ("page=0", "page"),
                    ("limit=x", "whole numbers"), ("from=yesterday", "from")):
        r = c.get("/api/v1/events/search?" + q)
        assert r.status == 400 and word in r.json()["error"], (q, r.text)


def test_timeline(ui):
    seed(ui, 12)
    body = ui.logged_in().get("/api/v1/events/timeline?since=1h&buckets=12").json()
    assert body["buckets"] == 12 and set(body["series"]) == {"Critical", "Warning", "Notice"}
    assert sum(sum(v) for v in body["series"].values()) == 12
    assert list(body["series"]) == ["Critical", "Warning", "Notice"]          # severity order


def test_detail_and_missing(ui):
    uuid = ui.client().post("/", alert()).json()["uuid"]
    c = ui.logged_in()
    ev = c.get(f"/api/v1/events/{uuid}").json()
    assert ev["output_fields"]["proc.aname[2]"] == "sshd" and ev["output_fields"]["k8s.pod.name"] is None
    assert c.get("/api/v1/events/00000000-0000-0000-0000-000000000000").status == 404
    assert c.get(f"/events/{uuid}").status == 200


def test_export_json_and_csv(ui):
    seed(ui, 9)
    ui.client().post("/", alert(rule="=HYPERLINK(\"http://x\")", priority="Error"))
    c = ui.logged_in()
    r = c.get("/api/v1/events/export?format=json&priority=Warning")
    assert 'filename="falco_events.json"' in r.headers["Content-Disposition"]
    data = json.loads(r.body)
    assert len(data) == 3 and all(d["priority"] == "Warning" for d in data)
    assert set(data[0]) == {"hostname", "output", "output_fields", "priority", "rule", "source", "tags",
                            "time", "uuid"}                     # Falco's JSON alert, plus uuid
    assert data[0]["time"].endswith("Z") and len(data[0]["time"].split(".")[1]) == 10
    r = c.get("/api/v1/events/export?format=csv")
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["time", "priority", "rule"] and len(rows) == 11
    assert rows[1][2] == "'=HYPERLINK(\"http://x\")"           # formula defused
    assert c.get("/api/v1/events/export?format=xml").status == 400
    assert ui.client().get("/api/v1/events/export").status == 401


def test_live_stream_announces_new_alerts(ui):
    c = ui.logged_in()
    conn = http.client.HTTPConnection("127.0.0.1", ui.server.port, timeout=10)
    conn.request("GET", "/api/v1/events/stream",
                 headers={"Cookie": "; ".join(f"{k}={v}" for k, v in c.cookies.items())})
    r = conn.getresponse()
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    lines: list[str] = []

    def read():
        while True:
            line = r.fp.readline().decode()
            if not line:
                return
            lines.append(line.strip())
            if line.startswith("data:") and lines.count("event: alerts"):
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    time.sleep(0.3)
    uuid = ui.client().post("/", alert()).json()["uuid"]
    t.join(5)
    conn.close()
    assert "event: hello" in lines and "event: alerts" in lines
    last_id = json.loads([line for line in lines if line.startswith("data:")][-1][5:])["last_id"]
    assert ui.store.get(uuid)["id"] == last_id
    assert ui.client().get("/api/v1/events/stream").status == 401


def test_sub_path_with_or_without_the_proxy_stripping_it(make_ui):
    ui = make_ui(url_prefix="/falconet")
    assert ui.url.endswith("/falconet/")
    c = ui.client()                         # requests carry /falconet/...
    assert c.post("/", alert()).status == 200
    r = c.get("/")
    assert r.status == 303 and r.headers["Location"].startswith("/falconet/login")
    r = c.login(ui.password)
    assert r.headers["Location"] == "/falconet/"
    assert "Path=/falconet/" in r.cookies()["falconet_session"]
    page = c.get("/events")
    assert '<base href="/falconet/">' in page.text
    c.prefix = ""                           # a proxy that strips the prefix
    assert c.get("/api/v1/events/count").json()["statistics"]["all"] == 1


def test_x_forwarded_prefix(ui):
    r = ui.client().get("/login", headers={"X-Forwarded-Prefix": "/sec/ui"})
    assert '<base href="/sec/ui/">' in r.text
    r = ui.client().get("/login", headers={"X-Forwarded-Prefix": '/"><script>'})
    assert "<script>" not in r.text and '<base href="/">' in r.text


def test_pages_escape_and_set_security_headers(ui):
    c = ui.client()
    r = c.get("/login?next=" + "%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
    page = c.get("/login")
    import re
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", form={"username": XSS, "password": "x", "csrf_token": csrf})
    assert XSS not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    # alert data only ever leaves as JSON, never inside server-rendered HTML
    uuid = c.post("/", alert(output_fields={"proc.name": XSS}, rule=XSS)).json()["uuid"]
    c2 = ui.logged_in()
    assert XSS not in c2.get(f"/events/{uuid}").text
    assert c2.get(f"/api/v1/events/{uuid}").headers["Content-Type"].startswith("application/json")


def test_static_files_and_docs(ui):
    c = ui.client()
    js = c.get("/static/app.js")
    assert js.status == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert ".innerHTML" not in js.text
    assert c.get("/static/../server.py").status == 404
    assert c.get("/static/nope.js").status == 404
    docs = c.get("/api/v1/docs", headers=basic(ui.password))
    assert docs.status == 200 and "/api/v1/events/search" in docs.text
    info = ui.logged_in().get("/api/v1/info").json()
    assert info["store"]["full_text_index"] is True and info["retention"]["max_events"] == 1_000_000


def test_timeline_includes_alerts_stamped_ahead_of_the_clock(ui):
    from .helpers import falco_time
    ui.client().post("/", alert(time=falco_time(-1800)))      # 30 minutes in the future
    ui.client().post("/", alert())
    body = ui.logged_in().get("/api/v1/events/timeline?since=1h&buckets=10").json()
    assert sum(body["series"]["Warning"]) == 2
    assert body["end_ns"] > body["start_ns"] + 3600 * 10**9
