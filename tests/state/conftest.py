"""Helpers: build record streams with collector.records, decode, enrich, read columns as text."""

from __future__ import annotations

import numpy as np
import pytest

from collector import native
from collector import records as R
from collector.state import StateEngine
from collector.state.model import NA_INT

HAVE_C = native.BACKEND == "c"


class Stream:
    """An ordered list of encoded events with a running timestamp."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.ts = 1000

    def ev(self, type_, tid, pid=None, ret=0, args=None, vars=None):
        self.ts += 10
        self.buf += R.encode(type_, tid=tid, pid=tid if pid is None else pid, ts=self.ts, ret=ret,
                             args=args or (), vars=vars or ())
        return self

    # common shapes
    def fork(self, parent, child, comm=None, thread_of=None, flags=0, parent_pid=None):
        ppid = parent if parent_pid is None else parent_pid
        cpid = thread_of if thread_of is not None else child
        return self.ev("procfork", parent, ppid, args={"child_tid": child, "child_pid": cpid,
                                                       "flags": flags, "start_ts": self.ts},
                       vars={"comm": comm or ""})

    def execve(self, pid, argv, exepath=None, cwd="/", uid=0, gid=0, euid=None, ppid=1,
               loginuid=0xFFFFFFFF, tty=0, cgroup="/", comm=None, tid=None, ret=0, cap=0):
        euid = uid if euid is None else euid
        return self.ev("execve", tid if tid is not None else pid, pid, ret=ret, args={
            "uid_gid": uid | gid << 32, "euid_egid": euid | gid << 32, "loginuid": loginuid,
            "tty": tty, "ppid": ppid, "cap_eff": cap},
            vars={"filename": exepath or argv[0], "args": R.argv(argv), "cwd": cwd,
                  "comm": comm or argv[0].rsplit("/", 1)[-1][:15],
                  "exepath": exepath or argv[0], "cgroup": cgroup})

    def openat(self, pid, fd, name, fullpath=None, flags=0, dirfd=R.AT_FDCWD, tid=None):
        return self.ev("openat", tid or pid, pid, ret=fd, args={"dirfd": dirfd, "flags": flags},
                       vars={"name": name, "fullpath": name if fullpath is None else fullpath})

    def close(self, pid, fd, ret=0):
        return self.ev("close", pid, pid, ret=ret, args={"fd": fd})

    def exit(self, tid, pid=None, last=1):
        return self.ev("procexit", tid, pid, args={"last": last})


INIT = {"tid": 1, "pid": 1, "ppid": 0, "comm": "systemd", "exe": "/sbin/init",
        "exepath": "/usr/lib/systemd/systemd", "args": [], "cwd": "/", "uid": 0, "gid": 0,
        "sid": 1, "vpgid": 1, "start_ts": 5}
SNAP = {"users": {0: "root", 1000: "alice"}, "groups": {0: "root", 1000: "alice"},
        "threads": [INIT]}


def run(stream: Stream, snapshot=SNAP, columns=None, backend=None, strings=None, chunks=1,
        engine=None, **caps):
    """Decode the stream, enrich it (in `chunks` batches) and return (batch, engine)."""
    strings = strings if strings is not None else native.StringTable()
    batch, st = native.decode(bytes(stream.buf), strings)
    assert st.records == batch.n
    eng = engine or StateEngine(strings, snapshot, backend=backend, **caps)
    from collector.batch import EventBatch
    if chunks == 1:
        return eng.enrich(batch, columns), eng
    bounds = np.linspace(0, batch.n, chunks + 1).astype(int)
    parts = [eng.enrich(batch.take(np.arange(a, b)), columns) for a, b in zip(bounds, bounds[1:])]
    return EventBatch.concat(parts), eng


def text(batch, col):
    """A string column (1-D or 2-D) as Python text (None for absent)."""
    a = batch.cols[col]
    f = np.vectorize(lambda i: batch.strings.text(int(i)) if i else None, otypes=[object])
    return f(a).tolist() if a.size else []


def ints(batch, col):
    return [None if x == NA_INT else int(x) for x in batch.cols[col].tolist()]


@pytest.fixture(params=["c", "pure"] if HAVE_C else ["pure"])
def backend(request):
    return request.param
