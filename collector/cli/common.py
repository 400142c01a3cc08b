"""Options and builders shared by the commands that run the pipeline (run, replay, capture)."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from typing import Any

from ..config import Config
from ..errors import ConfigError, RuleError


def add_config_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument("-c", "--config", metavar="PATH",
                   help="configuration file (default: /etc/falconet/falconet.yaml if present, "
                        "else built-in defaults)")
    g.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key, e.g. -o json_output=true (repeatable)")


def add_rules_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rules (as in Falco)")
    g.add_argument("-r", "--rules", action="append", default=[], metavar="RULES_FILE",
                   help="rules file or directory (its *.yaml files in name order); repeatable, "
                        "loaded in order. Default: rules_files from the configuration, else "
                        "Falconet's bundled rules")
    g.add_argument("-t", dest="tags", action="append", default=[], metavar="TAG",
                   help="run only rules with this tag (repeatable)")
    g.add_argument("-T", dest="disable_tags", action="append", default=[], metavar="TAG",
                   help="disable rules with this tag (repeatable)")
    g.add_argument("-D", dest="disable_substrings", action="append", default=[], metavar="SUBSTRING",
                   help="disable rules whose name contains SUBSTRING (repeatable)")
    g.add_argument("-A", dest="all_events", action="store_true",
                   help="also match events Falco's event table marks as ignored by default")
    g.add_argument("--json", action="store_true",
                   help="print alerts as Falco JSON lines (same as -o json_output=true)")


def add_stats_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("statistics")
    g.add_argument("--stats", action="store_true",
                   help="print a final summary on stderr: events read, skipped by cause, alerts "
                        "by rule and priority")
    g.add_argument("--stats-json", action="store_true",
                   help="print the final summary as one JSON object on stderr (keys: events, "
                        "skipped, alerts, ...)")
    g.add_argument("--stats-interval", type=float, default=None, metavar="SECONDS",
                   help="print a stats line every SECONDS (default: pipeline.stats_interval)")


def load_config(args: argparse.Namespace) -> Config:
    cfg = Config.load(getattr(args, "config", None), getattr(args, "option", []))
    if getattr(args, "json", False):
        cfg.set("json_output", True)
    return cfg


def bundled_rules() -> str | None:
    """Path of Falconet's bundled rules (source tree, or installed data files)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for cand in (os.path.join(here, "rules", "falconet_rules.yaml"),
                 os.path.join(sys.prefix, "share", "falconet", "rules", "falconet_rules.yaml")):
        if os.path.exists(cand):
            return cand
    return None


def rules_paths(args: argparse.Namespace, cfg: Config) -> list[str]:
    """Expand -r (or the configured rules_files) into a list of files, directories sorted."""
    items = list(args.rules) or list(cfg.get("rules_files", []) or [])
    base = os.path.dirname(os.path.abspath(cfg.source)) if os.path.exists(cfg.source) else os.getcwd()
    if not items:
        b = bundled_rules()
        if b is None:
            raise RuleError("no rules given (-r) and Falconet's bundled rules are not installed")
        items = [b]
    out: list[str] = []
    for item in items:
        path = item if args.rules or os.path.isabs(item) else os.path.join(base, item)
        if os.path.isdir(path):
            found = sorted(glob.glob(os.path.join(path, "*.yaml")) + glob.glob(os.path.join(path, "*.yml")))
            out.extend(found)
        elif os.path.exists(path):
            out.append(path)
        else:
            raise RuleError(f"{path}: rules file not found")
    return out


def build_engine(args: argparse.Namespace, cfg: Config, hostname: str | None = None) -> Any:
    from ..rules import RuleEngine
    paths = rules_paths(args, cfg)
    engine = RuleEngine.load(paths, cfg, tags=args.tags, disable_tags=args.disable_tags,
                             disable_substrings=args.disable_substrings,
                             all_events=args.all_events, hostname=hostname)
    if getattr(args, "verbose", False):
        for w in getattr(engine, "warnings", []) or []:
            print(f"falconet: warning: {w}", file=sys.stderr)
    return engine


def build_state(strings: Any, snapshot: dict | None, live: bool = False) -> Any:
    """The state engine; ``live`` re-reads this host's /etc/passwd and /etc/group when they
    change (a replay keeps the capture's users and groups)."""
    from ..state import StateEngine
    return StateEngine(strings, snapshot=snapshot, host_users=live)


def build_outputs(cfg: Config, hostname: str | None = None) -> Any:
    from ..outputs import OutputManager
    manager = OutputManager(cfg, hostname=hostname)
    if cfg.get("webui.enabled", False):
        # The web UI in the same process: alerts go straight into its store, no HTTP.
        from ..ui.channel import UIChannel
        manager.add_channel(UIChannel.from_config(cfg))
    return manager


def stats_interval(args: argparse.Namespace, cfg: Config) -> float:
    if getattr(args, "stats_interval", None) is not None:
        if args.stats_interval < 0:
            raise ConfigError("--stats-interval must be >= 0")
        return float(args.stats_interval)
    return float(cfg.typed("pipeline.stats_interval", float, 0.0))


def run_and_report(pipe: Any, engine: Any, args: argparse.Namespace) -> None:
    """Run the pipeline; print the final summary (--stats / --stats-json) even when the
    source ended with an error, then re-raise that error."""
    from ..pipeline import summary
    err = None
    try:
        pipe.run()
    except Exception as e:  # noqa: BLE001 - reported after the summary, then re-raised
        err = e
    if getattr(args, "stats", False) or getattr(args, "stats_json", False):
        s = summary(pipe, engine)
        if args.stats_json:
            print(json.dumps(s, sort_keys=True, default=str), file=sys.stderr)
        else:
            print_summary(s, sys.stderr)
    if err is not None:
        raise err


def print_summary(s: dict, out: Any) -> None:
    """The human-readable final summary (``--stats``)."""
    print(f"Events read: {s['events']}", file=out)
    skipped = s.get("skipped") or {}
    print(f"Events skipped: {sum(skipped.values())}", file=out)
    for cause, n in sorted(skipped.items()):
        print(f"   {cause}: {n}", file=out)
    print(f"Alerts: {s['alerts_total']}", file=out)
    for prio, n in s.get("alerts_by_priority", {}).items():
        print(f"   {prio}: {n}", file=out)
    if s["alerts"]:
        print("Alerts by rule:", file=out)
        for rule, n in sorted(s["alerts"].items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"   {rule}: {n}", file=out)
    print(f"Elapsed: {s['elapsed_s']:.3f} s", file=out)
