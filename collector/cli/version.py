"""`falconet version`: versions of the package, the ABI and the C extension."""

from __future__ import annotations

import argparse
import json

HELP = "print Falconet's version, ABI version and which decoder backend is active"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    info = {"version": __version__}
    try:
        from .. import abi, native
        info["abi_version"] = abi.ABI_VERSION
        info["layout_hash"] = f"{abi.LAYOUT_HASH:#018x}"
        info["backend"] = native.BACKEND
    except ImportError:
        pass
    if args.json:
        print(json.dumps(info))
    else:
        print(" ".join(f"{k}={v}" for k, v in info.items()))
    return 0
