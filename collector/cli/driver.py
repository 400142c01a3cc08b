"""`falconet driver build|load|unload|status`: the kernel module's life cycle."""

from __future__ import annotations

import argparse
import json

from ..errors import DriverError

HELP = "build, load, unload the kernel module falconet.ko and show its counters"

DESCRIPTION = """\
Manage falconet.ko, the kernel module that captures system calls into per-CPU ring buffers
read through /dev/falconet.

  build    compile the module for the running kernel (or --kernel): through DKMS when it is
           installed (the module is then rebuilt on kernel upgrades), else with the kernel's
           own Kbuild into /var/lib/falconet/<kernel>/falconet.ko.  Needs the kernel headers
           (linux-headers-<kernel> / kernel-devel-<kernel>) and gcc + make.
  load     insmod the module with its parameters, then open /dev/falconet and check that the
           module speaks the same ABI (version and record layout hash) as this Falconet.
  unload   rmmod the module.  Refused while a reader (`falconet run`, `falconet capture`)
           has the device open: stop it first.
  status   whether the module is loaded, its parameters, ABI, whether it is capturing, and
           per-CPU counters: events written, drops because the ring was full, records with a
           user-memory fault, records cut to the maximum record size, 32-bit syscalls skipped.
"""

EPILOG = """\
Module parameters (load):
  --ring-bytes N   ring size per CPU, a power of two from 64 KiB to 1 GiB (default 8 MiB);
                   raise it if `status` shows drops_full growing
  --snaplen N      initial bytes kept per string argument (1..16384, default 4096)

Examples:
  sudo falconet driver build
  sudo falconet driver load --ring-bytes 16777216
  sudo falconet driver status --json
  sudo falconet driver unload

Exit status: 0 success, 1 error (the message says what happened and what to do).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="compile falconet.ko for a kernel (DKMS or Kbuild)")
    b.add_argument("--kernel", help="kernel release to build for (default: the running one)")
    b.add_argument("--method", choices=("auto", "dkms", "kbuild"), default="auto",
                   help="auto = DKMS when installed, else Kbuild (default: auto)")
    b.add_argument("--state-dir", default="/var/lib/falconet",
                   help="where Kbuild builds go (default: /var/lib/falconet)")
    b.add_argument("--source", help="kmod/ source directory (default: the one shipped)")
    ld = sub.add_parser("load", help="insmod falconet.ko and check its ABI")
    ld.add_argument("--ring-bytes", type=int, help="ring size per CPU (power of two)")
    ld.add_argument("--snaplen", type=int, help="initial string snaplen (1..16384)")
    ld.add_argument("--ko", help="path of the .ko to load (default: the last build)")
    ld.add_argument("--state-dir", default="/var/lib/falconet", help=argparse.SUPPRESS)
    sub.add_parser("unload", help="rmmod falconet.ko")
    st = sub.add_parser("status", help="module state, ABI and per-CPU counters")
    st.add_argument("--json", action="store_true", help="print one JSON object")


def _driver(args: argparse.Namespace):
    from ..driver import Driver
    kw = {}
    if getattr(args, "kernel", None):
        kw["kernel"] = args.kernel
    if getattr(args, "source", None):
        kw["src"] = args.source
    if getattr(args, "state_dir", None):
        kw["state_dir"] = args.state_dir
    return Driver(**kw)


def _print_status(st: dict) -> None:
    print(f"kernel:     {st['kernel']}")
    print(f"module:     {'loaded' if st['loaded'] else 'not loaded'}"
          f"{'' if st['loaded'] or st.get('built') else ' (not built: falconet driver build)'}")
    if not st["loaded"]:
        return
    params = " ".join(f"{k}={v}" for k, v in st.get("parameters", {}).items())
    print(f"parameters: {params or '-'}")
    if "module_abi" in st:
        match = "matches" if st["abi_match"] else "DIFFERS from"
        print(f"ABI:        module {st['module_abi']} ({st['module_layout']}) {match} "
              f"userspace {st['userspace_abi']} ({st['userspace_layout']})")
        print(f"capturing:  {'yes' if st['capturing'] else 'no'}; snaplen {st['snaplen']}; "
              f"ring {st['ring_bytes']} bytes per CPU")
        if st.get("per_cpu"):
            print(f"{'cpu':>4} {'events':>12} {'drops_full':>11} {'fault':>8} {'toolong':>8} "
                  f"{'compat':>8} {'bytes':>14}")
            for c in st["per_cpu"]:
                print(f"{c['cpu']:>4} {c['events']:>12} {c['drops_full']:>11} {c['drops_fault']:>8} "
                      f"{c['drops_toolong']:>8} {c['drops_compat']:>8} {c['bytes']:>14}")
    elif st.get("note"):
        print(f"note:       {st['note']}")


def run(args: argparse.Namespace) -> int:
    d = _driver(args)
    if args.action == "build":
        where = d.build(args.method)
        print(f"falconet.ko built for {d.kernel}: {where}")
        return 0
    if args.action == "load":
        params = {}
        if args.ring_bytes is not None:
            params["ring_bytes"] = args.ring_bytes
        if args.snaplen is not None:
            params["snaplen"] = args.snaplen
        d.load(params, ko=args.ko)
        print("falconet.ko loaded; ABI matches this Falconet")
        return 0
    if args.action == "unload":
        d.unload()
        print("falconet.ko unloaded")
        return 0
    if args.action == "status":
        st = d.status()
        if args.json:
            print(json.dumps(st, sort_keys=True))
        else:
            _print_status(st)
        return 0
    raise DriverError(f"unknown action {args.action}")  # pragma: no cover - argparse enforces
