"""Falco's rules language, compiled to vectorized plans.

Pipeline stages, one module each:

    yamlsrc    YAML -> items with file/line/column (PyYAML pitfalls handled)
    collector  items -> list/macro/rule definitions (override/append, Falco's key checks)
    parser     condition text -> AST (grammar in its docstring, depth-capped)
    check      macro/list expansion, exceptions, field/operator/value type checks, evttypes
    plan       checked AST -> numpy plan (per-distinct-string tables, set membership)
    reference  the slow scalar evaluator (tests and benchmarks only)
    output     %field output formats -> Alert (Falco's text and JSON via collector.alert)
    engine     RuleEngine: selection, event-type index, process(), stats()
    reload     watch rules/config files (inotify, polling fallback), swap atomically

The pipeline calls::

    engine = RuleEngine.load(paths, cfg, tags=(), disable_tags=(), disable_substrings=(),
                             all_events=False, hostname=None)     # RuleError on any error
    engine.columns, engine.event_types, engine.process(batch), engine.stats(), engine.warnings
"""

from .collector import Msg
from .engine import IGNORED_EVENT_NAMES, RuleEngine, rules_paths, validate

__all__ = ["IGNORED_EVENT_NAMES", "Msg", "RuleEngine", "rules_paths", "validate"]
