"""A small reverse proxy for tests: serves the UI under a sub-path the way nginx would with
`location /PREFIX/ { proxy_pass http://ui/; }` (prefix stripped), adding X-Forwarded-For,
X-Forwarded-Proto and X-Forwarded-Prefix, and passing event streams through unbuffered."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate", "content-length", "host"}


class PrefixProxy:
    def __init__(self, upstream_port: int, prefix: str):
        self.prefix = prefix.rstrip("/")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _forward(self) -> None:
                if not self.path.startswith(outer.prefix + "/"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                headers["X-Forwarded-Proto"] = "http"
                headers["X-Forwarded-Prefix"] = outer.prefix
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                conn.request(self.command, self.path[len(outer.prefix):], body=body, headers=headers)
                r = conn.getresponse()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Connection", "close")
                self.close_connection = True
                if r.getheader("Content-Type", "").startswith("text/event-stream"):
                    self.end_headers()
                    try:
                        while True:
                            line = r.fp.readline()
                            if not line:
                                break
                            self.wfile.write(line)
                            self.wfile.flush()
                    except OSError:
                        pass
                else:
                    data = r.read()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                conn.close()

            do_GET = do_POST = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}/"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
