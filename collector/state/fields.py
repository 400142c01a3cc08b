"""Falco fields served by the state engine: THE mapping between Falco fields and batch columns.

``StateEngine.enrich(batch, columns)`` adds the columns; the extractors below read them.  The
rules engine asks ``FieldDef.columns`` which columns a field needs.  Conventions: string
columns are uint32 ids in ``batch.strings`` (0 = <NA>); integer columns are int64 with
``NA_INT`` (int64 min) = <NA>; ``*_all`` columns are 2-D (events x depth), column k-1 = the
k-th ancestor.  ``tests/state/test_fields.py`` checks that this table and the registry agree.

FIELD TABLE (field | Falco type | columns | notes)
proc.name | charbuf | proc_name | comm (from execve, procfork, snapshot)
proc.exe | charbuf | proc_exe | argv[0]
proc.exepath | charbuf | proc_exepath | kernel d_path of the executable
proc.args | charbuf | proc_args | argv[1:] joined by spaces
proc.cmdline | charbuf | proc_cmdline | proc.name + " " + proc.args
proc.cwd | charbuf | proc_cwd | with a trailing "/" as Falco shows it
proc.ppid | int64 | proc_ppid | from execve/procfork/snapshot; reparented to 1 when the parent exits
proc.pname | charbuf | proc_aname_1 | parent's proc.name
proc.pexe | charbuf | proc_aexe_1 |
proc.pexepath | charbuf | proc_aexepath_1 |
proc.pcmdline | charbuf | proc_acmdline_1 |
proc.aname | charbuf | proc_name proc_aname_all | [N] N-th ancestor ([0] = self); bare = any ancestor
proc.apid | int64 | proc_apid_all | [N] as proc.aname
proc.aexe | charbuf | proc_exe proc_aexe_all | [N] as proc.aname
proc.aexepath | charbuf | proc_exepath proc_aexepath_all | [N] as proc.aname
proc.acmdline | charbuf | proc_cmdline proc_acmdline_all | [N] as proc.aname
proc.tty | uint32 | proc_tty | controlling tty (new_encode_dev as /proc/PID/stat); 0 = none
proc.sid | int64 | proc_sid | session id (snapshot, setsid; inherited by fork)
proc.sname | charbuf | proc_sname | session leader's name (pid == sid, else eldest ancestor in it)
proc.vpgid | int64 | proc_vpgid | process group (host pid namespace)
proc.vpgid.name | charbuf | proc_vpgid_name | process group leader's name
proc.vpgid.exe | charbuf | proc_vpgid_exe | process group leader's exe
proc.is_vpgid_leader | bool | proc_vpgid | vpgid == pid
proc.is_sid_leader | bool | proc_sid | sid == pid
proc.vpid | int64 | proc_vpid | = pid on the host; <NA> in containers (the ABI has no namespace pids)
thread.vtid | int64 | proc_vpid | = tid on the host; <NA> in containers
proc.duration | reltime | proc_start_ts | ns since the process started (fork time)
proc.ppid.duration | reltime | proc_ppid_start_ts | ns since the parent started
proc.is_exe_from_memfd | bool | proc_pflags | exepath starts with /memfd:
proc.is_exe_upper_layer | bool | container_id | false on the host, <NA> in containers (no overlayfs info in the ABI)
proc.exe_ino | int64 | | <NA>: the ABI carries no executable inode
proc.exe_ino.ctime | abstime | | <NA> (as proc.exe_ino)
proc.exe_ino.mtime | abstime | | <NA> (as proc.exe_ino)
proc.exe_ino.ctime_duration_proc_start | reltime | | <NA> (as proc.exe_ino)
proc.env | charbuf | | <NA>: the ABI does not carry the environment
thread.cap_effective | charbuf | thread_cap_effective | capability names separated by spaces
thread.cap_permitted | charbuf | thread_cap_permitted | from capset or the snapshot, else <NA>
thread.cap_inheritable | charbuf | thread_cap_inheritable | from capset or the snapshot, else <NA>
user.uid | uint32 | user_uid | effective uid (what Falco's drivers report)
user.name | charbuf | user_name | from the passwd map (snapshot or /etc/passwd), <NA> if unknown
user.loginuid | int64 | user_loginuid | -1 when unset
user.loginname | charbuf | user_loginname | <NA> when loginuid is unset
group.gid | uint32 | group_gid | effective gid
group.name | charbuf | group_name | from the group map
container.id | charbuf | container_id | "host", or the first 12 hex digits of the id in the cgroup path
container.name | charbuf | container_id | "host" on the host; <NA> in containers (no runtime metadata)
container.image | charbuf | container_id | <NA> (no container runtime metadata), as Falco without the container plugin's runtime
container.image.repository | charbuf | container_id | <NA> (as container.image)
container.image.tag | charbuf | container_id | <NA> (as container.image)
container.image.id | charbuf | container_id | <NA> (as container.image)
container.type | charbuf | container_id | <NA> (as container.image)
container.privileged | bool | container_id | <NA> (as container.image)
container.mounts | charbuf | container_id | <NA> (as container.image)
container.mount.dest | charbuf | container_id | <NA> for every [path] (as container.image)
container.start_ts | abstime | container_id | <NA> (as container.image)
container.duration | reltime | container_id | <NA> (as container.image)
container.ip | charbuf | container_id | <NA> (as container.image)
k8s.ns.name | charbuf | container_id | <NA>: no Kubernetes metadata
k8s.pod.name | charbuf | container_id | <NA>: no Kubernetes metadata
k8s.pod.uid | charbuf | container_id | <NA>: no Kubernetes metadata
k8s.pod.labels | charbuf | container_id | <NA>: no Kubernetes metadata
fd.num | int64 | fd_num | the fd the event uses or creates (-1 for a failed open, as libsinsp)
fd.name | charbuf | fd_name | file path (absolute), "cip:cport->sip:sport", unix path
fd.nameraw | charbuf | fd_nameraw | the path as the process passed it
fd.directory | charbuf | fd_directory | dirname of a file fd, the path of a directory fd
fd.filename | charbuf | fd_filename | basename of a file fd
fd.type | charbuf | fd_type | file, directory, ipv4, ipv6, unix, memfd, netlink, ...
fd.typechar | charbuf | fd_type | f d 4 6 u m n ...
fd.sockfamily | charbuf | fd_type | ip or unix
fd.l4proto | charbuf | fd_l4proto | tcp, udp, icmp, raw
fd.is_server | bool | fd_vflags | the local end is the server (accept, bind)
fd.connected | bool | fd_vflags | connect succeeded (or in progress) / accepted
fd.name_changed | bool | fd_name_changed | this event changed the fd's name (connect, sendto on udp)
fd.cip | ipaddr | fd_cip | client address (text)
fd.sip | ipaddr | fd_sip | server address
fd.lip | ipaddr | fd_lip | local address
fd.rip | ipaddr | fd_rip | remote address
fd.cport | port | fd_cport |
fd.sport | port | fd_sport |
fd.lport | port | fd_lport |
fd.rport | port | fd_rport |
fd.ip | ipaddr | fd_cip fd_sip | 2-D: matches if client or server address matches
fd.port | port | fd_cport fd_sport | 2-D: client or server port
fd.net | ipnet | fd_cip fd_sip | as fd.ip; the rules engine compares CIDR
fd.cnet | ipnet | fd_cip | CIDR on fd.cip
fd.snet | ipnet | fd_sip | CIDR on fd.sip
fd.lnet | ipnet | fd_lip | CIDR on fd.lip
fd.rnet | ipnet | fd_rip | CIDR on fd.rip
fd.sip.name | charbuf | fd_sip | <NA>: no DNS resolution
fd.cip.name | charbuf | fd_cip | <NA>: no DNS resolution
fd.lip.name | charbuf | fd_lip | <NA>: no DNS resolution
fd.rip.name | charbuf | fd_rip | <NA>: no DNS resolution
END TABLE

Multi-valued fields (fd.ip, fd.port, fd.net and the bare any-ancestor forms) return 2-D data
(events x values) and valid masks: a comparison holds when it holds for any value (Falco).
"""

from __future__ import annotations

import numpy as np

from ..batch import EventBatch
from ..fields import FieldDef, Values, register
from . import model as M
from .model import NA_INT


def parse_table(doc: str | None = None) -> list[tuple[str, str, tuple[str, ...], str]]:
    """The FIELD TABLE of this module's docstring as (field, ftype, columns, notes)."""
    text = (doc or __doc__ or "")
    body = text.split("FIELD TABLE", 1)[1].split("END TABLE", 1)[0].splitlines()[1:]
    out = []
    for line in body:
        if not line.strip():
            continue
        name, ftype, cols, notes = (x.strip() for x in line.split("|", 3))
        out.append((name, ftype, tuple(cols.split()), notes))
    return out


def _col(batch: EventBatch, name: str) -> np.ndarray:
    try:
        return batch.cols[name]
    except KeyError:
        raise KeyError(f"state column {name!r} is missing: ask StateEngine.enrich() for it "
                       f"(FieldDef.columns lists what each field needs)") from None


def _sid(batch: EventBatch, s: str) -> int:
    return batch.strings.intern(s)


def _str(col):
    return lambda b, a: Values("str", _col(b, col))


def _int(col):
    def ex(b, a):
        d = _col(b, col)
        return Values("int", d, d != NA_INT)
    return ex


def _na(kind):
    def ex(b, a):
        n = b.n
        return Values(kind, np.zeros(n, np.uint32 if kind == "str" else np.int64),
                      np.zeros(n, bool))
    return ex


def _anc(kind, self_col, all_col):
    """proc.a*[N]: the N-th ancestor ([0] = the process itself); without N, level 1 (the
    rules engine iterates levels for the bare any-ancestor form)."""
    def ex(b, a):
        n = int(a) if a not in (None, "") else 1
        if n == 0:
            if self_col == "pid":
                return Values("int", b.cols["pid"])
            d = _col(b, self_col)
            return Values(kind, d) if kind == "str" else Values(kind, d, d != NA_INT)
        single = f"{all_col[:-4]}_{n}"
        if single in b.cols:
            d = b.cols[single]
        else:
            m = _col(b, all_col)
            if n > m.shape[1]:
                return _na(kind)(b, a)
            d = m[:, n - 1]
        return Values(kind, d) if kind == "str" else Values(kind, d, d != NA_INT)
    return ex


def _cidr_pair(c1, c2):
    def ex(b, a):
        d = np.stack([_col(b, c1), _col(b, c2)], axis=1)
        return Values("str", d, d != 0)
    return ex


def _port_pair(b, a):
    d = np.stack([_col(b, "fd_cport"), _col(b, "fd_sport")], axis=1)
    return Values("int", d, d != NA_INT)


def _lut(batch: EventBatch, key: str, names) -> np.ndarray:
    """Ids of constant names in this batch's table, kept in the table's own memo (so a new
    table never sees another table's ids)."""
    def make(strings):
        return np.array([0 if x is None else strings.intern(x) for x in names], np.uint32)
    derived = getattr(batch.strings, "derived", None)
    if derived is not None:
        return derived(("collector.state.fields", key), make)
    return make(batch.strings)


def _fdtype(which):
    idx = {"type": 0, "typechar": 1}[which] if which != "sockfamily" else None

    def ex(b, a):
        t = _col(b, "fd_type")
        if idx is None:
            names = [None] * len(M.FD_TYPES)
            names[M.FD_IPV4] = names[M.FD_IPV6] = "ip"
            names[M.FD_UNIX] = "unix"
            lut = _lut(b, "sockfamily", names)
        else:
            lut = _lut(b, "fd" + which, [x[idx] for x in M.FD_TYPES])
        return Values("str", lut[t])
    return ex


def _l4proto(b, a):
    return Values("str", _lut(b, "l4", M.L4_NAMES)[_col(b, "fd_l4proto")])


def _vflag(bit):
    def ex(b, a):
        f = _col(b, "fd_vflags")
        return Values("bool", (f & bit) != 0, _col(b, "fd_type") != 0)
    return ex


def _name_changed(b, a):
    return Values("bool", _col(b, "fd_name_changed"))


def _leader(col):
    def ex(b, a):
        d = _col(b, col)
        return Values("bool", d == b.cols["pid"], d != NA_INT)
    return ex


def _duration(b, a, col="proc_start_ts"):
    st = _col(b, col)
    ok = st != NA_INT
    return Values("int", np.where(ok, b.cols["ts"].astype(np.int64) - st, 0), ok)


def _memfd(b, a):
    return Values("bool", (_col(b, "proc_pflags") & M.PV_EXE_MEMFD) != 0,
                  (_col(b, "proc_pflags") & M.PV_KNOWN) != 0)


def _upper(b, a):
    host = _col(b, "container_id") == _sid(b, "host")
    return Values("bool", np.zeros(b.n, bool), host)


def _container_name(b, a):
    cid = _col(b, "container_id")
    h = _sid(b, "host")
    return Values("str", np.where(cid == h, h, 0).astype(np.uint32))


def _vtid(b, a):
    v = _col(b, "proc_vpid")
    ok = v != NA_INT
    return Values("int", np.where(ok, b.cols["tid"], NA_INT), ok)


_SPECIAL = {
    "proc.pname": _str("proc_aname_1"), "proc.pexe": _str("proc_aexe_1"),
    "proc.pexepath": _str("proc_aexepath_1"), "proc.pcmdline": _str("proc_acmdline_1"),
    "proc.aname": _anc("str", "proc_name", "proc_aname_all"),
    "proc.apid": _anc("int", "pid", "proc_apid_all"),
    "proc.aexe": _anc("str", "proc_exe", "proc_aexe_all"),
    "proc.aexepath": _anc("str", "proc_exepath", "proc_aexepath_all"),
    "proc.acmdline": _anc("str", "proc_cmdline", "proc_acmdline_all"),
    "proc.is_vpgid_leader": _leader("proc_vpgid"), "proc.is_sid_leader": _leader("proc_sid"),
    "thread.vtid": _vtid, "proc.duration": _duration,
    "proc.ppid.duration": lambda b, a: _duration(b, a, "proc_ppid_start_ts"),
    "proc.is_exe_from_memfd": _memfd, "proc.is_exe_upper_layer": _upper,
    "container.name": _container_name,
    "fd.type": _fdtype("type"), "fd.typechar": _fdtype("typechar"),
    "fd.sockfamily": _fdtype("sockfamily"), "fd.l4proto": _l4proto,
    "fd.is_server": _vflag(M.FV_SERVER), "fd.connected": _vflag(M.FV_CONNECTED),
    "fd.name_changed": _name_changed,
    "fd.ip": _cidr_pair("fd_cip", "fd_sip"), "fd.net": _cidr_pair("fd_cip", "fd_sip"),
    "fd.port": _port_pair,
}
_INDEXED = {"proc.aname", "proc.apid", "proc.aexe", "proc.aexepath", "proc.acmdline",
            "container.mount.dest"}
_STR_TYPES = {"charbuf", "ipaddr", "ipnet"}
_INT_TYPES = {"int64", "uint32", "port", "reltime", "abstime"}


def _extractor(name: str, ftype: str, cols: tuple[str, ...], notes: str):
    if name in _SPECIAL:
        return _SPECIAL[name]
    kind = "str" if ftype in _STR_TYPES else ("bool" if ftype == "bool" else "int")
    if notes.startswith("<NA>") or not cols or (cols == ("container_id",)
                                                 and notes.startswith("<NA>")):
        return _na(kind)
    if kind == "str":
        return _str(cols[0])
    return _int(cols[0])


def _register_all() -> None:
    for name, ftype, cols, notes in parse_table():
        ex = _extractor(name, ftype, cols, notes)
        arg = "index" if name in _INDEXED else "none"
        if name == "container.mount.dest":
            arg = "key"
        register(FieldDef(name, ftype, notes or name, ex, arg=arg, columns=cols))


_register_all()
