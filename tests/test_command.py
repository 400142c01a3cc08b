"""The `falconet` command: help for every subcommand, clean errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from collector.cli import COMMANDS


def falconet(*args, **kw):
    return subprocess.run([sys.executable, "-m", "collector", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def test_top_level_help_lists_every_command():
    r = falconet("--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert name in r.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name):
    r = falconet(name, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage: falconet " + name in r.stdout
    assert "Traceback" not in r.stderr


def test_no_command_is_a_usage_error():
    r = falconet()
    assert r.returncode == 2 and "usage:" in r.stderr


def test_version_json():
    r = falconet("version", "--json")
    assert r.returncode == 0
    info = json.loads(r.stdout)
    from collector import abi
    assert info["abi_version"] == abi.ABI_VERSION
    assert info["backend"] in ("c", "pure")


def test_bad_override_is_one_line_error(tmp_path):
    r = falconet("replay", "-o", "novalue", str(tmp_path / "x.fcap"))
    assert r.returncode == 1
    assert r.stderr.startswith("falconet: ") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
