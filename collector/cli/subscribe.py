"""`falconet subscribe`: a gRPC client that prints alerts as they arrive."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..errors import ConfigError, FalconetError

HELP = "connect to Falconet's gRPC server and print alerts as they arrive"

DESCRIPTION = """\
Connects to the gRPC server of a running `falconet run` or `falconet replay --serve`
(grpc.enabled and grpc_output.enabled) and prints every alert it sends, one line each, in
Falco's text format or, with --json, Falco's JSON format.

Filters run on the server: --min-priority, --rule, --tag and --source (each of the last three
may be repeated; an alert passes when it matches one of the values given).

If the connection drops or the server restarts, subscribe reconnects (waiting up to 5 s
between tries) and resumes after the last alert it printed, so nothing is printed twice and
nothing is missed that the server still holds; when some alerts are no longer held, or the
server restarted and numbers alerts anew, a notice on stderr says so. --state-file keeps the
position across runs of subscribe itself.

With --falco the client speaks Falco 0.43's falco.outputs.service (sub) instead, as Falco's
own clients do: no filters, no resume; useful against Falco itself or to check compatibility.
"""

EPILOG = """\
examples:
  falconet subscribe                                    # the local unix socket from falconet.yaml
  falconet subscribe --json --min-priority warning --tag mitre_execution
  falconet subscribe --address falconet.example:5060 \\
      --cert client.crt --key client.key --ca ca.crt     # mutual TLS
  falconet subscribe --history --count 10               # the last alerts held, then exit

Exit status: 0 after --count alerts or when the server ends the stream with --no-reconnect,
1 on a connection or TLS error with --no-reconnect or a bad option, 130 on Ctrl-C.
"""

MAX_BACKOFF = 5.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="PATH",
                   help="configuration file (default /etc/falconet/falconet.yaml)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key (e.g. -o grpc.bind_address=...)")
    p.add_argument("--address", metavar="ADDR",
                   help="unix:///path or host:port (default: grpc.bind_address)")
    p.add_argument("--cert", metavar="PEM", help="client certificate for mutual TLS")
    p.add_argument("--key", metavar="PEM", help="client private key for mutual TLS")
    p.add_argument("--ca", metavar="PEM", help="CA certificate that signed the server's")
    p.add_argument("--server-name", metavar="NAME",
                   help="the name the server certificate is checked against "
                        "(default: the host in --address)")
    p.add_argument("--insecure", action="store_true",
                   help="plain TCP without TLS (servers with grpc.allow_insecure_tcp)")
    p.add_argument("--min-priority", metavar="PRIORITY",
                   help="only alerts at least this severe (emergency ... debug)")
    p.add_argument("--rule", action="append", default=[], metavar="NAME",
                   help="only alerts of this rule (repeatable)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="only alerts with this tag (repeatable: any of them)")
    p.add_argument("--source", action="append", default=[], metavar="SOURCE",
                   help="only alerts of this source, e.g. syscall or internal (repeatable)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="json", action="store_true", default=None,
                     help="print Falco's JSON lines (default: json_output)")
    fmt.add_argument("--text", dest="json", action="store_false", help="print Falco's text lines")
    p.add_argument("--history", action="store_true",
                   help="start with every alert the server still holds, not only new ones")
    p.add_argument("--state-file", metavar="PATH",
                   help="remember the last alert printed here and resume from it next time")
    p.add_argument("--count", type=int, default=0, metavar="N", help="exit after N alerts")
    p.add_argument("--no-reconnect", dest="reconnect", action="store_false",
                   help="exit when the connection fails or the stream ends")
    p.add_argument("--falco", action="store_true",
                   help="use Falco's falco.outputs.service/sub (no filters, no resume)")


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise FalconetError(f"{what} {path}: cannot read: {e.strerror}") from None


def _channel(args, address: str):
    import grpc
    if address.startswith("unix:"):
        return grpc.insecure_channel(address)
    if args.insecure:
        return grpc.insecure_channel(address)
    if not (args.cert and args.key and args.ca):
        raise FalconetError(f"--address {address}: a TCP address needs mutual TLS: give "
                            "--cert, --key and --ca (or --insecure for a plain-TCP test server)")
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(args.ca, "--ca"), private_key=_read(args.key, "--key"),
        certificate_chain=_read(args.cert, "--cert"))
    opts = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(address, creds, options=opts)


class _State:
    """The position (server epoch, last sequence number printed), optionally kept in a file."""

    def __init__(self, path: str | None):
        self.path = path
        self.epoch = ""
        self.seq: int | None = None
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    d = json.load(f)
                self.epoch, self.seq = str(d["epoch"]), int(d["seq"])
            except (OSError, ValueError, KeyError, TypeError):
                raise FalconetError(f"--state-file {path}: not a subscribe state file "
                                    "(delete it to start afresh)") from None

    def save(self) -> None:
        if not self.path or self.seq is None:
            return
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"epoch": self.epoch, "seq": self.seq}, f)
        os.replace(tmp, self.path)


def _falco_json(r) -> str:
    """Falco's JSON line from a falco.outputs.response (output_fields arrive as strings)."""
    from ..alert import Priority, format_time_json
    d = {"hostname": r.hostname, "output": r.output, "output_fields": dict(r.output_fields),
         "priority": Priority(r.priority).label, "rule": r.rule, "source": r.source,
         "tags": sorted(r.tags), "time": format_time_json(r.time.ToNanoseconds())}
    return json.dumps(d, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    from ..alert import Priority
    from ..config import Config
    cfg = Config.load(args.config, args.option)
    address = args.address or cfg.get("grpc.bind_address", "unix:///run/falconet/falconet.sock")
    as_json = cfg.typed("json_output", bool, False) if args.json is None else args.json
    min_prio = None
    if args.min_priority:
        try:
            min_prio = int(Priority.parse(args.min_priority))
        except ValueError as e:
            raise ConfigError(f"--min-priority: {e}") from None
    if args.count < 0:
        raise ConfigError("--count: must be zero (no limit) or more")
    if args.falco and (min_prio is not None or args.rule or args.tag or args.source
                       or args.state_file):
        raise ConfigError("--falco: Falco's API has no filters and no resume; drop "
                          "--min-priority/--rule/--tag/--source/--state-file")
    from ..outputs.grpc import load
    load("falconet subscribe")
    import grpc
    state = _State(args.state_file)
    printed = 0
    backoff = 0.2
    connected_once = False
    out = sys.stdout
    while True:
        channel = _channel(args, address)
        try:
            if args.falco:
                stream = _falco_stream(channel)
            else:
                stream = _native_stream(channel, args, state, min_prio)
            for kind, payload in stream:
                connected_once = True
                backoff = 0.2
                if kind == "notice":
                    print(f"falconet subscribe: {payload}", file=sys.stderr, flush=True)
                    continue
                line = payload[1] if as_json else payload[0]
                out.write(line + "\n")
                out.flush()
                printed += 1
                state.save()
                if args.count and printed >= args.count:
                    return 0
            if not args.reconnect:
                return 0
            reason = "the server ended the stream"
        except grpc.RpcError as e:
            code, detail = e.code(), e.details() or ""
            if not args.reconnect:
                raise FalconetError(f"{address}: {code.name.lower()}: {detail}") from None
            reason = f"{code.name.lower()}: {detail}" if detail else code.name.lower()
        finally:
            channel.close()
        print(f"falconet subscribe: {address}: {reason}; reconnecting in {backoff:.1f} s"
              + ("" if connected_once else " (not connected yet)"), file=sys.stderr, flush=True)
        time.sleep(backoff)
        backoff = min(MAX_BACKOFF, backoff * 2)


def _native_stream(channel, args, state: _State, min_prio: int | None):
    from ..outputs.grpc import falconet_pb2, falconet_pb2_grpc
    stub = falconet_pb2_grpc.alertsStub(channel)
    if state.seq is None:
        info = stub.info(falconet_pb2.info_request(), timeout=10)
        state.epoch = info.epoch
        state.seq = 0 if args.history else info.last_seq
    req = falconet_pb2.subscribe_request(rules=args.rule, tags=args.tag, sources=args.source,
                                         resume_after=state.seq, epoch=state.epoch)
    if min_prio is not None:
        req.min_priority = min_prio
    for ev in stub.subscribe(req):
        if ev.epoch != state.epoch:
            state.epoch = ev.epoch
        if ev.WhichOneof("body") == "notice":
            n = ev.notice
            if n.what == falconet_pb2.notice.RESTARTED:
                state.seq = 0
            yield "notice", n.message
            continue
        a = ev.alert
        state.seq = a.seq
        yield "alert", (a.response.output, a.json)


def _falco_stream(channel):
    from ..outputs.grpc import outputs_pb2, outputs_pb2_grpc
    stub = outputs_pb2_grpc.serviceStub(channel)
    for r in stub.sub(iter([outputs_pb2.request()])):
        yield "alert", (r.output, _falco_json(r))
