"""Building, loading, unloading and inspecting falconet.ko (`falconet driver ...`).

Every failure a user can meet becomes a DriverError (or ABIMismatch) whose message says what
happened and what to do; nothing here prints a traceback for a user error.

    d = Driver()                      # the running kernel
    d.build()                         # DKMS when installed, else plain Kbuild -> path of the .ko
    d.load({"ring_bytes": 16 << 20})  # insmod + ABI check through /dev/falconet
    d.status()                        # dict: loaded, parameters, ABI, per-CPU counters
    d.unload()

Everything that touches the system (running commands, uid, paths) is injectable so the error
paths are tested on hosts that cannot load modules (tests/driver/).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from . import abi
from .errors import ABIMismatch, DriverError

NAME = "falconet"
VERSION = "0.1.0"     # dkms.conf PACKAGE_VERSION


def default_kmod_src() -> str:
    """kmod/ of the source tree, or $FALCONET_KMOD_SRC, or the DKMS copy."""
    env = os.environ.get("FALCONET_KMOD_SRC")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(os.path.dirname(here), "kmod")
    if os.path.exists(os.path.join(src, "Kbuild")):
        return src
    return f"/usr/src/{NAME}-{VERSION}"


@dataclass
class Driver:
    kernel: str = field(default_factory=lambda: os.uname().release)
    src: str = field(default_factory=default_kmod_src)
    modules_root: str = "/lib/modules"
    sys_root: str = "/sys"
    device: str = "/dev/falconet"
    state_dir: str = "/var/lib/falconet"
    run: Callable = subprocess.run
    which: Callable = shutil.which
    euid: Callable = os.geteuid

    # -- helpers ---------------------------------------------------------------------------
    def _cmd(self, argv: list[str], what: str, timeout: float = 600) -> subprocess.CompletedProcess:
        try:
            return self.run(argv, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise DriverError(f"{what}: `{argv[0]}` is not installed") from None
        except subprocess.TimeoutExpired:
            raise DriverError(f"{what}: `{' '.join(argv)}` did not finish in {timeout:.0f} s") from None

    def _need_root(self, what: str) -> None:
        if self.euid() != 0:
            raise DriverError(f"{what} needs root: run `sudo falconet driver {what}`")

    @property
    def headers(self) -> str:
        return os.path.join(self.modules_root, self.kernel, "build")

    @property
    def built_ko(self) -> str:
        return os.path.join(self.state_dir, self.kernel, f"{NAME}.ko")

    def is_loaded(self) -> bool:
        return os.path.isdir(os.path.join(self.sys_root, "module", NAME))

    # -- build -----------------------------------------------------------------------------
    def check_build_prereqs(self) -> None:
        if not os.path.exists(os.path.join(self.src, "Kbuild")):
            raise DriverError(f"no module source in {self.src} (expected kmod/Kbuild); set "
                              "FALCONET_KMOD_SRC to the kmod/ directory of a Falconet checkout")
        if not os.path.exists(os.path.join(self.headers, "Makefile")):
            raise DriverError(
                f"no kernel headers for kernel {self.kernel} ({self.headers} is missing); "
                f"install them: Debian/Ubuntu `apt-get install linux-headers-{self.kernel}`, "
                f"RHEL/Fedora `dnf install kernel-devel-{self.kernel}`; if you just upgraded "
                "the kernel, reboot into it first")
        missing = [t for t in ("make", "gcc") if not self.which(t)]
        if missing:
            raise DriverError(f"no compiler toolchain ({', '.join(missing)} not found); install "
                              "it: Debian/Ubuntu `apt-get install build-essential`, "
                              "RHEL/Fedora `dnf install gcc make`")

    def build(self, method: str = "auto") -> str:
        """Build for self.kernel; returns the path of the .ko (or the DKMS module name)."""
        self.check_build_prereqs()
        if method == "auto":
            method = "dkms" if self.which("dkms") else "kbuild"
        if method == "dkms":
            return self._build_dkms()
        if method != "kbuild":
            raise DriverError(f"unknown build method {method!r} (auto, dkms or kbuild)")
        return self._build_kbuild()

    def _build_kbuild(self) -> str:
        out = os.path.dirname(self.built_ko)
        work = os.path.join(out, "build")
        try:
            if os.path.exists(work):
                shutil.rmtree(work)
            shutil.copytree(self.src, work, ignore=shutil.ignore_patterns("*.o", "*.ko", ".*.cmd"))
        except PermissionError:
            raise DriverError(f"cannot write {out}: building installs into {self.state_dir}, run "
                              "as root (sudo) or pass --state-dir DIR") from None
        p = self._cmd(["make", "-C", self.headers, f"M={work}", "modules"], "building falconet.ko")
        if p.returncode != 0:
            raise DriverError(self._explain_build_failure(p.stdout + p.stderr))
        shutil.copy2(os.path.join(work, f"{NAME}.ko"), self.built_ko)
        return self.built_ko

    def _build_dkms(self) -> str:
        self._need_root("build")
        dst = f"/usr/src/{NAME}-{VERSION}"
        if os.path.realpath(self.src) != os.path.realpath(dst):
            if os.path.exists(dst):
                shutil.rmtree(dst)
            shutil.copytree(self.src, dst, ignore=shutil.ignore_patterns("*.o", "*.ko", ".*.cmd"))
        self._cmd(["dkms", "remove", "-m", NAME, "-v", VERSION, "--all"], "dkms remove")
        for step in ("add", "build", "install"):
            argv = ["dkms", step, "-m", NAME, "-v", VERSION]
            if step != "add":
                argv += ["-k", self.kernel]
            p = self._cmd(argv, f"dkms {step}")
            if p.returncode != 0 and not (step == "add" and "already" in p.stdout + p.stderr):
                raise DriverError(f"dkms {step} failed: " + self._explain_build_failure(p.stdout + p.stderr))
        return f"dkms:{NAME}/{VERSION}"

    def _explain_build_failure(self, log: str) -> str:
        last = "\n".join(log.strip().splitlines()[-5:])
        if re.search(r"gcc.*not found|cc: command not found|No such file.*gcc", log):
            return ("the compiler the kernel was built with is missing; install the gcc "
                    "version named in /proc/version\n" + last)
        return f"building falconet.ko for {self.kernel} failed:\n{last}"

    # -- load / unload ---------------------------------------------------------------------
    def load(self, params: dict | None = None, ko: str | None = None) -> None:
        self._need_root("load")
        if self.is_loaded():
            raise DriverError("falconet.ko is already loaded (`falconet driver status`); "
                              "`falconet driver unload` first to change its parameters")
        args = [f"{k}={v}" for k, v in (params or {}).items()]
        path = ko or (self.built_ko if os.path.exists(self.built_ko) else None)
        if path:
            p = self._cmd(["insmod", path, *args], "loading falconet.ko")
        elif self.which("modprobe"):
            p = self._cmd(["modprobe", NAME, *args], "loading falconet.ko")
        else:
            raise DriverError("falconet.ko is not built for this kernel: run "
                              "`sudo falconet driver build` first")
        if p.returncode != 0:
            raise DriverError(self._explain_load_failure(p.stderr + p.stdout, path))
        self.check_abi()

    def _explain_load_failure(self, err: str, path: str | None) -> str:
        e = err.strip().splitlines()[-1] if err.strip() else "unknown error"
        if re.search(r"Key was rejected|Required key not available|key.*reject", err, re.IGNORECASE):
            return ("the kernel refused falconet.ko because it is not signed with a trusted key "
                    "(Secure Boot or module.sig_enforce is on). Sign it with a key enrolled in "
                    "the MOK list (`mokutil --import key.der`, then reboot and enroll; DKMS can "
                    "sign with its own enrolled key), or disable Secure Boot in the firmware. "
                    f"[{e}]")
        if "Invalid module format" in err or "Exec format error" in err:
            return (f"{path or 'falconet.ko'} was built for another kernel than {self.kernel}; "
                    f"rebuild it: `sudo falconet driver build` [{e}]")
        if "Operation not permitted" in err:
            return ("loading modules is not permitted (not root, or kernel lockdown / "
                    f"modules_disabled is set: cat /proc/sys/kernel/modules_disabled) [{e}]")
        if "Module not found" in err or "not found in directory" in err:
            return "falconet.ko is not built for this kernel: run `sudo falconet driver build`"
        if "Invalid parameters" in err or "Invalid argument" in err:
            return (f"the module refused its parameters (ring_bytes must be a power of two "
                    f"between 64 KiB and 1 GiB; snaplen 1..16384); see `dmesg | tail` [{e}]")
        if "Cannot allocate memory" in err:
            return f"not enough memory for the rings; load with a smaller ring_bytes [{e}]"
        return f"loading falconet.ko failed: {e}"

    def unload(self) -> None:
        self._need_root("unload")
        if not self.is_loaded():
            raise DriverError("falconet.ko is not loaded")
        p = self._cmd(["rmmod", NAME], "unloading falconet.ko")
        if p.returncode != 0:
            err = (p.stderr + p.stdout).strip()
            if "in use" in err:
                raise DriverError("falconet.ko is in use: a reader (`falconet run` or `falconet "
                                  "capture`) still has /dev/falconet open; stop it first")
            raise DriverError(f"unloading falconet.ko failed: {err}")

    # -- status ----------------------------------------------------------------------------
    def parameters(self) -> dict:
        pdir = os.path.join(self.sys_root, "module", NAME, "parameters")
        out = {}
        if os.path.isdir(pdir):
            for name in sorted(os.listdir(pdir)):
                try:
                    with open(os.path.join(pdir, name)) as f:
                        out[name] = f.read().strip()
                except OSError:
                    pass
        return out

    def _open_device(self):
        from .sources.live import read_info
        try:
            fd = os.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DriverError(f"{self.device} does not exist although falconet.ko is loaded; "
                              "is devtmpfs/udev running? (`ls -l /dev/falconet`)") from None
        except PermissionError:
            raise DriverError(f"{self.device}: permission denied; run as root (sudo)") from None
        return fd, read_info(fd, self.device)

    def check_abi(self) -> dict:
        from .sources.live import check_abi
        fd, info = self._open_device()
        os.close(fd)
        check_abi(info)
        return info

    def status(self) -> dict:
        st = {"kernel": self.kernel, "loaded": self.is_loaded(), "device": self.device,
              "userspace_abi": abi.ABI_VERSION, "userspace_layout": f"{abi.LAYOUT_HASH:#018x}",
              "built": os.path.exists(self.built_ko)}
        if not st["loaded"]:
            return st
        st["parameters"] = self.parameters()
        if self.euid() != 0:
            st["note"] = "run as root to read the ABI version and counters from /dev/falconet"
            return st
        import fcntl

        from .sources.live import IOC_GET_STATS, STAT_KEYS, _pack, _unpack
        fd, info = self._open_device()
        try:
            st["module_abi"] = info["abi_version"]
            st["module_layout"] = f"{info['layout_hash']:#018x}"
            st["abi_match"] = (info["abi_version"] == abi.ABI_VERSION and
                               info["layout_hash"] == abi.LAYOUT_HASH)
            st["capturing"] = bool(info["capturing"])
            st["snaplen"] = info["snaplen"]
            st["ring_bytes"] = info["data_size"]
            cpus = []
            if st["abi_match"]:
                for cpu in range(info["nr_cpus"]):
                    buf = _pack("fnet_cpu_stats", cpu=cpu)
                    try:
                        fcntl.ioctl(fd, IOC_GET_STATS, buf)
                    except OSError:
                        continue
                    d = _unpack("fnet_cpu_stats", bytes(buf))
                    cpus.append({"cpu": cpu, **{k: d[k] for k in STAT_KEYS}})
            st["per_cpu"] = cpus
        finally:
            os.close(fd)
        return st


__all__ = ["ABIMismatch", "Driver", "DriverError", "default_kmod_src"]
