"""The C engine and the pure twin give the same columns on the same input (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import native
from collector import records as R
from collector.state import StateEngine
from collector.state.columns import DEFAULT_COLUMNS, is_string_column

from .conftest import SNAP, Stream

pytestmark = pytest.mark.skipif(native.BACKEND != "c", reason="needs both backends")

PIDS = [1, 10, 11, 12, 13, 14]
NAMES = ["/etc/passwd", "rel/file", "../up/./x", "", "/tmp/", "a", "/memfd:evil (deleted)"]
CG = ["", "/user.slice", "0::/docker/" + "f0" * 32, "/kubepods/x/crio-" + "1a" * 32 + ".scope"]
ADDRS = [R.sockaddr("inet", "10.0.0.1", 443), R.sockaddr("inet", "127.0.0.1", 53),
         R.sockaddr("inet6", "::1", 8080), R.sockaddr("unix", "/run/docker.sock"),
         R.sockaddr("unix", b"\0abstract"), b""]

pid_s = st.sampled_from(PIDS)
fd_s = st.integers(-2, 9)
ret_s = st.sampled_from([0, 0, 0, 1, -1, -2, -115])


@st.composite
def event(draw):
    k = draw(st.sampled_from([
        "procfork", "procthread", "execve", "procexit", "openat", "open", "creat", "close",
        "dup", "dup2", "dup3", "fcntl", "socket", "connect", "accept4", "bind", "sendto",
        "chdir", "fchdir", "setuid", "setresuid", "setsid", "setpgid", "capset", "memfd_create",
        "clone", "getpid", "kill", "unlink", "fchmod", "socketpair"]))
    pid = draw(pid_s)
    tid = pid if draw(st.booleans()) else pid + 100
    ret = draw(ret_s)
    fd = draw(fd_s)
    if k == "procfork":
        c = draw(pid_s)
        return ("procfork", tid, pid, 0, {"child_tid": c, "child_pid": c, "flags":
                                          draw(st.sampled_from([0, 0x8000])), "start_ts": 3},
                {"comm": draw(st.sampled_from(["sh", "", "worker"]))})
    if k == "procthread":
        return ("procfork", tid, pid, 0, {"child_tid": pid + 100, "child_pid": pid,
                                          "flags": 0x10000}, {"comm": "t"})
    if k == "execve":
        argv = draw(st.lists(st.sampled_from(["sh", "-c", "ls -l", "x y"]), max_size=3))
        return ("execve", tid, pid, draw(st.sampled_from([0, 0, -2])), {
            "uid_gid": draw(st.sampled_from([0, 1000 | 1000 << 32])),
            "euid_egid": draw(st.sampled_from([0, 1000, 1000 | 1000 << 32])),
            "loginuid": draw(st.sampled_from([0xFFFFFFFF, 1000])),
            "tty": draw(st.sampled_from([0, 136 << 20 | 2, 4 << 20 | 300])),
            "ppid": draw(pid_s), "cap_eff": draw(st.sampled_from([0, 1 << 21 | 1]))},
            {"filename": "/bin/x", "args": R.argv(argv) if argv else b"",
             "cwd": draw(st.sampled_from(["", "/", "/home/u"])),
             "comm": draw(st.sampled_from(["", "bash", "python3"])),
             "exepath": draw(st.sampled_from(["", "/usr/bin/x", "/memfd:e (deleted)"])),
             "cgroup": draw(st.sampled_from(CG))})
    if k == "procexit":
        return ("procexit", tid, pid, 0, {"last": draw(st.sampled_from([0, 1]))}, {})
    if k in ("openat", "open", "creat"):
        flags = draw(st.sampled_from([0, 1, 2, 0o200000, 0o2000002, 0o20200000, 0x20]))
        name = draw(st.sampled_from(NAMES))
        full = draw(st.sampled_from(["", name]))
        r = fd if draw(st.booleans()) else -2
        if k == "openat":
            return ("openat", tid, pid, r, {"dirfd": draw(st.sampled_from([-100, 3, 4])),
                                            "flags": flags}, {"name": name, "fullpath": full})
        return (k, tid, pid, r, {"flags": flags}, {"name": name, "fullpath": full})
    if k in ("close", "fchmod", "fchdir"):
        return (k, tid, pid, ret, {"fd": fd}, {})
    if k == "dup":
        return ("dup", tid, pid, draw(fd_s), {"oldfd": fd}, {})
    if k in ("dup2", "dup3"):
        nf = draw(fd_s)
        return (k, tid, pid, nf, {"oldfd": fd, "newfd": nf, **({"flags": 0o2000000}
                                                               if k == "dup3" else {})}, {})
    if k == "fcntl":
        return ("fcntl", tid, pid, draw(fd_s), {"fd": fd, "cmd": draw(st.sampled_from([0, 1030, 2]))}, {})
    if k == "socket":
        return ("socket", tid, pid, fd, {"domain": draw(st.sampled_from([2, 10, 1, 16])),
                                         "type": draw(st.sampled_from([1, 2, 3, 0o2000001])),
                                         "proto": draw(st.sampled_from([0, 1, 6]))}, {})
    if k == "socketpair":
        return ("socketpair", tid, pid, 0, {"domain": 1, "type": 1, "proto": 0,
                                            "fd1": fd, "fd2": fd + 1}, {})
    if k in ("connect", "sendto", "bind"):
        return (k, tid, pid, ret, {"fd": fd}, {"addr": draw(st.sampled_from(ADDRS)),
                                              **({"laddr": draw(st.sampled_from(ADDRS))}
                                                 if k == "connect" else {})})
    if k == "accept4":
        return ("accept4", tid, pid, draw(fd_s), {"fd": fd, "flags": draw(st.sampled_from([0, 0o2000000]))},
                {"addr": draw(st.sampled_from(ADDRS)), "laddr": draw(st.sampled_from(ADDRS))})
    if k == "chdir":
        return ("chdir", tid, pid, ret, {}, {"path": draw(st.sampled_from(NAMES))})
    if k == "setuid":
        return ("setuid", tid, pid, ret, {"uid": draw(st.sampled_from([0, 1000, 0xFFFFFFFF]))}, {})
    if k == "setresuid":
        return ("setresuid", tid, pid, ret, {"ruid": draw(st.sampled_from([0, 1000, 0xFFFFFFFF])),
                                             "euid": draw(st.sampled_from([0, 33, 0xFFFFFFFF]))}, {})
    if k == "setsid":
        return ("setsid", tid, pid, draw(st.sampled_from([pid, -1])), {}, {})
    if k == "setpgid":
        return ("setpgid", tid, pid, ret, {"pid": draw(st.sampled_from([0] + PIDS)),
                                           "pgid": draw(st.sampled_from([0] + PIDS))}, {})
    if k == "capset":
        return ("capset", tid, pid, ret, {"cap_inheritable": 0, "cap_permitted": 1 << 12,
                                          "cap_effective": draw(st.sampled_from([0, 1 << 12]))}, {})
    if k == "memfd_create":
        return ("memfd_create", tid, pid, fd, {"flags": draw(st.sampled_from([0, 1]))},
                {"name": "memfd:x"})
    if k == "clone":
        c = draw(pid_s)
        return ("clone", tid, pid, c, {"flags": draw(st.sampled_from([0, 0x10000]))}, {})
    return (k, tid, pid, ret, {}, {})


def compare(stream: Stream, chunks: int, caps: dict) -> None:
    strings = native.StringTable()
    batch, _ = native.decode(bytes(stream.buf), strings)
    outs = {}
    for be in ("c", "pure"):
        eng = StateEngine(strings, SNAP, backend=be, **caps)
        bounds = np.linspace(0, batch.n, chunks + 1).astype(int)
        parts = [eng.enrich(batch.take(np.arange(a, b))) for a, b in zip(bounds, bounds[1:])]
        outs[be] = (parts, eng.snapshot(), eng.stats())
    for pc, pp in zip(outs["c"][0], outs["pure"][0]):
        for col in DEFAULT_COLUMNS:
            a, b = pc.cols[col], pp.cols[col]
            assert a.shape == b.shape, col
            if is_string_column(col):
                ta = [strings.get(int(x)) for x in a.reshape(-1)]
                tb = [strings.get(int(x)) for x in b.reshape(-1)]
                assert ta == tb, col
            else:
                assert np.array_equal(a, b), col
    sc, sp = outs["c"][1], outs["pure"][1]
    key = lambda t: (t["pid"], t["tid"])  # noqa: E731
    assert sorted(sc["threads"], key=key) == sorted(sp["threads"], key=key)
    for k in ("procs", "threads", "fds", "procs_cap_hit", "fds_cap_hit", "procs_removed"):
        assert outs["c"][2][k] == outs["pure"][2][k], k


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(event(), min_size=1, max_size=120), st.integers(1, 4),
       st.sampled_from([{}, {"max_procs": 4, "max_fds": 5, "max_threads": 6, "max_fd_num": 6}]))
def test_twins_identical(events, chunks, caps):
    s = Stream()
    for k, tid, pid, ret, args, vars_ in events:
        s.ev(k, tid, pid, ret=ret, args=args, vars=vars_)
    compare(s, chunks, caps)


def test_twins_long_plain_runs():
    """Long runs of stateless events take the vectorized path of the pure twin."""
    s = Stream()
    for pid in (10, 11, 12):
        s.fork(1, pid, comm=f"p{pid}")
        s.execve(pid, [f"p{pid}", "-x"], ppid=1)
    for i in range(500):
        s.ev("kill", 10 + i % 3, args={"pid": 1, "sig": 0})
        if i % 97 == 0:
            s.openat(10 + i % 3, 3, f"/f{i}")
        if i % 131 == 0:
            s.ev("getpid", 5000 + i)
    compare(s, 3, {})
