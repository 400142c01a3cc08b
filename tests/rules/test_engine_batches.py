"""The vectorized engine on realistic batches (lazy state columns, shared macros across the
rules of an event-type group) agrees with the scalar reference evaluator, event by event."""

from __future__ import annotations

from collections import Counter

import numpy as np

from collector import native
from collector.config import Config
from collector.rules import RuleEngine
from collector.rules.reference import Evaluator
from collector.sources.synthetic import SyntheticSource
from collector.state.engine import StateEngine


def test_all_matches_equal_reference_on_synthetic_batches(official, tmp_path):
    cfg = tmp_path / "falconet.yaml"
    cfg.write_text("rule_matching: all\n")
    eng = RuleEngine.load(official, Config.load(str(cfg)))
    assert not eng.first_only
    src = SyntheticSource(events=12000, batch_events=4096, seed=11)
    strings = native.StringTable()
    dec = native.Decoder(strings)
    st = StateEngine(strings, snapshot=src.snapshot)
    by_type: dict = {}
    for r in eng.enabled:
        for t in r.types:
            by_type.setdefault(t, []).append(r)
    got, want, num = Counter(), Counter(), 1
    for raw in src.raw_batches():
        b, _ = dec.decode(raw, num)
        b.boot_ns = src.boot_ns
        num += b.n
        b = st.enrich(b, eng.columns)
        got.update((a.time_ns, a.rule) for a in eng.process(b))
        ev = Evaluator(b)
        ts = (b.cols["ts"] + np.uint64(b.boot_ns)).tolist()
        for i, t in enumerate(b.cols["type"].tolist()):
            for r in by_type.get(t, ()):
                if ev.run(r.ast, i):
                    want[(ts[i], r.name)] += 1
    assert sum(want.values()) > 50
    assert got == want
