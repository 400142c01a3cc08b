"""The process/fd state engine: thread, process and fd tables updated in event order, and the
state columns every Falco field of the official rules needs (proc.*, fd.*, user.*, ...).

    from collector.state import StateEngine
    eng = StateEngine(strings, snapshot)          # snapshot: collector.sources schema
    batch = eng.enrich(batch, columns)            # columns: names from collector/state/fields.py

Modules: engine (StateEngine), core_c (ext/state.c), pure / pure_events (the pure twin),
model (layouts, constants), columns (gathers), fields (the Falco field <-> column table),
procscan (/proc snapshot).
"""

from .engine import StateEngine
from .pure import STATE_EVENT_TYPES

__all__ = ["STATE_EVENT_TYPES", "StateEngine"]
