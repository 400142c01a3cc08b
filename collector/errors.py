"""Falconet's exception tree.  Every error a user can meet derives from FalconetError and
carries a message that names the file, line, offset or setting involved; the command line
prints ``falconet: <message>`` and exits non-zero, never a traceback.

    FalconetError
    ├── ConfigError            bad configuration file, key or -o override
    ├── CaptureError           a capture file (.fcap / .scap) that cannot be read further
    │   └── FormatMismatch     a file of another format (carries the detected type)
    ├── RuleError              rules files that do not load or compile (file:line:col)
    ├── DriverError            kernel module build/load/attach problems
    │   └── ABIMismatch        module and userspace disagree on the ABI version/layout
    ├── OutputError            an output channel that cannot be configured or started
    └── NotAvailable           a subcommand or feature whose part is not built yet
"""

from __future__ import annotations


class FalconetError(Exception):
    """Base of every user-facing error."""

    exit_code = 1


class ConfigError(FalconetError):
    pass


class CaptureError(FalconetError):
    """Reading a capture stopped; ``offset`` is the byte offset of the damage (or None)."""

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}: "
        if offset is not None:
            where += f"at byte offset {offset}: "
        super().__init__(where + message)
        self.path = path
        self.offset = offset


class FormatMismatch(CaptureError):
    def __init__(self, message: str, path: str | None = None, detected: str = "unknown"):
        super().__init__(message, path)
        self.detected = detected


class RuleError(FalconetError):
    pass


class DriverError(FalconetError):
    pass


class ABIMismatch(DriverError):
    pass


class OutputError(FalconetError):
    pass


class NotAvailable(FalconetError):
    exit_code = 2
