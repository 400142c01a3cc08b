"""Demo mode of check.py: the capture written by `falconet capture` in the VM holds each
event-generator behaviour the session performed; on success it is copied to
tests/data/demo.fcap."""
import os
import shutil

from collector import abi
from collector.sources.open import open_capture

O_ACCMODE, O_TRUNC = 3, 0o1000
EINPROGRESS = 115


def rows(path):
    src = open_capture(path)
    src.open()
    out = []
    for b in src.batches():
        s = src.strings
        for i in range(b.n):
            et = abi.BY_NUM.get(int(b["type"][i]))
            if et is None:
                continue
            r = {"type": et.falco, "pid": int(b["pid"][i]), "ret": int(b["ret"][i])}
            for k, name in enumerate(et.args):
                if name:
                    r[name] = int(b[f"a{k}"][i])
            for k, name in enumerate(et.vars):
                if name:
                    v = s.get(int(b[f"v{k}"][i])) or b""
                    r[name] = v
            out.append(r)
    st = src.stats()
    src.close()
    return out, st


def port(addr: bytes) -> int:
    return int.from_bytes(addr[2:4], "little") if len(addr) >= 4 else -1


def has(rs, types, pred):
    return any(r["type"] in types and pred(r) for r in rs)


OPEN = ("open", "openat", "openat2", "creat")
EXEC = ("execve", "execveat")
BEHAVIOURS = {
    "ReadSensitiveFileUntrusted": (OPEN, lambda r: r["name"] == b"/etc/shadow" and r["ret"] >= 0),
    "DirectoryTraversalMonitoredFileRead": (OPEN, lambda r: r["name"] == b"/etc/../etc/../etc/shadow"),
    "CreateHardlinkOverSensitiveFiles": (("link", "linkat"), lambda r: r["oldpath"] == b"/etc/shadow"),
    "CreateSymlinkOverSensitiveFiles": (("symlink", "symlinkat"), lambda r: r["target"] == b"/etc"),
    "ClearLogActivities": (OPEN + EXEC, lambda r: (r["type"] in OPEN and r["name"].startswith(b"/var/log/")
                                                   and r["flags"] & O_TRUNC) or b"truncate" in r.get("filename", b"")),
    "ExecutionFromDevShm": (EXEC, lambda r: r["filename"].startswith(b"/dev/shm/") and r["ret"] == 0),
    "FilelessExecutionViaMemfdCreate": (EXEC, lambda r: r["exepath"].startswith(b"/memfd:")),
    "FindAwsCredentials": (EXEC, lambda r: r["args"].startswith(b"find\0") and b".aws" in r["args"]),
    "SearchPrivateKeysOrPasswords": (EXEC, lambda r: b"BEGIN RSA PRIVATE" in r["args"] or b"id_rsa" in r["args"]),
    "LaunchSuspiciousNetworkToolOnHost": (EXEC, lambda r: r["filename"] == b"/tmp/nc"),
    "PtraceAttachedToProcess": (("ptrace",), lambda r: r["request"] == 16 and r["ret"] == 0),
    "PtraceAntiDebugAttempt": (("ptrace",), lambda r: r["request"] == 0),
    "RemoveBulkDataFromDisk": (EXEC, lambda r: r["filename"].endswith(b"shred")),
    "RunShellUntrusted": (EXEC, lambda r: r["filename"] == b"/bin/sh" and b"ls > /dev/null" in r["args"]
                                          and r["ret"] == 0),
    "SystemUserInteractive": (EXEC, lambda r: r["filename"] == b"/bin/login" and r["uid_gid"] & 0xFFFFFFFF == 1
                                              and r["ret"] == 0),
    "DisallowedSSHConnectionNonStandardPort": (("connect",), lambda r: port(r["addr"]) == 443
                                               and r["ret"] in (0, -EINPROGRESS)),
    "WriteBelowEtc": (OPEN, lambda r: r["name"] == b"/etc/falconet-demo.conf" and r["flags"] & O_ACCMODE),
    "WriteBelowBinaryDir": (OPEN, lambda r: r["name"] == b"/usr/bin/falconet-demo-bin" and r["flags"] & O_ACCMODE),
    "MkdirBinaryDirs": (("mkdir", "mkdirat"), lambda r: r["path"] == b"/usr/bin/falconet-demo-dir"),
    "WriteBelowRoot": (OPEN, lambda r: r["name"] == b"/falconet-demo-root"),
    "SetSetuidOrSetgidBit": (("chmod", "fchmodat", "fchmod"), lambda r: r["mode"] & 0o4000),
    "CreateHiddenFilesOrDirectories": (("mkdir", "mkdirat"), lambda r: b"/." in r["path"]),
    "AddingSshKeysToAuthorizedKeys": (OPEN, lambda r: r["name"].endswith(b".ssh/authorized_keys")),
    "ModifyShellConfigurationFile": (OPEN, lambda r: r["name"].endswith(b".bashrc") and r["flags"] & O_ACCMODE),
    "DeleteOrRenameShellHistory": (("unlink", "unlinkat"), lambda r: r.get("path", r.get("name", b"")).endswith(b".bash_history")),
    "ScheduleCronJobs": (OPEN, lambda r: r["name"].startswith(b"/etc/cron.d/")),
    "UnexpectedUDPTraffic": (("sendto",), lambda r: port(r["addr"]) == 6353),
    "UnprivilegedDelegationOfPageFaultsHandlingToAUserspaceProcess": (("userfaultfd",), lambda r: True),
    "ChangeThreadNamespace": (("setns",), lambda r: True),
    "NonSudoSetuid": (("setuid",), lambda r: r["uid"] == 0 and r["ret"] < 0),
}


def expected_rules() -> dict:
    """behaviour -> the Falco rule the event-generator action is meant to trigger."""
    import yaml
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "..", "shared", "testdata", "event-generator",
                        "syscall_actions.yaml")
    if not os.path.exists(path):
        return {}
    return {a["action"].split(".", 1)[1]: a["expected_rule"] for a in yaml.safe_load(open(path))}


def check_rules(path: str, check, repo: str, captured=None) -> None:
    """Replay the capture through the real pipeline with the bundled rules (default
    rule_matching: first): every captured behaviour must raise its expected rule."""
    import json
    import subprocess
    import sys
    exp = expected_rules()
    if not exp:
        print("  (event-generator list not found: rule check skipped)")
        return
    p = subprocess.run([sys.executable, "-m", "collector", "replay", path, "--json"],
                       capture_output=True, text=True, cwd=repo, timeout=600)
    fired = set()
    for line in p.stdout.splitlines():
        try:
            fired.add(json.loads(line)["rule"])
        except (ValueError, KeyError):
            pass
    hits = sorted(b for b in BEHAVIOURS if exp.get(b) in fired)
    missing = sorted(set(BEHAVIOURS if captured is None else captured) - set(hits))
    check("replay with the bundled rules raises the behaviours' expected alerts",
          len(hits) >= 12 and not missing,
          f"{len(hits)} of {len(BEHAVIOURS)}: " + ", ".join(exp[b] for b in hits)
          + (f"; captured but silent: {', '.join(missing)}" if missing else "")
          + (f" (replay rc={p.returncode}: {p.stderr[-300:]})" if p.returncode else ""))


def run(out: str, check, copy: bool = True) -> None:
    res = {}
    for line in open(os.path.join(out, "results.txt")) if os.path.exists(os.path.join(out, "results.txt")) else []:
        p = line.split(None, 2)
        if len(p) >= 2:
            res[p[1]] = p[2].strip() if len(p) > 2 else ""
    check("demo session ran", res.get("demo") == "rc=0" and "done" in res,
          open(os.path.join(out, "demo.log")).read()[-400:] if os.path.exists(os.path.join(out, "demo.log")) else "")
    check("falconet capture exited cleanly", res.get("capture") == "rc=0",
          open(os.path.join(out, "capture.log")).read()[-400:] if os.path.exists(os.path.join(out, "capture.log")) else "")
    path = os.path.join(out, "demo.fcap")
    if not check("demo.fcap written", os.path.exists(path)):
        return
    rs, st = rows(path)
    check("demo.fcap readable", len(rs) > 0, f"{len(rs)} events, {os.path.getsize(path)} bytes")
    found = 0
    captured = []
    for name, (types, pred) in BEHAVIOURS.items():
        try:
            ok = has(rs, types, pred)
        except KeyError as e:
            ok = False
            print(f"  {name}: missing field {e}")
        found += ok
        if ok:
            captured.append(name)
        print(f"  {'yes' if ok else 'no '} {name}")
    ok = check("at least 12 event-generator behaviours captured", found >= 12,
               f"{found} of {len(BEHAVIOURS)}")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    check_rules(path, check, repo, captured)
    if ok and copy:
        dst = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "demo.fcap")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(path, dst)
        print(f"copied to {dst}")
