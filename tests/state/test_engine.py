"""State engine behaviour: process lifecycle, ancestry, threads, pid reuse, snapshots, caps."""

from __future__ import annotations

import pytest

from collector.state import StateEngine

from .conftest import INIT, SNAP, Stream, ints, run, text


def chain(depth: int) -> Stream:
    """init -> p2 -> ... each forking and exec'ing the next: names n2, n3, ..."""
    s = Stream()
    parent = 1
    for k in range(2, depth + 2):
        pid = 100 + k
        s.fork(parent, pid, comm=f"n{parent}")
        s.execve(pid, [f"/bin/n{k}", f"-{k}"], ppid=parent)
        parent = pid
    s.ev("getpid", parent)
    return s


def test_exec_chain_ancestors_to_depth_7(backend):
    b, _ = run(chain(8), backend=backend)
    last = b.n - 1
    assert text(b, "proc_name")[last] == "n9"
    assert text(b, "proc_cmdline")[last] == "n9 -9"
    assert text(b, "proc_exe")[last] == "/bin/n9"
    anames = text(b, "proc_aname_all")[last]
    assert anames[:8] == ["n8", "n7", "n6", "n5", "n4", "n3", "n2", "systemd"]
    apids = b.cols["proc_apid_all"][last].tolist()
    assert apids[:8] == [108, 107, 106, 105, 104, 103, 102, 1]
    assert text(b, "proc_aname_1")[last] == "n8"
    assert text(b, "proc_acmdline_1")[last] == "n8 -8"
    assert text(b, "proc_aexepath_1")[last] == "/bin/n8"


def test_ancestor_fields_through_registry(backend):
    from collector import fields
    b, _ = run(chain(8), backend=backend)
    last = b.n - 1
    for n, want in [(1, "n8"), (3, "n6"), (7, "n2"), (8, "systemd")]:
        v = fields.extract(b, "proc.aname", str(n))
        assert b.strings.text(int(v.data[last])) == want
    v = fields.extract(b, "proc.aname", "9")
    assert not v.valid_mask()[last]
    v = fields.extract(b, "proc.apid", "2")
    assert int(v.data[last]) == 107
    assert b.strings.text(int(fields.extract(b, "proc.pname", None).data[last])) == "n8"


def test_exec_failure_keeps_identity(backend):
    s = Stream().fork(1, 200, comm="sh")
    s.execve(200, ["/bin/sh"], ppid=1)
    s.execve(200, ["/nope"], ppid=1, ret=-2)
    b, _ = run(s, backend=backend)
    assert text(b, "proc_name")[-1] == "sh"


def test_fork_inherits_and_exec_replaces(backend):
    s = Stream().fork(1, 300, comm="bash")
    s.execve(300, ["bash", "-i"], uid=1000, gid=1000, loginuid=1000, tty=(136 << 20) | 3,
             cwd="/home/alice", ppid=1)
    s.fork(300, 301, comm="bash")
    s.ev("getpid", 301)
    s.execve(301, ["cat", "/etc/shadow"], uid=1000, gid=1000, loginuid=1000, cwd="/home/alice",
             tty=(136 << 20) | 3,
             ppid=300, exepath="/usr/bin/cat")
    b, _ = run(s, backend=backend)
    names = text(b, "proc_name")
    assert names[3] == "bash" and names[4] == "cat"
    assert text(b, "proc_cmdline")[3] == "bash -i"        # the fork child before exec
    assert text(b, "proc_aname_1")[4] == "bash"
    assert text(b, "proc_acmdline_1")[4] == "bash -i"
    assert text(b, "user_name")[4] == "alice"
    assert text(b, "user_loginname")[4] == "alice"
    assert ints(b, "user_loginuid")[4] == 1000
    assert ints(b, "proc_tty")[4] == 34819                # /dev/pts/3 as /proc shows it
    assert text(b, "proc_cwd")[4] == "/home/alice/"
    assert text(b, "proc_exepath")[4] == "/usr/bin/cat"
    assert ints(b, "proc_ppid")[4] == 300
    assert text(b, "container_id")[4] == "host"


def test_threads_share_the_process(backend):
    s = Stream().fork(1, 400, comm="srv")
    s.execve(400, ["srv"], ppid=1)
    s.fork(400, 401, thread_of=400, flags=0x10000)          # a thread
    s.openat(400, 5, "/var/log/srv.log", tid=401)            # opened by the thread
    s.ev("fchmod", 400, 400, args={"fd": 5})                 # used by the main thread
    s.exit(401, 400, last=0)                                 # thread exits: process stays
    s.ev("fchmod", 400, 400, args={"fd": 5})
    s.exit(400, 400, last=1)
    s.ev("getpid", 400)                                      # pid unknown again
    b, eng = run(s, backend=backend)
    assert text(b, "proc_name")[3] == "srv"                  # thread's event
    assert text(b, "fd_name")[4] == "/var/log/srv.log"
    assert text(b, "fd_name")[6] == "/var/log/srv.log"
    assert text(b, "proc_name")[7] == "srv"                  # procexit sees the process
    assert text(b, "proc_name")[8] is None
    assert eng.stats()["procs_removed"] >= 1


def test_pid_reuse_after_exit(backend):
    s = Stream().fork(1, 500, comm="old")
    s.execve(500, ["old"], ppid=1)
    s.openat(500, 3, "/old")
    s.exit(500)
    s.fork(1, 600, comm="mid")
    s.execve(600, ["mid"], ppid=1)
    s.fork(600, 500, comm="mid")                             # pid 500 again, other parent
    s.ev("fchmod", 500, args={"fd": 3})
    s.execve(500, ["new"], ppid=600)
    b, _ = run(s, backend=backend)
    assert text(b, "proc_name")[-2] == "mid"
    assert text(b, "proc_aname_1")[-2] == "mid"
    assert text(b, "fd_name")[-2] is None                    # /old died with the old process
    assert text(b, "proc_name")[-1] == "new"


def test_pid_reuse_without_exit_replaces(backend):
    s = Stream().fork(1, 700, comm="a")
    s.execve(700, ["a"], ppid=1)
    s.openat(700, 3, "/a")
    s.fork(1, 700, comm="b")                                 # missed exit (drops)
    s.ev("fchmod", 700, args={"fd": 3})
    b, _ = run(s, backend=backend)
    assert text(b, "proc_name")[-1] == "b"
    assert text(b, "fd_name")[-1] is None


def test_orphans_reparented_to_init(backend):
    s = Stream().fork(1, 800, comm="p")
    s.execve(800, ["p"], ppid=1)
    s.fork(800, 801, comm="p")
    s.execve(801, ["c"], ppid=800)
    s.exit(800)
    s.ev("getpid", 801)
    b, _ = run(s, backend=backend)
    assert text(b, "proc_aname_1")[3] == "p"
    assert text(b, "proc_aname_1")[-1] == "systemd"
    assert ints(b, "proc_ppid")[-1] == 1


def test_processes_that_predate_the_start():
    snap = dict(SNAP)
    snap["threads"] = [INIT, {
        "tid": 900, "pid": 900, "ppid": 1, "comm": "nginx", "exe": "nginx",
        "exepath": "/usr/sbin/nginx", "args": ["-g", "daemon off;"], "cwd": "/srv", "uid": 1000,
        "gid": 1000, "euid": 1000, "egid": 1000, "loginuid": -1, "tty": 0, "sid": 900,
        "vpgid": 900, "start_ts": 7, "cap_eff": 1 << 10,
        "cgroup": "0::/system.slice/docker-" + "ab" * 32 + ".scope",
        "fds": [{"fd": 6, "type": "ipv4", "name": "0.0.0.0:80", "sip": "0.0.0.0", "sport": 80,
                 "l4proto": "tcp"},
                {"fd": 7, "type": "file", "name": "/var/log/nginx/access.log", "flags": 1}]},
        {"tid": 901, "pid": 900, "comm": "nginx"}]
    for backend in (["c", "pure"] if __import__("collector.native").native.BACKEND == "c"
                    else ["pure"]):
        s = Stream().ev("fchmod", 901, 900, args={"fd": 7}).ev("listen", 900, args={"fd": 6})
        b, eng = run(s, snapshot=snap, backend=backend)
        assert text(b, "proc_name") == ["nginx", "nginx"]
        assert text(b, "proc_cmdline")[0] == "nginx -g daemon off;"
        assert text(b, "proc_aname_1")[0] == "systemd"
        assert text(b, "fd_name") == ["/var/log/nginx/access.log", "0.0.0.0:80"]
        assert text(b, "fd_directory")[0] == "/var/log/nginx"
        assert text(b, "container_id")[0] == "ab" * 6
        assert text(b, "user_name")[0] == "alice"
        assert text(b, "thread_cap_effective")[0] == "CAP_NET_BIND_SERVICE"
        assert text(b, "proc_sname")[0] == "nginx"
        assert eng.stats()["procs_unknown"] == 0


def test_unknown_process_is_na_not_guessed(backend):
    b, eng = run(Stream().ev("getpid", 4242), backend=backend)
    assert text(b, "proc_name") == [None]
    assert ints(b, "proc_ppid") == [None]
    assert ints(b, "user_uid") == [None]
    assert eng.stats()["procs_unknown"] == 1


def test_proc_table_cap(backend):
    s = Stream()
    for pid in range(1000, 1010):
        s.fork(1, pid, comm=f"p{pid}")
        s.execve(pid, [f"p{pid}"], ppid=1)
    b, eng = run(s, backend=backend, max_procs=5)
    st = eng.stats()
    assert st["procs"] <= 5
    assert st["procs_cap_hit"] > 0
    names = text(b, "proc_name")
    assert names[1] == "p1000" and names[-1] is None         # tracked, then refused


def test_fd_table_cap(backend):
    s = Stream().fork(1, 1100, comm="x")
    for fd in range(3, 13):
        s.openat(1100, fd, f"/f{fd}")
    s.ev("fchmod", 1100, args={"fd": 12})
    b, eng = run(s, backend=backend, max_fds=4)
    st = eng.stats()
    assert st["fds"] <= 4 and st["fds_cap_hit"] > 0
    assert text(b, "fd_name")[-2] == "/f12"                  # the open event itself still sees it
    assert text(b, "fd_name")[-1] is None


def test_thread_cap(backend):
    s = Stream().fork(1, 1200, comm="x")
    for t in range(1201, 1220):
        s.fork(1200, t, thread_of=1200)
    b, eng = run(s, backend=backend, max_threads=8)
    assert eng.stats()["threads"] <= 8 and eng.stats()["threads_cap_hit"] > 0


def test_state_carries_across_batches(backend):
    b, _ = run(chain(8), backend=backend, chunks=5)
    assert text(b, "proc_aname_all")[-1][:2] == ["n8", "n7"]


def test_columns_subset_only():
    b, _ = run(chain(3), columns={"proc_name", "fd_name", "evt.type", "not_a_column"})
    added = set(b.cols) - {"num", "ts", "cpu", "tid", "pid", "type", "flags", "ret"} - \
        {f"a{i}" for i in range(6)} - {f"v{i}" for i in range(6)}
    assert added == {"proc_name", "fd_name"}


def test_snapshot_round_trip(backend):
    s = Stream().fork(1, 1300, comm="bash")
    s.execve(1300, ["bash", "-c", "x"], uid=1000, gid=1000, cwd="/tmp", ppid=1,
             cgroup="/kubepods/pod1/" + "c" * 64)
    s.openat(1300, 4, "/etc/hosts")
    s.ev("socket", 1300, ret=5, args={"domain": 2, "type": 1, "proto": 6})
    from collector import records as R
    s.ev("connect", 1300, args={"fd": 5}, vars={"addr": R.sockaddr("inet", "10.1.1.1", 443),
                                                "laddr": R.sockaddr("inet", "10.0.0.9", 40000)})
    _, eng = run(s, backend=backend)
    snap = eng.snapshot()
    t = Stream().ev("fchmod", 1300, args={"fd": 4}).ev("sendto", 1300, args={"fd": 5})
    b2, eng2 = run(t, snapshot=snap, backend=backend)
    assert text(b2, "proc_cmdline") == ["bash -c x"] * 2
    assert text(b2, "proc_cwd")[0] == "/tmp/"
    assert text(b2, "container_id")[0] == "c" * 12
    assert text(b2, "proc_aname_1")[0] == "systemd"
    assert text(b2, "fd_name") == ["/etc/hosts", "10.0.0.9:40000->10.1.1.1:443"]
    assert text(b2, "fd_rip")[1] == "10.1.1.1" and ints(b2, "fd_rport")[1] == 443
    assert text(b2, "user_name")[0] == "alice"


def test_setuid_setsid_capset_chdir(backend):
    s = Stream().fork(1, 1400, comm="su")
    s.execve(1400, ["su"], uid=0, ppid=1, cwd="/root")
    s.ev("setresuid", 1400, args={"ruid": 1000, "euid": 1000, "suid": 1000})
    s.ev("setsid", 1400, ret=1400)
    s.ev("capset", 1400, args={"cap_inheritable": 0, "cap_permitted": 1 << 21,
                               "cap_effective": 1 << 21})
    s.ev("chdir", 1400, vars={"path": "../tmp/./x"})
    s.ev("setuid", 1400, ret=-1, args={"uid": 0})              # failed: no change
    b, _ = run(s, backend=backend)
    assert ints(b, "user_uid")[1] == 0 and ints(b, "user_uid")[2] == 1000
    assert ints(b, "proc_sid")[3] == 1400 and text(b, "proc_sname")[3] == "su"
    assert text(b, "thread_cap_effective")[4] == "CAP_SYS_ADMIN"
    assert text(b, "proc_cwd")[5] == "/tmp/x/"
    assert ints(b, "user_uid")[6] == 1000


def test_stats_counts():
    eng = StateEngine(__import__("collector.native").native.StringTable(), SNAP)
    st = eng.stats()
    assert st["procs"] == 1 and st["threads"] == 1


def test_lazy_columns_equal_eager_and_survive_take(backend):
    import numpy as np

    from collector import native
    s = chain(5)
    strings = native.StringTable()
    batch, _ = native.decode(bytes(s.buf), strings)
    lazy = StateEngine(strings, SNAP, backend=backend)
    eager = StateEngine(strings, SNAP, backend=backend, lazy=False)
    first = batch.take(np.arange(0, 5))
    rest = batch.take(np.arange(5, batch.n))
    lazy.enrich(first)                                     # never read: state still advances
    eager.enrich(first)
    bl, be = lazy.enrich(rest), eager.enrich(rest)
    assert "proc_aname_all" in bl.cols and len(bl.cols) == len(be.cols)
    assert dict.__contains__(bl.cols, "proc_name") is False   # not computed yet
    for k in ("proc_name", "proc_aname_all", "fd_name", "user_uid"):
        assert np.array_equal(bl.cols[k], be.cols[k]), k
    t = bl.take(np.array([0, 2]))                          # iterates: computes the rest
    assert set(t.cols) == set(be.cols)
    assert np.array_equal(t.cols["proc_cmdline"], be.cols["proc_cmdline"][[0, 2]])


def test_lazy_columns_taken_by_rows_equal_eager(backend):
    """take_rows gathers a pending column for some rows only: the same values as the whole
    column's rows, without computing the column; col_ndim answers without computing."""
    import numpy as np

    from collector import native
    from collector.state import columns as C
    s = chain(5)
    strings = native.StringTable()
    batch, _ = native.decode(bytes(s.buf), strings)
    lazy = StateEngine(strings, SNAP, backend=backend)
    eager = StateEngine(strings, SNAP, backend=backend, lazy=False)
    bl, be = lazy.enrich(batch), eager.enrich(batch)
    rows = np.array([batch.n - 1, 0, 2, 2], dtype=np.int64)
    for k in C.DEFAULT_COLUMNS:
        assert bl.cols.col_ndim(k) == be.cols[k].ndim, k
        got = bl.cols.take_rows(k, rows)
        assert got.dtype == be.cols[k].dtype and np.array_equal(got, be.cols[k][rows]), k
        assert np.array_equal(bl.cols.take_rows(k, rows[:0]), be.cols[k][rows[:0]]), k
    assert dict.__contains__(bl.cols, "proc_name") is False   # still not computed
    for k in C.DEFAULT_COLUMNS:                                # then whole columns agree
        assert np.array_equal(bl.cols[k], be.cols[k]), k
        assert np.array_equal(bl.cols.take_rows(k, rows), be.cols[k][rows]), k


def test_fd_reuse_after_close(backend):
    s = Stream().fork(1, 1500, comm="x")
    s.openat(1500, 3, "/a")
    s.ev("fchmod", 1500, args={"fd": 3})
    s.close(1500, 3)                                         # sees /a, then removes it
    s.ev("fchmod", 1500, args={"fd": 3})                     # nothing at 3 now
    s.openat(1500, 3, "/b")                                  # the number is reused
    s.ev("fchmod", 1500, args={"fd": 3})
    s.close(1500, 3, ret=-9)                                 # EBADF-style failure: kept
    s.ev("fchmod", 1500, args={"fd": 3})
    b, eng = run(s, backend=backend)
    assert text(b, "fd_name")[1:] == ["/a", "/a", "/a", None, "/b", "/b", "/b", "/b"]
    assert ints(b, "fd_num")[1:] == [3] * 8
    assert eng.stats()["fds_unknown"] >= 1


def test_dup_semantics(backend):
    from collector import records as R
    s = Stream().fork(1, 1600, comm="sh")
    s.ev("socket", 1600, ret=5, args={"domain": 2, "type": 1, "proto": 6})
    s.ev("connect", 1600, args={"fd": 5}, vars={"addr": R.sockaddr("inet", "10.9.9.9", 4444),
                                                "laddr": R.sockaddr("inet", "10.0.0.1", 5000)})
    s.ev("dup2", 1600, ret=1, args={"oldfd": 5, "newfd": 1})    # stdout -> the socket
    s.close(1600, 5)
    s.ev("fchmod", 1600, args={"fd": 1})                         # still the socket
    s.ev("dup", 1600, ret=7, args={"oldfd": 1})
    s.ev("dup3", 1600, ret=8, args={"oldfd": 1, "newfd": 8, "flags": 0o2000000})
    s.ev("fcntl", 1600, ret=9, args={"fd": 1, "cmd": 1030})      # F_DUPFD_CLOEXEC
    s.ev("dup2", 1600, ret=-9, args={"oldfd": 42, "newfd": 2})   # failed: nothing changes
    s.execve(1600, ["nc"], ppid=1)                               # closes 8 and 9 (cloexec)
    for fd in (1, 7, 8, 9):
        s.ev("fchmod", 1600, args={"fd": fd})
    b, _ = run(s, backend=backend)
    names = text(b, "fd_name")
    tup = "10.0.0.1:5000->10.9.9.9:4444"
    assert names[3] == tup and ints(b, "fd_num")[3] == 1       # dup2 event: new fd, old info
    assert b.cols["fd_type"][3] == 3                             # ipv4 (fd.type checks)
    assert names[4] == tup and ints(b, "fd_num")[4] == 5       # close sees what it closes
    assert names[5] == tup                                       # fd 1 outlives fd 5
    assert names[6] == tup and ints(b, "fd_num")[6] == 7
    assert names[7] == tup and ints(b, "fd_num")[7] == 8
    assert names[8] == tup and ints(b, "fd_num")[8] == 1       # fcntl reports its fd arg
    assert names[9] is None and ints(b, "fd_num")[9] == -9
    assert names[-4:] == [tup, tup, None, None]                  # cloexec ones gone at exec


def test_c_core_with_a_python_string_table():
    """The C engine mirrors a plain Python StringTable (same ids on both sides)."""
    from collector import native
    if native.BACKEND != "c":
        pytest.skip("needs the C extension")
    from collector.batch import StringTable
    from collector.decode_py import decode
    s = chain(4)
    s.openat(105, 3, "rel", fullpath="")
    py = StringTable()
    batch, _ = decode(bytes(s.buf), py)
    out = StateEngine(py, SNAP, backend="c").enrich(batch)
    ref, _ = run(s, backend="pure")
    assert text(out, "proc_aname_all") == text(ref, "proc_aname_all")
    assert text(out, "fd_name") == text(ref, "fd_name")
    assert text(out, "user_name") == text(ref, "user_name")


def test_enrich_while_another_thread_decodes_into_the_same_table():
    """The pipeline decodes in a reader thread while the state engine interns: same table."""
    import threading

    from collector import native
    from collector.sources.synthetic import SyntheticSource
    src = SyntheticSource(events=60000, seed=3)
    raws = [bytes(r) for r in src.raw_batches()]
    ref_strings = native.StringTable()
    ref_batches = [native.decode(r, ref_strings)[0] for r in raws]
    ref = StateEngine(ref_strings, src.snapshot, lazy=False)
    want = [text(ref.enrich(b), "proc_cmdline") for b in ref_batches]
    strings = native.StringTable()
    batches = [native.decode(r, strings)[0] for r in raws]
    stop = threading.Event()

    def noise():
        dec = native.Decoder(strings)
        i = 0
        while not stop.is_set():
            dec.decode(raws[i % len(raws)], 1)
            strings.intern(f"noise-{i}")
            i += 1
    t = threading.Thread(target=noise)
    t.start()
    try:
        eng = StateEngine(strings, src.snapshot, lazy=False)
        got = [text(eng.enrich(b), "proc_cmdline") for b in batches]
    finally:
        stop.set()
        t.join()
    assert got == want
