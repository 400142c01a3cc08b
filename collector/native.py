"""The C extension or its pure-numpy twin, behind one interface.

``BACKEND`` is ``"c"`` when ``collector._native`` (built from ext/ by cffi) is importable and
``FALCONET_PUREPYTHON`` is not set, else ``"pure"``.  Every C entry point has a pure-numpy
implementation with the same behaviour; the test suite runs under both
(``FALCONET_PUREPYTHON=1 pytest``).

Entry points (each part adds its own, documented where it is implemented):
    StringTable()                         intern table (collector.batch.StringTable interface)
    decode(buf, strings, first_num=1)     ABI records -> (EventBatch, DecodeStats)
"""

from __future__ import annotations

import os

_native = None
if not os.environ.get("FALCONET_PUREPYTHON"):
    try:
        from . import _native  # type: ignore[no-redef]
    except ImportError:
        _native = None

BACKEND = "c" if _native is not None else "pure"


def require_c() -> None:
    """For tests/benchmarks that must exercise the C path."""
    if _native is None:
        raise ImportError("the C extension collector._native is not available "
                          "(FALCONET_PUREPYTHON set, or the build failed)")
