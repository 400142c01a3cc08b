"""How each Falco/scap event becomes a row of a Falconet batch: the conversion table.

The table is data, computed once from Falco's event table (``scap_ppm``) and Falconet's ABI
(``collector.abi``), and used by both implementations: the C reader (ext/scap.c) receives it
as flat arrays, the pure-numpy twin (``scap_pure``) reads the same arrays.  So the mapping is
written here only.

Per scap event code ``c``:

    fnet[c]      Falconet event type (0 = not modelled: counted and skipped)
    generic[sc]  for GENERIC_E/X (F_GENERIC): Falconet type by the PPM_SC code in param 0
    flagmap      (kind, PPM bits, kernel value) rows of K_OFLAGS (kind 0) / K_CLONEFLAGS (1)
    flags[c]     F_ENTER (a '>' event), F_LARGE (4-byte parameter lengths),
                 F_PAIR (a syscall event: takes part in enter/exit pairing),
                 F_PIDSRC (exit carries the thread's pid: clone/fork/vfork/execve family),
                 F_EXIT_THREAD (procexit: forget the thread afterwards),
                 F_GENERIC (the type comes from ``generic`` by parameter 0),
                 F_FORKX (a clone/fork exit: in the child, res 0, it is preceded by a
                 PROC_FORK row -- tid ptid, a0 child tid, a1 child pid, a2 clone flags,
                 a3 ts, v0 comm -- the lifecycle record the live driver writes, which the
                 state engine needs to name a new process whose parent's exit comes later
                 or reports a namespace-local child pid)
    nparams[c]   parameters in today's table (v1 events may carry fewer)
    procparam[c] indexes of the ``pid``, ``ptid`` and ``comm`` parameters (-1 absent) of
                 the clone/fork/vfork/execve exits (F_PIDSRC)
    action[c, p] what to do with parameter p: kind | slot << 8 | slot2 << 12 | PT << 16

Kinds (the slot is a0..a5 for numbers, v0..v5 for byte strings):

    K_SKIP       not kept
    K_RET        number -> ``ret`` (res / fd / pid of exit events; procexit's status)
    K_INT        number -> a[slot] (sign-extended for signed PT types, e.g. fds)
    K_OFLAGS     PPM_O_* open flags -> the kernel's O_* value -> a[slot]
    K_CLONEFLAGS PPM_CL_* clone flags -> the kernel's CLONE_* value -> a[slot]
    K_LO32/HI32  a u32 into the low / high half of a[slot] (execve's uid_gid = uid | gid << 32)
    K_STR        NUL-terminated string -> v[slot] (bytes up to the first NUL)
    K_BYTES      byte buffer -> v[slot] (one trailing NUL removed: argv-like lists)
    K_EXE        remember execve's ``exe`` (argv[0]) for K_ARGS
    K_ARGS       execve's args -> v[slot] = exe NUL args (Falconet's full argv)
    K_SOCKADDR   PT_SOCKADDR -> struct fnet_sockaddr bytes -> v[slot]
    K_TUPLE_OUT  PT_SOCKTUPLE of an outgoing call (src = local, dst = peer):
                 peer -> v[slot], local -> v[slot2] (slot2 15 = not kept)
    K_TUPLE_IN   PT_SOCKTUPLE of an incoming call (src = peer, dst = local)

Semantics kept from Falco (old captures, libs before the scap converter): enter ('>') and
exit ('<') events are both rows (``dir`` column 1 / 0), so a rule without a direction filter
sees a syscall twice, as Falco does; an exit row also carries the parameters only its enter
event had (the last syscall enter event of the same thread, if its code is the exit's code
minus one).  Numbers the exit itself carries win over the enter's.
"""

from __future__ import annotations

import numpy as np

from .. import abi
from .scap_ppm import EC, EF, EVENT_MAX, EVENTS, PT

MAXP = 32                     # most parameters of any event in the table (execve: 31)
PT_SIZE = np.zeros(64, dtype=np.uint8)      # fixed size of a numeric PT, 0 = not numeric
PT_SIGNED = np.zeros(64, dtype=np.uint8)
for _n, _sz, _sg in (("INT8", 1, 1), ("INT16", 2, 1), ("INT32", 4, 1), ("INT64", 8, 1),
                     ("UINT8", 1, 0), ("UINT16", 2, 0), ("UINT32", 4, 0), ("UINT64", 8, 0),
                     ("ERRNO", 8, 1), ("FD", 8, 1), ("PID", 8, 1), ("SYSCALLID", 2, 0),
                     ("SIGTYPE", 1, 0), ("RELTIME", 8, 0), ("ABSTIME", 8, 0), ("PORT", 2, 0),
                     ("L4PROTO", 1, 0), ("SOCKFAMILY", 1, 0), ("BOOL", 4, 0), ("IPV4ADDR", 4, 0),
                     ("FLAGS8", 1, 0), ("FLAGS16", 2, 0), ("FLAGS32", 4, 0), ("UID", 4, 0),
                     ("GID", 4, 0), ("DOUBLE", 8, 0), ("SIGSET", 4, 0), ("MODE", 4, 0),
                     ("ENUMFLAGS8", 1, 0), ("ENUMFLAGS16", 2, 0), ("ENUMFLAGS32", 4, 0),
                     ("FD32", 4, 1), ("PID32", 4, 1)):
    PT_SIZE[PT[_n]] = _sz
    PT_SIGNED[PT[_n]] = _sg

K_SKIP, K_RET, K_INT, K_OFLAGS, K_CLONEFLAGS, K_LO32, K_HI32, K_STR, K_BYTES, K_EXE, K_ARGS, \
    K_SOCKADDR, K_TUPLE_OUT, K_TUPLE_IN = range(14)
NO_SLOT = 15

F_ENTER, F_LARGE, F_PAIR, F_PIDSRC, F_EXIT_THREAD, F_GENERIC, F_FORKX = 1, 2, 4, 8, 16, 32, 64

# Old drivers report syscalls without an event of their own as GENERIC_E/X ("syscall") with
# the PPM_SC code of the call in parameter 0; Falco names them after that code (evt.type =
# mprotect).  The codes of the calls Falconet models (checked against sysdig's names in
# tests/scap/test_scap_sysdig.py):
GENERIC_SC = {75: "mprotect", 16: "getpid"}
GENERIC_MAX = 1024

# PPM_O_* bit -> kernel O_* value (x86-64/arm64 generic values)
OFLAGS = ((1 << 1, 0o1), (1 << 2, 0o100), (1 << 3, 0o2000), (1 << 4, 0o10000), (1 << 5, 0o200),
          (1 << 6, 0o4000), (1 << 7, 0o4010000), (1 << 8, 0o1000), (1 << 9, 0o40000),
          (1 << 10, 0o200000), (1 << 11, 0o100000), (1 << 12, 0o2000000), (1 << 13, 0o20200000))
# PPM_O_RDWR is RDONLY|WRONLY (3): both bits set -> O_RDWR (2), handled by the converters.
# PPM_CL_* bit -> kernel CLONE_* value
CLONEFLAGS = ((0, 0x400), (1, 0x200), (2, 0x80000000), (3, 0x8000000), (4, 0x40000000),
              (5, 0x20000), (6, 0x20000000), (7, 0x4000000), (8, 0x8000), (9, 0x100000),
              (10, 0x2000), (11, 0x800), (12, 0x40000), (13, 0x10000), (14, 0x800000),
              (15, 0x100), (20, 0x10000000), (23, 0x200000), (24, 0x1000000), (25, 0x80000),
              (27, 0x4000), (28, 0x2000000))

_OUT_TUPLE = {"connect", "sendto", "sendmsg"}
_IN_TUPLE = {"accept", "accept4", "recvfrom", "recvmsg"}
_EXECS = {"execve", "execveat"}
_FORKS = {"clone", "clone3", "fork", "vfork"}
# Falco's name of a parameter -> Falconet's, where they differ (per event type name)
_RENAME = {("dup", "fd"): "oldfd", ("dup2", "fd"): "oldfd", ("dup3", "fd"): "oldfd",
           ("prctl", "arg2_int"): "arg2", ("execveat", "pathname"): "filename"}


def _ret_param(dirc: str, i: int, name: str, pt: int) -> bool:
    return dirc == "<" and i == 0 and name in ("res", "fd") and PT_SIZE[pt] == 8


def _action(evname: str, dirc: str, i: int, pname: str, pt: int, et: abi.EventType) -> int:
    if _ret_param(dirc, i, pname, pt) or (evname == "procexit" and pname == "status"):
        return K_RET | pt << 16
    if evname in _EXECS and dirc == "<":
        special = {"exe": (K_EXE, NO_SLOT), "args": (K_ARGS, et.slot("args")[1]),
                   "ptid": (K_INT, et.slot("ppid")[1]), "uid": (K_LO32, et.slot("uid_gid")[1]),
                   "gid": (K_HI32, et.slot("uid_gid")[1]),
                   "cap_effective": (K_INT, et.slot("cap_eff")[1]),
                   "cgroups": (K_BYTES, et.slot("cgroup")[1]),
                   "trusted_exepath": (K_STR, et.slot("exepath")[1])}.get(pname)
        if special is not None:
            return special[0] | special[1] << 8 | pt << 16
    if pt == PT["SOCKTUPLE"]:
        addr, laddr = et.slot("addr"), et.slot("laddr")
        if addr is None:
            return K_SKIP
        s2 = laddr[1] if laddr is not None else NO_SLOT
        kind = K_TUPLE_OUT if evname in _OUT_TUPLE else K_TUPLE_IN if evname in _IN_TUPLE else None
        return K_SKIP if kind is None else kind | addr[1] << 8 | s2 << 12 | pt << 16
    name = _RENAME.get((evname, pname), pname)
    if name is None:
        return K_SKIP
    slot = et.slot(name)
    if slot is None:
        return K_SKIP
    kind_slot, idx = slot
    if kind_slot == "a":
        if PT_SIZE[pt] == 0:
            return K_SKIP               # PT_DYN and friends: not a plain number
        if pname == "flags" and evname in _FORKS:
            return K_CLONEFLAGS | idx << 8 | pt << 16
        if pname == "flags" and pt == PT["FLAGS32"] and evname in (
                "open", "openat", "openat2", "dup3"):
            return K_OFLAGS | idx << 8 | pt << 16
        return K_INT | idx << 8 | pt << 16
    if pt == PT["SOCKADDR"]:
        return K_SOCKADDR | idx << 8 | pt << 16
    if pt in (PT["CHARBUF"], PT["FSPATH"], PT["FSRELPATH"]):
        return K_STR | idx << 8 | pt << 16
    if pt == PT["BYTEBUF"]:
        return K_BYTES | idx << 8 | pt << 16
    return K_SKIP


class Spec:
    """The conversion table as numpy arrays (see the module docstring)."""

    def __init__(self) -> None:
        n = EVENT_MAX
        self.ntypes = n
        self.fnet = np.zeros(n, dtype=np.uint16)
        self.flags = np.zeros(n, dtype=np.uint8)
        self.nparams = np.zeros(n, dtype=np.uint8)
        self.procparam = np.full((n, 3), -1, dtype=np.int8)
        self.action = np.zeros((n, MAXP), dtype=np.uint32)
        self.flagmap = np.array([(0, bit, kv) for bit, kv in OFLAGS] +
                                [(1, 1 << bit, kv) for bit, kv in CLONEFLAGS], dtype=np.uint32)
        self.generic = np.zeros(GENERIC_MAX, dtype=np.uint16)
        for sc, name in GENERIC_SC.items():
            self.generic[sc] = abi.BY_NAME[name].num
        self.names: list[str] = []
        by_name = abi.BY_NAME
        for c, (enum, evname, dirc, ef, cat, params) in enumerate(EVENTS):
            self.names.append(f"{evname} {dirc}")
            self.nparams[c] = len(params)
            f = 0
            if dirc == ">":
                f |= F_ENTER
            if ef & EF["LARGE_PAYLOAD"]:
                f |= F_LARGE
            if cat & EC["SYSCALL"]:
                f |= F_PAIR
            pnames = [p[0] for p in params]
            if dirc == "<" and (evname in _EXECS or evname in _FORKS) and "pid" in pnames:
                f |= F_PIDSRC
                for k, pn in enumerate(("pid", "ptid", "comm")):
                    if pn in pnames:
                        self.procparam[c, k] = pnames.index(pn)
                if evname in _FORKS and "ptid" in pnames:
                    f |= F_FORKX
            if evname == "procexit":
                f |= F_EXIT_THREAD
            if enum in ("GENERIC_E", "GENERIC_X"):
                f |= F_GENERIC
            self.flags[c] = f
            et = by_name.get(evname)
            if et is None:
                continue
            self.fnet[c] = et.num
            for i, (pname, pt) in enumerate(params):
                self.action[c, i] = _action(evname, dirc, i, pname, pt, et)

    def describe(self, code: int) -> list[str]:
        """Human-readable actions of one event code (tests, debugging)."""
        kinds = ("skip", "ret", "int", "oflags", "cloneflags", "lo32", "hi32", "str", "bytes",
                 "exe", "args", "sockaddr", "tuple_out", "tuple_in")
        out = []
        for i, (pname, _pt) in enumerate(EVENTS[code][5]):
            a = int(self.action[code, i])
            out.append(f"{pname}:{kinds[a & 0xFF]}:{(a >> 8) & 15}:{(a >> 12) & 15}")
        return out


def oflags_to_kernel(v: np.ndarray) -> np.ndarray:
    """PPM_O_* -> kernel O_* (vectorized; the C reader does the same per value)."""
    v = v.astype(np.int64)
    out = np.zeros_like(v)
    for bit, kv in OFLAGS:
        out |= np.where(v & bit, kv, 0)
    rdwr = (v & 3) == 3
    out = np.where(rdwr, (out & ~np.int64(3)) | 2, out)
    return out


def cloneflags_to_kernel(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.int64)
    out = np.zeros_like(v)
    for bit, kv in CLONEFLAGS:
        out |= np.where(v & (1 << bit), kv, 0)
    return out


_SPEC: Spec | None = None


def spec() -> Spec:
    global _SPEC
    if _SPEC is None:
        _SPEC = Spec()
    return _SPEC
