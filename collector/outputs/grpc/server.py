"""The gRPC server: Falco's ``falco.outputs.service`` and ``falco.version.service``, plus
Falconet's own ``falconet.outputs.v1.alerts`` service, all on one listener.

Listening follows Falco: ``grpc.bind_address`` ``unix:///run/falconet/falconet.sock`` (the
default) serves without TLS on a socket file made mode 0600 (``grpc.unix_socket_mode``), so
only its owner (root) can connect; any host:port requires mutual TLS (``grpc.private_key``,
``grpc.cert_chain``, ``grpc.root_certs``; clients must present a certificate signed by
``root_certs``).  Plain TCP is refused unless ``grpc.allow_insecure_tcp`` is true.

Falco's API, with fan-out.  A client is told apart by its ``falconet-client-id`` metadata,
else by its TCP connection (peer address and port); for each client the server remembers the
last alert it handed over.  ``get`` streams the alerts held that this client has not
received, then ends; ``sub`` does the same at the client's first request and then streams
every new alert as it comes (further requests are read and ignored, so clients that poll by
sending requests, as Falco's clients do, work too).  Anonymous unix-socket clients cannot be
told apart (gRPC gives them all the peer ``unix:``), so each of their calls starts with the
whole history held; they should send ``falconet-client-id`` to be given only what is new.

Streams are sent with an identity serializer: the gRPC channel serialised each alert once.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc

from ... import __version__
from ...config import Config
from ...errors import ConfigError, OutputError
from ..base import Section
from . import falconet_pb2, outputs_pb2, version_pb2, version_pb2_grpc
from .hub import Criteria, Hub, Resume

log = logging.getLogger("falconet.outputs.grpc")

DEFAULT_BIND = "unix:///run/falconet/falconet.sock"
CLIENT_ID_KEY = "falconet-client-id"
POLL = 0.5


def _identity(b: bytes) -> bytes:
    return b


def client_key(context: grpc.ServicerContext) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == CLIENT_ID_KEY and v:
            return f"id:{v}"
    peer = context.peer() or ""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer
    return None


class _Streamer:
    """The loop shared by every streaming RPC: backlog first, then live items."""

    def __init__(self, hub: Hub):
        self.hub = hub

    def stream(self, res: Resume, context: grpc.ServicerContext, pick, on_item=None
               ) -> Iterator[bytes]:
        sub = res.subscriber
        context.add_callback(sub.close)
        try:
            for item in res.backlog:
                yield pick(item)
                sub.last_seq = item.seq
                if on_item:
                    on_item(item)
            while True:
                item = sub.get(POLL)
                if item is None:
                    if sub.overflowed:
                        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      f"subscriber fell more than {sub.capacity} alerts behind "
                                      f"and was dropped; resume after seq {sub.last_seq}")
                    if sub.closed or not context.is_active():
                        return
                    continue
                yield pick(item)
                sub.last_seq = item.seq
                if on_item:
                    on_item(item)
        finally:
            self.hub.unsubscribe(sub)


class FalcoOutputs(_Streamer):
    """``falco.outputs.service``: Falco 0.43's ``get`` and ``sub``, every client gets all."""

    def get(self, request, context):
        key = client_key(context)
        for item in self.hub.snapshot_after(self.hub.cursor(key)):
            if not context.is_active():
                return
            yield item.response
            self.hub.advance(key, item.seq)

    def sub(self, request_iterator, context):
        try:
            first = next(request_iterator, None)
        except grpc.RpcError:
            return
        if first is None:
            return
        # Drain the client's later requests so its sends never block on flow control.
        threading.Thread(target=_drain, args=(request_iterator,), daemon=True,
                         name="falconet-grpc-sub-requests").start()
        key = client_key(context)
        res = self.hub.subscribe(None, after=self.hub.cursor(key))
        yield from self.stream(res, context, lambda i: i.response,
                               lambda i: self.hub.advance(key, i.seq))


def _drain(it) -> None:
    try:
        for _ in it:
            pass
    except Exception:  # noqa: BLE001, S110 - the call ended: nothing left to drain
        pass


class NativeAlerts(_Streamer):
    """``falconet.outputs.v1.alerts``: filters, resume, gap and restart notices."""

    def subscribe(self, request, context):
        crit = Criteria(
            min_priority=request.min_priority if request.HasField("min_priority") else None,
            rules=frozenset(request.rules), tags=frozenset(request.tags),
            sources=frozenset(request.sources))
        after = request.resume_after if request.HasField("resume_after") else None
        res = self.hub.subscribe(None if crit.empty() else crit, after, request.epoch)
        epoch = self.hub.epoch
        if res.restarted:
            yield _notice(epoch, falconet_pb2.notice.RESTARTED, res,
                          f"the server restarted (epoch {request.epoch} is gone); sequence "
                          f"numbers start over, sending everything held from "
                          f"{res.first_available}")
        if res.missed:
            yield _notice(epoch, falconet_pb2.notice.GAP, res,
                          f"{res.missed} alerts after seq {request.resume_after} are no longer "
                          f"held; the history starts at seq {res.first_available}")
        yield from self.stream(res, context, lambda i: i.event)

    def info(self, request, context):
        i = self.hub.info()
        return falconet_pb2.info_response(
            epoch=str(i["epoch"]), first_seq=int(i["first_seq"]), last_seq=int(i["last_seq"]),
            history_capacity=self.hub.history_capacity, subscribers=int(i["subscribers"]),
            subscribers_dropped=int(i["subscribers_dropped"]))


def _notice(epoch: str, what: int, res: Resume, message: str) -> bytes:
    return falconet_pb2.event(epoch=epoch, notice=falconet_pb2.notice(
        what=what, first_available=res.first_available, missed=res.missed,
        message=message)).SerializeToString()


def _engine_version() -> tuple[int, int, int]:
    """The Falco rules-engine version whose language the rules engine implements (what Falco
    clients compare ``required_engine_version`` against); (0, 0, 0) if it is not built."""
    try:
        from ...rules.collector import ENGINE_VERSION
        major, minor, patch = (int(x) for x in ENGINE_VERSION)
        return major, minor, patch
    except (ImportError, ValueError, TypeError):
        return 0, 0, 0


class Version(version_pb2_grpc.serviceServicer):
    def version(self, request, context):
        core, _, build = __version__.partition("+")
        core, _, pre = core.partition("-")
        nums = [int(p) if p.isdigit() else 0 for p in (core.split(".") + ["0", "0"])[:3]]
        em, en, ep = _engine_version()
        return version_pb2.response(
            version=__version__, major=nums[0], minor=nums[1], patch=nums[2], prerelease=pre,
            build=build, engine_version=f"{em}.{en}.{ep}", engine_major=em, engine_minor=en,
            engine_patch=ep, engine_fields_checksum="")


def _handlers(hub: Hub) -> list[grpc.GenericRpcHandler]:
    falco = FalcoOutputs(hub)
    native = NativeAlerts(hub)
    outputs = grpc.method_handlers_generic_handler("falco.outputs.service", {
        "get": grpc.unary_stream_rpc_method_handler(
            falco.get, request_deserializer=outputs_pb2.request.FromString,
            response_serializer=_identity),
        "sub": grpc.stream_stream_rpc_method_handler(
            falco.sub, request_deserializer=outputs_pb2.request.FromString,
            response_serializer=_identity),
    })
    alerts = grpc.method_handlers_generic_handler("falconet.outputs.v1.alerts", {
        "subscribe": grpc.unary_stream_rpc_method_handler(
            native.subscribe, request_deserializer=falconet_pb2.subscribe_request.FromString,
            response_serializer=_identity),
        "info": grpc.unary_unary_rpc_method_handler(
            native.info, request_deserializer=falconet_pb2.info_request.FromString,
            response_serializer=falconet_pb2.info_response.SerializeToString),
    })
    return [outputs, alerts]


def _read(cfg: Config, key: str) -> bytes:
    path = cfg.get(key, "")
    if not path:
        raise ConfigError(f"{cfg.source}: setting {key!r} must name a file: a TCP "
                          "grpc.bind_address needs mutual TLS (or grpc.allow_insecure_tcp: true)")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"{cfg.source}: setting {key!r}: cannot read {path}: {e.strerror}") from None


def unix_path(address: str) -> str | None:
    """The socket path of a ``unix:`` address (``unix:///abs`` or ``unix:rel``), else None."""
    if address.startswith("unix://"):
        return address[len("unix://"):]
    if address.startswith("unix:"):
        return address[len("unix:"):]
    return None


class GrpcServer:
    """Owns the grpc.Server, the hub and the socket file; started and stopped by the manager."""

    def __init__(self, cfg: Config, hub: Hub | None = None):
        sec = Section(cfg, "grpc")
        out = Section(cfg, "grpc_output")
        self.cfg = cfg
        self.bind_address = sec.get("bind_address", str, DEFAULT_BIND)
        self.max_rpcs = sec.positive("threadiness", int, 0, allow_zero=True) or 64
        mode = sec.get("unix_socket_mode", str, "0600")
        try:
            self.socket_mode = int(mode, 8)
        except ValueError:
            raise ConfigError(f"{cfg.source}: setting 'grpc.unix_socket_mode' must be an octal "
                              f"mode such as \"0600\", got {mode!r}") from None
        self.hub = hub or Hub(out.positive("history_size", int, 10000),
                              out.positive("subscriber_queue_capacity", int, 10000))
        self.path = unix_path(self.bind_address)
        self.credentials = None
        if self.path is None:
            allow = sec.get("allow_insecure_tcp", bool, False)
            has_tls = any(cfg.get(f"grpc.{k}", "") for k in ("private_key", "cert_chain",
                                                            "root_certs"))
            if has_tls or not allow:
                key, chain, roots = (_read(cfg, f"grpc.{k}") for k in
                                     ("private_key", "cert_chain", "root_certs"))
                self.credentials = grpc.ssl_server_credentials(
                    [(key, chain)], root_certificates=roots, require_client_auth=True)
        elif not self.path:
            raise ConfigError(f"{cfg.source}: setting 'grpc.bind_address': {self.bind_address!r} "
                              "names no socket path")
        self._server: grpc.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        """Where clients connect (with the real port when ``bind_address`` asked for port 0)."""
        if self.path is not None:
            return f"unix://{self.path}" if self.path.startswith("/") else f"unix:{self.path}"
        host = self.bind_address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def _prepare_socket(self) -> None:
        assert self.path
        d = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
        except OSError as e:
            raise OutputError(f"grpc.bind_address: cannot create {d}: {e.strerror}") from None
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise OutputError(f"grpc.bind_address: {self.path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)  # stale socket left by a previous run
            return
        finally:
            probe.close()
        raise OutputError(f"grpc.bind_address: {self.path} is in use by another process")

    def start(self) -> None:
        if self.path is not None:
            self._prepare_socket()
        server = grpc.server(futures.ThreadPoolExecutor(self.max_rpcs,
                                                        thread_name_prefix="falconet-grpc"),
                             handlers=_handlers(self.hub),
                             maximum_concurrent_rpcs=self.max_rpcs)
        version_pb2_grpc.add_serviceServicer_to_server(Version(), server)
        try:
            if self.credentials is not None:
                port = server.add_secure_port(self.bind_address, self.credentials)
            else:
                if self.path is None:
                    log.warning("grpc: serving %s over plain TCP without TLS "
                                "(grpc.allow_insecure_tcp is true)", self.bind_address)
                port = server.add_insecure_port(self.bind_address)
        except RuntimeError as e:
            raise OutputError(f"grpc.bind_address: cannot listen on {self.bind_address}: {e}") from None
        if not port:
            raise OutputError(f"grpc.bind_address: cannot listen on {self.bind_address} "
                              "(address in use or not valid)")
        self.port = port
        server.start()
        if self.path is not None:
            try:
                os.chmod(self.path, self.socket_mode)
            except OSError as e:
                server.stop(0)
                raise OutputError(f"grpc.bind_address: cannot set mode of {self.path}: "
                                  f"{e.strerror}") from None
        self._server = server

    def stop(self, grace: float = 1.0) -> None:
        self.hub.close()
        if self._server is not None:
            self._server.stop(grace).wait(grace + 1)
            self._server = None
        if self.path:
            try:
                if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                    os.unlink(self.path)
            except OSError:
                pass
