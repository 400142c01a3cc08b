"""The /proc scan seeds the engine with this very process, its fds and the users."""

from __future__ import annotations

import os
import socket

from collector import native
from collector.state import StateEngine
from collector.state.procscan import read_users, scan_snapshot

from .conftest import Stream, run, text


def test_scan_finds_this_process_and_its_fds(tmp_path):
    f = open(tmp_path / "probe.txt", "w")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    try:
        snap = scan_snapshot()
        me = [t for t in snap["threads"] if t["pid"] == os.getpid() and t["tid"] == os.getpid()]
        assert len(me) == 1
        t = me[0]
        assert t["ppid"] == os.getppid()
        assert t["cwd"] == os.getcwd()
        assert t["exepath"] == os.path.realpath("/proc/self/exe")
        assert t["uid"] == os.getuid() and t["euid"] == os.geteuid()
        fds = {e["fd"]: e for e in t["fds"]}
        assert fds[f.fileno()]["name"] == str(tmp_path / "probe.txt")
        assert fds[f.fileno()]["type"] == "file"
        e = fds[srv.fileno()]
        assert e["type"] == "ipv4" and e["sport"] == srv.getsockname()[1] and e["server"]
        assert 0 in snap["users"] and snap["users"][0] == "root"
        assert snap["boot_ns"] > 0
        # the engine seeded from it knows this process before any exec
        s = Stream().ev("fchmod", os.getpid(), args={"fd": f.fileno()})
        b, eng = run(s, snapshot=snap)
        assert text(b, "fd_name") == [str(tmp_path / "probe.txt")]
        assert text(b, "proc_name")[0] == t["comm"]
        assert eng.stats()["procs_unknown"] == 0
    finally:
        f.close()
        srv.close()


def test_users_refreshed_when_files_change(tmp_path):
    etc = tmp_path
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    assert read_users(str(etc)) == {0: "root"}
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n")
    assert read_users(str(etc))[1001] == "bob"


def test_scan_of_missing_proc_is_empty(tmp_path):
    snap = scan_snapshot(proc=str(tmp_path), etc=str(tmp_path))
    assert snap["threads"] == [] and snap["users"] == {}
    StateEngine(native.StringTable(), snap)   # seeds fine from nothing


def test_engine_rereads_host_users(tmp_path):
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\n")
    strings = native.StringTable()
    s = Stream().fork(1, 30, comm="x")
    s.execve(30, ["x"], uid=1234, gid=1234, ppid=1)
    snap = {"threads": [{"tid": 1, "pid": 1, "comm": "init"}]}
    eng = StateEngine(strings, snap, host_users=True, etc=str(tmp_path), users_check_s=0)
    b, _ = run(s, engine=eng, strings=strings)
    assert text(b, "user_name")[-1] is None
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\nnew:x:1234:1234::/:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\nnew:x:1234:\n")
    b, _ = run(Stream().ev("getpid", 30), engine=eng, strings=strings)
    assert text(b, "user_name") == ["new"] and text(b, "group_name") == ["new"]
