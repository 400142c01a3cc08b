"""The Falco field table: complete for the official rules, consistent with the registry, and
the extractors give Falco's values on a scripted workload."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from collector import fields
from collector import records as R
from collector.state import columns as C
from collector.state import fields as SF

from .conftest import Stream, run

RULES = Path(os.environ.get("FALCONET_SHARED", Path(__file__).resolve().parents[3] / "shared")) \
    / "testdata" / "falco-rules"
STATE_CLASSES = ("proc", "thread", "fd", "user", "group", "container", "k8s")


def test_table_matches_registry():
    table = SF.parse_table()
    assert len({t[0] for t in table}) == len(table)
    for name, ftype, cols, _ in table:
        fd = fields.lookup(name)
        assert fd is not None, name
        assert fd.ftype == ftype and fd.columns == cols, name
        for c in cols:
            assert C.is_state_column(c) or c in ("type", "a0", "a1"), (name, c)


@pytest.mark.skipif(not RULES.exists(), reason="official rules not available")
def test_every_state_field_of_the_official_rules_is_registered():
    used = set()
    for f in RULES.glob("*.yaml"):
        text = f.read_text()
        pat = r"\b((?:" + "|".join(STATE_CLASSES) + r")\.[a-z_.]+[a-z_])(\[[^\]]*\])?"
        for m in re.finditer(pat, text):
            used.add(m.group(1))
    used -= {"fd.types", "k8s.io", "user.log"}   # commented-out example, a URL, a file name
    missing = sorted(u for u in used if fields.lookup(u) is None)
    assert not missing, missing


def test_default_columns_cover_every_field():
    b, _ = run(Stream().fork(1, 10, comm="x").execve(10, ["x"], ppid=1))
    for name, *_ in SF.parse_table():
        fd = fields.lookup(name)
        v = fd.extract(b, "2" if fd.arg == "index" else ("/etc" if fd.arg == "key" else None))
        assert len(v.data) == b.n, name


def test_workload_values_as_falco_shows_them(backend):
    s = Stream().fork(1, 20, comm="bash")
    s.execve(20, ["bash"], ppid=1, cwd="/root", uid=0)
    s.fork(20, 21, comm="bash")
    s.execve(21, ["curl", "-s", "http://10.0.0.5/"], ppid=20, exepath="/usr/bin/curl", cwd="/root",
             cgroup="0::/system.slice/docker-" + "0123456789abcdef" * 4 + ".scope")
    s.ev("socket", 21, ret=3, args={"domain": 2, "type": 1, "proto": 6})
    s.ev("connect", 21, ret=-115, args={"fd": 3},
         vars={"addr": R.sockaddr("inet", "10.0.0.5", 80),
               "laddr": R.sockaddr("inet", "172.17.0.2", 41000)})
    s.ev("socket", 21, ret=4, args={"domain": 2, "type": 2, "proto": 17})
    s.ev("sendto", 21, ret=10, args={"fd": 4}, vars={"addr": R.sockaddr("inet", "8.8.8.8", 53)})
    s.ev("sendto", 21, ret=10, args={"fd": 4}, vars={"addr": R.sockaddr("inet", "8.8.8.8", 53)})
    s.openat(21, 5, "etc/../passwd", fullpath="", dirfd=R.AT_FDCWD)
    s.openat(21, -2, "/nonexistent/x", fullpath="")
    s.ev("memfd_create", 21, ret=6, args={"flags": 1}, vars={"name": "payload"})
    b, _ = run(s, backend=backend)

    def val(field, i, arg=None):
        v = fields.extract(b, field, arg)
        ok = v.valid_mask()[i] if v.data.ndim == 1 else v.valid_mask()[i].any()
        if not ok:
            return None
        d = v.data[i]
        if v.kind == "str":
            return b.strings.text(int(d)) if d.ndim == 0 else [b.strings.text(int(x)) for x in d]
        return d.tolist()

    assert val("container.id", 4) == "0123456789ab"
    assert val("container.name", 4) is None and val("container.name", 1) == "host"
    assert val("proc.pname", 4) == "bash" and val("proc.aname", 4, "2") == "systemd"
    assert val("fd.name", 5) == "172.17.0.2:41000->10.0.0.5:80"
    assert val("fd.typechar", 5) == "4" and val("fd.l4proto", 5) == "tcp"
    assert val("fd.sip", 5) == "10.0.0.5" and val("fd.sport", 5) == 80
    assert val("fd.lip", 5) == "172.17.0.2" and val("fd.rport", 5) == 80
    assert val("fd.connected", 5) is True and val("fd.name_changed", 5) is True
    assert val("fd.sockfamily", 5) == "ip"
    assert val("fd.l4proto", 7) == "udp" and val("fd.connected", 7) is False
    assert val("fd.name_changed", 7) is True and val("fd.name_changed", 8) is False
    assert val("fd.ip", 7) == [None, "8.8.8.8"] and val("fd.sip", 7) == "8.8.8.8"
    assert val("fd.name", 9) == "/root/passwd" and val("fd.nameraw", 9) == "etc/../passwd"
    assert val("fd.directory", 9) == "/root" and val("fd.filename", 9) == "passwd"
    assert val("fd.num", 10) == -1 and val("fd.name", 10) == "/nonexistent/x"
    assert val("fd.type", 11) == "memfd" and val("fd.name", 11) == "payload"
    assert val("proc.is_exe_upper_layer", 4) is None
    assert val("proc.is_exe_upper_layer", 1) is False
    assert val("proc.vpid", 1) == 20 and val("proc.vpid", 4) is None
    assert val("k8s.ns.name", 4) is None
    assert val("proc.exe_ino.ctime", 4) is None
    assert val("user.name", 1) == "root" and val("user.uid", 1) == 0
    assert val("proc.duration", 4) > 0


def test_missing_column_message():
    b, _ = run(Stream().ev("getpid", 1), columns={"proc_name"})
    with pytest.raises(KeyError, match="ask StateEngine.enrich"):
        fields.extract(b, "fd.name")


def test_container_id_rule_matches_c():
    from collector.native import BACKEND
    from collector.state.model import container_id
    cases = [b"", b"/user.slice", b"0::/docker/" + b"a" * 64, b"/x/" + b"b" * 65,
             b"/kubepods/besteffort/pod1/cri-containerd-" + b"0f" * 32 + b".scope",
             b"12:pids:/docker/" + b"1" * 64 + b"\n11:cpu:/docker/" + b"2" * 64]
    want = [None, None, b"a" * 12, None, b"0f" * 6, b"2" * 12]
    assert [container_id(c) for c in cases] == want
    if BACKEND == "c":
        from collector import _native
        out = _native.ffi.new("uint8_t[12]")
        got = [bytes(out) if _native.lib.fnet_container_id(c, len(c), out) else None
               for c in cases]
        assert got == want
