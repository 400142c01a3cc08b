"""Differential test: `sysdig -r FILE FILTER` and Falconet match the same events for filter
conditions taken from the official rules' macros (their event-type and argument parts), with
enter and exit events both evaluated, as Falco evaluates old captures.  (The rules engine's
own differential test, tests/rules/test_differential_sysdig.py, covers the macros that need
process/fd state, on exit events.)"""

from __future__ import annotations

import pytest

from . import sysdig_ref as sd
from .conftest import NAMES, capture_path, new_strings

pytestmark = pytest.mark.skipif(sd.SYSDIG is None, reason="sysdig is not installed")
plan_mod = pytest.importorskip("collector.rules.plan")
parser_mod = pytest.importorskip("collector.rules.parser")

CAPTURES = [n for n in NAMES if n != "libs/curl_google_comments.scap"]   # too new for sysdig
CONDITIONS = [
    "evt.type in (open, openat, openat2)",                                 # open_* macros
    "evt.type in (open, openat, openat2) and evt.dir=< and evt.is_open_read=true",  # open_read
    "evt.type in (open, openat, openat2) and evt.is_open_write=true",      # open_write
    "evt.type in (open, openat, openat2) and evt.arg.flags contains O_CREAT",
    "evt.type in (execve, execveat) and evt.dir=<",                        # spawned_process
    "evt.type in (execve, execveat) and evt.dir=> and evt.arg.filename contains bin",
    "evt.type = connect and evt.dir=<",                                    # outbound
    "evt.type in (accept, accept4, listen, recvfrom, recvmsg)",            # inbound
    "evt.type in (socket, bind, sendto, sendmsg)",
    "evt.type = close and evt.dir=> and evt.rawarg.fd > 2",    # (sysdig's evt.arg is text)
    "evt.type in (open, openat, openat2, connect) and evt.dir=< and evt.res != SUCCESS",
    "evt.type in (clone, fork, vfork) and evt.dir=< and evt.rawres = 0",   # child side
    "evt.type in (mprotect, getpid)",                                      # generic events
    "evt.type = procexit",
    "evt.type in (setuid, setgid, setresuid, kill, fcntl, ioctl, setpgid, dup, dup2)",
]


class _Src:
    def __init__(self, text):
        self.text = text

    def offset_pos(self, off):
        return off


def _falconet(path: str, cond: str) -> set[int]:
    from collector.rules.check import Expander
    from collector.rules.collector import Collector
    from collector.sources.scap import ScapSource
    ast = Expander(Collector()).expand(parser_mod.parse(cond, _Src(cond)), 1 << 30)
    plan = plan_mod.compile_plan(ast, plan_mod.LutCache())
    to_sd = sd.sysdig_numbers(path)
    src = ScapSource(path, strings=new_strings())
    src.open()
    out: set[int] = set()
    for b in src.batches():
        m = plan.eval(plan_mod.Ctx(b, None, {}), None)
        out.update(to_sd[n] for n in b.cols["num"][m].tolist())
    src.close()
    return out


@pytest.mark.parametrize("cond", CONDITIONS)
def test_filters_match_the_same_events(cond):
    total = 0
    diffs = []
    for name in CAPTURES:
        path = str(capture_path(name))
        theirs = sd.nums(path, cond)
        mine = _falconet(path, cond)
        total += len(theirs)
        if mine != theirs:
            diffs.append((name, sorted(mine - theirs)[:5], sorted(theirs - mine)[:5]))
    assert not diffs, f"(capture, only Falconet, only sysdig): {diffs}"


def test_filters_are_not_vacuous():
    counts = {c: sum(len(sd.nums(str(capture_path(n)), c)) for n in CAPTURES)
              for c in CONDITIONS}
    assert sum(1 for n in counts.values() if n) >= len(CONDITIONS) - 3, counts
    assert counts["evt.type in (open, openat, openat2)"] >= 100
