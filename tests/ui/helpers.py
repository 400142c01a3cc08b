"""A small HTTP client for the UI tests: keeps cookies by name (Secure ones too, which
http.cookiejar would not send over plain HTTP) and never follows redirects."""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

ALERT = {
    "hostname": "node1",
    "output": "17:15:03.434319636: Warning Sensitive file opened for reading by non-trusted "
              "program (file=/etc/shadow proc.name=cat) container_id=host",
    "output_fields": {"container.id": "host", "evt.time": 1743606903434319636, "evt.type": "openat",
                      "fd.name": "/etc/shadow", "proc.aname[2]": "sshd", "proc.name": "cat",
                      "proc.tty": 34817, "k8s.pod.name": None},
    "priority": "Warning",
    "rule": "Read sensitive file untrusted",
    "source": "syscall",
    "tags": ["T1555", "container", "filesystem", "host", "maturity_stable", "mitre_credential_access"],
    "time": "2025-04-02T15:15:03.434319636Z",
}


def falco_time(seconds_ago: float = 0.0) -> str:
    t = time.time() - seconds_ago
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def alert(**changes: Any) -> dict[str, Any]:
    a = json.loads(json.dumps(ALERT))
    a["time"] = falco_time()
    a.update(changes)
    return a


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        """Set-Cookie headers by cookie name (the whole header value)."""
        return {h.split("=", 1)[0]: h for h in self.headers.get_all("Set-Cookie") or []}


class Client:
    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | str | dict | None = None,
                headers: dict[str, str] | None = None, form: dict | None = None) -> Response:
        hdrs = dict(headers or {})
        if form is not None:
            body = urlencode(form)
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(body, dict):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        try:
            conn.request(method, self.prefix + path, body=body, headers=hdrs)
            r = conn.getresponse()
            resp = Response(r.status, r.headers, r.read())
        finally:
            conn.close()
        for header in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "Max-Age=0" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return resp

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def login(self, password: str, username: str = "admin") -> Response:
        page = self.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return self.post("/login", form={"username": username, "password": password,
                                         "csrf_token": csrf, "next": ""})

    def csrf(self) -> str:
        page = self.get("/")
        return re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text).group(1)


def basic(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
