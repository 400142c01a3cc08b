"""rules/falconet_rules.yaml: loads cleanly, covers the host-applicable event-generator actions,
and fires on those behaviours end to end (ABI records -> decode -> state -> rules)."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, SHARED

from collector import native
from collector import records as R
from collector.config import Config
from collector.rules import RuleEngine, validate

BUNDLED = str(REPO / "rules" / "falconet_rules.yaml")
ACTIONS = SHARED / "testdata" / "event-generator" / "syscall_actions.yaml"
# behaviours that need information Falconet does not have (the process environment)
NOT_COVERED = {"Potential Local Privilege Escalation via Environment Variables Misuse",
               "Program run with disallowed http proxy env"}


def test_bundled_rules_load_without_errors_or_warnings():
    errors, warnings = validate([BUNDLED])
    assert errors == [] and warnings == [], [str(m) for m in errors + warnings]


def test_bundled_rules_cover_host_actions():
    if not ACTIONS.exists():
        pytest.skip("event-generator action list not found")
    actions = yaml.safe_load(ACTIONS.read_text())
    want = {a["expected_rule"] for a in actions if a["context"] in ("any", "host-only")}
    names = {r.name for r in RuleEngine.load([BUNDLED], Config.load(None)).enabled}
    assert want - NOT_COVERED - names == set()


@pytest.fixture(scope="module")
def engine():
    return RuleEngine.load([BUNDLED], Config.load(None, ["rule_matching=all"]), hostname="t")


def run(engine, records: bytes) -> list[str]:
    from collector.state.engine import StateEngine
    strings = native.StringTable()
    batch, _stats = native.decode(records, strings)
    batch = batch.copy()
    batch.boot_ns = 1_700_000_000 * 10**9
    batch = StateEngine(strings).enrich(batch, engine.columns)
    return [a.rule for a in engine.process(batch)]


_ts = iter(range(1_000, 10**9, 1_000))


def exe(pid: int, comm: str, path: str, args: list[str], ppid: int = 1, uid: int = 1000) -> bytes:
    return R.encode("execve", tid=pid, pid=pid, ts=next(_ts), ret=0,
                    args={"uid_gid": uid | (uid << 32), "euid_egid": uid | (uid << 32),
                          "ppid": ppid},
                    vars={"filename": path, "args": R.argv([comm] + args), "cwd": "/tmp",
                          "comm": comm, "exepath": path})


def fork(parent: int, child: int) -> bytes:
    return R.encode("procfork", tid=parent, pid=parent, ts=next(_ts), ret=0,
                    args={"child_tid": child, "child_pid": child}, vars={"comm": "x"})


def ev(name: str, pid: int, ret: int = 0, **kw) -> bytes:
    return R.encode(name, tid=pid, pid=pid, ts=next(_ts), ret=ret, args=kw.pop("args", {}),
                    vars=kw.pop("vars", {}))


O_WRONLY, O_CREAT, O_TRUNC = 0o1, 0o100, 0o1000


@pytest.mark.parametrize("name, records", [
    ("Read sensitive file untrusted",
     lambda: exe(300, "cat", "/usr/bin/cat", ["/etc/shadow"]) +
     ev("openat", 300, 3, args={"dirfd": R.AT_FDCWD, "flags": 0},
        vars={"name": "/etc/shadow", "fullpath": "/etc/shadow"})),
    ("Clear Log Activities",
     lambda: exe(301, "gen", "/usr/bin/gen", []) +
     ev("openat", 301, 3, args={"dirfd": R.AT_FDCWD, "flags": O_WRONLY | O_CREAT | O_TRUNC},
        vars={"name": "/tmp/x/syslog", "fullpath": "/tmp/x/syslog"})),
    ("Run shell untrusted",
     lambda: exe(302, "httpd", "/usr/sbin/httpd", []) + fork(302, 303) +
     exe(303, "sh", "/bin/sh", ["-c", "ls > /dev/null"], ppid=302)),
    ("PTRACE attached to process",
     lambda: exe(304, "gen", "/usr/bin/gen", []) + ev("ptrace", 304, 0, args={"request": 16, "pid": 999})),
    ("PTRACE anti-debug attempt",
     lambda: exe(305, "sleep", "/usr/bin/sleep", ["3600"]) + ev("ptrace", 305, 0, args={"request": 0})),
    ("Set Setuid or Setgid bit",
     lambda: exe(306, "chmod", "/usr/bin/chmod", ["u+s", "/tmp/f"]) +
     ev("chmod", 306, 0, args={"mode": 0o4755}, vars={"filename": "/tmp/f"})),
    ("Create Hidden Files or Directories",
     lambda: exe(307, "mkdir", "/usr/bin/mkdir", []) + ev("mkdir", 307, 0, args={"mode": 0o755},
                                                          vars={"path": "/tmp/.hidden"})),
    ("Create Symlink Over Sensitive Files",
     lambda: exe(308, "ln", "/usr/bin/ln", ["-s", "/etc", "/tmp/etc_link"]) +
     ev("symlinkat", 308, 0, args={"linkdirfd": R.AT_FDCWD}, vars={"target": "/etc", "linkpath": "/tmp/etc_link"})),
    ("Delete or rename shell history",
     lambda: exe(309, "gen", "/usr/bin/gen", []) +
     ev("unlinkat", 309, 0, args={"dirfd": R.AT_FDCWD}, vars={"name": "/tmp/y/ash_history"})),
    ("Search Private Keys or Passwords",
     lambda: exe(310, "find", "/usr/bin/find", ["/tmp", "-maxdepth", "1", "-iname", "id_rsa"])),
    ("Linux Kernel Module Injection Detected",
     lambda: exe(311, "gen", "/usr/bin/gen", []) + ev("finit_module", 311, 0, args={"fd": 3})),
    ("Fileless execution via memfd_create",
     lambda: exe(312, "3", "/memfd:program (deleted)", [])),
])
def test_bundled_rule_fires(engine, name, records):
    pytest.importorskip("collector.state.engine")
    assert name in run(engine, records())


def test_quiet_on_ordinary_activity(engine):
    pytest.importorskip("collector.state.engine")
    recs = (exe(400, "ls", "/usr/bin/ls", ["-l"]) +
            ev("openat", 400, 3, args={"dirfd": R.AT_FDCWD, "flags": 0},
               vars={"name": "/etc/hosts", "fullpath": "/etc/hosts"}) +
            ev("close", 400, 0, args={"fd": 3}) +
            ev("openat", 400, 4, args={"dirfd": R.AT_FDCWD, "flags": O_WRONLY | O_CREAT},
               vars={"name": "/tmp/out.txt", "fullpath": "/tmp/out.txt"}))
    assert run(engine, recs) == []
