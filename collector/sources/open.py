"""Open a capture file of any supported format as a Source, refusing anything else clearly."""

from __future__ import annotations

import gzip
import os

from ..capture import sniff
from ..errors import CaptureError, FormatMismatch
from . import Source


def _scap_module():
    try:
        from . import scap
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith(".scap"):
            return None
        raise
    return scap


def open_capture(path: str, batch_events: int = 65536) -> Source:
    """A Source for ``path``: Falconet .fcap, or Falco/sysdig .scap (plain or gzip)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise CaptureError("no such file", path) from None
    except IsADirectoryError:
        raise CaptureError("is a directory, not a capture file", path) from None
    except OSError as e:
        raise CaptureError(f"cannot open: {e.strerror}", path) from None
    kind = sniff(head)
    if kind == "gzip":
        try:
            with gzip.open(path, "rb") as g:
                inner = sniff(g.read(64))
        except (OSError, EOFError) as e:
            raise CaptureError(f"gzip data is damaged ({e})", path) from None
        kind = inner if inner in ("scap",) else f"gzip-compressed {inner}"
    if kind == "fcap":
        from .fcap import FcapSource
        return FcapSource(path, batch_events=batch_events)
    if kind == "scap":
        scap = _scap_module()
        if scap is None:
            raise FormatMismatch("this is a Falco/sysdig .scap capture, and the .scap reader is not "
                                 "built yet", path, kind)
        return scap.ScapSource(path, batch_events=batch_events)
    size = os.path.getsize(path)
    raise FormatMismatch(f"not a capture Falconet can read: looks like {kind} ({size} bytes); "
                         "expected a Falconet .fcap or a Falco/sysdig .scap file", path, kind)
