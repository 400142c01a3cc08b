"""Render return values as Falco does for evt.res: ``SUCCESS`` or the errno name (``ENOENT``)."""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable

import numpy as np

from .batch import StringTable

MAX_ERRNO = 4096


def _errno_lut(strings: StringTable) -> np.ndarray:
    lut = np.zeros(MAX_ERRNO + 1, dtype=np.uint32)
    lut[0] = strings.intern("SUCCESS")
    for code in range(1, MAX_ERRNO + 1):
        lut[code] = strings.intern(_errno.errorcode.get(code, f"E{code}"))
    return lut


def errno_ids(strings: StringTable) -> Callable[[np.ndarray], np.ndarray]:
    """A vectorized map ret -> string id, using one lookup table per string table."""
    lut = strings.derived(_errno_lut, _errno_lut)
    success = lut[0]

    def conv(ret: np.ndarray) -> np.ndarray:
        neg = np.clip(-ret, 0, MAX_ERRNO)
        out = lut[neg]
        out[ret >= 0] = success
        return out

    return conv
