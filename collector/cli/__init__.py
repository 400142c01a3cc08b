"""The `falconet` command.

Each subcommand lives in its own module ``collector/cli/<name>.py`` exposing::

    HELP = "one line shown in `falconet --help`"
    def add_arguments(parser: argparse.ArgumentParser) -> None   # options of the subcommand
    def run(args: argparse.Namespace) -> int                     # exit status

A subcommand whose part is not built yet is listed in ``PENDING`` and exits 2 with a
one-line message.  Every FalconetError becomes ``falconet: <message>`` on stderr and its exit
code; nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from ..errors import FalconetError

# Order is the order shown in --help.
COMMANDS = ("run", "replay", "capture", "rules", "driver", "ui", "subscribe", "version")
PENDING: dict[str, str] = {}

DESCRIPTION = """\
Falconet watches system calls through a small kernel module, matches them against
Falco-format rules on whole batches of events, and delivers alerts to the terminal, files,
programs, HTTP endpoints (falcosidekick), gRPC subscribers and its own web UI.
"""

EPILOG = """\
Configuration is read from /etc/falconet/falconet.yaml or -c PATH; any key can be
overridden with -o key=value.  Run `falconet COMMAND --help` for each command's options.
Exit status: 0 success, 1 error, 2 usage error or part not available.
"""


def _module(name: str):
    try:
        return importlib.import_module(f"collector.cli.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"collector.cli.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="falconet", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"falconet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = _module(name)
        if mod is None:
            help_text = PENDING.get(name, "not available in this build")
            p = sub.add_parser(name, help=f"({help_text})")
            p.set_defaults(_pending=f"`falconet {name}` is not available yet: {help_text}")
            continue
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           epilog=getattr(mod, "EPILOG", None),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    pending = getattr(args, "_pending", None)
    if pending:
        print(f"falconet: {pending}", file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except FalconetError as e:
        print(f"falconet: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        print("falconet: out of memory", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output closed early (e.g. `| head`): not an error worth a traceback.  Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        if os.environ.get("FALCONET_DEBUG"):
            raise
        print(f"falconet: internal error: {type(e).__name__}: {e} (this is a bug; run with "
              f"FALCONET_DEBUG=1 for the traceback and report it)", file=sys.stderr)
        return 70


def entry() -> None:
    """Console-script entry point."""
    # SIGPIPE stays ignored (Python's default): a closed stdout becomes BrokenPipeError,
    # handled in main(), and a browser or peer closing a connection never kills a server.
    sys.exit(main())
