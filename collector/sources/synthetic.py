"""A deterministic synthetic event source for tests and benchmarks.

``SyntheticSource(events=N, seed=S)`` produces N raw ABI records (``raw_batches()``, bytes
exactly as the kernel module would write them) and, through the Source interface
(``batches()``), the EventBatches the decoder makes of them.  The same arguments give the
same bytes on every run and every machine; ``batch_events`` and ``rate`` only change how the
stream is cut and paced, never its content.

The world it simulates:

- an initial process tree (``processes`` processes: systemd, daemons, sshd sessions with
  shells, some multi-threaded), published as ``snapshot`` in the schema of
  collector/sources/__init__.py, with their open fds;
- a mix of syscalls by those threads (``mix``: openat/close dominate, then network, dup,
  fcntl, file changes, credentials, kill/ptrace, ...), file names drawn with a Zipf-like skew
  from ``string_cardinality`` distinct paths (plus a few sensitive ones such as /etc/shadow),
  peers from ``string_cardinality // 8`` socket addresses;
- process lifecycles (about ``spawn_per_mille`` per mille of events start one): the parent's
  clone and procfork, the child's execve (a few fail with ENOENT), the child's own opens and
  closes, and for most children their procexit; survivors join the pool of actors.

fd numbers are plausible (3..63, AT_FDCWD for most opens) but not tracked per process: a
close may name an fd that no open returned.  Children inherit their parent's uid.

Timestamps increase by exponential gaps (mean ``1e9 / sim_rate`` ns) from ``start_ns`` and
CPUs are uniform over ``cpus``.  ``rate`` (events/s, None = as fast as possible) paces
``batches()`` in wall-clock time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from .. import abi, native
from .. import records as R
from ..batch import EventBatch
from . import Source

PTS0_DEV = 136 << 20  # kernel dev_t of /dev/pts/0 in records (snapshots use /proc's tty_nr, 34816)
CHUNK = 4096          # events per generation step (fixed, so cutting never changes content)

DEFAULT_MIX = {
    "openat": 300, "close": 220, "fcntl": 30, "dup2": 15, "dup": 5, "socket": 40,
    "connect": 50, "accept4": 25, "sendto": 40, "recvfrom": 40, "bind": 5, "listen": 2,
    "unlinkat": 20, "renameat2": 10, "mkdirat": 8, "fchmodat": 8, "getpid": 30, "setuid": 2,
    "kill": 4, "ptrace": 1, "chdir": 5, "symlinkat": 2, "mprotect": 10,
}
PROGRAMS = [  # comm, exepath, argv tail choices
    ("bash", "/usr/bin/bash", ["", "-c true", "-l"]), ("sh", "/usr/bin/dash", ["-c id", "-e"]),
    ("ls", "/usr/bin/ls", ["-l", "-la /tmp", "/etc"]), ("cat", "/usr/bin/cat", ["/etc/hosts", "/etc/passwd"]),
    ("grep", "/usr/bin/grep", ["-r foo .", "root /etc/passwd"]), ("curl", "/usr/bin/curl", ["-s http://10.0.0.5/"]),
    ("python3", "/usr/bin/python3.11", ["app.py", "-m http.server"]), ("sudo", "/usr/bin/sudo", ["-i", "ls"]),
    ("git", "/usr/bin/git", ["status", "pull"]), ("nc", "/usr/bin/nc.openbsd", ["-l 4444", "10.0.0.9 80"]),
    ("ps", "/usr/bin/ps", ["aux"]), ("cron", "/usr/sbin/cron", ["-f"]),
]
DIRS = ["/etc", "/usr/lib/x86_64-linux-gnu", "/var/log", "/home/user", "/tmp", "/proc/self",
        "/usr/share/doc", "/var/lib/dpkg/info", "/run", "/srv/www", "/home/user/.cache", "/opt/app"]
EXTS = ["conf", "so.6", "log", "txt", "py", "json", "list", "pid", "html", "tmp", ""]
SENSITIVE = ["/etc/shadow", "/etc/passwd", "/etc/sudoers", "/root/.ssh/authorized_keys",
             "/etc/ld.so.preload", "/etc/pam.d/common-auth"]


class _World:
    """All generator state; rebuilt from the seed for every pass over the stream."""

    def __init__(self, seed: int, processes: int, cardinality: int, cpus: int, start_ns: int,
                 sim_rate: float, mix: dict, spawn_per_mille: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.pool = R.Pool()
        self.cpus, self.ts = cpus, start_ns
        self.gap = 1e9 / sim_rate
        self.spawn_p = spawn_per_mille / 1000.0
        names = list(mix)
        self.types = np.array([R.event_type(t).num for t in names], np.uint16)
        w = np.array([mix[t] for t in names], float)
        self.type_p = w / w.sum()
        # file paths, Zipf-like popularity (sensitive ones are rare)
        paths = [f"{DIRS[i % len(DIRS)]}/f{i}" + (f".{EXTS[i % len(EXTS)]}" if EXTS[i % len(EXTS)] else "")
                 for i in range(max(1, cardinality))]
        self.path_ids = np.array([self.pool.add(p) for p in paths], np.uint32)
        ranks = np.arange(1, len(paths) + 1, dtype=float)
        self.path_cdf = np.cumsum(1 / ranks ** 1.1)
        self.path_cdf /= self.path_cdf[-1]
        self.sens_ids = np.array([self.pool.add(p) for p in SENSITIVE], np.uint32)
        naddr = max(4, cardinality // 8)
        self.addr_ids = np.array([self.pool.add(R.sockaddr(
            "inet6" if i % 10 == 9 else "inet", f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            if i % 10 != 9 else f"fd00::{i:x}", [443, 80, 22, 53, 5432, 8080][i % 6])) for i in range(naddr)],
            np.uint32)
        self.local_ids = np.array([self.pool.add(R.sockaddr("inet", "192.168.1.10", p))
                                   for p in range(40000, 40064)], np.uint32)
        self.unix_id = self.pool.add(R.sockaddr("unix", "/run/systemd/journal/socket"))
        self.prog = [(self.pool.add(c), self.pool.add(e), [self.pool.add(R.argv([c] + a.split())) for a in args])
                     for c, e, args in PROGRAMS]
        self.cwd_ids = np.array([self.pool.add(d) for d in ("/", "/home/user", "/tmp", "/srv/www")], np.uint32)
        self.cgroup_id = self.pool.add("/system.slice/ssh.service")
        self.next_pid = 1000
        self._build_tree(processes)

    # -- the initial process tree ----------------------------------------------------------
    def _build_tree(self, n: int) -> None:
        rng = self.rng
        procs = [{"pid": 1, "ppid": 0, "comm": "systemd", "exepath": "/usr/lib/systemd/systemd", "args": ["--system"],
                      "uid": 0, "cwd": "/", "threads": 1}]
        daemons = [("sshd", "/usr/sbin/sshd", ["-D"], 0), ("cron", "/usr/sbin/cron", ["-f"], 0),
                   ("nginx", "/usr/sbin/nginx", ["-g", "daemon off;"], 33),
                   ("postgres", "/usr/lib/postgresql/15/bin/postgres", ["-D", "/var/lib/postgresql"], 105),
                   ("containerd", "/usr/bin/containerd", [], 0), ("python3", "/usr/bin/python3.11", ["app.py"], 1000)]
        pid = 100
        for comm, exe, args, uid in daemons[: max(0, n - 1)]:
            procs.append({"pid": pid, "ppid": 1, "comm": comm, "exepath": exe, "args": args, "uid": uid, "cwd": "/",
                              "threads": 4 if comm in ("containerd", "postgres") else 1})
            pid += 7
        while len(procs) < n:                      # sshd sessions: sshd -> bash -> (children)
            parent = procs[int(rng.integers(0, len(procs)))]
            comm, exe = ("bash", "/usr/bin/bash") if parent["comm"] in ("sshd", "systemd") else \
                PROGRAMS[int(rng.integers(0, len(PROGRAMS)))][:2]
            procs.append({"pid": pid, "ppid": parent["pid"], "comm": comm, "exepath": exe, "args": [],
                              "uid": 1000 if parent["pid"] != 1 else 0, "cwd": "/home/user", "threads": 1})
            pid += 3
        self.next_pid = pid + 1000
        self.procs = procs
        tid, ptid = [], []
        for p in procs:
            for t in range(p["threads"]):
                tid.append(p["pid"] + t if t == 0 else p["pid"] + 1 + t)
                ptid.append(p["pid"])
            p["comm_id"] = self.pool.add(p["comm"])
        self.act_tid = np.array(tid, np.int64)
        self.act_pid = np.array(ptid, np.int64)
        self.comm_of = {p["pid"]: p["comm_id"] for p in procs}
        self.uid_of = {p["pid"]: p["uid"] for p in procs}

    def snapshot(self, boot_ns: int) -> dict:
        threads = []
        for p in self.procs:
            fds = [{"fd": 0, "type": "file", "name": "/dev/null", "flags": 0},
                   {"fd": 1, "type": "file", "name": "/dev/null", "flags": 1},
                   {"fd": 2, "type": "file", "name": "/dev/null", "flags": 1}]
            if p["comm"] in ("sshd", "nginx"):
                port = 22 if p["comm"] == "sshd" else 80
                fds.append({"fd": 3, "type": "ipv4", "name": f"0.0.0.0:{port}", "flags": 2,
                            "sip": "0.0.0.0", "sport": port, "dip": "", "dport": 0, "l4proto": "tcp"})
            if p["comm"] == "bash":
                fds[:3] = [{"fd": i, "type": "file", "name": "/dev/pts/0", "flags": 2} for i in range(3)]
            for t in range(p["threads"]):
                threads.append({
                    "tid": p["pid"] + (0 if t == 0 else 1 + t), "pid": p["pid"], "ppid": p["ppid"],
                    "comm": p["comm"], "exe": p["exepath"], "exepath": p["exepath"],
                    "args": list(p["args"]), "cwd": p["cwd"], "uid": p["uid"], "gid": p["uid"],
                    "euid": p["uid"], "egid": p["uid"], "loginuid": 1000 if p["uid"] == 1000 else -1,
                    "tty": 34816 if p["comm"] == "bash" else 0, "sid": p["pid"], "vpgid": p["pid"],
                    "start_ts": 1_000_000_000 + p["pid"], "cgroup": "/system.slice",
                    "cap_eff": 0x1FFFFFFFFFF if p["uid"] == 0 else 0, "fds": fds})
        return {"hostname": "synthetic", "kernel": "6.1.0-synthetic", "boot_ns": boot_ns,
                "users": {0: "root", 33: "www-data", 105: "postgres", 1000: "user"},
                "groups": {0: "root", 33: "www-data", 105: "postgres", 1000: "user"},
                "threads": threads}

    # -- one chunk of events -----------------------------------------------------------------
    def _paths(self, k: int) -> np.ndarray:
        ids = self.path_ids[np.searchsorted(self.path_cdf, self.rng.random(k))]
        sens = self.rng.random(k) < 0.002
        ids[sens] = self.sens_ids[self.rng.integers(0, len(self.sens_ids), int(sens.sum()))]
        return ids

    def _bulk(self, n: int, tid: np.ndarray, pid: np.ndarray) -> dict:
        """n rows of the syscall mix by the given actors (vectorized per event type)."""
        rng = self.rng
        t = self.types[rng.choice(len(self.types), n, p=self.type_p)]
        c = {k: np.zeros(n, np.int64) for k in ("ret", *(f"a{i}" for i in range(6)))}
        c.update({f"v{i}": np.zeros(n, np.int64) for i in range(6)})
        c["type"], c["tid"], c["pid"] = t, tid, pid
        fd = rng.integers(3, 64, n)
        ev = abi.EV

        def m(name):
            return t == ev[name]
        k = m("OPENAT")
        nk = int(k.sum())
        fail = rng.random(nk) < 0.12
        c["a0"][k] = np.where(rng.random(nk) < 0.9, R.AT_FDCWD, fd[k])
        c["a1"][k] = rng.choice([0, 0, 0, 0o1101, 0o2, 0o2000000], nk)
        c["a2"][k] = np.where(c["a1"][k] & 0o100, 0o644, 0)
        c["a3"][k] = 0x801
        c["a4"][k] = rng.integers(1, 1 << 20, nk)
        c["ret"][k] = np.where(fail, rng.choice([-2, -13], nk), fd[k])
        c["v0"][k] = p = self._paths(nk)
        c["v1"][k] = np.where(fail, 1, p)
        for name in ("CLOSE", "FCNTL", "DUP", "DUP2", "LISTEN", "MPROTECT"):
            c["a0"][m(name)] = fd[m(name)]
        c["a1"][m("FCNTL")] = rng.choice([1, 2, 3, 4], int(m("FCNTL").sum()))
        c["a1"][m("DUP2")] = rng.integers(0, 3, int(m("DUP2").sum()))
        c["ret"][m("DUP")] = fd[m("DUP")] + 1
        c["ret"][m("DUP2")] = c["a1"][m("DUP2")]
        c["a1"][m("LISTEN")] = 128
        c["a1"][m("MPROTECT")], c["a2"][m("MPROTECT")] = 4096, rng.choice([1, 3, 5, 7], int(m("MPROTECT").sum()))
        k = m("SOCKET")
        c["a0"][k] = rng.choice([2, 2, 2, 10, 1], int(k.sum()))
        c["a1"][k], c["ret"][k] = 1, fd[k]
        for name in ("CONNECT", "ACCEPT4", "SENDTO", "RECVFROM", "BIND"):
            k = m(name)
            nk = int(k.sum())
            c["a0"][k] = fd[k]
            addr = self.addr_ids[rng.integers(0, len(self.addr_ids), nk)]
            if name in ("CONNECT", "ACCEPT4"):
                c["v0"][k] = np.where(rng.random(nk) < 0.05, self.unix_id, addr)
                c["v1"][k] = self.local_ids[rng.integers(0, len(self.local_ids), nk)]
                c["ret"][k] = fd[k] + 1 if name == "ACCEPT4" else rng.choice([0, 0, 0, -111, -115], nk)
            elif name == "BIND":
                c["v0"][k] = self.local_ids[rng.integers(0, len(self.local_ids), nk)]
            else:
                c["a1"][k] = c["ret"][k] = rng.integers(1, 4096, nk)
                c["v0"][k] = np.where(rng.random(nk) < 0.7, 1, addr)       # connected: empty
        for name, dirfd in (("UNLINKAT", True), ("MKDIRAT", True), ("FCHMODAT", True), ("CHDIR", False)):
            k = m(name)
            c["v0"][k] = self._paths(int(k.sum()))
            if dirfd:
                c["a0"][k] = R.AT_FDCWD
        c["a1"][m("FCHMODAT")] = rng.choice([0o644, 0o755, 0o4755, 0o777], int(m("FCHMODAT").sum()))
        c["a1"][m("MKDIRAT")] = 0o755
        for name in ("RENAMEAT2", "SYMLINKAT"):
            k = m(name)
            c["v0"][k], c["v1"][k] = self._paths(int(k.sum())), self._paths(int(k.sum()))
        c["ret"][m("GETPID")] = pid[m("GETPID")]
        k = m("SETUID")
        c["a0"][k] = rng.choice([0, 1000, 33], int(k.sum()))
        c["ret"][k] = np.where(rng.random(int(k.sum())) < 0.7, 0, -1)
        k = m("KILL")
        c["a0"][k], c["a1"][k] = self.act_pid[rng.integers(0, len(self.act_pid), int(k.sum()))], 15
        c["a0"][m("PTRACE")], c["ret"][m("PTRACE")] = 16, -1
        return c

    def _spawn(self, rows: list) -> None:
        """One process lifecycle as a few rows (dicts) appended to ``rows``."""
        rng = self.rng
        j = int(rng.integers(0, len(self.act_tid)))
        ptid, ppid = int(self.act_tid[j]), int(self.act_pid[j])
        child = self.next_pid
        self.next_pid += int(rng.integers(1, 5))
        comm_id, exe_id, args = self.prog[int(rng.integers(0, len(self.prog)))]
        rows.append({"type": abi.EV["CLONE"], "tid": ptid, "pid": ppid, "ret": child, "a0": 17})
        rows.append({"type": abi.EV["PROC_FORK"], "tid": ptid, "pid": ppid, "a0": child, "a1": child, "a2": 17,
                         "a3": self.ts, "v0": self.comm_of.get(ppid, 1)})
        ok = rng.random() > 0.05
        uid = self.uid_of.get(ppid, 0)
        rows.append({"type": abi.EV["EXECVE"], "tid": child, "pid": child, "ret": 0 if ok else -2,
                         "a0": uid | uid << 32, "a1": uid | uid << 32, "a2": uid if uid else 0xFFFFFFFF,
                         "a3": PTS0_DEV if uid else 0, "a4": ppid, "a5": 0 if uid else 0x1FFFFFFFFFF,
                         "v0": exe_id if ok else self.path_ids[0], "v1": args[int(rng.integers(0, len(args)))],
                         "v2": int(self.cwd_ids[int(rng.integers(0, len(self.cwd_ids)))]),
                         "v3": comm_id, "v4": exe_id if ok else 1, "v5": self.cgroup_id})
        if ok:
            for p in self._paths(int(rng.integers(0, 8))).tolist():
                rows.append({"type": abi.EV["OPENAT"], "tid": child, "pid": child, "ret": 3, "a0": R.AT_FDCWD,
                                 "v0": p, "v1": p})
                rows.append({"type": abi.EV["CLOSE"], "tid": child, "pid": child, "a0": 3})
        if not ok or rng.random() < 0.8 or len(self.act_tid) > 4 * len(self.procs) + 64:
            rows.append({"type": abi.EV["PROC_EXIT"], "tid": child, "pid": child, "ret": 0 if ok else 127 << 8, "a0": 1})
        else:
            self.act_tid = np.append(self.act_tid, child)
            self.act_pid = np.append(self.act_pid, child)
            self.comm_of[child] = comm_id
            self.uid_of[child] = uid

    def chunk(self, n: int) -> tuple[bytes, np.ndarray]:
        """n records (bytes) and their n + 1 boundaries."""
        rng = self.rng
        n_act = len(self.act_tid)          # children surviving this chunk act from the next one
        episodes: list[list] = []
        used = 0
        for _ in range(int(rng.binomial(n, self.spawn_p))):
            rows: list = []
            self._spawn(rows)
            if used + len(rows) > n:
                break
            episodes.append(rows)
            used += len(rows)
        nb = n - used
        who = rng.integers(0, n_act, nb)
        bulk = self._bulk(nb, self.act_tid[who], self.act_pid[who])
        # place each episode (kept contiguous) at a random point of the bulk rows
        at = np.sort(rng.integers(0, nb + 1, len(episodes)))
        names = list(bulk)
        ep = {k: np.array([r.get(k, 0) for rows in episodes for r in rows], np.int64) for k in names}
        ep_key = np.repeat(at, [len(r) for r in episodes]).astype(float) - 0.5
        key = np.concatenate([np.arange(nb, dtype=float), ep_key])
        order = np.argsort(key, kind="stable")
        cols = {k: np.concatenate([np.asarray(bulk[k], np.int64), ep[k]])[order] for k in names}
        gaps = rng.exponential(self.gap, n).astype(np.int64) + 1
        cols["ts"] = (self.ts + np.cumsum(gaps)).astype(np.uint64)
        self.ts = int(cols["ts"][-1]) if n else self.ts
        cols["cpu"] = rng.integers(0, self.cpus, n)
        return R.encode_many(cols, self.pool, offsets=True)


class SyntheticSource(Source):
    """See the module docstring.  ``raw_batches()`` works without ``open()``."""

    name = "synthetic"
    batches_owned = True    # yields native.Decoder's batches as they are: they own their columns

    def __init__(self, events: int = 100_000, seed: int = 0, rate: float | None = None,
                 processes: int = 64, string_cardinality: int = 1000, batch_events: int = 8192,
                 mix: dict | None = None, cpus: int = 4, spawn_per_mille: float = 5.0,
                 sim_rate: float = 1e6, start_ns: int = 3_600 * 10**9,
                 boot_ns: int = 1_767_225_600 * 10**9, strings=None) -> None:
        super().__init__()
        if events < 0 or batch_events < 1 or processes < 1:
            raise ValueError("events >= 0, batch_events >= 1 and processes >= 1 are required")
        self.n_events, self.seed, self.rate = int(events), int(seed), rate
        self.batch_events = int(batch_events)
        self._world_args = (self.seed, int(processes), int(string_cardinality), int(cpus), int(start_ns),
                            float(sim_rate), dict(mix or DEFAULT_MIX), float(spawn_per_mille))
        self.boot_ns = int(boot_ns)
        self.strings = strings
        self.snapshot = _World(*self._world_args).snapshot(self.boot_ns)
        self.decode_stats = native.DecodeStats()

    def raw_batches(self) -> Iterator[bytes]:
        """Buffers of ``batch_events`` records (the last may be shorter), N records in all,
        or fewer once ``stop()`` was called (what was generated is still handed over)."""
        world = _World(*self._world_args)
        left = self.n_events
        pend: list[bytes] = []
        pend_n = 0
        while left > 0 and not self._stop.is_set():
            k = min(CHUNK, left)
            buf, offs = world.chunk(k)
            left -= k
            mv = memoryview(buf)
            i = 0                                       # records of this chunk already cut
            while i < k:                                # cut at batch boundaries, no copies
                take = min(self.batch_events - pend_n, k - i)
                pend.append(mv[offs[i]: offs[i + take]])
                pend_n += take
                i += take
                if pend_n == self.batch_events:
                    yield b"".join(pend)
                    pend, pend_n = [], 0
        if pend_n:
            yield b"".join(pend)

    def _open(self) -> None:
        if self.strings is None:
            self.strings = native.StringTable()
        self._decoder = native.Decoder(self.strings)

    def _batches(self) -> Iterator[EventBatch]:
        num = 1
        start = time.monotonic()
        for raw in self.raw_batches():
            if self.rate:
                wait = start + (num - 1) / self.rate - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
            batch, st = self._decoder.decode(raw, num)
            self.decode_stats += st
            for cause, n in st.skipped.items():
                self.skip(cause, n)
            batch.boot_ns = self.boot_ns
            batch.source = "syscall"
            num += batch.n
            yield batch
            if self._stop.is_set():
                return

    def stats(self) -> dict:
        s = super().stats()
        s["bytes"] = self.decode_stats.bytes
        return s
