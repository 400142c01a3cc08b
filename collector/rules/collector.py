"""Rules files -> definitions: Falco's reader and collector (``rule_loader_reader.cpp``,
``rule_loader_collector.cpp``).

Items are read in file order; files in the order given.  A later ``list``/``macro``/``rule``
of the same name replaces the earlier one in place (keeping its load-order slot), ``override``
appends or replaces selected keys with Falco's exact key checks, and the deprecated
``append: true`` and enabled-only forms still work with a warning.  Every message carries the
file position and the item it concerns (:class:`Msg`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..alert import Priority
from .yamlsrc import Pos, YamlError, YList, YMap, YStr, as_bool
from .yamlsrc import load as yaml_load

ENGINE_VERSION = (0, 63, 0)      # the Falco rules-engine version whose language we implement
PROVIDED_PLUGINS = {"container": (0, 6, 0)}   # container.* / k8s.* fields come from state

ITEM_KINDS = ("required_engine_version", "required_plugin_versions", "list", "macro", "rule")
RULE_KEYS = {"rule", "condition", "output", "desc", "priority", "source", "enabled", "tags",
             "exceptions", "warn_evttypes", "skip-if-unknown-filter", "append", "override",
             "capture", "capture_duration"}
RULE_APPEND_OK = {"condition", "output", "desc", "tags", "exceptions"}
RULE_REPLACE_OK = {"condition", "output", "desc", "priority", "capture", "capture_duration", "tags",
                   "exceptions", "enabled", "warn_evttypes", "skip-if-unknown-filter"}
LIST_KEYS = {"list", "items", "append", "override"}
MACRO_KEYS = {"macro", "condition", "append", "override"}


@dataclass(frozen=True, slots=True)
class Msg:
    pos: Pos
    level: str          # "error" | "warning"
    item: str           # "rule 'Foo'", "macro 'bar'", "list 'baz'", "file"
    text: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.level}: {self.item}: {self.text}"


class Joined:
    """Condition text made of pieces (definition + appends), mapping offsets back to files."""

    def __init__(self, pieces: list):
        self.pieces = list(pieces)
        self.text = " ".join(str(p) for p in self.pieces)

    def append(self, piece) -> Joined:
        return Joined(self.pieces + [piece])

    def offset_pos(self, off: int) -> Pos:
        start = 0
        for p in self.pieces:
            end = start + len(p)
            if off <= end:
                return p.offset_pos(off - start) if isinstance(p, YStr) else p.pos
            start = end + 1
        last = self.pieces[-1]
        return last.offset_pos(len(last)) if isinstance(last, YStr) else last.pos


@dataclass
class ListDef:
    name: str
    items: list            # of YStr
    pos: Pos
    visibility: int
    index: int
    used: bool = False


@dataclass
class MacroDef:
    name: str
    cond: Joined
    pos: Pos
    visibility: int
    index: int
    used: bool = False
    ast: object = None


@dataclass
class Exception_:
    name: str
    fields: object          # YStr | YList of YStr
    comps: object
    values: list
    pos: Pos


@dataclass
class RuleDef:
    name: str
    cond: Joined
    output: str
    desc: str
    priority: Priority
    pos: Pos
    visibility: int
    index: int
    source: str = "syscall"
    enabled: bool = True
    tags: list = field(default_factory=list)
    exceptions: list = field(default_factory=list)
    warn_evttypes: bool = True
    skip_unknown: bool = False
    output_pos: Pos | None = None
    file_plugins: tuple = ()


class Collector:
    def __init__(self) -> None:
        self.lists: dict[str, ListDef] = {}
        self.macros: dict[str, MacroDef] = {}
        self.rules: dict[str, RuleDef] = {}
        self.msgs: list[Msg] = []
        self.counter = 0
        self.required_plugins: set[str] = set()
        self._seen_in_file: dict[tuple[str, str], Pos] = {}

    # messages
    def err(self, pos: Pos, item: str, text: str) -> None:
        self.msgs.append(Msg(pos, "error", item, text))

    def warn(self, pos: Pos, item: str, text: str) -> None:
        self.msgs.append(Msg(pos, "warning", item, text))

    # files
    def load_file(self, path: str, text: str | None = None) -> None:
        try:
            docs = yaml_load(path, text)
        except YamlError as e:
            self.err(e.pos, "file", e.msg)
            return
        for doc in docs:
            if not isinstance(doc, YList):
                pos = getattr(doc, "pos", Pos(path, 1, 1))
                self.err(pos, "file", "rules content is not a YAML sequence of items")
                continue
            for item in doc:
                if not isinstance(item, YMap):
                    pos = getattr(item, "pos", doc.pos)
                    self.err(pos, "file", "unexpected element type: each item must be a mapping "
                             "(rule, macro, list, required_engine_version, required_plugin_versions)")
                    continue
                self.counter += 1
                self._item(item)

    def _item(self, item: YMap) -> None:
        kind = next((k for k in ITEM_KINDS if k in item), None)
        if kind is None:
            first = next(iter(item), "?")
            self.warn(item.pos, "file", f"unknown top level item '{first}' (ignored)")
            return
        if kind == "required_engine_version":
            self._engine_version(item)
        elif kind == "required_plugin_versions":
            self._plugins(item)
        elif kind == "list":
            self._list(item)
        elif kind == "macro":
            self._macro(item)
        else:
            self._rule(item)

    # --- helpers ---
    def _name(self, item: YMap, kind: str) -> str | None:
        v = item[kind]
        if not isinstance(v, YStr) or not str(v).strip():
            self.err(item.kpos[kind], f"{kind}", f"'{kind}' must be a non-empty string")
            return None
        return str(v)

    def _unknown_keys(self, item: YMap, allowed: set, what: str) -> None:
        for k in item:
            if k not in allowed:
                self.warn(item.kpos[k], what, f"unknown key '{k}' (ignored)")

    def _str(self, item: YMap, key: str, what: str) -> YStr | None:
        v = item.get(key)
        if v is None:
            return YStr_empty(item.kpos[key]) if key in item else None
        if not isinstance(v, YStr):
            self.err(item.kpos[key], what, f"value of '{key}' must be a string")
            return None
        return v

    def _bool(self, item: YMap, key: str, what: str) -> bool | None:
        b = as_bool(item.get(key))
        if b is None:
            self.err(item.kpos[key], what, f"value of '{key}' must be a boolean (true/false)")
        return b

    def _overrides(self, item: YMap, what: str, append_ok: set, replace_ok: set) -> dict | None:
        """Falco's decode_overrides checks.  Returns {key: 'append'|'replace'} or None."""
        ov = item["override"]
        pos = item.kpos["override"]
        if not isinstance(ov, YMap) or not ov:
            self.err(pos, what, "'override' must be a mapping of key: append|replace")
            return None
        if as_bool(item.get("append")) is True:
            self.err(item.kpos["append"], what, "keys 'override' and 'append: true' cannot be used "
                     "together; add an 'append' entry (e.g. 'condition: append') under 'override' instead")
            return None
        out = {}
        ok = True
        for k, op in ov.items():
            kp = ov.kpos[k]
            if op not in ("append", "replace"):
                self.err(kp, what, f"invalid override operation for key '{k}': '{op}' "
                         "(expected 'append' or 'replace')")
                ok = False
            elif op == "append" and k not in append_ok:
                extra = ", use 'replace' instead" if k in replace_ok else ""
                self.err(kp, what, f"key '{k}' cannot be appended to{extra}")
                ok = False
            elif op == "replace" and k not in replace_ok:
                extra = ", use 'append' instead" if k in append_ok else ""
                self.err(kp, what, f"key '{k}' cannot be replaced{extra}")
                ok = False
            elif k not in item:
                self.err(kp, what, f"an override is defined for '{k}' but the item has no such key")
                ok = False
            out[str(k)] = str(op)
        for k in item:
            if (k in append_ok or k in replace_ok) and k not in out:
                self.err(item.kpos[k], what, f"unexpected key '{k}': no corresponding entry under "
                         "'override' is defined")
                ok = False
        return out if ok else None

    def _track_dup(self, kind: str, name: str, pos: Pos) -> None:
        key = (kind, name)
        prev = self._seen_in_file.get(key)
        if prev is not None and prev.file == pos.file:
            self.warn(pos, f"{kind} '{name}'", f"redefines the {kind} defined at line {prev.line} "
                      "of the same file (the later definition wins)")
        self._seen_in_file[key] = pos

    # --- required versions ---
    def _engine_version(self, item: YMap) -> None:
        v = item["required_engine_version"]
        pos = item.kpos["required_engine_version"]
        ver = _parse_version(v)
        if ver is None:
            self.err(pos, "required_engine_version", f"cannot parse engine version '{v}'")
        elif len(ver) == 1:
            pass   # legacy integer versions predate semver and are all satisfied
        elif ver > ENGINE_VERSION:
            have = ".".join(map(str, ENGINE_VERSION))
            self.err(pos, "required_engine_version", f"rules require engine version {v}, "
                     f"but Falconet implements engine version {have}")

    def _plugins(self, item: YMap) -> None:
        v = item["required_plugin_versions"]
        pos = item.kpos["required_plugin_versions"]
        if not isinstance(v, YList):
            self.err(pos, "required_plugin_versions", "value must be a sequence of {name, version}")
            return
        for p in v:
            if not isinstance(p, YMap) or "name" not in p or "version" not in p:
                self.err(getattr(p, "pos", pos), "required_plugin_versions",
                         "each entry needs 'name' and 'version'")
                continue
            cands = [p] + [a for a in (p.get("alternatives") or []) if isinstance(a, YMap)]
            found = False
            for c in cands:
                have = PROVIDED_PLUGINS.get(str(c.get("name")))
                want = _parse_version(c.get("version"))
                if have is not None and want is not None and have >= want:
                    found = True
                    self.required_plugins.add(str(c.get("name")))
                    break
            if not found:
                self.err(p.pos, "required_plugin_versions", f"plugin '{p['name']}' version "
                         f"{p['version']} is required by this ruleset, but Falconet does not "
                         "provide it")

    # --- lists ---
    def _list(self, item: YMap) -> None:
        name = self._name(item, "list")
        if name is None:
            return
        what = f"list '{name}'"
        self._unknown_keys(item, LIST_KEYS, what)
        if "items" not in item:
            self.err(item.pos, what, "missing required key 'items'")
            return
        items = item["items"]
        if items is None:
            items = YList()
        if not isinstance(items, YList) or not all(isinstance(x, YStr) for x in items):
            self.err(item.kpos["items"], what, "'items' must be a sequence of strings")
            return
        append = self._append_mode(item, what, "items")
        if append is None:
            return
        if append:
            prev = self.lists.get(name)
            if prev is None:
                self.err(item.pos, what, "list has 'append' key or an append override but no list "
                         "by that name already exists")
                return
            prev.items = prev.items + list(items)
            prev.visibility = self.counter
            return
        prev = self.lists.get(name)
        self._track_dup("list", name, item.pos)
        idx = prev.index if prev else self.counter
        self.lists[name] = ListDef(name, list(items), item.pos, self.counter, idx)

    def _append_mode(self, item: YMap, what: str, key: str) -> bool | None:
        """Whether a list/macro item appends to an earlier one: an ``override`` (only
        ``{key}: append`` is valid) or the deprecated ``append: true``.  None on an error
        (already reported)."""
        if "override" in item:
            return True if self._overrides(item, what, {key}, set()) is not None else None
        if "append" not in item:
            return False
        b = self._bool(item, "append", what)
        if b is None:
            return None
        if b:
            self.warn(item.kpos["append"], what, "'append' key is deprecated; add an 'append' "
                      f"entry (e.g. '{key}: append') under 'override' instead")
        return b

    # --- macros ---
    def _macro(self, item: YMap) -> None:
        name = self._name(item, "macro")
        if name is None:
            return
        what = f"macro '{name}'"
        self._unknown_keys(item, MACRO_KEYS, what)
        if "condition" not in item:
            self.err(item.pos, what, "missing required key 'condition'")
            return
        cond = self._str(item, "condition", what)
        if cond is None:
            return
        append = self._append_mode(item, what, "condition")
        if append is None:
            return
        if append:
            prev = self.macros.get(name)
            if prev is None:
                self.err(item.pos, what, "macro has 'append' key or an append override but no "
                         "macro by that name already exists")
                return
            prev.cond = prev.cond.append(cond)
            prev.visibility = self.counter
            return
        prev = self.macros.get(name)
        self._track_dup("macro", name, item.pos)
        idx = prev.index if prev else self.counter
        self.macros[name] = MacroDef(name, Joined([cond]), item.pos, self.counter, idx)

    # --- rules ---
    def _rule(self, item: YMap) -> None:
        name = self._name(item, "rule")
        if name is None:
            return
        what = f"rule '{name}'"
        self._unknown_keys(item, RULE_KEYS, what)
        if "override" in item:
            ov = self._overrides(item, what, RULE_APPEND_OK, RULE_REPLACE_OK)
            if ov is None:
                return
            prev = self.rules.get(name)
            if prev is None:
                self.err(item.pos, what, "rule has an 'override' key but no rule by that name "
                         "already exists")
                return
            self._apply(prev, item, ov, what)
            return
        if "append" in item:
            b = self._bool(item, "append", what)
            if b is None:
                return
            if b:
                self.warn(item.kpos["append"], what, "'append' key is deprecated; add an 'append' "
                          "entry (e.g. 'condition: append') under 'override' instead")
                prev = self.rules.get(name)
                if prev is None:
                    self.err(item.pos, what, "rule has 'append' key but no rule by that name "
                             "already exists")
                    return
                for k in item:
                    if k not in ("rule", "append", "condition", "exceptions", "enabled"):
                        self.warn(item.kpos[k], what, f"key '{k}' is ignored when 'append' is true "
                                  "(only 'condition' and 'exceptions' are appended)")
                ov = {k: "append" for k in ("condition", "exceptions") if k in item}
                self._apply(prev, item, ov, what)
                return
        required = ("condition", "output", "desc", "priority")
        if "enabled" in item and not any(k in item for k in required):
            prev = self.rules.get(name)
            if prev is None:
                self.err(item.pos, what, "rule has only an 'enabled' key but no rule by that name "
                         "already exists")
                return
            b = self._bool(item, "enabled", what)
            if b is None:
                return
            self.warn(item.kpos["enabled"], what, "changing 'enabled' with an item that only has "
                      "'enabled' is deprecated; use 'override: {enabled: replace}' instead")
            prev.enabled = b
            return
        missing = [k for k in required if k not in item]
        if missing:
            self.err(item.pos, what, f"missing required key '{missing[0]}'")
            return
        cond = self._str(item, "condition", what)
        output = self._str(item, "output", what)
        desc = self._str(item, "desc", what)
        if cond is None or output is None or desc is None:
            return
        prio = self._priority(item, what)
        if prio is None:
            return
        r = RuleDef(name, Joined([cond]), output.strip(), str(desc), prio, item.pos, self.counter, 0,
                    output_pos=output.pos)
        if not self._opt_keys(r, item, what, set(item)):
            return
        prev = self.rules.get(name)
        self._track_dup("rule", name, item.pos)
        r.index = prev.index if prev else self.counter
        self.rules[name] = r

    def _priority(self, item: YMap, what: str) -> Priority | None:
        try:
            return Priority.parse(str(item["priority"]))
        except ValueError as e:
            self.err(item.kpos["priority"], what, f"invalid priority: {e}")
            return None

    def _opt_keys(self, r: RuleDef, item: YMap, what: str, keys: set) -> bool:
        ok = True
        if "source" in keys:
            s = self._str(item, "source", what)
            ok &= s is not None
            r.source = str(s or "syscall").strip() or "syscall"
        for key, attr in (("enabled", "enabled"), ("warn_evttypes", "warn_evttypes"),
                          ("skip-if-unknown-filter", "skip_unknown")):
            if key in keys:
                b = self._bool(item, key, what)
                if b is None:
                    ok = False
                else:
                    setattr(r, attr, b)
        if "tags" in keys:
            t = item["tags"]
            if t is None:
                r.tags = []
            elif not isinstance(t, YList) or not all(isinstance(x, YStr) for x in t):
                self.err(item.kpos["tags"], what, "'tags' must be a sequence of strings")
                ok = False
            else:
                r.tags = [str(x) for x in t]
        if "exceptions" in keys:
            exc = self._exceptions(item, what, append=False)
            if exc is None:
                ok = False
            else:
                r.exceptions = exc
        return ok

    def _exceptions(self, item: YMap, what: str, append: bool) -> list | None:
        v = item["exceptions"]
        if v is None:
            return []
        if not isinstance(v, YList):
            self.err(item.kpos["exceptions"], what, "'exceptions' must be a sequence")
            return None
        out = []
        for e in v:
            if not isinstance(e, YMap):
                self.err(getattr(e, "pos", v.pos), what, "each exception must be a mapping")
                return None
            if "name" not in e or not isinstance(e["name"], YStr):
                self.err(e.pos, what, "exception is missing required key 'name'")
                return None
            ename = str(e["name"])
            for k in e:
                if k not in ("name", "fields", "comps", "values"):
                    self.warn(e.kpos[k], what, f"exception '{ename}': unknown key '{k}' (ignored)")
            if not append and "fields" not in e:
                self.err(e.pos, what, f"exception '{ename}': missing required key 'fields'")
                return None
            vals = e.get("values")
            if vals is not None and not isinstance(vals, YList):
                self.err(e.kpos["values"], what, f"exception '{ename}': 'values' must be a sequence")
                return None
            out.append(Exception_(ename, e.get("fields"), e.get("comps"), list(vals or []), e.pos))
        return out

    def _apply(self, r: RuleDef, item: YMap, ov: dict, what: str) -> None:
        """Apply an override (append/replace per key) to an existing rule."""
        for k, op in ov.items():
            if k == "condition":
                c = self._str(item, "condition", what)
                if c is None:
                    return
                r.cond = r.cond.append(c) if op == "append" else Joined([c])
            elif k in ("output", "desc"):
                s = self._str(item, k, what)
                if s is None:
                    return
                cur = r.output if k == "output" else r.desc
                new = f"{cur} {s.strip() if k == 'output' else s}" if op == "append" else \
                    (s.strip() if k == "output" else str(s))
                setattr(r, k, new)
                if k == "output" and op == "replace":
                    r.output_pos = s.pos
            elif k == "priority":
                p = self._priority(item, what)
                if p is None:
                    return
                r.priority = p
            elif k == "tags":
                t = item["tags"]
                if not isinstance(t, YList) or not all(isinstance(x, YStr) for x in t):
                    self.err(item.kpos["tags"], what, "'tags' must be a sequence of strings")
                    return
                r.tags = (r.tags + [str(x) for x in t if str(x) not in r.tags]) if op == "append" \
                    else [str(x) for x in t]
            elif k == "exceptions":
                exc = self._exceptions(item, what, append=(op == "append"))
                if exc is None:
                    return
                if op == "replace":
                    r.exceptions = exc
                else:
                    byname = {e.name: e for e in r.exceptions}
                    for e in exc:
                        if e.name in byname:
                            byname[e.name].values = byname[e.name].values + e.values
                        elif e.fields is None:
                            self.err(e.pos, what, f"exception '{e.name}': appending values to an "
                                     "exception that does not exist (give 'fields' to define it)")
                            return
                        else:
                            r.exceptions.append(e)
                            byname[e.name] = e
            elif k in ("enabled", "warn_evttypes", "skip-if-unknown-filter"):
                self._opt_keys(r, item, what, {k})
            # capture / capture_duration: accepted, no effect (no capture on alert in Falconet)
        r.visibility = self.counter


def YStr_empty(pos: Pos) -> YStr:
    s = YStr("")
    s.pos = pos
    s.tag = "str"
    s.style = None
    s.raw = ""
    s.raw_start = pos
    return s


def _parse_version(v) -> tuple | None:
    if v is None:
        return None
    t = str(v).strip()
    try:
        return tuple(int(x) for x in t.split("."))
    except ValueError:
        return None
