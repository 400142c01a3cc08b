"""String table rollover: a live source whose table is over its cap switches to a fresh table
between batches, the state engine re-homes (re-interns what it holds) and everything else
follows batch.strings.  A run with a tiny cap must give the same text as the run without one,
keep the table bounded, leave old batches readable, keep rules firing, and the C and pure
cores must agree."""

from __future__ import annotations

import random

import numpy as np
import pytest

from collector import native
from collector import records as R
from collector.batch import rollover_due
from collector.config import Config, string_table_caps
from collector.errors import ConfigError
from collector.sources.live import LiveSource
from collector.state import StateEngine
from collector.state.columns import DEFAULT_COLUMNS, is_string_column

from .conftest import HAVE_C, SNAP

CID = "ab12" * 16
CG_DOCKER = "0::/docker/" + CID
PAGE = 4096


# -- the workload -------------------------------------------------------------------------
def workload(events: int = 4000, seed: int = 5, chunk: int = 150) -> list[list[bytes]]:
    """Chunks of records (ts increasing): a few long-lived processes with open files, cwds,
    connected sockets and container/user identities carried across rollovers, plus a stream of
    unique /tmp paths, one-off child command lines, chdirs, relative opens and connects."""
    rng = random.Random(seed)
    recs: list[bytes] = []
    ts = [1000]

    def ev(type_, tid, pid=None, ret=0, args=None, vars=None):
        ts[0] += 10
        recs.append(R.encode(type_, tid=tid, pid=tid if pid is None else pid, ts=ts[0],
                             ret=ret, args=args or (), vars=vars or ()))

    def execve(pid, argv, cwd, uid, cgroup, ppid=1):
        ev("execve", pid, args={"uid_gid": uid | uid << 32, "euid_egid": uid | uid << 32,
                                "loginuid": uid, "tty": 0, "ppid": ppid, "cap_eff": 0},
           vars={"filename": argv[0], "args": R.argv(argv), "cwd": cwd,
                 "comm": argv[0].rsplit("/", 1)[-1][:15], "exepath": argv[0],
                 "cgroup": cgroup})

    workers = list(range(100, 108))
    ev("unlink", 1, vars={"path": "/etc/secret"})      # once: a rule that matches rarely
    for pid in workers:
        ev("procfork", 1, 1, args={"child_tid": pid, "child_pid": pid, "flags": 0,
                                   "start_ts": ts[0]}, vars={"comm": "systemd"})
        execve(pid, ["/usr/bin/worker", f"--id={pid}"], f"/home/w{pid}",
               1000 if pid % 2 else 0, CG_DOCKER if pid % 3 == 0 else "/user.slice")
        ev("openat", pid, ret=3, args={"dirfd": R.AT_FDCWD, "flags": 0},
           vars={"name": f"/var/log/w{pid}.log", "fullpath": f"/var/log/w{pid}.log"})
        ev("socket", pid, ret=4, args={"domain": 2, "type": 1, "proto": 6})
        ev("connect", pid, args={"fd": 4},
           vars={"addr": R.sockaddr("inet", "10.0.0.%d" % (pid % 250), 443),
                 "laddr": R.sockaddr("inet", "192.168.1.2", 40000 + pid)})
    child = 5000
    for i in range(events):
        pid = rng.choice(workers)
        k = rng.random()
        if k < 0.45:                                   # a unique /tmp file, opened and closed
            name = f"/tmp/rnd-{i}-{rng.getrandbits(40):010x}"
            ev("openat", pid, ret=5, args={"dirfd": R.AT_FDCWD, "flags": 0o101},
               vars={"name": name, "fullpath": name})
            ev("close", pid, args={"fd": 5})
        elif k < 0.55:                                 # relative: resolved with the cwd
            ev("openat", pid, ret=6, args={"dirfd": R.AT_FDCWD, "flags": 0},
               vars={"name": f"rel-{i}.txt", "fullpath": ""})
            ev("kill", pid, args={"pid": 1, "sig": 0})
            ev("close", pid, args={"fd": 6})
        elif k < 0.60:                                 # a new cwd (carried until the next)
            ev("chdir", pid, vars={"path": f"/srv/d{i}"})
        elif k < 0.70:                                 # a one-off child with a unique cmdline
            child += 1
            ev("procfork", pid, pid, args={"child_tid": child, "child_pid": child, "flags": 0,
                                           "start_ts": ts[0]}, vars={"comm": "worker"})
            execve(child, ["/bin/sh", "-c", f"echo {i} {rng.getrandbits(32):08x}"],
                   f"/home/w{pid}", 1000, CG_DOCKER if i % 2 else "/", ppid=pid)
            ev("openat", child, ret=3, args={"dirfd": R.AT_FDCWD, "flags": 0},
               vars={"name": f"/tmp/child-{i}", "fullpath": f"/tmp/child-{i}"})
            ev("procexit", child, args={"last": 1})
        elif k < 0.78:                                 # a new tuple on the long-lived socket
            ev("connect", pid, args={"fd": 4},
               vars={"addr": R.sockaddr("inet", "10.1.%d.%d" % (i % 200, pid % 200), 8000 + i),
                     "laddr": R.sockaddr("inet", "192.168.1.2", 30000 + i % 30000)})
            ev("sendto", pid, args={"fd": 4}, vars={"addr": b""})
        elif k < 0.82:                                 # a new image with unique arguments
            execve(pid, ["/usr/bin/worker", f"--id={pid}", f"--gen={i}"], f"/home/w{pid}",
                   1000 if pid % 2 else 0, CG_DOCKER if pid % 3 == 0 else "/user.slice")
            ev("openat", pid, ret=3, args={"dirfd": R.AT_FDCWD, "flags": 0},
               vars={"name": f"/var/log/w{pid}.log", "fullpath": f"/var/log/w{pid}.log"})
        else:                                          # reads on the fds held across batches
            ev("fchmod", pid, args={"fd": rng.choice([3, 4])})
    return [recs[i:i + chunk] for i in range(0, len(recs), chunk)]


RULES = """
- rule: tmp file opened
  desc: any open of a random /tmp file
  condition: evt.type in (open, openat) and fd.name startswith /tmp/rnd-
  output: "tmp %fd.name by %proc.name (%proc.cmdline) user=%user.name cid=%container.id cwd=%proc.cwd"
  priority: WARNING
- rule: worker log touched
  desc: fchmod on a file held open since the start
  condition: evt.type = fchmod and fd.name startswith /var/log/w
  output: "log %fd.name by %proc.name user=%user.name dir=%fd.directory"
  priority: NOTICE
- rule: rare unlink
  desc: a type seen only in the first batch (its lookup tables are not used again)
  condition: evt.type = unlink and proc.cmdline startswith systemd
  output: "unlink by %proc.cmdline"
  priority: NOTICE
"""


def rule_engine(tmp_path):
    from collector.rules import RuleEngine
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return RuleEngine.load([str(p)], Config.load(None, []))


def texts(batch, cols=DEFAULT_COLUMNS) -> dict:
    """Columns as text (string ids through the batch's own table) or plain values."""
    s = batch.strings
    out = {}
    for c in cols:
        a = batch.cols[c]
        if is_string_column(c) or (c[0] == "v" and c[1:].isdigit()):
            out[c] = [s.get(int(x)) for x in a.reshape(-1)]
        else:
            out[c] = a.reshape(-1).tolist()
    return out


BASE_V = tuple(f"v{i}" for i in range(6))


# -- driving the live source without a kernel -------------------------------------------
def live_batches(chunks, max_ids, ring: bool, max_bytes: int = 0):
    """LiveSource._batches over memfd rings (C) or over raw buffers (the pure path),
    one chunk per batch; yields (copied batch, table size right after decoding)."""
    src = LiveSource(strings_max_ids=max_ids, strings_max_bytes=max_bytes)
    src._opened = True                        # no device: the rings are fed below
    src._ioctl = lambda *a, **k: None
    total = sum(map(len, chunks))
    if ring:
        from collector.state.ring import MemRingProducer, RingReader
        prod = MemRingProducer(2, 64 * PAGE)
        reader = RingReader.open_memfd(prod)
        reader.set_holdback(0)
        src._c_reader = lambda: reader

        def feed(k):
            for r in chunks[k]:
                assert prod.write(int.from_bytes(r[8:16], "little") // 10 % 2, r)
    else:
        src._c_reader = lambda: None
        src.raw_batches = lambda: iter(b"".join(c) for c in chunks)

        def feed(k):
            pass
    feed(0)
    k = 1
    for b in src.batches():
        yield src, b.copy(), len(b.strings)
        if k < len(chunks):
            feed(k)
            k += 1
        elif src.records >= total or not ring:
            src.stop()


def run_live(chunks, max_ids, ring, backend, tmp_path, keep=False, max_bytes=0):
    eng = None
    rules = rule_engine(tmp_path)
    out = {"texts": [], "alerts": [], "peak": 0, "growth": 0, "tables": 0, "kept": []}
    prev, prev_len = None, 0
    for src, b, _ in live_batches(chunks, max_ids, ring, max_bytes):
        if eng is None:
            eng = StateEngine(b.strings, SNAP, backend=backend)
        e = eng.enrich(b, set(DEFAULT_COLUMNS) | set(rules.columns))
        out["alerts"] += [(a.rule, a.output) for a in rules.process(e)]
        t = texts(e, DEFAULT_COLUMNS + BASE_V)
        out["texts"].append(t)
        if keep:
            out["kept"].append((e, t))
        out["tables"] += b.strings is not prev      # a table met for the first time
        out["peak"] = max(out["peak"], len(b.strings))
        if b.strings is prev:                # what decoding + enriching one batch added
            out["growth"] = max(out["growth"], len(b.strings) - prev_len)
        prev, prev_len = b.strings, len(b.strings)
        out["src"], out["eng"] = src, eng
    out["stats"] = out["src"].stats()
    return out


def merged(parts):
    return {k: sum((p[k] for p in parts), []) for k in parts[0]}


RING = [True, False] if HAVE_C else [False]


@pytest.mark.parametrize("ring", RING, ids=lambda r: "ring" if r else "raw")
def test_live_rollover_same_text_bounded_table_rules_fire(ring, backend, tmp_path):
    chunks = workload()
    ref = run_live(chunks, 0, ring, backend, tmp_path)
    cap = 900
    got = run_live(chunks, cap, ring, backend, tmp_path)
    assert ref["stats"]["string_rollovers"] == 0 and ref["tables"] == 1
    total = ref["peak"]
    assert total > 8 * cap                   # the uncapped table keeps growing
    rolls = got["stats"]["string_rollovers"]
    assert rolls >= 5 and got["tables"] == rolls + 1
    assert got["eng"].stats()["string_rehomes"] == rolls
    assert got["eng"].stats()["rehome_carried"] > 20     # live processes and fds carried
    # bounded: at most the cap plus what one batch adds (decoding and enriching it)
    assert got["growth"] < 2 * 150
    assert got["peak"] <= cap + got["growth"]
    # the enriched columns are textually identical, batch for batch
    assert len(got["texts"]) == len(ref["texts"])
    for i, (a, b) in enumerate(zip(got["texts"], ref["texts"])):
        for col in a:
            assert a[col] == b[col], (i, col)
    # the rules fire the same, before and after every rollover
    assert got["alerts"] == ref["alerts"]
    names = {r for r, _ in got["alerts"]}
    assert names == {"tmp file opened", "worker log touched", "rare unlink"}
    assert any("user=alice" in o and f"cid={CID[:12]}" in o for _, o in got["alerts"])


def test_old_tables_are_freed_with_their_last_batch(tmp_path):
    """Nothing but the batches keeps an old table alive (not the decoder, the state engine,
    nor the rule engine's lookup tables of a rule that stopped matching): memory is bounded."""
    import gc
    import weakref
    rules = rule_engine(tmp_path)
    refs, eng, alerts = [], None, 0
    for _src, b, _ in live_batches(workload(events=2000), 500, False):
        eng = eng or StateEngine(b.strings, SNAP)
        alerts += len(rules.process(eng.enrich(b, set(rules.columns))))
        if not refs or refs[-1]() is not b.strings:
            refs.append(weakref.ref(b.strings))
        del b
    assert alerts > 0 and len(refs) >= 4
    gc.collect()
    alive = [r for r in refs if r() is not None]
    assert alive == [refs[-1]]


def test_byte_cap_rolls_over_too(tmp_path):
    chunks = workload(events=1500)
    ref = run_live(chunks, 0, False, None, tmp_path)
    got = run_live(chunks, 0, False, None, tmp_path, max_bytes=20000)
    assert got["stats"]["string_rollovers"] >= 3
    assert merged(got["texts"]) == merged(ref["texts"])
    assert got["alerts"] == ref["alerts"]


def test_old_batches_still_resolve_after_rollover(backend, tmp_path):
    """Batches enriched before a rollover keep their table: eager texts stay right, and lazy
    columns first read after the engine moved on (socket names made later, user names,
    interned later) come out right too."""
    chunks = workload(events=2500, seed=9)
    ref = run_live(chunks, 0, False, backend, tmp_path)
    got = run_live(chunks, 700, False, backend, tmp_path, keep=True)
    assert got["stats"]["string_rollovers"] >= 3
    for e, t in got["kept"]:                 # read again at the end: same text
        assert texts(e, DEFAULT_COLUMNS + BASE_V) == t
    # lazy: enrich without reading, read everything after the last rollover
    eng, pending = None, []
    for _src, b, _ in live_batches(chunks, 700, False):
        eng = eng or StateEngine(b.strings, SNAP, backend=backend)
        pending.append(eng.enrich(b))
    assert eng.stats()["string_rehomes"] >= 3
    stale = [p for p in pending if p.strings is not eng.strings]
    assert len(stale) > len(pending) // 2
    for i, p in enumerate(pending):
        t = texts(p, ("fd_name", "user_name", "group_name", "proc_cmdline", "container_id",
                      "thread_cap_effective", "fd_sip", "proc_aname_all"))
        for col, vals in t.items():
            assert vals == ref["texts"][i][col], (i, col)
    inet = [x for p in pending for x in texts(p, ("fd_name",))["fd_name"]
            if x and b"->" in x]
    assert len(inet) > 50                    # socket names were made in the old tables


@pytest.mark.skipif(not HAVE_C, reason="needs both cores")
def test_c_and_pure_agree_across_rollovers(tmp_path):
    chunks = workload(events=2500, seed=13)
    c = run_live(chunks, 600, True, "c", tmp_path)
    p = run_live(chunks, 600, True, "pure", tmp_path)
    assert c["stats"]["string_rollovers"] >= 4
    assert c["texts"] == p["texts"]
    assert c["alerts"] == p["alerts"]
    sc, sp = c["eng"].snapshot(), p["eng"].snapshot()
    key = lambda t: (t["pid"], t["tid"])  # noqa: E731
    assert sorted(sc["threads"], key=key) == sorted(sp["threads"], key=key)


@pytest.mark.parametrize("table", ["native", "python"])
def test_rehome_onto_an_unrelated_table_mid_stream(backend, table):
    """Engine-level: the second half decoded into a brand-new table (no decoder involved)
    gives the same text as one table throughout; the snapshot after it too.  "python": the
    pure StringTable, which the C core mirrors into a C table of its own."""
    from collector import decode_py
    from collector.batch import StringTable
    kind, dec = ((native.StringTable, native.decode) if table == "native"
                 else (StringTable, decode_py.decode))
    raw = b"".join(b"".join(c) for c in workload(events=1200, seed=3))
    one = kind()
    full, _ = dec(raw, one)
    half = full.n // 2
    ref = StateEngine(one, SNAP, backend=backend, lazy=False)
    want = [texts(ref.enrich(full.take(np.arange(0, half)))),
            texts(ref.enrich(full.take(np.arange(half, full.n))))]
    t1, t2 = kind(), kind()
    b1, _ = dec(raw, t1)
    b2, _ = dec(raw, t2)
    eng = StateEngine(t1, SNAP, backend=backend, lazy=False)
    got = [texts(eng.enrich(b1.take(np.arange(0, half)))),
           texts(eng.enrich(b2.take(np.arange(half, full.n))))]
    assert eng.strings is t2 and eng.stats()["string_rehomes"] == 1
    assert got == want
    assert eng.snapshot() == ref.snapshot()


def test_rollover_due_rule():
    t = native.StringTable()
    for i in range(100):
        t.intern(f"s{i}")
    assert len(t) == 102
    assert not rollover_due(t, 0, 0)
    assert rollover_due(t, 101, 0) and not rollover_due(t, 102, 0)
    nb = sum(len(f"s{i}") for i in range(100))
    assert t.nbytes() == nb
    assert rollover_due(t, 0, nb - 1) and not rollover_due(t, 0, nb)
    t.carried = (60, 0)                       # twice what was carried over: not before 120
    assert not rollover_due(t, 50, 0)
    t.carried = (40, 0)
    assert rollover_due(t, 50, 0)


def test_setting_is_documented_and_checked():
    cfg = Config.load(None, [])
    assert string_table_caps(cfg) == (1 << 22, 512 << 20)
    cfg = Config.load(None, ["pipeline.string_table_max_ids=0"])
    assert string_table_caps(cfg)[0] == 0
    with pytest.raises(ConfigError, match="string_table_max_bytes"):
        string_table_caps(Config.load(None, ["pipeline.string_table_max_bytes=-1"]))
    from collector.config import default_text
    assert "string_table_max_ids:" in default_text()
