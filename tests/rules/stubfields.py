"""Test-only fields.

``ensure_state_fields()`` registers, for each state field the official rules use that the
state engine has not registered (yet), a stub reading a batch column named after the field
(absent column -> no value).  The real registrations always win: stubs fill gaps only.

``register_test_fields()`` adds ``test.*`` fields (string, int, bool, ancestor-style) over
columns the property tests fill directly.
"""

from __future__ import annotations

import numpy as np

from collector import fields
from collector.fields import FieldDef, Values

STATE_FIELDS = {
    "charbuf": """proc.name proc.cmdline proc.pname proc.exepath proc.args proc.pcmdline
        proc.pexe proc.exe proc.cwd proc.env proc.sname proc.pexepath proc.vpgid.name
        proc.vpgid.exe user.name user.loginname group.name fd.name fd.directory fd.typechar
        fd.l4proto fd.type fd.filename fd.nameraw fd.sip.name fd.cip.name fd.rip.name
        fd.lip.name fd.sockfamily container.id container.name container.image.repository
        container.mounts k8s.ns.name k8s.pod.name thread.cap_permitted thread.cap_effective
        container.image container.image.tag fd.containername proc.aname proc.aexepath proc.aexe
        container.mount.dest""",
    "int64": """proc.tty user.uid user.loginuid fd.rport fd.lport fd.sport fd.num fd.port
        proc.vpid group.gid proc.ppid proc.ppid.duration proc.duration proc.exe_ino.mtime
        proc.exe_ino.ctime proc.exe_ino.ctime_duration_proc_start container.start_ts
        proc.sid proc.vpgid""",
    "bool": """fd.name_changed fd.connected container.privileged proc.is_vpgid_leader
        proc.is_exe_upper_layer proc.is_exe_from_memfd proc.is_exe_writable""",
    "ipaddr": "fd.ip fd.sip fd.cip fd.rip fd.lip",
    "ipnet": "fd.net fd.snet fd.rnet fd.cnet fd.lnet",
}
INDEXED = {"proc.aname", "proc.aexepath", "proc.aexe"}
KEYED = {"container.mount.dest"}


def _col_extractor(name: str, kind: str, indexed: bool = False):
    def ex(batch, arg):
        if indexed and arg is None:      # bare ancestor form: 2-D over levels 1..3
            parts = [ex(batch, str(k)) for k in (1, 2, 3)]
            return Values(kind, np.stack([p.data for p in parts], axis=1),
                          np.stack([p.valid_mask() for p in parts], axis=1))
        col = name if arg is None else f"{name}[{arg}]"
        data = batch.cols.get(col)
        if data is None:
            dt = {"str": np.uint32, "int": np.int64, "bool": bool}[kind]
            return Values(kind, np.zeros(batch.n, dt), np.zeros(batch.n, bool))
        valid = batch.cols.get(col + "#valid")
        if kind == "int" and data.dtype != np.int64:
            data = data.astype(np.int64)
        return Values(kind, data, valid)
    return ex


def _kind(ftype: str) -> str:
    if ftype in ("charbuf", "ipaddr", "ipnet"):
        return "str"
    return "bool" if ftype == "bool" else "int"


def ensure_state_fields() -> list[str]:
    added = []
    for ftype, names in STATE_FIELDS.items():
        for name in names.split():
            if fields.lookup(name) is None:
                arg = "index" if name in INDEXED else "key" if name in KEYED else "none"
                fields.register(FieldDef(name, ftype, f"(test stub) {name}",
                                         _col_extractor(name, _kind(ftype), arg == "index"), arg=arg,
                                         columns=(name,)))
                added.append(name)
    return added


TEST_FIELDS = {"test.s1": "charbuf", "test.s2": "charbuf", "test.i1": "int64",
               "test.i2": "int64", "test.b1": "bool", "test.ip": "ipaddr", "test.anc": "charbuf",
               "test.multi": "charbuf"}


def register_test_fields() -> None:
    """test.anc is an ancestor-style field (walked level by level when bare, as proc.aname);
    test.multi is multi-valued (a 2-D column, as fd.ip)."""
    from collector.rules.check import ANCESTOR_FIELDS
    ANCESTOR_FIELDS.add("test.anc")
    for name, ftype in TEST_FIELDS.items():
        if fields.lookup(name) is None:
            arg = "index" if name == "test.anc" else "none"
            fields.register(FieldDef(name, ftype, f"(test) {name}",
                                     _col_extractor(name, _kind(ftype), arg == "index"), arg=arg,
                                     columns=(name,)))
