"""`falconet rules validate|list|fields`: check rules files, list rules, list fields."""

from __future__ import annotations

import argparse
import json
import os
import sys

HELP = "validate rules files, list rules, list supported fields"
DESCRIPTION = """\
validate FILE...   check Falco-format rules files (loaded in order, as `falconet run -r`
                   would); prints compiler-style messages FILE:LINE:COL: error|warning: ITEM: TEXT
                   and exits 1 if there is any error.
list [FILE...]     list the rules (default: the configured rules_files) with priority,
                   whether they are enabled after selection, source and tags.
fields             every field conditions and outputs can use, with its type and description.
"""
EPILOG = "Exit status: 0 no errors, 1 errors found, 2 usage error."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_cmd", metavar="ACTION")
    v = sub.add_parser("validate", help="check rules files and print errors and warnings")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    ls = sub.add_parser("list", help="list rules")
    ls.add_argument("files", nargs="*", metavar="FILE")
    ls.add_argument("-c", "--config", help="configuration file (default /etc/falconet/falconet.yaml)")
    ls.add_argument("-o", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ls.add_argument("-t", dest="tags", action="append", default=[], help="only rules with this tag")
    ls.add_argument("-T", dest="disable_tags", action="append", default=[],
                    help="disable rules with this tag")
    ls.add_argument("-D", dest="disable", action="append", default=[],
                    help="disable rules whose name contains this substring")
    ls.add_argument("--json", action="store_true", help="print JSON lines")
    f = sub.add_parser("fields", help="list supported fields")
    f.add_argument("--json", action="store_true", help="print JSON lines")
    f.add_argument("prefix", nargs="?", default="", help="only fields starting with this (e.g. proc.)")


def default_rules(cfg) -> list[str]:
    files = cfg.get("rules_files", []) or []
    if isinstance(files, str):
        files = [files]
    base = os.path.dirname(os.path.abspath(cfg.source)) if cfg.source not in ("<defaults>",) else os.getcwd()
    out = [p if os.path.isabs(p) else os.path.join(base, p) for p in files]
    if not out:
        out = [bundled_rules()]
    return out


def bundled_rules() -> str:
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(here, "rules", "falconet_rules.yaml")


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "rules_cmd", None)
    if cmd == "validate":
        return _validate(args)
    if cmd == "list":
        return _list(args)
    if cmd == "fields":
        return _fields(args)
    print("falconet rules: choose one of validate, list, fields (see --help)", file=sys.stderr)
    return 2


def _validate(args) -> int:
    from ..rules import validate
    missing = [f for f in args.files if not os.path.exists(f)]
    if missing:
        for f in missing:
            print(f"{f}: error: file: no such file or directory", file=sys.stderr)
        return 1
    errors, warnings = validate(args.files)
    if args.json:
        print(json.dumps({"errors": [str(m) for m in errors],
                          "warnings": [str(m) for m in warnings]}))
        return 1 if errors else 0
    for m in sorted(errors + ([] if args.quiet else warnings),
                    key=lambda m: (m.pos.file, m.pos.line, m.pos.col)):
        print(m, file=sys.stderr if m.level == "error" else sys.stdout)
    ok = "ok" if not errors else "FAILED"
    print(f"{ok}: {len(errors)} error(s), {len(warnings)} warning(s) in {len(args.files)} file(s)")
    return 1 if errors else 0


def _list(args) -> int:
    from ..config import Config
    from ..rules import RuleEngine
    cfg = Config.load(args.config, args.overrides)
    files = args.files or default_rules(cfg)
    eng = RuleEngine.load(files, cfg, tags=args.tags, disable_tags=args.disable_tags,
                          disable_substrings=args.disable)
    enabled = {r.name for r in eng.enabled}
    for r in eng.rules:
        on = r.name in enabled
        if args.json:
            print(json.dumps({"rule": r.name, "priority": r.priority.label, "enabled": on,
                              "source": r.source, "tags": r.tags, "desc": r.defn.desc.strip()}))
        else:
            mark = "+" if on else "-"
            print(f"{mark} {r.priority.label:<13} {r.name}  [{', '.join(r.tags)}]")
    if not args.json:
        print(f"{len(enabled)} of {len(eng.rules)} rules enabled")
    return 0


def _fields(args) -> int:
    from .. import fields
    for name in sorted(fields.REGISTRY):
        if not name.startswith(args.prefix):
            continue
        fd = fields.REGISTRY[name]
        shown = name + {"index": "[N]", "key": ".NAME / [N]"}.get(fd.arg, "")
        if args.json:
            print(json.dumps({"name": name, "type": fd.ftype, "arg": fd.arg, "desc": fd.desc}))
        else:
            print(f"{shown:<40} {fd.ftype:<10} {fd.desc}")
    return 0
