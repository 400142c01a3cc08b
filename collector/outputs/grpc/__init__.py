"""gRPC delivery: Falco 0.43's outputs/version services (with fan-out) and Falconet's own.

* ``*.proto``          the service definitions (Falco-compatible field numbers and enums);
* ``*_pb2*.py``        generated from them by ``regen.py`` and committed;
* ``hub.py``           history + per-subscriber bounded queues (no gRPC inside);
* ``channel.py``       the output channel that feeds the hub, one serialisation per alert;
* ``server.py``        the listener (unix socket 0600 or mutual-TLS TCP) and the servicers.
"""

from .channel import GrpcChannel
from .hub import Hub
from .server import GrpcServer

__all__ = ["GrpcChannel", "GrpcServer", "Hub"]
