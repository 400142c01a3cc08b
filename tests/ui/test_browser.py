"""The web UI in a real browser: Debian's headless Chromium driven by Playwright.

Logs in, watches Falco JSON alerts arrive live, filters by priority and rule, opens a detail
view, exports, and checks that alert text containing HTML and script is shown as text.  The
UI runs under a sub-path (/falconet), as behind a reverse proxy.  Screenshots go to
$FALCONET_ARTIFACTS/ui (default /tmp/falconet-artifacts/ui).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .helpers import alert

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

pytestmark = pytest.mark.browser

ARTIFACTS = os.path.join(os.environ.get("FALCONET_ARTIFACTS", "/tmp/falconet-artifacts"), "ui")
# Required on this closed network: no background connections to Google's services.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
XSS_PROC = "<script>alert(1)</script>"
XSS_RULE = "Shell <img src=x onerror=alert(2)> spawned"


def wait_text(page, element_id: str, text: str) -> None:
    """Wait until the element exists and shows exactly ``text`` (it may be re-rendered)."""
    page.wait_for_function("([id, text]) => (document.getElementById(id) || {}).textContent === text",
                           arg=[element_id, text])


@pytest.fixture
def browser():
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def test_ui_in_chromium(make_ui, browser):
    ui = make_ui(url_prefix="/falconet")
    sender = ui.client()
    seed = [
        alert(priority="Critical", rule="Terminal shell in container", hostname="node1"),
        alert(priority="Warning", rule="Read sensitive file untrusted", hostname="node2"),
        alert(priority="Warning", rule="Read sensitive file untrusted", hostname="node1"),
        alert(priority="Notice", rule="Write below etc", hostname="node3", tags=["filesystem"]),
        alert(priority="Error", rule=XSS_RULE, hostname="<b>node4</b>",
              output=f"12:00:00.000000000: Error A shell was spawned (proc.name={XSS_PROC})",
              output_fields={"proc.name": XSS_PROC,
                             "proc.cmdline": "sh -c '<iframe src=javascript:alert(3)>'",
                             "evt.time": 1743606903434319636, "container.id": None}),
    ]
    uuids = [sender.post("/", a).json()["uuid"] for a in seed]

    # bypass_csp: Playwright's waits evaluate strings, which the UI's CSP forbids.  It also
    # makes the XSS checks stronger: escaping must hold without the CSP's second line of defence.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True,
                                  bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))

    # sign in (redirected to the login page first)
    page.goto(ui.url)
    assert "/falconet/login" in page.url
    page.fill("#username", "admin")
    page.fill("#password", ui.password)
    page.click("#login-submit")
    page.wait_for_selector("#priority-counts")
    assert page.url.rstrip("/").endswith("/falconet")
    page.wait_for_function("document.getElementById('live-status').textContent.includes('live')")
    assert page.text_content("#total-count") == "5 alerts"
    page.screenshot(path=os.path.join(ARTIFACTS, "dashboard.png"), full_page=True)

    # live on the dashboard: a new alert changes the counts without a reload
    sender.post("/", alert(priority="Critical", rule="Terminal shell in container", hostname="node2"))
    wait_text(page, "total-count", "6 alerts")
    assert "Terminal shell in container" in page.text_content("#by-rule")

    # events table
    page.click("#nav-events")
    page.wait_for_selector("table.events tbody tr")
    assert page.locator("table.events tbody tr").count() == 6
    assert page.text_content("#result-count") == "6 alerts"

    # filter by priority (checkbox submits at once), then by rule
    page.check("#f-priority input[value=Warning]")
    wait_text(page, "result-count", "2 alerts")
    prios = page.locator("table.events tbody tr td:nth-child(2)").all_text_contents()
    assert prios == ["Warning", "Warning"]
    assert "priority=Warning" in page.url
    page.uncheck("#f-priority input[value=Warning]")
    wait_text(page, "result-count", "6 alerts")
    page.fill("#f-rule", "Terminal shell in container")
    page.click("#apply")
    wait_text(page, "result-count", "2 alerts")
    assert set(page.locator("table.events td.rule").all_text_contents()) == {"Terminal shell in container"}
    page.check("#f-priority input[value=Critical]")
    wait_text(page, "result-count", "2 alerts")

    # export the current selection
    with page.expect_download() as dl:
        page.click("#export-json")
    exported = json.loads(Path(dl.value.path()).read_text())
    assert len(exported) == 2 and {e["rule"] for e in exported} == {"Terminal shell in container"}
    assert all(e["priority"] == "Critical" for e in exported)
    with page.expect_download() as dl:
        page.click("#export-csv")
    assert dl.value.suggested_filename == "falco_events.csv"
    assert Path(dl.value.path()).read_text().count("Terminal shell in container") == 2

    # live update in the table: clear filters, send an alert, see its row appear
    page.click("#clear")
    wait_text(page, "result-count", "6 alerts")
    live_uuid = sender.post("/", alert(priority="Alert", rule="Live rule from a sensor")).json()["uuid"]
    row = page.wait_for_selector(f"tr[data-uuid='{live_uuid}']")
    assert "Live rule from a sensor" in row.text_content()
    assert page.text_content("#result-count") == "7 alerts"
    page.screenshot(path=os.path.join(ARTIFACTS, "events.png"), full_page=True)

    # the hostile alert is shown as text in the table ...
    xss_row = page.locator(f"tr[data-uuid='{uuids[4]}']")
    assert xss_row.locator("td.rule").text_content() == XSS_RULE
    assert XSS_PROC in xss_row.locator("td.output").text_content()
    assert xss_row.locator("img, script, b").count() == 0

    # ... and in its detail view, with every output field
    xss_row.locator("td.rule").click()
    page.wait_for_selector("#detail-fields")
    assert page.url.endswith(f"/falconet/events/{uuids[4]}")
    assert page.text_content("#detail-rule") == XSS_RULE
    assert page.text_content("#detail-hostname") == "<b>node4</b>"
    fields = dict(zip(page.locator("#detail-fields th").all_text_contents(),
                      page.locator("#detail-fields td").all_text_contents()))
    assert fields == {"container.id": "<NA>", "evt.time": "1743606903434319636",
                      "proc.cmdline": "sh -c '<iframe src=javascript:alert(3)>'", "proc.name": XSS_PROC}
    assert XSS_PROC in page.text_content("#detail-output")
    assert page.locator("#main script, #main img, #main iframe, #main b").count() == 0
    raw = page.text_content("#detail-json")
    assert json.loads(raw)["output_fields"]["proc.name"] == XSS_PROC
    assert '"evt.time": 1743606903434319636' in raw             # exact, not rounded by JS
    page.screenshot(path=os.path.join(ARTIFACTS, "detail.png"), full_page=True)

    # sign out
    page.click("#logout")
    page.wait_for_selector("#login-form")

    assert dialogs == [], f"a script from alert data ran: {dialogs}"
    assert errors == [], errors
    context.close()

    # the UI itself lives within its Content-Security-Policy (no inline script or style)
    strict = browser.new_context(viewport={"width": 1280, "height": 800})
    page = strict.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    page.on("pageerror", lambda e: messages.append(str(e)))
    page.goto(ui.url)
    page.fill("#username", "admin")
    page.fill("#password", ui.password)
    page.click("#login-submit")
    page.wait_for_selector("#by-rule .fill")
    assert "width" in (page.locator("#by-rule .fill").first.get_attribute("style") or "")
    page.goto(ui.url + f"events/{uuids[4]}")
    page.wait_for_selector("#detail-fields")
    assert not [m for m in messages if "Content Security Policy" in m or "Refused" in m], messages
    assert page.locator("#detail-fields th").count() == 4
    strict.close()


def _falconet(*args: str, **kw):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.Popen([sys.executable, "-m", "collector", *args], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_alerts_from_a_replay_arrive_live(make_ui, browser, tmp_path):
    """`falconet replay` with its http_output pointed at the UI; the open page fills by itself."""
    capture = tmp_path / "synthetic.fcap"
    proc = _falconet("capture", "-w", str(capture), "--source", "synthetic", "--events", "5000",
                     "--seed", "3")
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"falconet capture is not usable in this checkout: {err.strip()[-200:]}")
    ui = make_ui(url_prefix="/falconet")
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(ui.url + "events")
    page.fill("#username", "admin")
    page.fill("#password", ui.password)
    page.click("#login-submit")
    page.wait_for_selector("#events-table .empty")
    page.wait_for_function("document.getElementById('live-status').textContent.includes('live')")
    page.evaluate("window.__notReloaded = true")

    replay = _falconet("replay", "--stats-json", str(capture), "-o", "stdout_output.enabled=false",
                       "-o", "http_output.enabled=true", "-o", f"http_output.url={ui.url}")
    _, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err
    stats = json.loads(err.strip().splitlines()[-1])
    total = stats["alerts_total"]
    assert total > 0 and stats["outputs"]["http"]["delivered"] == total
    wait_text(page, "result-count", f"{total} alerts")
    assert page.evaluate("window.__notReloaded") is True            # live, not reloaded
    page.screenshot(path=os.path.join(ARTIFACTS, "replay-events.png"), full_page=False)

    rule, n_rule = max(stats["alerts"].items(), key=lambda kv: kv[1])
    page.fill("#f-rule", rule)
    page.click("#apply")
    wait_text(page, "result-count", f"{n_rule} alert" + ("s" if n_rule != 1 else ""))
    assert set(page.locator("table.events td.rule").all_text_contents()) == {rule}
    first = page.locator("table.events tbody tr").first
    uuid = first.get_attribute("data-uuid")
    first.locator("td.rule").click()
    page.wait_for_selector("#detail-fields")
    assert page.url.endswith(f"/events/{uuid}") and page.text_content("#detail-rule") == rule
    assert page.locator("#detail-fields tr").count() > 0

    page.click("#nav-dashboard")
    wait_text(page, "total-count", f"{total} alerts")
    for prio, n in stats["alerts_by_priority"].items():
        chip = page.locator(f"#priority-counts .prio-{prio.lower()} .count")
        assert chip.text_content() == str(n)
    page.screenshot(path=os.path.join(ARTIFACTS, "replay-dashboard.png"), full_page=True)
    context.close()


def test_behind_a_reverse_proxy_that_strips_the_sub_path(make_ui, browser):
    """nginx-style proxy under /sec/falconet/ (prefix stripped, X-Forwarded-* sent)."""
    from .helpers import Client
    from .proxy import PrefixProxy
    ui = make_ui()
    proxy = PrefixProxy(ui.server.port, "/sec/falconet")
    try:
        via = Client(proxy.url)
        assert via.post("/", alert()).status == 401               # relayed: not loopback
        token = ui.server.auth.create_token("edge")
        assert via.post(f"/?token={token}", alert(rule="Through the proxy")).status == 200

        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(proxy.url + "events")
        assert page.url.startswith(proxy.url + "login")
        page.fill("#username", "admin")
        page.fill("#password", ui.password)
        page.click("#login-submit")
        page.wait_for_selector("table.events tbody tr")
        assert page.url == proxy.url + "events"
        cookie = next(c for c in context.cookies() if c["name"] == "falconet_session")
        assert cookie["path"] == "/sec/falconet/" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert not cookie["secure"]               # the proxy said X-Forwarded-Proto: http
        page.wait_for_function("document.getElementById('live-status').textContent.includes('live')")
        live = via.post(f"/?token={token}", alert(rule="Live through the proxy")).json()["uuid"]
        page.wait_for_selector(f"tr[data-uuid='{live}']")             # SSE passed through
        page.click(f"tr[data-uuid='{live}'] td.rule")
        page.wait_for_selector("#detail-fields")
        assert page.url == proxy.url + f"events/{live}"
        page.click("#nav-dashboard")
        wait_text(page, "total-count", "2 alerts")
        page.click("#logout")
        page.wait_for_selector("#login-form")
        assert page.url.startswith(proxy.url + "login")
        context.close()
    finally:
        proxy.close()
