"""`falconet ui`: the web UI and its falcosidekick-compatible HTTP receiver."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import threading
import time

from ..errors import ConfigError

HELP = "serve the web UI and a falcosidekick-compatible alert receiver"

DESCRIPTION = """\
Serves Falconet's web UI: a dashboard (counts by priority, rule, source, hostname and tag, a
timeline by priority), a searchable events table with a detail view and JSON/CSV export, and
live updates as alerts arrive. Alerts are kept in one SQLite file (webui.db_path) with
retention by age and by count, enforced continuously.

The same port receives alerts the way falcosidekick does: POST / with one Falco JSON alert
per request (priority, rule, time and output_fields are required; anything else is answered
400 with the reason). Point Falco's http_output, falcosidekick's webui output, or Falconet's
http_output at it. Requests from loopback are accepted as they are; from anywhere else they
need an ingestion token (--token-create), sent as `Authorization: Bearer TOKEN` or appended
to the URL as ?token=TOKEN (Falco's http_output cannot add headers).

There is no default password. The first start generates one for the user `admin`, prints it
once on stderr and keeps only its salted scrypt hash; --reset-password makes a new one, and
webui.password_hash (made with --hash-password) sets it from the configuration instead.
"""

EPILOG = """\
examples:
  falconet ui                                   # http://127.0.0.1:2802/
  falconet ui --listen 0.0.0.0 --port 2802 --max-age 14d --max-events 2000000
  falconet ui --token-create falco-node1        # prints a token for a remote sender
  falconet ui --reset-password                  # prints a new admin password, ends sessions
  falconet ui --hash-password > hash.txt        # for webui.password_hash
  curl -u admin:PASSWORD 'http://127.0.0.1:2802/api/v1/events/search?priority=Warning&since=1h'

Falco -> Falconet UI (falco.yaml):
  json_output: true
  http_output: {enabled: true, url: "http://ui-host:2802/?token=TOKEN"}

Behind a reverse proxy under a sub-path, set webui.url_prefix (e.g. /falconet) or have the
proxy send X-Forwarded-Prefix. The JSON API is described at <url>/api/v1/docs.

Exit status: 0 after a clean stop (Ctrl-C or SIGTERM) or a management action, 1 on an
error such as a port in use or an unwritable database.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .common import add_config_options
    add_config_options(p)
    g = p.add_argument_group("server (override the webui: block)")
    g.add_argument("--listen", metavar="ADDRESS", help="address to bind (webui.listen_address)")
    g.add_argument("--port", type=int, metavar="PORT", help="TCP port (webui.listen_port, 2802)")
    g.add_argument("--db", metavar="PATH", help="SQLite database file (webui.db_path)")
    g.add_argument("--max-age", metavar="DURATION",
                   help="drop alerts older than this, e.g. 7d (webui.retention.max_age; 0 = keep)")
    g.add_argument("--max-events", type=int, metavar="N",
                   help="keep at most N alerts, newest first (webui.retention.max_events; 0 = no cap)")
    g.add_argument("--url-prefix", metavar="PATH", help="serve under this sub-path (webui.url_prefix)")
    g.add_argument("-v", "--verbose", action="store_true", help="log every request on stderr")
    m = p.add_argument_group("management (run and exit)")
    x = m.add_mutually_exclusive_group()
    x.add_argument("--reset-password", action="store_true",
                   help="generate a new admin password, print it once, end all sessions")
    x.add_argument("--set-password", action="store_true",
                   help="read a new admin password from the terminal (or one line of stdin)")
    x.add_argument("--hash-password", action="store_true",
                   help="read a password and print its hash for webui.password_hash")
    x.add_argument("--token-create", metavar="NAME", help="create an ingestion token and print it once")
    x.add_argument("--token-list", action="store_true", help="list ingestion tokens (names, dates)")
    x.add_argument("--token-revoke", metavar="NAME", help="revoke an ingestion token")


def _settings(args: argparse.Namespace):
    from ..ui.settings import UISettings
    from .common import load_config
    cfg = load_config(args)
    for flag, key in (("listen", "listen_address"), ("port", "listen_port"), ("db", "db_path"),
                      ("max_age", "retention.max_age"), ("max_events", "retention.max_events"),
                      ("url_prefix", "url_prefix")):
        value = getattr(args, flag, None)
        if value is not None:
            cfg.set(f"webui.{key}", value)
    return UISettings.from_config(cfg)


def _read_password(confirm: bool) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if confirm and getpass.getpass("Again: ") != first:
            raise ConfigError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9)) if ns else "never"


def _manage(args: argparse.Namespace, settings) -> int | None:
    """Run a management action; None when there is none (serve instead)."""
    if args.hash_password:
        from ..ui.auth import hash_password
        password = _read_password(confirm=True)
        if len(password) < 12:
            raise ConfigError("the password must have at least 12 characters")
        print(hash_password(password))
        return 0
    if not (args.reset_password or args.set_password or args.token_create or args.token_list
            or args.token_revoke):
        return None
    from ..ui.auth import Auth
    from ..ui.store import Store
    store = Store(settings.db_path)
    try:
        auth = Auth(store, settings.username, settings.password_hash, settings.ingest_tokens)
        if args.reset_password:
            password = auth.reset_password()
            print(f"new password for user {settings.username!r} (shown only this once): {password}")
        elif args.set_password:
            try:
                auth.set_password(_read_password(confirm=True))
            except ValueError as e:
                raise ConfigError(str(e)) from None
            print(f"password for user {settings.username!r} changed; all sessions ended")
        elif args.token_create:
            try:
                token = auth.create_token(args.token_create)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            print(token)
            print(f"token {args.token_create!r} created (shown only this once); send it as "
                  "'Authorization: Bearer TOKEN' or append ?token=TOKEN to the URL", file=sys.stderr)
        elif args.token_list:
            rows = auth.list_tokens()
            if not rows:
                print("no ingestion tokens (falconet ui --token-create NAME)", file=sys.stderr)
            for name, created, used in rows:
                print(f"{name}\tcreated {_when(created)}\tlast used {_when(used)}")
        elif args.token_revoke:
            if not auth.revoke_token(args.token_revoke):
                raise ConfigError(f"no ingestion token named {args.token_revoke!r}")
            print(f"token {args.token_revoke!r} revoked")
        return 0
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    import logging
    settings = _settings(args)
    done = _manage(args, settings)
    if done is not None:
        return done
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="falconet ui: %(message)s", stream=sys.stderr)
    from ..ui.server import UIServer
    server = UIServer(settings)
    try:
        password = server.auth.ensure_password()
        if password:
            print(f"falconet ui: generated the password of user {settings.username!r}; it is shown "
                  f"only this once:\n\n    {password}\n\n(change it with `falconet ui --reset-password` "
                  "or set webui.password_hash)", file=sys.stderr, flush=True)
        if settings.listen_address not in ("127.0.0.1", "::1", "localhost") and not server.tls:
            print("falconet ui: warning: serving plain HTTP on a non-loopback address; put a TLS "
                  "reverse proxy in front or set webui.tls", file=sys.stderr)
        print(f"falconet ui: listening on {server.url} (database {settings.db_path})",
              file=sys.stderr, flush=True)

        def _stop(signum, frame):
            threading.Thread(target=server.httpd.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, _stop)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    finally:
        server.close()
    return 0
