"""Building the enabled channels from configuration, keys named as Falco names them.

Each ``<channel>_output`` block has Falco's keys (``enabled``, ``filename``, ``program``,
``url``, ``keep_alive``...) plus two of Falconet's: ``min_priority`` (the least severe alert
the channel receives) and ``queue_capacity`` (how many alerts may wait for it before new ones
are dropped; defaults to ``outputs_queue.capacity``).  Every error names the key.
"""

from __future__ import annotations

from ..config import Config
from ..errors import ConfigError
from .base import DEFAULT_QUEUE_CAPACITY, Channel, Formatter, Section
from .file import FileChannel, check_filename
from .http import HttpChannel, build_ssl_context
from .program import ProgramChannel
from .stdout import StdoutChannel
from .syslog import SyslogChannel


def default_capacity(cfg: Config) -> int:
    cap = Section(cfg, "outputs_queue").get("capacity", int, DEFAULT_QUEUE_CAPACITY)
    if cap <= 0:
        # Falco's 0 means unbounded; Falconet's queues are bounded by design.
        raise ConfigError(f"{cfg.source}: setting 'outputs_queue.capacity' must be greater than "
                          f"zero (queues are always bounded so capture never waits), got {cap!r}")
    return cap


def build_channels(cfg: Config) -> list[Channel]:
    """The channels enabled in ``cfg``, configured but not started."""
    formatter = Formatter(cfg)
    buffered = cfg.typed("buffered_outputs", bool, False)
    cap = default_capacity(cfg)
    channels: list[Channel] = []

    sec = Section(cfg, "stdout_output")
    if sec.enabled(True):
        channels.append(sec.apply_common(StdoutChannel(formatter, buffered), cap))

    sec = Section(cfg, "file_output")
    if sec.enabled():
        filename = sec.get("filename", str, "./events.txt")
        check_filename(filename)
        channels.append(sec.apply_common(FileChannel(
            formatter, filename, sec.get("keep_alive", bool, False), buffered), cap))

    sec = Section(cfg, "program_output")
    if sec.enabled():
        channels.append(sec.apply_common(ProgramChannel(
            formatter, sec.get("program", str, ""), sec.get("keep_alive", bool, False),
            buffered), cap))

    sec = Section(cfg, "http_output")
    if sec.enabled():
        channels.append(sec.apply_common(_http(cfg, sec), cap))

    sec = Section(cfg, "syslog_output")
    if sec.enabled():
        channels.append(sec.apply_common(SyslogChannel(
            formatter, sec.get("address", str, "/dev/log"), sec.get("facility", str, "user"),
            sec.get("ident", str, "falconet")), cap))
    return channels


def _http(cfg: Config, sec: Section) -> HttpChannel:
    url = sec.get("url", str, "")
    if not url:
        raise ConfigError(f"{cfg.source}: setting 'http_output.url' must be set when "
                          "http_output.enabled is true")
    headers = sec.get("headers", dict, {})
    for k, v in headers.items():
        if not isinstance(k, str) or not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise ConfigError(f"{cfg.source}: setting 'http_output.headers' must map header "
                              f"names to strings, got {k!r}: {v!r}")
    fmt = sec.get("format", str, "json")
    if fmt not in ("json", "text"):
        raise ConfigError(f"{cfg.source}: setting 'http_output.format' must be json or text, "
                          f"got {fmt!r}")
    ctx = None
    if url.startswith("https:"):
        ctx = build_ssl_context(sec, sec.get("insecure", bool, False))
    return HttpChannel(
        Formatter(cfg, json_output=True), url,
        user_agent=sec.get("user_agent", str, "falcosecurity/falco"),
        headers={k: str(v) for k, v in headers.items()},
        timeout=sec.positive("timeout", float, 5.0),
        keep_alive=sec.get("keep_alive", bool, True),
        compress=sec.get("compress_uploads", bool, False),
        echo=sec.get("echo", bool, False),
        text_body=fmt == "text",
        retries=sec.positive("retries", int, 3, allow_zero=True),
        backoff=sec.positive("retry_backoff", float, 0.2),
        max_backoff=sec.positive("retry_max_backoff", float, 5.0),
        max_consecutive_timeouts=sec.positive("max_consecutive_timeouts", int, 5),
        ssl_context=ctx)
