"""Configuration: one YAML file in the style of falco.yaml, plus ``-o key=value`` overrides.

The documented defaults live in ``config/falconet.yaml`` (installed inside the package as
``collector/_defaults/falconet.yaml``).  A user file is merged over them key by key; ``-o``
overrides are applied last, their values parsed as YAML scalars (``-o a.b=true`` gives a bool,
``-o rules_files=[a,b]`` a list).  Lookup by dotted path: ``cfg.get("http_output.url")``.
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from typing import Any

import yaml

from .errors import ConfigError

DEFAULT_PATHS = ("/etc/falconet/falconet.yaml",)
_MISSING = object()


def _load_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}{loc}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


def default_text() -> str:
    return resources.files("collector._defaults").joinpath("falconet.yaml").read_text()


def _merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


class Config:
    """A loaded configuration.  ``source`` names the file the user values came from."""

    def __init__(self, data: dict[str, Any], source: str = "<defaults>"):
        self.data = data
        self.source = source

    @classmethod
    def load(cls, path: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> "Config":
        data = _load_yaml(default_text(), "<built-in defaults>")
        source = "<defaults>"
        if path is None:
            path = next((p for p in DEFAULT_PATHS if os.path.exists(p)), None)
        elif not os.path.exists(path):
            raise ConfigError(f"{path}: configuration file not found")
        if path is not None:
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise ConfigError(f"{path}: cannot read configuration: {e.strerror}") from None
            _merge(data, _load_yaml(text, path))
            source = path
        cfg = cls(data, source)
        for item in overrides:
            cfg.apply_override(item)
        return cfg

    def apply_override(self, item: str) -> None:
        """Apply one ``key.path=value`` override (Falco's ``-o``)."""
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"-o {item!r}: expected key=value (e.g. -o json_output=true)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        self.set(key, value)

    def get(self, dotted: str, default: Any = _MISSING) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is _MISSING:
                    raise ConfigError(f"configuration key {dotted!r} is not set")
                return default
            node = node[part]
        return node

    def set(self, dotted: str, value: Any) -> None:
        parts = dotted.split(".")
        node = self.data
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        node[parts[-1]] = value

    def typed(self, dotted: str, kind: type, default: Any = _MISSING) -> Any:
        """Get a value and check its type, with an error naming the key and the file."""
        value = self.get(dotted, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(
                f"{self.source}: setting {dotted!r} must be {kind.__name__}, got {value!r}")
        return value


def string_table_caps(cfg: Config) -> tuple[int, int]:
    """(max ids, max bytes) of a live source's string table: ``pipeline.string_table_max_ids``
    and ``pipeline.string_table_max_bytes`` (0 = no cap; see config/falconet.yaml)."""
    from .batch import DEFAULT_STRINGS_MAX_BYTES, DEFAULT_STRINGS_MAX_IDS
    out = []
    for key, default in (("pipeline.string_table_max_ids", DEFAULT_STRINGS_MAX_IDS),
                         ("pipeline.string_table_max_bytes", DEFAULT_STRINGS_MAX_BYTES)):
        v = cfg.typed(key, int, default)
        if v < 0:
            raise ConfigError(f"{cfg.source}: setting {key!r} must be >= 0 (0 = no cap), "
                              f"got {v}")
        out.append(v)
    return out[0], out[1]
