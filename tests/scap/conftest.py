"""Shared fixtures of the .scap tests: where the reference captures are, how to read one.

Captures come from ``../shared/testdata/scap`` beside the repository (CI checks ``shared``
out next to the clone); ``FALCONET_SHARED`` overrides the ``shared`` directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from collector import native
from collector.batch import StringTable
from collector.sources.scap import ScapSource

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FALCONET_SHARED") or ROOT.parent / "shared")
SCAP_DIR = SHARED / "testdata" / "scap"
INVENTORY = SCAP_DIR / "scap_inventory.json"

if not INVENTORY.exists():  # pragma: no cover - depends on the checkout
    pytest.skip(f"reference captures not found in {SCAP_DIR} (set FALCONET_SHARED)",
                allow_module_level=True)

CAPTURES = {d["path"]: d for d in json.loads(INVENTORY.read_text())}
NAMES = sorted(CAPTURES)


def capture_path(name: str) -> Path:
    return SCAP_DIR / name


def c_available() -> bool:
    from collector.sources.scap import _c_lib
    return native.BACKEND == "c" and _c_lib() is not None


BACKENDS = ["pure"] + (["c"] if c_available() else [])


def new_strings():
    """The pipeline's string table (C-backed when the extension is built)."""
    return getattr(native, "StringTable", StringTable)()


def read_all(path, backend: str | None = None, batch_events: int = 65536, strings=None):
    """Every row of a capture as one dict of arrays (strings as bytes / None), with the source
    (stats, error) -- the source is closed."""
    src = ScapSource(str(path), batch_events=batch_events, strings=strings, backend=backend)
    src.open()
    parts = []
    try:
        for b in src.batches():
            parts.append({k: v.copy() for k, v in b.cols.items()})
    finally:
        src.close()
    if parts:
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    else:
        cols = {}
    return cols, src


def decoded(cols: dict, strings) -> dict:
    """String columns as lists of bytes (None = absent), other columns as they are."""
    out = {}
    for k, v in cols.items():
        if k[0] == "v" and k[1:].isdigit():
            out[k] = [strings.get(int(i)) for i in v]
        else:
            out[k] = v
    return out


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param
