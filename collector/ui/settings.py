"""The web UI's settings, read from the ``webui:`` block of falconet.yaml.

Every key has a default here so that the UI works with a configuration file that predates
the block.  Durations accept seconds (``3600``) or a number with a unit (``90s``, ``15min``,
``12h``, ``7d``, ``2w``, ``3M`` = 30 days, ``1y`` = 365 days), as falcosidekick-ui's TTL does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 7 * 86400, "week": 7 * 86400, "weeks": 7 * 86400,
    "M": 30 * 86400, "month": 30 * 86400, "months": 30 * 86400,
    "y": 365 * 86400, "year": 365 * 86400, "years": 365 * 86400,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def parse_duration(value: Any, what: str = "duration") -> float:
    """Seconds from ``3600``, ``"90s"``, ``"15min"``, ``"7d"``...; raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{what}: must not be negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{what}: {value!r} is not a duration (e.g. 3600, 90s, 15min, 24h, 7d)")
    number, unit = float(m.group(1)), m.group(2)
    if unit == "":
        return number
    scale = _UNITS.get(unit) or (_UNITS.get(unit.lower()) if unit != "M" and len(unit) > 1 else None)
    if scale is None:
        raise ValueError(f"{what}: unknown unit {unit!r} in {value!r} (use s, min, h, d, w, M, y)")
    return number * scale


def normalize_prefix(value: str | None) -> str:
    """``"falconet/"`` → ``"/falconet"``; ``""``/``"/"`` → ``""``.  Raises ValueError."""
    text = (value or "").strip()
    if text in ("", "/"):
        return ""
    text = "/" + text.strip("/")
    if not _PREFIX.match(text):
        raise ValueError(f"url_prefix {value!r}: use a path such as /falconet "
                         "(letters, digits, '.', '_', '~', '-' and '/')")
    return text


@dataclass
class UISettings:
    listen_address: str = "127.0.0.1"
    listen_port: int = 2802
    db_path: str = "/var/lib/falconet/webui.db"
    max_age_s: float = 7 * 86400.0          # 0 = no age limit
    max_events: int = 1_000_000             # 0 = no count limit
    retention_interval_s: float = 10.0
    synchronous: str = "full"               # "full" or "normal" (SQLite PRAGMA synchronous)
    username: str = "admin"
    password_hash: str = ""                 # from config; overrides the generated password
    ingest_tokens: list[str] = field(default_factory=list)  # static tokens from config
    trust_loopback: bool = True             # loopback may ingest without a token
    url_prefix: str = ""
    secure_cookies: str = "auto"            # auto | true | false
    session_ttl_s: float = 12 * 3600.0
    login_max_failures: int = 5
    login_window_s: float = 300.0
    tls_certificate: str = ""
    tls_key: str = ""
    max_body_bytes: int = 1 << 20
    source: str = "<defaults>"

    @classmethod
    def from_config(cls, cfg: Any) -> UISettings:
        """Build from a :class:`collector.config.Config` (or None for the defaults)."""
        s = cls()
        if cfg is None:
            return s
        s.source = getattr(cfg, "source", "<config>")

        def get(key: str, default: Any) -> Any:
            value = cfg.get(f"webui.{key}", default)
            return default if value is None else value

        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{s.source}: setting 'webui.{key}': {msg}")

        try:
            s.listen_address = str(get("listen_address", s.listen_address))
            s.listen_port = int(get("listen_port", s.listen_port))
            if not 0 <= s.listen_port <= 65535:
                raise ValueError("port out of range")
        except (TypeError, ValueError):
            raise bad("listen_port", "must be a port number between 0 and 65535") from None
        s.db_path = os.path.expanduser(str(get("db_path", s.db_path)))
        for key, attr in (("retention.max_age", "max_age_s"), ("retention.interval", "retention_interval_s"),
                          ("session_ttl", "session_ttl_s"), ("login_rate_limit.window", "login_window_s")):
            try:
                setattr(s, attr, parse_duration(get(key, getattr(s, attr)), f"webui.{key}"))
            except ValueError as e:
                raise bad(key, str(e).split(": ", 1)[-1]) from None
        for key, attr in (("retention.max_events", "max_events"),
                          ("login_rate_limit.max_failures", "login_max_failures"),
                          ("max_body_bytes", "max_body_bytes")):
            value = get(key, getattr(s, attr))
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(key, f"must be a whole number >= 0, got {value!r}")
            setattr(s, attr, value)
        s.synchronous = str(get("synchronous", s.synchronous)).lower()
        if s.synchronous not in ("full", "normal"):
            raise bad("synchronous", f"must be 'full' or 'normal', got {s.synchronous!r}")
        s.username = str(get("username", s.username))
        s.password_hash = str(get("password_hash", s.password_hash) or "")
        tokens = get("ingest_tokens", [])
        if isinstance(tokens, str):
            tokens = [tokens] if tokens else []
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise bad("ingest_tokens", "must be a list of strings")
        s.ingest_tokens = [t for t in tokens if t]
        s.trust_loopback = bool(get("trust_loopback", s.trust_loopback))
        try:
            s.url_prefix = normalize_prefix(get("url_prefix", s.url_prefix))
        except ValueError as e:
            raise bad("url_prefix", str(e)) from None
        secure = get("secure_cookies", s.secure_cookies)
        s.secure_cookies = {True: "true", False: "false"}.get(secure, str(secure).lower())
        if s.secure_cookies not in ("auto", "true", "false"):
            raise bad("secure_cookies", f"must be auto, true or false, got {secure!r}")
        s.tls_certificate = str(get("tls.certificate", "") or "")
        s.tls_key = str(get("tls.key", "") or "")
        if bool(s.tls_certificate) != bool(s.tls_key):
            raise bad("tls", "set both tls.certificate and tls.key, or neither")
        return s
