"""rules/falconet_rules.yaml under Falco's default `rule_matching: first`: an event raises only
the first rule it matches in load order, so a specific rule must come before the general rules
that also match its events, or it can never fire.  test_bundled_rules.py runs with
`rule_matching=all` and cannot see that; these run with the default.

Also the event shapes of the event-generator actions as the demo session performs them
(tests/vm/demo_session.py), built as ABI records and run through decode -> state -> rules."""

from __future__ import annotations

import pytest
from test_bundled_rules import BUNDLED, O_CREAT, O_TRUNC, O_WRONLY, ev, exe, fork

from collector import native
from collector import records as R
from collector.config import Config
from collector.rules import RuleEngine

O_APPEND = 0o2000
USERS = {"users": {"0": "root", "1": "daemon", "65534": "nobody"}}


def run(engine, records: bytes) -> list[str]:
    """test_bundled_rules.run, with user names as a capture's snapshot carries them."""
    from collector.state.engine import StateEngine
    strings = native.StringTable()
    batch, _stats = native.decode(records, strings)
    batch = batch.copy()
    batch.boot_ns = 1_700_000_000 * 10**9
    batch = StateEngine(strings, USERS).enrich(batch, engine.columns)
    return [a.rule for a in engine.process(batch)]


@pytest.fixture(scope="module")
def first():
    cfg = Config.load(None)
    assert str(cfg.get("rule_matching", "first")) == "first"
    return RuleEngine.load([BUNDLED], cfg, hostname="t")


def opened(pid: int, path: str, flags: int, raw: str | None = None) -> bytes:
    return ev("openat", pid, 3, args={"dirfd": R.AT_FDCWD, "flags": flags, "mode": 0o644},
              vars={"name": raw or path, "fullpath": path})


@pytest.mark.parametrize("name, shadowed, records", [
    # also "Read sensitive file untrusted" (/etc/shadow)
    ("Directory traversal monitored file read", "Read sensitive file untrusted",
     lambda: exe(500, "cat", "/usr/bin/cat", ["/etc/../etc/../etc/shadow"], uid=0) +
     opened(500, "/etc/shadow", 0, raw="/etc/../etc/../etc/shadow")),
    # also "Write below root" (/root/...)
    ("Modify Shell Configuration File", "Write below root",
     lambda: exe(501, "python3", "/usr/bin/python3", ["demo.py"], uid=0) +
     opened(501, "/root/.bashrc", O_WRONLY | O_CREAT | O_APPEND)),
    # also "Write below etc" (created below /etc)
    ("Schedule Cron Jobs", "Write below etc",
     lambda: exe(502, "python3", "/usr/bin/python3", ["demo.py"], uid=0) +
     opened(502, "/etc/cron.d/job", O_WRONLY | O_CREAT | O_TRUNC)),
])
def test_specific_rule_wins_under_first_match(first, name, shadowed, records):
    pytest.importorskip("collector.state.engine")
    every = RuleEngine.load([BUNDLED], Config.load(None, ["rule_matching=all"]), hostname="t")
    assert {name, shadowed} <= set(run(every, records()))   # both really match the event
    assert run(first, records()) == [name]


def connect(pid: int, ip: str, port: int) -> bytes:
    return (ev("socket", pid, 3, args={"domain": R.AF["inet"], "type": 1, "proto": 6}) +
            ev("connect", pid, 0, args={"fd": 3},
               vars={"addr": R.sockaddr("inet", ip, port),
                     "laddr": R.sockaddr("inet", "192.0.2.99", 40000)}))


@pytest.mark.parametrize("name, records", [
    ("Run shell untrusted",       # a process named httpd runs sh -c "ls > /dev/null"
     lambda: exe(510, "httpd", "/usr/bin/python3.11", ["-c", "..."], uid=0) + fork(510, 511) +
     exe(511, "sh", "/usr/bin/dash", ["-c", "ls > /dev/null"], ppid=510, uid=0)),
    ("System user interactive",   # /bin/login run as daemon
     lambda: exe(512, "login", "/usr/bin/login", [], uid=1)),
    ("Find AWS Credentials",
     lambda: exe(513, "find", "/usr/bin/find", ["/tmp", "-maxdepth", "1", "-iname", ".aws/credentials"])),
    ("Launch Suspicious Network Tool on Host",   # busybox run as nc
     lambda: exe(514, "nc", "/usr/bin/busybox", ["-h"], uid=0)),
    ("Disallowed SSH Connection Non Standard Port",
     lambda: exe(515, "ssh", "/usr/bin/ssh", ["-p", "443", "user@192.0.2.10"], uid=0) +
     connect(515, "192.0.2.10", 443)),
    ("Unprivileged Delegation of Page Faults Handling to a Userspace Process",
     lambda: exe(516, "python3", "/usr/bin/python3", ["demo.py"], uid=1) +
     ev("userfaultfd", 516, -1, args={"flags": 0})),
])
def test_demo_behaviour_shapes_fire(first, name, records):
    pytest.importorskip("collector.state.engine")
    assert name in run(first, records())


@pytest.mark.parametrize("records", [
    lambda: exe(520, "ssh", "/usr/bin/ssh", ["user@192.0.2.10"], uid=0) + connect(520, "192.0.2.10", 22),
    lambda: exe(521, "python3", "/usr/bin/python3", ["x.py"], uid=0) + connect(521, "192.0.2.10", 443),
    lambda: exe(522, "python3", "/usr/bin/python3", ["x.py"], uid=0) + ev("userfaultfd", 522, 3, args={"flags": 0}),
    lambda: exe(523, "sh", "/usr/bin/dash", ["-c", "true"], uid=65534),
    lambda: exe(524, "python3", "/usr/bin/python3", ["x.py"], uid=0) + fork(524, 525) +
    exe(525, "sh", "/usr/bin/dash", ["-c", "ls"], ppid=524, uid=0),
])
def test_demo_rules_quiet_on_lookalikes(first, records):
    """ssh to port 22, a non-ssh program to 443, userfaultfd as root, a system user's
    non-interactive shell, a shell spawned by python: none of the nine rules."""
    pytest.importorskip("collector.state.engine")
    quiet = {"Disallowed SSH Connection Non Standard Port", "System user interactive",
             "Unprivileged Delegation of Page Faults Handling to a Userspace Process",
             "Run shell untrusted"}
    assert quiet.isdisjoint(run(first, records()))
