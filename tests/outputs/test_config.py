"""Bad output configuration: one clear error naming the key (and the file), never a traceback."""

from __future__ import annotations

import re

import pytest

from collector.config import Config
from collector.errors import ConfigError, FalconetError, OutputError
from collector.outputs import OutputManager

from .conftest import config


@pytest.mark.parametrize("overrides, error, message", [
    (["stdout_output.enabled=true", "stdout_output.min_priority=loud"], ConfigError,
     "'stdout_output.min_priority': unknown priority 'loud'"),
    (["stdout_output.enabled=true", "stdout_output.queue_capacity=0"], ConfigError,
     "'stdout_output.queue_capacity' must be greater than zero"),
    (["stdout_output.enabled=yes please"], ConfigError,
     "'stdout_output.enabled' must be true or false"),
    (["outputs_queue.capacity=0"], ConfigError, "'outputs_queue.capacity' must be greater than zero"),
    (["outputs_queue.drop_alert_priority=meh"], ConfigError, "outputs_queue.drop_alert_priority"),
    (["file_output.enabled=true", "file_output.filename="], OutputError,
     "file_output.filename: must be set"),
    (["file_output.enabled=true", "file_output.filename=/"], OutputError,
     "file_output.filename: '/' is a directory"),
    (["program_output.enabled=true", "program_output.program="], OutputError,
     "program_output.program: must be set"),
    (["syslog_output.enabled=true", "syslog_output.facility=kitchen"], OutputError,
     "syslog_output.facility: unknown facility 'kitchen'"),
    (["syslog_output.enabled=true", "syslog_output.address=http://x:1"], OutputError,
     "syslog_output.address: 'http://x:1'"),
    (["grpc.enabled=true", "grpc.unix_socket_mode=rw"], ConfigError, "'grpc.unix_socket_mode'"),
    (["grpc.enabled=true", "grpc.bind_address=unix://"], ConfigError, "names no socket path"),
    (["grpc.enabled=true", "grpc_output.history_size=0"], ConfigError,
     "'grpc_output.history_size' must be greater than zero"),
    (["stdout_output=[1]"], ConfigError, "'stdout_output' must be a mapping"),
])
def test_bad_values_name_the_key(overrides, error, message):
    with pytest.raises(error, match=re.escape(message)):
        OutputManager(config(*overrides))


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "falconet.yaml"
    path.write_text("http_output:\n  enabled: true\n  url: http://x/\n  timeout: soon\n")
    with pytest.raises(ConfigError) as e:
        OutputManager(Config.load(str(path)))
    assert str(e.value) == (f"{path}: setting 'http_output.timeout' must be a number, "
                            "got 'soon'")


def test_start_errors_name_the_key(tmp_path):
    m = OutputManager(config("file_output.enabled=true",
                             f"file_output.filename={tmp_path}/missing/dir/events.txt"))
    with pytest.raises(OutputError, match="file_output.filename: cannot open"):
        m.start()
    m = OutputManager(config("syslog_output.enabled=true",
                             f"syslog_output.address={tmp_path}/no-log"))
    with pytest.raises(OutputError, match="syslog_output.address: .* does not exist"):
        m.start()


def test_every_output_error_is_a_falconet_error():
    # The CLI prints FalconetError as one line; anything else would be a traceback.
    assert issubclass(OutputError, FalconetError) and issubclass(ConfigError, FalconetError)


def test_default_config_builds_and_documents_every_key():
    """Every key the outputs read exists in config/falconet.yaml with a comment above it."""
    from collector.config import default_text
    text = default_text()
    cfg = Config.load(None)
    m = OutputManager(cfg)
    assert [c.name for c in m.channels] == ["stdout"]
    for block in ("outputs_queue", "stdout_output", "file_output", "program_output",
                  "http_output", "syslog_output", "grpc", "grpc_output"):
        assert isinstance(cfg.get(block), dict), block
        assert re.search(rf"^{block}:\n", text, re.MULTILINE), block
        for key in cfg.get(block):
            if key in ("min_priority", "queue_capacity"):
                continue  # documented once, at the top of the section
            assert re.search(rf"^\s*# {key}:", text, re.MULTILINE), f"{block}.{key} is not documented"
    for key in ("min_priority", "queue_capacity"):
        assert re.search(rf"^#\s+{key}:", text, re.MULTILINE), key
    m.close()


def test_missing_grpc_runtime_is_one_clear_error(monkeypatch):
    import sys

    import collector.outputs.grpc as pkg
    monkeypatch.delattr(pkg, "falconet_pb2", raising=False)
    monkeypatch.setitem(sys.modules, "collector.outputs.grpc.falconet_pb2", None)
    with pytest.raises(OutputError, match=r"grpc.enabled: gRPC support cannot load .*grpcio>="):
        OutputManager(config("grpc.enabled=true"))
