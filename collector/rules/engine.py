"""RuleEngine: load -> collect -> check -> compile -> select, and process() on batches.

Selection is Falco's: ``priority`` (config) drops rules less severe than the threshold,
``-t`` enables exactly the rules carrying one of the tags (even ``enabled: false`` ones, as
Falco's rule selection does), ``-T`` disables rules with one of the tags, ``-D`` disables
rules whose name contains a substring; ``-t`` cannot be combined with ``-T``/``-D``.

Event handling is Falco's: rules are indexed by the event types they can match, and a batch
is split by type once (types that share the same rule list share one group).  Enter records
(``dir`` column = 1, from .scap captures) are not shown to rules, as libsinsp no longer
passes syscall enter events to the filter engine, so a rule sees each call once.  Without
``-A``, Falco's high-volume I/O event types (``IGNORED_EVENT_NAMES``) are skipped.
``rule_matching: first`` lets only the first matching rule (load order) fire per event.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .. import abi, fields
from ..alert import Priority
from ..errors import RuleError
from .check import ALL_TYPES, CheckError, Expander, event_types, fields_used, unknown_evttypes
from .collector import Collector, Msg, RuleDef
from .output import OutputFormat, suggested_suffix
from .plan import Ctx, LutCache, compile_plan

# Falco's ignored syscalls without -A (falco::app::ignored_sc_set(): libsinsp's io_sc_set(),
# the EC_IO_READ/EC_IO_WRITE calls, minus sinsp_state_sc_set(), the EF_MODIFIES_STATE ones),
# as derived from libs' event table.  None of them is in Falconet's event table today
# (sendto/sendmsg/recvfrom/recvmsg modify state, so Falco keeps them), so -A changes nothing
# yet; the mechanism is kept for when the table grows.
IGNORED_EVENT_NAMES = ("pread", "preadv", "pwrite", "pwritev", "read", "readv", "recv", "send",
                       "sendfile", "write", "writev")
IGNORED_TYPES = frozenset(abi.BY_NAME[n].num for n in IGNORED_EVENT_NAMES if n in abi.BY_NAME)


def _ignored_types() -> frozenset:
    return IGNORED_TYPES


@dataclass
class CompiledRule:
    defn: RuleDef
    ast: object
    plan: object
    types: frozenset
    output: OutputFormat
    order: int

    @property
    def name(self) -> str:
        return self.defn.name

    @property
    def priority(self) -> Priority:
        return self.defn.priority

    @property
    def tags(self) -> list:
        return self.defn.tags

    @property
    def source(self) -> str:
        return self.defn.source


def rules_paths(paths) -> list[str]:
    """Files in order; a directory contributes its *.yaml/*.yml files sorted by name."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            out.extend(os.path.join(p, f) for f in sorted(os.listdir(p))
                       if f.endswith((".yaml", ".yml")))
        else:
            out.append(p)
    return out


def compile_all(paths, cfg=None, luts: LutCache | None = None, texts: dict | None = None):
    """Compile every rule of the files.  Returns (rules, collector, msgs)."""
    coll = Collector()
    for p in rules_paths(paths):
        coll.load_file(p, (texts or {}).get(p))
    luts = luts or LutCache()
    exp = Expander(coll)
    iso = bool(cfg.get("time_format_iso_8601", False)) if cfg is not None else False
    suggested = ""
    if "container" in coll.required_plugins and (cfg is None or cfg.get("suggested_output", True)):
        suggested = suggested_suffix()
    compiled: list[CompiledRule] = []
    seen_msgs = set()

    def emit(level: str, pos, item: str, text: str) -> None:
        key = (str(pos), item, text)
        if key not in seen_msgs:
            seen_msgs.add(key)
            coll.msgs.append(Msg(pos, level, item, text))

    for r in coll.rules.values():
        what = f"rule '{r.name}'"
        if r.source != "syscall":
            emit("warning", r.pos, what, f"unknown source '{r.source}': rule skipped "
                 "(Falconet has only the syscall source)")
            continue
        try:
            ast = exp.rule_ast(r)
            out = OutputFormat(r.output + suggested, r.output_pos or r.pos,
                               "evt.time.iso8601" if iso else "evt.time")
        except CheckError as e:
            if e.unknown_field and r.skip_unknown:
                emit("warning", e.pos(), what, f"{e.msg}: rule skipped (skip-if-unknown-filter)")
                continue
            emit("error", e.pos(), what, e.msg)
            continue
        types = event_types(ast)
        if not types:
            missing = sorted(unknown_evttypes(ast))
            emit("warning", r.pos, what, "rule can never match in Falconet: "
                 + (f"its event types ({', '.join(missing)}) are not captured by Falconet's "
                    "kernel module" if missing else "its condition excludes every event type"))
        if types == ALL_TYPES and r.warn_evttypes:
            emit("warning", r.pos, what, "rule matches too many evt.type values; this has a "
                 "significant performance penalty (restrict evt.type or set warn_evttypes: false)")
        if any(f.fdef.name == "evt.dir" for f in fields_used(ast)):
            emit("warning", r.pos, what, "evt.dir is deprecated: rules only see exit events, "
                 "so evt.dir is always '<'")
        compiled.append(CompiledRule(r, ast, compile_plan(ast, luts), types, out, len(compiled)))
    for m in coll.macros.values():
        try:
            exp.macro_ast(m.name)          # syntax errors count even in unused macros
        except CheckError as e:
            emit("error", e.pos(), f"macro '{m.name}'", e.msg.replace(f"in macro '{m.name}': ", ""))
            continue
        if not m.used:
            emit("warning", m.pos, f"macro '{m.name}'", "macro not referenced by any rule or macro")
    for ld in coll.lists.values():
        if not ld.used:
            emit("warning", ld.pos, f"list '{ld.name}'", "list not referenced by any rule, macro or list")
    return compiled, coll, coll.msgs


def validate(paths) -> tuple[list[Msg], list[Msg]]:
    """(errors, warnings) of rules files, for `falconet rules validate`."""
    try:
        _, _, msgs = compile_all(paths)
    except Exception as e:  # noqa: BLE001  # pragma: no cover - a bug is still reported, never a traceback
        from .yamlsrc import Pos
        return [Msg(Pos(str(paths[0]) if paths else "-", 1, 1), "error", "internal",
                    f"{type(e).__name__}: {e}")], []
    return [m for m in msgs if m.level == "error"], [m for m in msgs if m.level == "warning"]


class RuleEngine:
    def __init__(self, rules: list[CompiledRule], enabled: list[CompiledRule], cfg, all_events: bool,
                 hostname: str, warnings: list[Msg], luts: LutCache):
        self.rules = rules
        self.enabled = enabled
        self.warnings = warnings
        self.all_events = all_events
        self.hostname = hostname
        self.luts = luts
        self.first_only = str(cfg.get("rule_matching", "first")).lower() != "all"
        ignored = frozenset() if all_events else _ignored_types()
        self.event_types: set[int] = set().union(*(r.types for r in enabled)) - ignored if enabled \
            else set()
        # type -> group of types sharing one ordered rule list
        self._group_of = np.full(abi.NUM_EVENT_TYPES, -1, dtype=np.int64)
        self._groups: list[list[CompiledRule]] = []
        keys: dict[tuple, int] = {}
        for t in sorted(self.event_types):
            rs = tuple(r.order for r in enabled if t in r.types)
            g = keys.get(rs)
            if g is None:
                g = keys[rs] = len(self._groups)
                self._groups.append([r for r in enabled if t in r.types])
            self._group_of[t] = g
        cols = {"type", "ts", "num"}
        for r in enabled:
            for f in fields_used(r.ast):
                cols.update(f.fdef.columns)
            cols.update(r.output.columns())
        self.columns: set[str] = cols
        self._by_rule: Counter = Counter()
        self._by_prio: Counter = Counter()
        self._events = 0

    # --- construction ---
    @classmethod
    def load(cls, paths, cfg, tags=(), disable_tags=(), disable_substrings=(), all_events=False,
             hostname=None, luts: LutCache | None = None) -> RuleEngine:
        tags, disable_tags, disable_substrings = list(tags), list(disable_tags), list(disable_substrings)
        if tags and (disable_tags or disable_substrings):
            raise RuleError("You can not specify both disabled (-D/-T) and enabled (-t) rules")
        try:
            min_prio = Priority.parse(str(cfg.get("priority", "debug")))
        except ValueError as e:
            raise RuleError(f"{getattr(cfg, 'source', 'config')}: setting 'priority': {e}") from None
        luts = luts or LutCache()
        rules, _coll, msgs = compile_all(paths, cfg, luts)
        errors = [m for m in msgs if m.level == "error"]
        warnings = [m for m in msgs if m.level == "warning"]
        if errors:
            raise RuleError(f"{len(errors)} error(s) loading rules:\n" +
                            "\n".join(str(m) for m in errors))
        enabled = []
        for r in rules:
            if r.priority > min_prio:
                continue
            on = r.defn.enabled
            if tags:
                on = any(t in r.tags for t in tags)
            if any(t in r.tags for t in disable_tags):
                on = False
            if any(s in r.name for s in disable_substrings):
                on = False
            if on:
                enabled.append(r)
        if hostname is None:
            hostname = fields.HOSTNAME
        else:
            fields.HOSTNAME = hostname
        eng = cls(rules, enabled, cfg, all_events, hostname, warnings, luts)
        if not all_events:
            hit = sorted(abi.BY_NUM[t].falco for t in _ignored_types()
                         if any(t in r.types and r.types != ALL_TYPES for r in enabled))
            if hit:
                from .yamlsrc import Pos
                eng.warnings.append(Msg(Pos(str(paths[0]) if paths else "-", 1, 1), "warning",
                                        "ruleset", "loaded rules match ignored events ("
                                        + ", ".join(hit) + "); they are skipped unless -A is given"))
        return eng

    # --- evaluation ---
    def process(self, batch) -> list:
        n = batch.n
        self._events += n
        if n == 0 or not self._groups:
            return []
        types = batch.cols["type"]
        gid = self._group_of[types]
        d = batch.cols.get("dir")
        if d is not None:
            gid = np.where(d == 1, -1, gid)
        sel = np.flatnonzero(gid >= 0)
        if len(sel) == 0:
            return []
        gsel = gid[sel]
        if len(self._groups) == 1:
            order, bounds = sel, [0, len(sel)]
        else:
            # small integer keys: numpy's stable sort is a radix sort for 8/16-bit types
            key = gsel.astype(np.uint8 if len(self._groups) < 256 else np.uint16)
            perm = np.argsort(key, kind="stable")
            order = sel[perm]
            counts = np.bincount(gsel, minlength=len(self._groups))
            bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
        hits: dict[int, list] = {}
        full: dict = {}           # whole-batch extractions of fields over 2-D columns
        for g, rules in enumerate(self._groups):
            lo, hi = bounds[g], bounds[g + 1]
            if lo == hi:
                continue
            rows = order[lo:hi]
            ctx = Ctx(batch, rows if hi - lo < n else None, full)
            open_idx = None          # first-match: positions not yet claimed
            for r in rules:
                if open_idx is None:
                    m = r.plan.eval(ctx, None)
                    pos = np.flatnonzero(m)
                else:
                    if len(open_idx) == 0:
                        break
                    m = r.plan.eval(ctx, open_idx)
                    pos = open_idx[m]
                if len(pos):
                    hits.setdefault(r.order, []).append(rows[pos])
                    if self.first_only:
                        if open_idx is None:
                            open_idx = np.flatnonzero(~m)
                        else:
                            open_idx = open_idx[~m]
        if not hits:
            return []
        alerts = []
        by_order = {r.order: r for r in self.enabled}
        for order_, parts in hits.items():
            r = by_order[order_]
            rows = np.sort(np.concatenate(parts))
            rendered = r.output.render(batch, rows, r.defn, self.hostname)
            self._by_rule[r.name] += len(rendered)
            self._by_prio[r.priority.label] += len(rendered)
            alerts.extend(zip(rows.tolist(), [order_] * len(rows), rendered))
        alerts.sort(key=lambda x: (x[0], x[1]))
        return [a for _, _, a in alerts]

    def stats(self) -> dict:
        return {
            "rules_loaded": len(self.rules),
            "rules_enabled": len(self.enabled),
            "events": self._events,
            "alerts": sum(self._by_rule.values()),
            "alerts_by_rule": dict(self._by_rule),
            "alerts_by_priority": dict(self._by_prio),
        }
