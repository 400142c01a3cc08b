"""`falconet driver` error paths, on a host that cannot load modules: every failure a user
meets must give one actionable line and a non-zero exit, never a traceback."""
import os
import subprocess
import sys

import pytest

from collector import abi
from collector.cli import main as cli_main
from collector.driver import Driver
from collector.errors import ABIMismatch, DriverError
from collector.sources import live

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fake_run(rc=0, stdout="", stderr=""):
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, rc, stdout, stderr)
    run.calls = calls
    return run


@pytest.fixture
def fake_kernel(tmp_path):
    """A modules root with headers for kernel 9.9.9-test and a sysfs root."""
    (tmp_path / "lib/modules/9.9.9-test/build").mkdir(parents=True)
    (tmp_path / "lib/modules/9.9.9-test/build/Makefile").write_text("# fake\n")
    (tmp_path / "sys/module").mkdir(parents=True)
    return tmp_path


def drv(root, **kw):
    base = dict(kernel="9.9.9-test", src=os.path.join(REPO, "kmod"),
                modules_root=str(root / "lib/modules"), sys_root=str(root / "sys"),
                state_dir=str(root / "state"), device=str(root / "dev/falconet"),
                which=lambda t: f"/usr/bin/{t}", euid=lambda: 0, run=fake_run())
    base.update(kw)
    return Driver(**base)


def test_no_headers_names_the_package(tmp_path):
    d = drv(tmp_path)
    with pytest.raises(DriverError) as e:
        d.build()
    msg = str(e.value)
    assert "no kernel headers for kernel 9.9.9-test" in msg
    assert "linux-headers-9.9.9-test" in msg and "kernel-devel-9.9.9-test" in msg


def test_no_compiler(fake_kernel):
    d = drv(fake_kernel, which=lambda t: None)
    with pytest.raises(DriverError, match=r"no compiler toolchain \(make, gcc not found\).*build-essential"):
        d.build()


def test_missing_source(fake_kernel):
    d = drv(fake_kernel, src=str(fake_kernel / "nowhere"))
    with pytest.raises(DriverError, match="no module source"):
        d.build()


def test_build_failure_shows_the_last_lines(fake_kernel):
    d = drv(fake_kernel, run=fake_run(2, stderr="foo.c:1: error: boom\nmake: *** Error 2"))
    with pytest.raises(DriverError, match=r"(?s)building falconet.ko for 9.9.9-test failed:.*boom"):
        d.build("kbuild")


def test_kbuild_runs_make_against_the_headers(fake_kernel):
    run = fake_run(0)
    d = drv(fake_kernel, run=run)
    with pytest.raises(FileNotFoundError):   # the fake make produced no .ko
        d.build("kbuild")
    assert run.calls[0][:3] == ["make", "-C", str(fake_kernel / "lib/modules/9.9.9-test/build")]


def test_dkms_preferred_when_installed_and_needs_root(fake_kernel):
    d = drv(fake_kernel, euid=lambda: 1000)
    with pytest.raises(DriverError, match=r"build needs root: run `sudo falconet driver build`"):
        d.build()            # dkms is "installed" (which finds everything) -> root needed


@pytest.mark.parametrize("action", ["load", "unload"])
def test_not_root(fake_kernel, action):
    d = drv(fake_kernel, euid=lambda: 1000)
    with pytest.raises(DriverError, match=f"{action} needs root: run `sudo falconet driver {action}`"):
        getattr(d, action)()


def test_secure_boot_refusal(fake_kernel):
    (fake_kernel / "state/9.9.9-test").mkdir(parents=True)
    (fake_kernel / "state/9.9.9-test/falconet.ko").write_bytes(b"x")
    err = "insmod: ERROR: could not insert module falconet.ko: Key was rejected by service\n"
    d = drv(fake_kernel, run=fake_run(1, stderr=err))
    with pytest.raises(DriverError) as e:
        d.load()
    msg = str(e.value)
    assert "Secure Boot" in msg and "mokutil --import" in msg and "Key was rejected" in msg


def test_wrong_kernel_module(fake_kernel):
    err = "insmod: ERROR: could not insert module x.ko: Invalid module format\n"
    d = drv(fake_kernel, run=fake_run(1, stderr=err))
    with pytest.raises(DriverError, match="built for another kernel than 9.9.9-test.*driver build"):
        d.load(ko="x.ko")


def test_bad_parameter(fake_kernel):
    err = "insmod: ERROR: could not insert module x.ko: Invalid parameters\n"
    d = drv(fake_kernel, run=fake_run(1, stderr=err))
    with pytest.raises(DriverError, match="ring_bytes must be a power of two"):
        d.load({"ring_bytes": 3}, ko="x.ko")
    assert d.run.calls[0] == ["insmod", "x.ko", "ring_bytes=3"]


def test_already_loaded_and_in_use(fake_kernel):
    (fake_kernel / "sys/module/falconet").mkdir()
    with pytest.raises(DriverError, match="already loaded"):
        drv(fake_kernel).load()
    err = "rmmod: ERROR: Module falconet is in use\n"
    with pytest.raises(DriverError, match="a reader .* still has /dev/falconet open; stop it first"):
        drv(fake_kernel, run=fake_run(1, stderr=err)).unload()


def test_unload_not_loaded(fake_kernel):
    with pytest.raises(DriverError, match="not loaded"):
        drv(fake_kernel).unload()


def test_abi_mismatch_names_both_versions():
    info = {"abi_version": abi.ABI_VERSION + 1, "layout_hash": 0x1234}
    with pytest.raises(ABIMismatch) as e:
        live.check_abi(info)
    msg = str(e.value)
    assert f"module ABI {abi.ABI_VERSION + 1}" in msg and f"Falconet's ABI {abi.ABI_VERSION}" in msg
    assert "driver build" in msg
    live.check_abi({"abi_version": abi.ABI_VERSION, "layout_hash": abi.LAYOUT_HASH})


def test_load_checks_abi_after_insmod(fake_kernel, monkeypatch):
    d = drv(fake_kernel)
    monkeypatch.setattr(Driver, "_open_device",
                        lambda self: (os.open(os.devnull, os.O_RDONLY),
                                      {"abi_version": 99, "layout_hash": 1}))
    with pytest.raises(ABIMismatch, match="module ABI 99"):
        d.load(ko="x.ko")


def test_status_not_loaded(fake_kernel):
    st = drv(fake_kernel).status()
    assert st["loaded"] is False and st["userspace_abi"] == abi.ABI_VERSION


def test_live_source_without_module(tmp_path):
    src = live.LiveSource(device=str(tmp_path / "falconet"))
    with pytest.raises(DriverError, match="falconet.ko is not loaded; run `falconet driver load`"):
        src.open()


def test_live_source_on_a_device_that_is_not_falconet():
    src = live.LiveSource(device="/dev/null")
    with pytest.raises(ABIMismatch, match="does not answer Falconet's GET_INFO"):
        src.open()


@pytest.mark.parametrize("argv,expect", [
    (["driver", "unload"], "unload needs root"),
    (["driver", "load"], "load needs root"),
])
def test_cli_one_line_no_traceback(monkeypatch, capsys, fake_kernel, argv, expect):
    from collector.cli import driver as cli_driver
    monkeypatch.setattr(cli_driver, "_driver", lambda args: drv(fake_kernel, euid=lambda: 1000))
    rc = cli_main(argv)
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("falconet: ") and expect in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_cli_status_json_runs():
    p = subprocess.run([sys.executable, "-m", "collector", "driver", "status", "--json"],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert '"userspace_abi"' in p.stdout


HEADERS = [d for d in (os.listdir("/usr/src") if os.path.isdir("/usr/src") else [])
           if d.startswith("linux-headers-") and os.path.exists(f"/usr/src/{d}/Makefile")
           and not d.endswith("-common")]


@pytest.mark.skipif(not HEADERS, reason="no Debian linux-headers-* installed (tests/vm installs them)")
def test_real_kbuild_build(tmp_path):
    """Builds the real module against installed headers with zero warnings."""
    kernel = HEADERS[0][len("linux-headers-"):]
    d = Driver(kernel=kernel, modules_root=str(tmp_path / "mods"), state_dir=str(tmp_path / "st"))
    (tmp_path / "mods" / kernel).mkdir(parents=True)
    os.symlink(f"/usr/src/{HEADERS[0]}", tmp_path / "mods" / kernel / "build")
    ko = d.build("kbuild")
    assert os.path.getsize(ko) > 10000
