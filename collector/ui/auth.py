"""Who may do what: the admin password, browser sessions, CSRF tokens, ingestion tokens and
login rate limiting.

* There is no default password.  On first start a random one is generated, printed once and
  only its salted scrypt hash is kept (in the database), unless ``webui.password_hash`` gives
  a hash (``falconet ui --hash-password`` makes one).  Accepted hash formats:
  ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` and ``pbkdf2_sha256$<iterations>$<salt>$<hash>``
  (salt and hash in unpadded URL-safe base64).
* Sessions are random 256-bit tokens in an HttpOnly, SameSite=Strict cookie; the database
  holds only their SHA-256, so a copy of the database does not log anybody in.  Each session
  has its own CSRF token, required on every state-changing request.
* Ingestion tokens (``falconet ui --token-create NAME``) are stored hashed the same way;
  tokens listed in ``webui.ingest_tokens`` are accepted too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import threading
import time
from collections import deque
from dataclasses import dataclass

from ..errors import ConfigError
from .store import Store

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
TOKEN_PREFIX = "fnt_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, n: int | None = None, r: int | None = None, p: int | None = None) -> str:
    """A salted scrypt hash in the ``scrypt$n$r$p$salt$hash`` format (module defaults:
    n=2**15, r=8, p=1, about 32 MiB and 0.1 s per check)."""
    n, r, p = n or SCRYPT_N, r or SCRYPT_R, p or SCRYPT_P
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                            maxmem=256 * n * r + (1 << 20))
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def check_hash_format(encoded: str) -> None:
    """Raise ValueError when ``encoded`` is not a hash this module can verify."""
    parts = encoded.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            if n < 2 or n & (n - 1) or r < 1 or p < 1:
                raise ValueError
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            if int(parts[1]) < 1:
                raise ValueError
        else:
            raise ValueError
        _unb64(parts[-2]), _unb64(parts[-1])
    except (ValueError, TypeError):
        raise ValueError("not a password hash (expected scrypt$n$r$p$salt$hash or "
                         "pbkdf2_sha256$iterations$salt$hash; make one with "
                         "`falconet ui --hash-password`)") from None


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against a stored hash; False for bad hashes."""
    try:
        check_hash_format(encoded)
    except ValueError:
        return False
    parts = encoded.split("$")
    salt, expected = _unb64(parts[-2]), _unb64(parts[-1])
    if parts[0] == "scrypt":
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                                maxmem=256 * n * r + (1 << 20))
    else:
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(parts[1]), len(expected))
    return hmac.compare_digest(digest, expected)


def generate_password() -> str:
    """A strong random password: 24 letters and digits (about 143 bits), easy to paste."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Session:
    username: str
    csrf: str
    expires_ns: int


class RateLimiter:
    """Failed logins per client within a sliding window, plus a global ceiling.

    ``check(key)`` returns 0 when an attempt is allowed, otherwise the seconds to wait.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, global_max: int = 100):
        self.max_failures = max_failures
        self.window_s = window_s
        self.global_max = global_max
        self._failures: dict[str, deque[float]] = {}
        self._global: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window_s:
            q.popleft()

    def check(self, key: str) -> float:
        if self.max_failures <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            q = self._failures.get(key)
            waits = []
            if q is not None:
                self._trim(q, now)
                if len(q) >= self.max_failures:
                    waits.append(q[0] + self.window_s - now)
            self._trim(self._global, now)
            if len(self._global) >= self.global_max:
                waits.append(self._global[0] + self.window_s - now)
            return max(waits, default=0.0)

    def failure(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures.setdefault(key, deque()).append(now)
            self._global.append(now)
            if len(self._failures) > 10000:      # forget idle clients
                for k in [k for k, q in self._failures.items() if not q or q[-1] <= now - self.window_s]:
                    del self._failures[k]

    def success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class Auth:
    """Password, sessions and tokens, kept in the UI's database."""

    def __init__(self, store: Store, username: str = "admin", password_hash: str = "",
                 ingest_tokens: list[str] | tuple[str, ...] = (), session_ttl_s: float = 12 * 3600,
                 limiter: RateLimiter | None = None):
        self.store = store
        self.username = username
        self.config_hash = password_hash
        if password_hash:
            try:
                check_hash_format(password_hash)
            except ValueError as e:
                raise ConfigError(f"setting 'webui.password_hash': {e}") from None
        self.config_tokens = [_sha256(t) for t in ingest_tokens]
        self.session_ttl_ns = int(session_ttl_s * 1e9)
        self.limiter = limiter or RateLimiter()

    # -- password ------------------------------------------------------------------------

    @property
    def password_hash(self) -> str | None:
        return self.config_hash or self.store.meta_get("password_hash")

    def ensure_password(self) -> str | None:
        """Generate and store a password if there is none; returns it (to print once) or None."""
        if self.password_hash:
            return None
        return self.reset_password()

    def reset_password(self) -> str:
        """Replace the stored password with a new random one and end every session."""
        if self.config_hash:
            raise ConfigError("the admin password comes from 'webui.password_hash' in the "
                              "configuration; change it there (`falconet ui --hash-password`)")
        password = generate_password()
        self.set_password(password)
        return password

    def set_password(self, password: str) -> None:
        if self.config_hash:
            raise ConfigError("the admin password comes from 'webui.password_hash' in the "
                              "configuration; change it there (`falconet ui --hash-password`)")
        if len(password) < 12:
            raise ValueError("the password must have at least 12 characters")
        self.store.meta_set("password_hash", hash_password(password))
        self.store.execute("DELETE FROM sessions")

    def check_password(self, username: str, password: str) -> bool:
        stored = self.password_hash
        ok_user = hmac.compare_digest(username.encode(), self.username.encode())
        ok_pass = bool(stored) and verify_password(password, stored)
        return ok_user and ok_pass

    # -- sessions ------------------------------------------------------------------------

    def create_session(self, username: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = time.time_ns()
        session = Session(username, secrets.token_urlsafe(32), now + self.session_ttl_ns)
        self.store.execute("DELETE FROM sessions WHERE expires_ns < ?", (now,))
        self.store.execute("INSERT INTO sessions(token_hash, username, csrf, created_ns, expires_ns)"
                           " VALUES (?,?,?,?,?)", (_sha256(token), username, session.csrf, now,
                                                   session.expires_ns))
        return token, session

    def get_session(self, token: str | None) -> Session | None:
        if not token:
            return None
        rows = self.store.execute("SELECT username, csrf, expires_ns FROM sessions WHERE token_hash = ?",
                                  (_sha256(token),))
        if not rows or rows[0][2] < time.time_ns():
            return None
        return Session(*rows[0])

    def end_session(self, token: str | None) -> None:
        if token:
            self.store.execute("DELETE FROM sessions WHERE token_hash = ?", (_sha256(token),))

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(session.csrf.encode(), presented.encode())

    # -- ingestion tokens ----------------------------------------------------------------

    def create_token(self, name: str) -> str:
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError("a token name is 1-64 letters, digits, '-', '_' or '.'")
        if self.store.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)):
            raise ValueError(f"a token named {name!r} exists already (revoke it first)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.store.execute("INSERT INTO tokens(name, token_hash, created_ns) VALUES (?,?,?)",
                           (name, _sha256(token), time.time_ns()))
        return token

    def revoke_token(self, name: str) -> bool:
        before = self.store.execute("SELECT count(*) FROM tokens WHERE name = ?", (name,))[0][0]
        self.store.execute("DELETE FROM tokens WHERE name = ?", (name,))
        return bool(before)

    def list_tokens(self) -> list[tuple[str, int, int]]:
        """[(name, created_ns, last_used_ns)]"""
        return [tuple(r) for r in self.store.execute(
            "SELECT name, created_ns, last_used_ns FROM tokens ORDER BY name")]

    def has_tokens(self) -> bool:
        return bool(self.config_tokens) or bool(self.store.execute("SELECT 1 FROM tokens LIMIT 1"))

    def check_token(self, token: str | None) -> bool:
        if not token:
            return False
        digest = _sha256(token)
        if any(hmac.compare_digest(digest, t) for t in self.config_tokens):
            return True
        rows = self.store.execute("SELECT name, last_used_ns FROM tokens WHERE token_hash = ?", (digest,))
        if not rows:
            return False
        now = time.time_ns()
        if now - rows[0][1] > 60_000_000_000:          # record use at most once a minute
            self.store.execute("UPDATE tokens SET last_used_ns = ? WHERE name = ?", (now, rows[0][0]))
        return True
