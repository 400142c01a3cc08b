"""gRPC delivery: Falco 0.43's outputs/version services (with fan-out) and Falconet's own.

* ``*.proto``          the service definitions (Falco-compatible field numbers and enums);
* ``*_pb2*.py``        generated from them by ``regen.py`` and committed;
* ``hub.py``           history + per-subscriber bounded queues (no gRPC inside);
* ``channel.py``       the output channel that feeds the hub, one serialisation per alert;
* ``server.py``        the listener (unix socket 0600 or mutual-TLS TCP) and the servicers.
"""

from __future__ import annotations

from ...errors import OutputError


def load(key: str = "grpc.enabled"):
    """Import the gRPC modules, turning a missing or too old grpcio/protobuf into one clear
    OutputError (the generated code refuses runtimes older than the compiler that made it)."""
    try:
        from . import (  # noqa: F401  # noqa: F401
            falconet_pb2,
            falconet_pb2_grpc,
            outputs_pb2,
            outputs_pb2_grpc,
            schema_pb2,
            version_pb2,
            version_pb2_grpc,
        )
    except Exception as e:  # noqa: BLE001 - ImportError, RuntimeError or protobuf's VersionError
        raise OutputError(f"{key}: gRPC support cannot load ({e}); it needs grpcio>=1.85.1 and "
                          "protobuf>=7.35.1: python3 -m pip install -U grpcio protobuf") from None
    from .channel import GrpcChannel
    from .server import GrpcServer
    return GrpcChannel, GrpcServer
