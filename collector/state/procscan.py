"""Seed the state engine from the live system: a /proc scan in the snapshot schema of
collector/sources (also what ``falconet capture`` stores, so a replay elsewhere resolves the
same names).

    scan_snapshot(proc="/proc", etc="/etc") -> dict
    read_users(etc) / read_groups(etc) -> {id: name}

Per process: comm, exe (argv[0]), exepath (/proc/PID/exe), args (argv[1:]), cwd, real and
effective uid/gid, loginuid, tty (tty_nr as Falco's proc.tty shows it), sid, vpgid (pgrp),
start_ts (ns since boot, the clock of event timestamps), cgroup, cap_eff/cap_prm/cap_inh,
and its fds (files, directories, sockets with their tuples from /proc/net, pipes, memfds,
anon inodes).  One entry per thread (tid), the fds on the main thread's entry.
Processes that vanish during the scan are skipped; unreadable fields are left out (unknown),
never guessed.  Cost: a few ms per hundred processes.
"""

from __future__ import annotations

import os
import socket
import struct
import time

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str, mode: str = "r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _id_file(path: str) -> dict[int, str]:
    out: dict[int, str] = {}
    text = _read(path)
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(int(parts[2]), parts[0])
    return out


def read_users(etc: str = "/etc") -> dict[int, str]:
    return _id_file(os.path.join(etc, "passwd"))


def read_groups(etc: str = "/etc") -> dict[int, str]:
    return _id_file(os.path.join(etc, "group"))


def _hex_ip(h: str) -> str:
    b = bytes.fromhex(h)
    if len(b) == 4:
        return socket.inet_ntop(socket.AF_INET, b[::-1])
    words = struct.unpack("<4I", b)
    return socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))


def _net_sockets(proc: str) -> dict[int, dict]:
    """socket inode -> fd fields, from /proc/net/{tcp,tcp6,udp,udp6,unix}."""
    socks: dict[int, dict] = {}
    listening: set[int] = set()
    for name, l4, typ in (("tcp", "tcp", "ipv4"), ("tcp6", "tcp", "ipv6"),
                          ("udp", "udp", "ipv4"), ("udp6", "udp", "ipv6")):
        rows = []
        for line in (_read(os.path.join(proc, "net", name)) or "").splitlines()[1:]:
            f = line.split()
            if len(f) < 10:
                continue
            (lip, lport), (rip, rport) = (x.split(":") for x in (f[1], f[2]))
            rows.append((int(f[9]), _hex_ip(lip), int(lport, 16), _hex_ip(rip),
                         int(rport, 16), f[3]))
            if l4 == "tcp" and f[3] == "0A":
                listening.add(int(lport, 16))
        for ino, lip, lport, rip, rport, state in rows:
            if not ino:
                continue
            d = {"type": typ, "l4proto": l4}
            if rport == 0:          # listening / unconnected: the local end only
                d.update(sip=lip, sport=lport, server=True, name=f"{lip}:{lport}")
            elif l4 == "tcp" and lport in listening:   # accepted: peer is the client
                d.update(sip=rip, sport=rport, dip=lip, dport=lport, server=True,
                         name=f"{rip}:{rport}->{lip}:{lport}")
            else:
                d.update(sip=lip, sport=lport, dip=rip, dport=rport,
                         name=f"{lip}:{lport}->{rip}:{rport}")
            socks[ino] = d
    for line in (_read(os.path.join(proc, "net", "unix")) or "").splitlines()[1:]:
        f = line.split()
        if len(f) >= 7 and f[6].isdigit():
            path = f[7] if len(f) > 7 else ""
            socks[int(f[6])] = {"type": "unix", "name": path}
    return socks


_ANON = {"[eventfd]": "event", "[eventpoll]": "eventpoll", "inotify": "inotify",
         "[signalfd]": "signalfd", "[timerfd]": "timerfd", "bpf-map": "bpf", "bpf-prog": "bpf"}


def _fds(proc: str, pid: int, socks: dict[int, dict]) -> list[dict]:
    base = os.path.join(proc, str(pid), "fd")
    try:
        names = os.listdir(base)
    except OSError:
        return []
    out = []
    for n in sorted(names, key=lambda x: int(x) if x.isdigit() else -1):
        if not n.isdigit():
            continue
        link = _readlink(os.path.join(base, n))
        if link is None:
            continue
        flags = 0
        info = _read(os.path.join(proc, str(pid), "fdinfo", n)) or ""
        for line in info.splitlines():
            if line.startswith("flags:"):
                flags = int(line.split()[1], 8)
        e: dict = {"fd": int(n), "flags": flags & ~0o2000000}
        if flags & 0o2000000:
            e["cloexec"] = True
        if link.startswith("socket:["):
            s = socks.get(int(link[8:-1]))
            e.update(s if s else {"type": "other", "name": link})
        elif link.startswith("pipe:["):
            e.update(type="pipe", name=link)
        elif link.startswith("anon_inode:"):
            e.update(type=_ANON.get(link[11:], "other"), name=link)
        elif link.startswith("/memfd:"):
            e.update(type="memfd", name=link)
        elif link.startswith("/"):
            isdir = os.path.isdir(link) if not link.endswith(" (deleted)") else False
            e.update(type="directory" if isdir else "file", name=link)
        else:
            e.update(type="other", name=link)
        out.append(e)
    return out


def _status(text: str) -> dict:
    d: dict = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        v = v.split()
        if k == "Uid" and len(v) >= 2:
            d["uid"], d["euid"] = int(v[0]), int(v[1])
        elif k == "Gid" and len(v) >= 2:
            d["gid"], d["egid"] = int(v[0]), int(v[1])
        elif k in ("CapEff", "CapPrm", "CapInh") and v:
            d["cap_" + k[3:].lower()] = int(v[0], 16)
        elif k == "Tgid" and v:
            d["_tgid"] = int(v[0])
    return d


def _process(proc: str, pid: int) -> dict | None:
    d = os.path.join(proc, str(pid))
    stat = _read(os.path.join(d, "stat"))
    status = _read(os.path.join(d, "status"))
    if stat is None or status is None:
        return None
    r = stat.rfind(")")
    comm = stat[stat.find("(") + 1:r]
    f = stat[r + 2:].split()
    t: dict = {"tid": pid, "pid": pid, "comm": comm, "ppid": int(f[1]), "vpgid": int(f[2]),
               "sid": int(f[3]), "tty": int(f[4]),
               "start_ts": int(f[19]) * 1_000_000_000 // _CLK_TCK}
    st = _status(status)
    st.pop("_tgid", None)
    t.update(st)
    raw = _read(os.path.join(d, "cmdline"), "rb")
    argv = [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")] if raw else []
    if argv and argv[-1] == "":
        argv.pop()
    if argv:
        t["exe"], t["args"] = argv[0], argv[1:]
    else:
        t["exe"], t["args"] = comm, []
    exepath = _readlink(os.path.join(d, "exe"))
    if exepath is not None:
        t["exepath"] = exepath
    cwd = _readlink(os.path.join(d, "cwd"))
    if cwd is not None:
        t["cwd"] = cwd
    lu = _read(os.path.join(d, "loginuid"))
    if lu and lu.strip().lstrip("-").isdigit():
        v = int(lu)
        t["loginuid"] = -1 if v in (-1, 0xFFFFFFFF) else v
    cg = _read(os.path.join(d, "cgroup"))
    if cg is not None:
        t["cgroup"] = cg.strip()
    return t


def scan_snapshot(proc: str = "/proc", etc: str = "/etc") -> dict:
    """The live system in the snapshot schema (see the module doc)."""
    socks = _net_sockets(proc)
    threads: list[dict] = []
    try:
        pids = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    except OSError:
        pids = []
    for pid in pids:
        t = _process(proc, pid)
        if t is None:
            continue
        t["fds"] = _fds(proc, pid, socks)
        threads.append(t)
        try:
            tids = [int(x) for x in os.listdir(os.path.join(proc, str(pid), "task")) if x.isdigit()]
        except OSError:
            tids = []
        for tid in sorted(tids):
            if tid != pid:
                th = {k: v for k, v in t.items() if k != "fds"}
                th["tid"] = tid
                threads.append(th)
    try:
        boot_ns = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        boot_ns = 0
    un = os.uname()
    return {"hostname": un.nodename, "kernel": un.release, "boot_ns": boot_ns,
            "users": read_users(etc), "groups": read_groups(etc), "threads": threads}
