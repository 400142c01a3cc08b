"""Small helpers shared by the rules tests."""

from __future__ import annotations

import textwrap

import numpy as np

from collector import abi
from collector.batch import EventBatch
from collector.config import Config
from collector.native import StringTable
from collector.rules import RuleEngine, validate


def write(tmp_path, text: str, name: str = "rules.yaml") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def msgs(tmp_path, text: str):
    errors, warnings = validate([write(tmp_path, text)])
    return [str(m) for m in errors], [str(m) for m in warnings]


def engine(tmp_path, text: str, *overrides: str, **kw) -> RuleEngine:
    return RuleEngine.load([write(tmp_path, text)], Config.load(None, list(overrides)), **kw)


def batch(rows: list[dict], strings=None) -> EventBatch:
    """Rows of {'type': 'openat', 'proc.name': 'cat', 'a1': 0, ...}; str values are interned."""
    strings = strings or StringTable()
    n = len(rows)
    b = EventBatch.empty(strings, n)
    b.cols["num"][:] = np.arange(1, n + 1)
    b.cols["ts"][:] = 1_700_000_000_000_000_000 + np.arange(n)
    keys = sorted({k for r in rows for k in r})
    for k in keys:
        vals = [r.get(k) for r in rows]
        if k == "type":
            b.cols["type"][:] = [abi.BY_NAME[v].num for v in vals]
        elif any(isinstance(v, str) for v in vals):
            b.cols[k] = np.array([0 if v is None else strings.intern(v) for v in vals], np.uint32)
        elif k in b.cols:
            b.cols[k][:] = [0 if v is None else v for v in vals]
        elif any(isinstance(v, bool) for v in vals):
            b.cols[k] = np.array([bool(v) for v in vals])
            b.cols[k + "#valid"] = np.array([v is not None for v in vals])
        else:
            b.cols[k] = np.array([0 if v is None else v for v in vals], np.int64)
            b.cols[k + "#valid"] = np.array([v is not None for v in vals])
    return b
