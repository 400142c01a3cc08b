"""Browser sessions for the UI's request handler: cookies, sign-in and sign-out, CSRF checks,
password changes, and who is calling the API (session cookie or HTTP Basic).

A mixin of :class:`collector.ui.server._Handler`; it relies on the handler's plumbing
(``_send``/``_json``/``_html``/``_redirect``/``_body``, ``base``, ``ui``).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from typing import Any, Iterable
from urllib.parse import parse_qs

from . import pages
from .auth import Session

log = logging.getLogger("falconet.ui")

SESSION_COOKIE = "falconet_session"
LOGIN_COOKIE = "falconet_login"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def _local_path(path: str) -> bool:
    """A redirect target that stays on this site and cannot split a header."""
    return (path.startswith("/") and not path.startswith("//") and "\\" not in path
            and all(33 <= ord(c) < 127 for c in path))


class SessionRoutes:
    """Sign-in, sign-out, password change and the session/CSRF checks other routes use."""

    ui: Any
    headers: Any
    params: dict[str, list[str]]
    client_address: tuple[str, int]
    _session: Session | None
    _session_token: str | None

    def _cookie(self, name: str) -> str | None:
        """One cookie's value.  Parsed by hand: other applications on the same host (say,
        localhost) may set cookies that http.cookies rejects, which must not lock us out."""
        for header in self.headers.get_all("Cookie") or []:
            for pair in header.split(";"):
                key, sep, value = pair.strip().partition("=")
                if sep and key == name:
                    return value.strip().strip('"')
        return None

    def _secure(self) -> bool:
        mode = self.ui.settings.secure_cookies
        if mode != "auto":
            return mode == "true"
        if self.ui.tls or self.headers.get("X-Forwarded-Proto", "").lower() == "https":
            return True
        if self.headers.get("X-Forwarded-Proto") or any(self.headers.get(h) for h in
                                                       ("X-Forwarded-For", "X-Real-IP", "Forwarded")):
            return False        # a proxy talking plain HTTP to the browser: Secure would be dropped
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        return host in ("localhost", "127.0.0.1", "::1")    # browsers keep Secure cookies there

    def _set_cookie(self, name: str, value: str, max_age: int | None) -> tuple[str, str]:
        parts = [f"{name}={value}", f"Path={self.base}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self._secure():
            parts.append("Secure")
        return ("Set-Cookie", "; ".join(parts))

    def _load_session(self) -> Session | None:
        self._session_token = self._cookie(SESSION_COOKIE)
        self._session = self.ui.auth.get_session(self._session_token)
        return self._session

    def _api_user(self) -> str | None:
        """The signed-in user of an API call (session or Basic), or None after answering."""
        session = self._load_session()
        if session is not None:
            return session.username
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            ok, wait = self.ui.basic_ok(header, self.client_address[0])
            if ok:
                return self.ui.auth.username
            if wait:
                self._json(429, {"error": "too many failed logins; try again later"},
                           [("Retry-After", str(int(wait) + 1))])
                return None
        self._json(401, {"error": "sign in first (session cookie or HTTP Basic)"},
                   [("WWW-Authenticate", 'Basic realm="falconet"')])
        return None

    def _csrf_ok(self, form: dict[str, list[str]] | None = None) -> bool:
        presented = self.headers.get("X-CSRF-Token")
        if presented is None and form is not None:
            presented = (form.get("csrf_token") or [""])[-1]
        return self._session is not None and self.ui.auth.csrf_ok(self._session, presented)

    # -- sign in / out ---------------------------------------------------------------------

    def _login_form(self, status: int = 200, error: str = "", username: str = "",
                    next_path: str | None = None, extra: Iterable[tuple[str, str]] = ()) -> None:
        if self._load_session() is not None and status == 200:
            return self._redirect(self.base)
        csrf = self._cookie(LOGIN_COOKIE) or ""
        if not _TOKEN.match(csrf):
            csrf = secrets.token_urlsafe(32)
        nxt = next_path if next_path is not None else (self.params.get("next") or [""])[-1]
        self._html(status, pages.login_page(self.base, csrf, nxt, error, username),
                   [self._set_cookie(LOGIN_COOKIE, csrf, 3600), *extra])

    def _login(self) -> None:
        body = self._body()
        if body is None:
            return
        form = parse_qs(body.decode("utf-8", "replace"))
        user = (form.get("username") or [""])[-1]
        password = (form.get("password") or [""])[-1]
        nxt = (form.get("next") or [""])[-1]
        expected = self._cookie(LOGIN_COOKIE)
        presented = (form.get("csrf_token") or [""])[-1]
        if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
            return self._login_form(403, "The sign-in form expired; please try again.", user, nxt)
        client = self.client_address[0]
        wait = self.ui.auth.limiter.check(client)
        if wait:
            return self._login_form(429, f"Too many failed attempts; try again in {int(wait) + 1} s.",
                                    user, nxt, [("Retry-After", str(int(wait) + 1))])
        if not self.ui.auth.check_password(user, password):
            self.ui.auth.limiter.failure(client)
            log.warning("failed sign-in for %r from %s", user, client)
            return self._login_form(401, "Wrong user name or password.", user, nxt)
        self.ui.auth.limiter.success(client)
        token, _ = self.ui.auth.create_session(user)
        target = nxt if _local_path(nxt) else "/"
        self._redirect(self.base.rstrip("/") + target,
                       [self._set_cookie(SESSION_COOKIE, token, int(self.ui.auth.session_ttl_ns / 1e9)),
                        self._set_cookie(LOGIN_COOKIE, "", 0)])

    def _logout(self) -> None:
        body = self._body()
        if body is None:
            return
        self._load_session()
        if not self._csrf_ok(parse_qs(body.decode("utf-8", "replace"))):
            return self._text(403, "CSRF token missing or wrong\n")
        self.ui.auth.end_session(self._session_token)
        self._redirect(self.base + "login", [self._set_cookie(SESSION_COOKIE, "", 0)])

    def _change_password(self) -> None:
        body = self._body()
        if body is None:
            return
        if self._load_session() is None:
            return self._json(401, {"error": "sign in first"})
        if not self._csrf_ok():
            return self._json(403, {"error": "CSRF token missing or wrong"})
        try:
            data = json.loads(body)
            current, new = str(data["current"]), str(data["new"])
        except (ValueError, KeyError, TypeError):
            return self._json(400, {"error": "send {\"current\": ..., \"new\": ...}"})
        client = self.client_address[0]
        wait = self.ui.auth.limiter.check(client)
        if wait:
            return self._json(429, {"error": "too many failed attempts"},
                              [("Retry-After", str(int(wait) + 1))])
        if not self.ui.auth.check_password(self._session.username, current):
            self.ui.auth.limiter.failure(client)
            return self._json(403, {"error": "the current password is wrong"})
        try:
            self.ui.auth.set_password(new)
        except ValueError as e:
            return self._json(400, {"error": str(e)})
        token, session = self.ui.auth.create_session(self._session.username)
        self._json(200, {"status": "ok", "csrf": session.csrf},
                   [self._set_cookie(SESSION_COOKIE, token, int(self.ui.auth.session_ttl_ns / 1e9))])
