"""Rules files as YAML, with a file/line/column for every item, key and value.

PyYAML is used only to *compose* the node graph (no Python objects are constructed from
tags), so the pitfalls listed in testdata/falco-rules/SOURCE.md cannot bite:

* a bare ``=`` (``comps: [=, in]``) resolves to YAML 1.1's ``!!value`` tag, whose constructor
  fails; we drop that implicit resolver and never construct tagged values anyway;
* a plain scalar starting with ``!`` (``desc: != after evt.type``) is read as a local tag;
  yaml-cpp keeps such text, so we rebuild the scalar as ``<tag> <value>``;
* YAML 1.1 implicit typing (``yes``/``on`` booleans, octal, sexagesimal ints) does not
  apply: every scalar keeps its source text (:class:`YStr`), and the consumer decides how
  to read it, as yaml-cpp's ``as<T>()`` does.

The result of :func:`load` is a list of documents made of :class:`YMap` (dict),
:class:`YList` (list) and :class:`YStr` (str) / ``None``, each carrying ``pos``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import yaml

try:  # the C composer is ~10x faster; marks are equivalent
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Pos:
    file: str
    line: int   # 1-based
    col: int    # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class YStr(str):
    """A scalar's text with its position, tag, style and raw source (for conditions)."""

    pos: Pos
    tag: str
    style: str | None
    raw: str            # the scalar's source text, for mapping offsets to line/column
    raw_start: Pos

    def offset_pos(self, offset: int) -> Pos:
        """File position of character ``offset`` of the scalar's value (best effort)."""
        return _map_offset(self, offset)


class YMap(dict):
    pos: Pos
    kpos: dict          # key -> Pos of the key


class YList(list):
    pos: Pos


class YamlError(Exception):
    def __init__(self, pos: Pos, msg: str):
        super().__init__(f"{pos}: {msg}")
        self.pos = pos
        self.msg = msg


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    pass


# Drop YAML 1.1's `=` -> !!value resolver (SOURCE.md pitfall 1).
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:value"]
    for k, v in _BaseLoader.yaml_implicit_resolvers.items()
}

_STD_TAG = "tag:yaml.org,2002:"


def _pos(path: str, mark) -> Pos:
    return Pos(path, mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)

    def pos_of_index(self, idx: int) -> Pos:
        line = bisect.bisect_right(self._line_starts, idx) - 1
        return Pos(self.path, line + 1, idx - self._line_starts[line] + 1)

    def build(self, node):
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            out = YList(self.build(n) for n in node.value)
            out.pos = _pos(self.path, node.start_mark)
            return out
        if isinstance(node, yaml.MappingNode):
            out = YMap()
            out.pos = _pos(self.path, node.start_mark)
            out.kpos = {}
            for kn, vn in node.value:
                key = self.build(kn)
                kp = _pos(self.path, kn.start_mark)
                if key is None or isinstance(key, (YMap, YList)):
                    raise YamlError(kp, "mapping keys must be plain strings")
                if key in out:
                    first = out.kpos[key]
                    raise YamlError(kp, f"duplicate key '{key}' (first given at line {first.line})")
                out[key] = self.build(vn)
                out.kpos[key] = kp
            return out
        raise YamlError(_pos(self.path, node.start_mark), "unsupported YAML node")  # pragma: no cover

    def scalar(self, node: yaml.ScalarNode):
        tag = node.tag or ""
        if tag == _STD_TAG + "null" and node.style is None:
            return None
        value = node.value
        if tag.startswith("!") and not tag.startswith("!!"):
            # `desc: != after evt.type`: yaml-cpp keeps the text, PyYAML made it a tag.
            value = f"{tag} {value}" if value else tag
            tag = _STD_TAG + "str"
        s = YStr(value)
        s.pos = _pos(self.path, node.start_mark)
        s.tag = tag.removeprefix(_STD_TAG)
        s.style = node.style
        si, ei = node.start_mark.index, node.end_mark.index
        s.raw = self.text[si:ei] if 0 <= si <= ei <= len(self.text) else ""
        s.raw_start = self.pos_of_index(si) if s.raw else s.pos
        return s


def load(path: str, text: str | None = None) -> list:
    """Parse a rules file into position-carrying documents.  Raises YamlError."""
    if text is None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise YamlError(Pos(path, 1, 1), f"cannot read rules file: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise YamlError(Pos(path, 1, 1), f"rules file is not valid UTF-8: {e.reason}") from None
    b = _Builder(path, text)
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos = _pos(path, mark) if mark is not None else Pos(path, 1, 1)
        raise YamlError(pos, f"invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:  # pragma: no cover
        raise YamlError(Pos(path, 1, 1), f"invalid YAML: {e}") from None
    return [b.build(n) for n in nodes if n is not None]


# --- mapping a value offset back to the file -----------------------------------------------


def _map_offset(s: YStr, offset: int) -> Pos:
    """Align the scalar's value with its raw source, treating whitespace runs as equal.

    Works for plain, folded (``>``) and literal (``|``) scalars and for quoted scalars
    without escapes; otherwise falls back to the scalar's start.
    """
    raw = s.raw
    if not raw:
        return s.pos
    j = 0
    if s.style in (">", "|"):
        nl = raw.find("\n")
        if nl < 0:
            return s.pos
        j = nl + 1
    elif s.style in ('"', "'"):
        j = 1
    value = str(s)
    i = 0
    n = len(raw)
    while i < len(value) and i < offset:
        c = value[i]
        if c.isspace():
            if j < n and raw[j].isspace():
                while j < n and raw[j].isspace():
                    j += 1
            i += 1
            while i < len(value) and value[i].isspace() and i < offset:
                i += 1
            continue
        while j < n and raw[j].isspace() and raw[j] != c:
            j += 1
        if j >= n or raw[j] != c:
            return s.pos
        i += 1
        j += 1
    if i == offset:
        while j < n and raw[j].isspace() and (offset >= len(value) or not value[offset].isspace()):
            j += 1
    # j is an index into raw; convert to file position from raw_start.
    line, col = s.raw_start.line, s.raw_start.col
    for ch in raw[:j]:
        if ch == "\n":
            line += 1
            col = 1
        else:
            col += 1
    return Pos(s.pos.file, line, col)


def as_bool(v) -> bool | None:
    """yaml-cpp's ``as<bool>()``: y/yes/true/on and n/no/false/off, any case; else None."""
    if v is None or isinstance(v, (YMap, YList)):
        return None
    t = str(v).strip()
    if t.lower() in ("y", "yes", "true", "on") and t in (t.lower(), t.upper(), t.capitalize()):
        return True
    if t.lower() in ("n", "no", "false", "off") and t in (t.lower(), t.upper(), t.capitalize()):
        return False
    return None
