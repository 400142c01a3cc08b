"""tests/data/demo.fcap (recorded in the VM by tests/vm/demo_session.py) raises, with the
bundled rules and the default configuration (rule_matching: first, as Falco), the rule each
event-generator behaviour is meant to trigger; and Falco's own stable rules raise theirs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "data" / "demo.fcap"
FALCO_RULES = ROOT.parent / "shared" / "testdata" / "falco-rules"

# behaviour (tests/vm/demo_session.py) -> expected_rule in event-generator's syscall_actions.yaml
EXPECTED = {
    "ReadSensitiveFileUntrusted": "Read sensitive file untrusted",
    "DirectoryTraversalMonitoredFileRead": "Directory traversal monitored file read",
    "CreateHardlinkOverSensitiveFiles": "Create Hardlink Over Sensitive Files",
    "CreateSymlinkOverSensitiveFiles": "Create Symlink Over Sensitive Files",
    "ClearLogActivities": "Clear Log Activities",
    "ExecutionFromDevShm": "Execution from /dev/shm",
    "FilelessExecutionViaMemfdCreate": "Fileless execution via memfd_create",
    "FindAwsCredentials": "Find AWS Credentials",
    "SearchPrivateKeysOrPasswords": "Search Private Keys or Passwords",
    "LaunchSuspiciousNetworkToolOnHost": "Launch Suspicious Network Tool on Host",
    "PtraceAttachedToProcess": "PTRACE attached to process",
    "PtraceAntiDebugAttempt": "PTRACE anti-debug attempt",
    "RemoveBulkDataFromDisk": "Remove Bulk Data from Disk",
    "RunShellUntrusted": "Run shell untrusted",
    "SystemUserInteractive": "System user interactive",
    "DisallowedSSHConnectionNonStandardPort": "Disallowed SSH Connection Non Standard Port",
    "WriteBelowEtc": "Write below etc",
    "WriteBelowBinaryDir": "Write below binary dir",
    "MkdirBinaryDirs": "Mkdir binary dirs",
    "WriteBelowRoot": "Write below root",
    "SetSetuidOrSetgidBit": "Set Setuid or Setgid bit",
    "CreateHiddenFilesOrDirectories": "Create Hidden Files or Directories",
    "AddingSshKeysToAuthorizedKeys": "Adding ssh keys to authorized_keys",
    "ModifyShellConfigurationFile": "Modify Shell Configuration File",
    "DeleteOrRenameShellHistory": "Delete or rename shell history",
    "ScheduleCronJobs": "Schedule Cron Jobs",
    "UnexpectedUDPTraffic": "Unexpected UDP Traffic",
    "UnprivilegedDelegationOfPageFaultsHandlingToAUserspaceProcess":
        "Unprivileged Delegation of Page Faults Handling to a Userspace Process",
    "ChangeThreadNamespace": "Change thread namespace",
    "NonSudoSetuid": "Non sudo setuid",
}

# The behaviours whose rule is in Falco's stable file (falco_rules.yaml); the others are in
# the incubating and sandbox files.
STABLE = {"ReadSensitiveFileUntrusted", "DirectoryTraversalMonitoredFileRead",
          "CreateHardlinkOverSensitiveFiles", "CreateSymlinkOverSensitiveFiles",
          "ClearLogActivities", "ExecutionFromDevShm", "FilelessExecutionViaMemfdCreate",
          "FindAwsCredentials", "SearchPrivateKeysOrPasswords", "PtraceAttachedToProcess",
          "PtraceAntiDebugAttempt", "RemoveBulkDataFromDisk", "RunShellUntrusted",
          "SystemUserInteractive", "DisallowedSSHConnectionNonStandardPort"}


def replay(*args: str) -> dict[str, int]:
    p = subprocess.run([sys.executable, "-m", "collector", "replay", "--json", *args, str(DEMO)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    fired: dict[str, int] = {}
    for line in p.stdout.splitlines():
        rule = json.loads(line)["rule"]
        fired[rule] = fired.get(rule, 0) + 1
    return fired


def test_demo_raises_every_behaviours_rule_with_bundled_rules():
    fired = replay()
    silent = {b: r for b, r in EXPECTED.items() if r not in fired}
    assert silent == {}, f"fired: {sorted(fired)}"


def test_demo_raises_falco_stable_rules():
    stable = FALCO_RULES / "falco_rules.yaml"
    if not stable.exists():
        pytest.skip("Falco's rules files not found")
    fired = replay("-r", str(stable))
    silent = {b: EXPECTED[b] for b in STABLE if EXPECTED[b] not in fired}
    assert silent == {}, f"fired: {sorted(fired)}"
