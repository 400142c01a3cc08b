"""Password, sessions, cookies, CSRF and login rate limiting."""

from __future__ import annotations

import json
import re

import pytest

from collector.errors import ConfigError
from collector.ui.auth import Auth, RateLimiter, hash_password, verify_password
from collector.ui.store import Store

from .helpers import Client, basic


@pytest.mark.real_scrypt
def test_first_start_generates_a_strong_password_and_stores_only_a_hash(tmp_path):
    store = Store(str(tmp_path / "a.db")).start()
    auth = Auth(store)
    password = auth.ensure_password()
    assert password and len(password) >= 24 and password.isalnum()
    stored = store.meta_get("password_hash")
    assert stored.startswith("scrypt$32768$8$1$") and password not in stored      # full cost
    assert auth.ensure_password() is None               # printed once, never again
    assert auth.check_password("admin", password)
    assert not auth.check_password("admin", "admin")
    assert not auth.check_password("root", password)
    raw = (tmp_path / "a.db").read_bytes() + (tmp_path / "a.db-wal").read_bytes()
    assert password.encode() not in raw
    store.close()


def test_password_hash_from_config_wins_and_cannot_be_reset(tmp_path):
    store = Store(str(tmp_path / "a.db")).start()
    auth = Auth(store, password_hash=hash_password("correct horse battery", n=2 ** 10))
    assert auth.ensure_password() is None
    assert auth.check_password("admin", "correct horse battery")
    with pytest.raises(ConfigError):
        auth.reset_password()
    with pytest.raises(ConfigError):
        Auth(store, password_hash="admin")              # not a hash: refused, not accepted
    store.close()


def test_hash_formats():
    h = hash_password("pw-123456789012", n=2 ** 10)
    assert verify_password("pw-123456789012", h) and not verify_password("pw-x", h)
    import base64
    import hashlib
    salt = b"0123456789abcdef"
    dk = hashlib.pbkdf2_hmac("sha256", b"pbkdf2-password", salt, 1000)
    enc = "pbkdf2_sha256$1000$" + base64.urlsafe_b64encode(salt).decode().rstrip("=") + "$" + \
        base64.urlsafe_b64encode(dk).decode().rstrip("=")
    assert verify_password("pbkdf2-password", enc)
    assert not verify_password("x", "garbage")


def test_login_sets_a_secure_httponly_samesite_session_cookie(ui):
    c = ui.client()
    r = c.get("/")
    assert r.status == 303 and "login?next=" in r.headers["Location"]
    r = c.login(ui.password)
    assert r.status == 303 and r.headers["Location"] == "/"
    cookie = r.cookies()["falconet_session"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" in cookie          # on localhost and behind TLS
    assert c.get("/").status == 200
    assert c.get("/api/v1/events/count").json() == {"statistics": {"all": 0}}


def test_cookie_not_secure_on_plain_http_to_a_remote_name_unless_forced(ui, make_ui):
    c = ui.client()
    page = c.get("/login", headers={"Host": "ui.example:2802"})
    assert "Secure" not in page.cookies()["falconet_login"]
    page = c.get("/login", headers={"Host": "ui.example", "X-Forwarded-Proto": "https"})
    assert "Secure" in page.cookies()["falconet_login"]


def test_wrong_password_and_unknown_user(ui):
    c = ui.client()
    r = c.login("not-the-password")
    assert r.status == 401 and "Wrong user name or password" in r.text
    assert "falconet_session" not in c.cookies
    assert c.login(ui.password, username="root").status == 401


def test_login_form_needs_its_csrf_token(ui):
    c = ui.client()
    r = c.post("/login", form={"username": "admin", "password": ui.password, "csrf_token": "forged"})
    assert r.status == 403 and "falconet_session" not in c.cookies
    c.get("/login")                                          # cookie, but the field is missing
    r = c.post("/login", form={"username": "admin", "password": ui.password})
    assert r.status == 403


def test_login_rate_limit(make_ui):
    ui = make_ui(login_max_failures=3)
    c = ui.client()
    for _ in range(3):
        assert c.login("wrong-password").status == 401
    r = c.login(ui.password)                              # even the right one must wait
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert "falconet_session" not in c.cookies
    # HTTP Basic on the API counts against the same limit
    assert c.get("/api/v1/events/count", headers=basic(ui.password)).status == 429


def test_rate_limiter_window_and_global_ceiling():
    rl = RateLimiter(max_failures=2, window_s=0.3, global_max=3)
    rl.failure("a")
    rl.failure("a")
    assert rl.check("a") > 0 and rl.check("b") == 0
    rl.failure("b")
    assert rl.check("c") > 0                              # global ceiling reached
    import time
    time.sleep(0.35)
    assert rl.check("a") == 0 and rl.check("c") == 0


def test_api_needs_auth_and_accepts_basic(ui):
    c = ui.client()
    r = c.get("/api/v1/events/search")
    assert r.status == 401 and "WWW-Authenticate" in r.headers
    assert c.get("/api/v1/events/search", headers=basic("wrong")).status == 401
    assert c.get("/api/v1/events/search", headers=basic(ui.password)).status == 200


def test_logout_requires_csrf_and_ends_the_session(ui):
    c = ui.logged_in()
    assert c.post("/logout", form={}).status == 403
    assert c.post("/logout", form={"csrf_token": "forged"}).status == 403
    assert c.get("/").status == 200                       # still signed in
    token = c.csrf()
    stolen = dict(c.cookies)
    r = c.post("/logout", form={"csrf_token": token})
    assert r.status == 303 and r.headers["Location"] == "/login"
    assert c.get("/").status == 303
    other = ui.client()
    other.cookies = stolen                                # the old cookie is dead server-side
    assert other.get("/api/v1/events/count").status == 401


def test_password_change_requires_csrf_and_the_current_password(ui):
    c = ui.logged_in()
    body = {"current": ui.password, "new": "a-new-password-1234"}
    assert c.post("/api/v1/password", body).status == 403                  # no CSRF header
    assert c.post("/api/v1/password", body, headers={"X-CSRF-Token": "nope"}).status == 403
    token = c.csrf()
    bad = {"current": "wrong", "new": "a-new-password-1234"}
    assert c.post("/api/v1/password", bad, headers={"X-CSRF-Token": token}).status == 403
    short = {"current": ui.password, "new": "short"}
    assert c.post("/api/v1/password", short, headers={"X-CSRF-Token": token}).status == 400
    r = c.post("/api/v1/password", body, headers={"X-CSRF-Token": token})
    assert r.status == 200
    assert c.get("/api/v1/events/count").status == 200                      # new session cookie
    assert ui.client().login(ui.password).status == 401
    assert ui.client().login("a-new-password-1234").status == 303


def test_sessions_survive_a_restart(make_ui):
    ui = make_ui()
    c = ui.logged_in()
    ui.server.close()
    ui2 = make_ui()
    assert ui2.password == ""                             # not generated again
    c2 = Client(ui2.url)
    c2.cookies = dict(c.cookies)
    assert c2.get("/api/v1/events/count").status == 200


def test_login_redirects_only_to_local_paths(ui):
    c = ui.client()
    page = c.get("/login?next=//evil.example/x")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", form={"username": "admin", "password": ui.password, "csrf_token": csrf,
                               "next": "//evil.example/x"})
    assert r.status == 303 and r.headers["Location"] == "/"
    c2 = ui.client()
    page = c2.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c2.post("/login", form={"username": "admin", "password": ui.password, "csrf_token": csrf,
                                "next": "/events?priority=Warning"})
    assert r.headers["Location"] == "/events?priority=Warning"


def test_redirect_target_cannot_split_headers_and_login_cookie_is_checked(ui):
    c = ui.client()
    page = c.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", form={"username": "admin", "password": ui.password, "csrf_token": csrf,
                               "next": "/x\r\nSet-Cookie: evil=1"})
    assert r.status == 303 and r.headers["Location"] == "/" and "evil" not in str(r.headers)
    c2 = ui.client()
    c2.cookies["falconet_login"] = '"a; Domain=evil.example"'
    page = c2.get("/login")
    assert "evil.example" not in page.text and "evil.example" not in str(page.headers)


def test_foreign_cookies_on_the_same_host_do_not_lock_us_out(ui):
    c = ui.logged_in()
    session = c.cookies["falconet_session"]
    c.cookies = {"grafana_session": "x", "weird": '{"a":[1,2]}', "bad key,": "v", "falconet_session": session}
    assert c.get("/api/v1/events/count").status == 200


def test_tls_serving_marks_cookies_secure(make_ui, tmp_path):
    import shutil
    import ssl
    import subprocess
    import urllib.request
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ui = make_ui(tls_certificate=str(cert), tls_key=str(key), listen_address="127.0.0.1")
    assert ui.url.startswith("https://")
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    with urllib.request.urlopen(ui.url + "healthz", context=ctx, timeout=10) as r:
        assert json.loads(r.read()) == {"status": "ok"}
    with urllib.request.urlopen(urllib.request.Request(ui.url + "login", headers={"Host": "ui.example"}),
                                context=ctx, timeout=10) as r:
        assert "Secure" in r.headers["Set-Cookie"]


def test_bad_tls_files_are_a_clear_error(make_ui, tmp_path):
    from collector.errors import OutputError
    (tmp_path / "x.pem").write_text("nope")
    with pytest.raises(OutputError, match="cannot load webui.tls"):
        make_ui(tls_certificate=str(tmp_path / "x.pem"), tls_key=str(tmp_path / "x.pem"))
