"""The state engine's data model, shared by the C core and its pure twin.

Both cores (``collector/state/core_c.py`` over ext/state.c, ``collector/state/pure.py``) turn a
batch into per-event *version ids* and two small version tables (see ext/state.h):

    pv[i]  row of PVER (process versions) describing the process of event i, as the event
           sees it; 0 = nothing known
    fv[i]  row of FVER (fd versions) for the fd event i refers to; 0 = none/unknown
    fdnum  the fd number event i refers to (NO_FD when none)
    evflags bit 0: the event changed its fd's name (fd.name_changed)

Every state column is then a gather from those tables (collector/state/columns.py).
The numpy dtypes below are the exact layouts of struct fnet_pver / struct fnet_fver
(tests/state/test_core.py checks them against the C compiler).
"""

from __future__ import annotations

import numpy as np

PVER_FIELDS = [
    ("start_ts", "<u8"), ("cap_eff", "<u8"), ("cap_prm", "<u8"), ("cap_inh", "<u8"),
    ("pid", "<i8"), ("ppid", "<i8"), ("sid", "<i8"), ("vpgid", "<i8"), ("loginuid", "<i8"),
    ("parent", "<u4"), ("name", "<u4"), ("exe", "<u4"), ("exepath", "<u4"), ("args", "<u4"),
    ("cmdline", "<u4"), ("cwd", "<u4"), ("container_id", "<u4"), ("sname", "<u4"),
    ("vpgid_name", "<u4"), ("vpgid_exe", "<u4"), ("tty", "<u4"), ("uid", "<u4"), ("gid", "<u4"),
    ("euid", "<u4"), ("egid", "<u4"), ("flags", "<u4"), ("_pad", "<u4"),
]
PVER_DTYPE = np.dtype(PVER_FIELDS)

FVER_FIELDS = [
    ("name", "<u4"), ("nameraw", "<u4"), ("directory", "<u4"), ("filename", "<u4"),
    ("cip", "<u4"), ("sip", "<u4"), ("oflags", "<u4"), ("cport", "<u2"), ("sport", "<u2"),
    ("type", "u1"), ("l4proto", "u1"), ("family", "u1"), ("flags", "u1"),
]
FVER_DTYPE = np.dtype(FVER_FIELDS)

# struct fnet_pver.flags
PV_KNOWN, PV_SID, PV_VPGID, PV_CAPS, PV_CAPEFF, PV_EXE_MEMFD, PV_PPID = 1, 2, 4, 8, 16, 32, 64

# struct fnet_fver.type -> (Falco fd.type, fd.typechar); index = FNET_FD_* value
FD_TYPES = [
    (None, None), ("file", "f"), ("directory", "d"), ("ipv4", "4"), ("ipv6", "6"),
    ("unix", "u"), ("pipe", "p"), ("event", "e"), ("signalfd", "s"), ("eventpoll", "l"),
    ("inotify", "i"), ("timerfd", "t"), ("netlink", "n"), ("memfd", "m"), ("bpf", "b"),
    ("unknown", "o"),
]
FD_TYPE_CODE = {name: i for i, (name, _) in enumerate(FD_TYPES) if name}
FD_FILE, FD_DIRECTORY, FD_IPV4, FD_IPV6, FD_UNIX = 1, 2, 3, 4, 5
FD_NETLINK, FD_MEMFD, FD_OTHER = 12, 13, 15
L4_NAMES = [None, "tcp", "udp", "icmp", "raw"]
L4_TCP, L4_UDP, L4_ICMP, L4_RAW = 1, 2, 3, 4
FV_SERVER, FV_CONNECTED = 1, 2

NO_FD = -9223372036854775807
NA_INT = np.iinfo(np.int64).min      # integer state columns: "no value" (Falco <NA>)

# Linux capability names by bit (include/uapi/linux/capability.h), for thread.cap_*.
CAP_NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def cap_text(mask: int) -> str:
    """Falco's rendering of a capability set: names separated by spaces."""
    return " ".join(n for i, n in enumerate(CAP_NAMES) if mask >> i & 1)


def container_id(cgroup: bytes) -> bytes | None:
    """First 12 characters of the last 64-hex-digit run in a cgroup path (docker, containerd,
    cri-o, podman all name the cgroup after the full container id), else None (host).
    Same rule as fnet_container_id() in ext/state_events.c."""
    found = None
    run = 0
    hexd = b"0123456789abcdef"
    for i in range(len(cgroup) + 1):
        if i < len(cgroup) and cgroup[i] in hexd:
            run += 1
            continue
        if run == 64:
            found = cgroup[i - 64:i - 52]
        run = 0
    return found


def normalize(path: bytes) -> bytes:
    """Lexical normalisation of an absolute path (as ext/state_events.c normalize())."""
    out: list[bytes] = []
    for comp in path.split(b"/"):
        if comp in (b"", b"."):
            continue
        if comp == b"..":
            if out:
                out.pop()
            continue
        out.append(comp)
    return b"/" + b"/".join(out)


def tty_encode(dev: int) -> int:
    """Kernel dev_t (major << 20 | minor) -> the userspace encoding Falco's proc.tty shows."""
    if not dev:
        return 0
    major, minor = dev >> 20, dev & 0xFFFFF
    return ((minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)) & 0xFFFFFFFF
