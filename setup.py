"""Build and install Falconet: the `collector` package, the `falconet` command and the cffi
extension `collector._native` (C decoder, state engine, readers; see ext/build_ffi.py).

If the C extension cannot be built, the install still succeeds with the pure-numpy
implementation, after a message that says what is missing (a C compiler, the Python headers)
and how to get it.  Set FALCONET_REQUIRE_EXT=1 to make a failed C build fatal instead, or
FALCONET_PUREPYTHON=1 to skip building it.
"""

import os
import shutil
import sys
import sysconfig

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext


def _diagnose() -> str:
    missing = []
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        missing.append(f"the C compiler {cc!r} (Debian/Ubuntu: apt-get install build-essential"
                       f"{'; or unset CC' if os.environ.get('CC') else ''})")
    inc = sysconfig.get_paths().get("include", "")
    if not os.path.exists(os.path.join(inc, "Python.h")):
        missing.append(f"the Python headers, Python.h not in {inc} "
                       "(Debian/Ubuntu: apt-get install python3-dev)")
    if not os.path.exists("/usr/include/linux/types.h"):
        missing.append("the Linux userspace headers (Debian/Ubuntu: apt-get install linux-libc-dev)")
    return "; ".join(missing) or "see the compiler output above"


class OptionalBuildExt(build_ext):
    """Build the extension, or explain what is missing and fall back to pure numpy."""

    def run(self):
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any build failure gets the same diagnosis
            self._failed(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._failed(e)

    @staticmethod
    def _failed(e):
        msg = (f"\nfalconet: could not build the C extension ({e}).\n"
               f"falconet: missing: {_diagnose()}.\n")
        if os.environ.get("FALCONET_REQUIRE_EXT"):
            sys.stderr.write(msg)
            raise SystemExit(1)
        sys.stderr.write(msg + "falconet: installing the pure-numpy implementation instead "
                               "(slower; install the above and reinstall for the C path).\n")


cffi_modules = [] if os.environ.get("FALCONET_PUREPYTHON") else ["ext/build_ffi.py:ffibuilder"]

setup(
    name="falconet",
    version="0.1.0",
    description="Runtime security for Linux hosts without eBPF: Falco rules on a small kernel module",
    long_description=open("README.md", encoding="utf-8").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["collector", "collector.*"]),
    package_data={
        "collector._defaults": ["*.yaml"],
        "collector._abi": ["*.h"],
        "collector": ["**/*.proto", "**/static/*", "**/static/**/*", "**/templates/*"],
    },
    include_package_data=True,
    data_files=[(d, [f for f in files if os.path.exists(f)]) for d, files in (
        ("share/falconet/rules", ["rules/falconet_rules.yaml"]),
        ("share/falconet/examples", ["tests/data/demo.fcap"]))],
    setup_requires=["cffi>=1.15"],
    cffi_modules=cffi_modules,
    # grpcio/protobuf: the committed generated gRPC code refuses older runtimes.
    install_requires=["cffi>=1.15", "numpy>=1.24", "msgpack>=1.0", "pyyaml>=6.0",
                      "grpcio>=1.85.1", "protobuf>=7.35.1"],
    extras_require={"test": ["pytest>=7", "hypothesis>=6"]},
    entry_points={"console_scripts": ["falconet=collector.cli:entry"]},
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
)
