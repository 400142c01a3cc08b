"""Differential test against ``sysdig -r`` (Debian sysdig 0.29.3): for every event of every
capture sysdig reads, Falconet agrees on event number, type, direction, thread id, pid,
return value and the arguments it keeps (including the ones an exit row takes from its
enter event), and -- when the state engine is present -- process name and fd name."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from collector import abi

from . import sysdig_ref as sd
from .conftest import NAMES, ROOT, SCAP_DIR, capture_path, decoded, new_strings, read_all

PF = sd.print_formats(str(SCAP_DIR / "reference" / "ppm_event_table.json"))

pytestmark = pytest.mark.skipif(sd.SYSDIG is None, reason="sysdig is not installed "
                                "(apt-get install sysdig; see .ci/deps/scap.apt)")

UNREADABLE = {"libs/curl_google_comments.scap"}     # section-header options: too new for 0.29

O_FLAGS = {"O_WRONLY": 0o1, "O_RDWR": 0o2, "O_CREAT": 0o100, "O_EXCL": 0o200,
           "O_NOCTTY": 0o400, "O_TRUNC": 0o1000, "O_APPEND": 0o2000, "O_NONBLOCK": 0o4000,
           "O_DSYNC": 0o10000, "O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000,
           "O_DIRECTORY": 0o200000, "O_CLOEXEC": 0o2000000, "O_SYNC": 0o4010000,
           "O_TMPFILE": 0o20200000}
CLONE = {"CLONE_VM": 0x100, "CLONE_FS": 0x200, "CLONE_FILES": 0x400, "CLONE_SIGHAND": 0x800,
         "CLONE_PTRACE": 0x2000, "CLONE_VFORK": 0x4000, "CLONE_PARENT": 0x8000,
         "CLONE_THREAD": 0x10000, "CLONE_NEWNS": 0x20000, "CLONE_SYSVSEM": 0x40000,
         "CLONE_SETTLS": 0x80000, "CLONE_PARENT_SETTID": 0x100000,
         "CLONE_CHILD_CLEARTID": 0x200000, "CLONE_UNTRACED": 0x800000,
         "CLONE_CHILD_SETTID": 0x1000000, "CLONE_NEWCGROUP": 0x2000000,
         "CLONE_NEWUTS": 0x4000000, "CLONE_NEWIPC": 0x8000000, "CLONE_NEWUSER": 0x10000000,
         "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000, "CLONE_IO": 0x80000000}
OUT_TUPLE = {"connect", "sendto", "sendmsg"}
# Falconet slot name -> sysdig parameter name, where they differ
RENAME = {("execve", "ppid"): "ptid", ("execve", "cap_eff"): "cap_effective",
          ("execve", "exepath"): "trusted_exepath", ("execve", "cgroup"): "cgroups",
          ("dup", "oldfd"): "fd", ("prctl", "arg2"): "arg2_int",
          # scap's accept "fd" is the new fd (Falconet's ret); Falconet's a0 is the listener
          ("accept", "fd"): "-", ("accept4", "fd"): "-"}


def _open_names(v: int) -> set[str]:
    names = {n for n, bit in O_FLAGS.items() if v & bit == bit and n not in ("O_WRONLY", "O_RDWR")}
    names.add(("O_RDONLY", "O_WRONLY", "O_RDWR", "O_RDWR")[v & 3])
    if "O_SYNC" in names:
        names.discard("O_DSYNC")
    if "O_TMPFILE" in names:
        names.discard("O_DIRECTORY")
    return names


def _lookup(args: dict, enter: dict | None, name: str) -> str | None:
    v = args.get(name)
    if v is None and enter is not None:
        v = enter.get(name)
    return v


def _compare_row(t: str, d: str, row: dict, args: dict, enter: dict | None) -> list[str]:
    """Mismatches between one Falconet row and sysdig's line (and its enter line)."""
    et = abi.BY_NAME[t]
    bad = []
    if t in ("execve", "execveat"):
        uid, gid = _lookup(args, enter, "uid"), _lookup(args, enter, "gid")
        ug = row["a0"]
        if uid is not None and sd.leading_int(uid) is not None and \
                (sd.leading_int(uid) & 0xFFFFFFFF) != ug & 0xFFFFFFFF:
            bad.append(f"uid {uid} vs {ug & 0xFFFFFFFF}")
        if gid is not None and sd.leading_int(gid) is not None and \
                (sd.leading_int(gid) & 0xFFFFFFFF) != (ug >> 32) & 0xFFFFFFFF:
            bad.append(f"gid {gid} vs {ug >> 32}")
        exe, rest = _lookup(args, enter, "exe"), _lookup(args, enter, "args")
        ours = row["v1"]
        if exe is not None and ours is not None:
            parts = ours.split(b"\0", 1)
            if not sd.same_text(sd.printable(parts[0]), exe):
                bad.append(f"exe {exe!r} vs {parts[0]!r}")
            if rest is not None:
                mine = sd.printable(parts[1] + b"\0") if len(parts) > 1 else ""
                if not sd.same_text(mine, rest):
                    bad.append(f"args {rest!r} vs {mine!r}")
    for i, name in enumerate(et.args):
        if not name or name in ("uid_gid", "euid_egid"):
            continue
        v = _lookup(args, enter, RENAME.get((t, name), name))
        if v is None or v == "<NA>":
            continue
        ours = row[f"a{i}"]
        if name == "flags" and t in ("open", "openat", "openat2", "creat"):
            want = sd.flag_names(v) - {"O_F_CREATED", "O_NONE"}
            if want and want != _open_names(ours):
                bad.append(f"flags {v} vs {sorted(_open_names(ours))}")
        elif name == "flags" and t in ("clone", "clone3", "fork", "vfork"):
            want = sd.flag_names(v) & set(CLONE)
            got = {n for n, bit in CLONE.items() if ours & bit}
            if want != got:
                bad.append(f"clone flags {v} vs {sorted(got)}")
        else:
            n = sd.leading_int(v, PF.get((t, RENAME.get((t, name), name)), "PF_DEC"))
            if n is not None and n != ours and (n & 0xFFFFFFFFFFFFFFFF) != (ours & 0xFFFFFFFFFFFFFFFF) \
                    and (n & 0xFFFFFFFF) != (ours & 0xFFFFFFFF):
                bad.append(f"{name} {v} vs {ours}")
    for i, name in enumerate(et.vars):
        ours = row[f"v{i}"]
        if not name or name == "args" and t in ("execve", "execveat"):
            continue
        if name in ("addr", "laddr"):
            bad += _compare_addr(t, name, ours, args, enter)
            continue
        v = _lookup(args, enter, RENAME.get((t, name), name))
        if v is None or v == "<NA>" or ours is None:
            continue
        m = re.match(r"^(.*)\((.*)\)$", v)            # relative path: name(resolved)
        if m and sd.printable(ours) == m.group(1):
            continue
        if not sd.same_text(sd.printable(ours), v) and not sd.same_text(
                sd.printable(ours.replace(b"\0", b".") + b"."), v):
            bad.append(f"{name} {v!r} vs {ours!r}")
    return bad


def _compare_addr(t: str, name: str, ours: bytes | None, args: dict, enter: dict | None):
    tup = _lookup(args, enter, "tuple")
    if tup is not None and "->" in tup and tup != "<NA>":
        src, dst = tup.split("->", 1)
        if " " in dst:                                  # unix: kernel pointers, then the path
            if name != "addr":
                return []
            want = dst.split(" ", 1)[1]
            got = sd.sockaddr_text(ours)
            return [] if got == want else [f"unix addr {want!r} vs {got!r}"]
        peer, local = (dst, src) if t in OUT_TUPLE else (src, dst)
        want = peer if name == "addr" else local
        got = sd.sockaddr_text(ours)
        if got is not None and got != want:
            return [f"{name} {want} vs {got}"]
        if got is None and want and name == "addr" and args.get("tuple") is not None:
            return [f"{name} {want} vs absent"]
        return []
    v = _lookup(args, enter, "addr") if name == "addr" else None
    if v is not None and v != "<NA>" and ours is not None:
        got = sd.sockaddr_text(ours)
        if got is not None and got != v.split(" ", 1)[0]:
            return [f"addr {v} vs {got}"]
    return []


_STATE_CHILD = """
import json, sys
from collector import fields, native
from collector.sources.scap import ScapSource
from collector.state import StateEngine
strings = native.StringTable()
src = ScapSource(sys.argv[1], strings=strings)
src.open()
eng = StateEngine(strings, src.snapshot)
out = {"proc.name": [], "fd.name": []}
for b in src.batches():
    b = eng.enrich(b, None)
    for f in out:
        v = fields.extract(b, f)
        out[f] += [None if not ok else (strings.get(int(i)) or b"").decode("latin-1")
                   for i, ok in zip(v.data, v.valid_mask())]
json.dump(out, sys.stdout)
"""


def _state_columns(path: str):
    """proc.name / fd.name per row from the state engine, computed in a child process (a
    crash there must not take the test session down); None if there is no state engine,
    a string describing the failure if it failed."""
    try:
        from collector import fields
        from collector.state import StateEngine  # noqa: F401
    except ImportError:
        return None
    if fields.lookup("proc.name") is None or fields.lookup("fd.name") is None:
        return None
    r = subprocess.run([sys.executable, "-c", _STATE_CHILD, path], capture_output=True,
                       timeout=600, cwd=str(ROOT), check=False)
    if r.returncode != 0:
        return f"state engine failed (exit status {r.returncode}): " + \
            r.stderr.decode("utf-8", "replace").strip()[-300:]
    d = json.loads(r.stdout)
    return {k: [None if x is None else x.encode("latin-1") for x in v] for k, v in d.items()}


# Differences of the state engine (collector/state, not the .scap reader) from sysdig that
# are known and reported; any other difference fails.  (file, sysdig evt.num) -> reason.
KNOWN_STATE_DIFFS = {
    ("falco-psp/run_as_user_0_container.scap", 1884):
        "proc.name changes at the execve enter row (the state engine applies exec on '>')",
    **{("libs/test_ipv6_client.scap", n): "fd.name of an IPv6 UDP socket: '::' local address / "
       "sendto peer instead of the connected peer" for n in (225, 226, 231, 232, 233, 237, 238)},
}
_UNIX_FD = re.compile(r"^[0-9a-f]+->[0-9a-f]+ (.*)$")


@functools.cache
def compare(name: str) -> tuple[list[str], dict[int, str], int]:
    """(reader problems, state problems by sysdig evt.num, rows checked) for one capture."""
    path = str(capture_path(name))
    lines = sd.run(path)
    strings = new_strings()
    cols, src = read_all(path, strings=strings)
    assert src.error is None
    rows = decoded(cols, strings) if cols else {}
    to_sd = sd.sysdig_numbers(path)
    procfork = abi.BY_NAME["procfork"].num      # Falconet's lifecycle rows: not sysdig events
    ours = {to_sd[int(n)]: i for i, n in enumerate(cols["num"])
            if cols["type"][i] != procfork} if cols else {}
    theirs = {int(x[0]): x for x in lines}
    # the same events: every row is an event sysdig shows; every event of a modelled type
    # that sysdig shows is a row
    assert set(ours) <= set(theirs), sorted(set(ours) - set(theirs))[:10]
    modelled = {int(x[0]) for x in lines if x[1] in abi.BY_NAME}
    assert modelled == set(ours), sorted(modelled ^ set(ours))[:10]
    state = _state_columns(path) if cols else None
    state_failed = state if isinstance(state, str) else None
    if state_failed:
        state = None
    last_enter: dict[int, tuple] = {}
    problems, state_problems = [], {}
    checked = 0
    for x in lines:
        num, t, d, tid = int(x[0]), x[1], x[2], int(x[3])
        paired = None
        if t not in sd.NOT_SYSCALL:
            prev = last_enter.get(tid)
            if d == "<" and prev is not None and prev[1] == t and prev[2] == ">":
                paired = sd.parse_args(t, prev[8])
            last_enter[tid] = x
        i = ours.get(num)
        if i is None:
            continue
        row = {k: (v[i] if not isinstance(v, np.ndarray) else v[i].item()) for k, v in rows.items()}
        bad = []
        if abi.BY_NUM[row["type"]].falco != t:
            bad.append(f"type {t} vs {abi.BY_NUM[row['type']].falco}")
        if (">" if row["dir"] else "<") != d:
            bad.append(f"dir {d}")
        if row["tid"] != tid:
            bad.append(f"tid {tid} vs {row['tid']}")
        if x[4] != "<NA>" and int(x[4]) != row["pid"]:
            bad.append(f"pid {x[4]} vs {row['pid']}")
        if d == "<" and x[7] != "<NA>" and int(x[7]) != row["ret"]:
            bad.append(f"res {x[7]} vs {row['ret']}")
        bad += _compare_row(t, d, row, sd.parse_args(t, x[8]), paired if d == "<" else None)
        if bad:
            problems.append(f"#{num} {t} {d}: " + "; ".join(bad))
        if state is not None:
            sbad = []
            pn, fn = state["proc.name"][i], state["fd.name"][i]
            if x[5] != "<NA>" and (pn is None or sd.printable(pn) != x[5]):
                sbad.append(f"proc.name {x[5]!r} vs {pn!r}")
            want = x[6]
            m = _UNIX_FD.match(want)
            if m:                   # kernel socket addresses are not in Falconet's model
                want = m.group(1)
            if want not in ("<NA>", "") and fn is not None and sd.printable(fn) != want:
                sbad.append(f"fd.name {x[6]!r} vs {fn!r}")
            if sbad:
                state_problems[num] = f"#{num} {t} {d}: " + "; ".join(sbad)
        checked += 1
    assert checked == len(ours)
    if state_failed:
        state_problems[-1] = state_failed
    return problems, state_problems, checked


@pytest.mark.parametrize("name", NAMES)
def test_sysdig_agrees(name):
    """Number, type, direction, tid, pid, return value and kept arguments of every row."""
    if name in UNREADABLE:
        with pytest.raises(sd.SysdigError):
            sd.run(str(capture_path(name)))
        _cols, src = read_all(capture_path(name))    # Falconet reads it all the same
        assert src.error is None and src.stats()["events"] == 1536
        return
    problems, _, checked = compare(name)
    assert not problems, f"{len(problems)} of {checked} rows differ:\n" + "\n".join(problems[:25])


@pytest.mark.parametrize("name", sorted(set(NAMES) - UNREADABLE))
def test_sysdig_agrees_on_state_fields(name):
    """proc.name and fd.name, computed by the state engine from the snapshot and the rows."""
    try:
        from collector.state import StateEngine  # noqa: F401
    except ImportError:
        pytest.skip("the state engine (collector.state) is not in this tree yet")
    _, state_problems, _ = compare(name)
    unknown = {n: p for n, p in state_problems.items() if (name, n) not in KNOWN_STATE_DIFFS}
    assert not unknown, "\n".join(list(unknown.values())[:25])
