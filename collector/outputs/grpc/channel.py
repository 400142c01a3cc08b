"""The gRPC output channel: turns each alert into the messages the gRPC services stream.

It runs on its own worker thread like every channel, so building and serialising protobuf
messages never costs the capture thread anything.  Each alert is serialised *once* -- as
Falco's ``falco.outputs.response`` and as Falconet's ``event`` -- and the bytes are shared by
every subscriber (the services send them with an identity serializer), so eight subscribers
cost little more than one.
"""

from __future__ import annotations

import json
from typing import Any

from ...alert import Alert
from ..base import Channel, Formatter
from . import falconet_pb2, outputs_pb2
from .hub import Hub, Item

# Falco fills source_deprecated from the source name, PLUGIN for anything it does not know.
_SOURCES = {"syscall": 0, "k8s_audit": 1, "internal": 2}
_PLUGIN = 3


def field_text(value: Any) -> str:
    """Falco stringifies output fields for gRPC: strings as-is, everything else JSON-dumped."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_response(alert: Alert, formatter: Formatter) -> outputs_pb2.response:
    r = outputs_pb2.response(
        priority=int(alert.priority),
        source_deprecated=_SOURCES.get(alert.source, _PLUGIN),
        rule=alert.rule,
        output=formatter.text(alert),
        hostname=alert.hostname,
        tags=sorted(alert.tags),
        source=alert.source,
    )
    r.time.FromNanoseconds(int(alert.time_ns))
    for k, v in alert.output_fields.items():
        r.output_fields[k] = field_text(v)
    return r


class GrpcChannel(Channel):
    name = "grpc"

    def __init__(self, hub: Hub, formatter: Formatter):
        super().__init__()
        self.hub = hub
        self.formatter = formatter

    def item(self, alert: Alert) -> Item:
        response = to_response(alert, self.formatter)
        js = self.formatter.json(alert)
        event = falconet_pb2.event(epoch=self.hub.epoch, alert=falconet_pb2.alert(
            seq=alert.seq, response=response, json=js))
        return Item(seq=alert.seq, priority=int(alert.priority), rule=alert.rule,
                    source=alert.source, tags=frozenset(alert.tags),
                    response=response.SerializeToString(), event=event.SerializeToString())

    def deliver(self, alert: Alert) -> None:
        self.hub.publish(self.item(alert))

    @property
    def live_stats(self) -> dict[str, int]:
        info = self.hub.info()
        return {"subscribers": int(info["subscribers"]),
                "subscribers_dropped": int(info["subscribers_dropped"]),
                "history": int(info["history"])}

    def close(self) -> None:
        """The hub outlives the channel: the server keeps serving history until it stops."""
