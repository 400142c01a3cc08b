from __future__ import annotations

import pytest

from collector.ui import auth
from collector.ui.server import UIServer
from collector.ui.settings import UISettings

from .helpers import Client


class RunningUI:
    def __init__(self, server: UIServer, password: str):
        self.server, self.password = server, password
        self.url = server.url
        self.store = server.store

    def client(self) -> Client:
        return Client(self.url)

    def logged_in(self) -> Client:
        c = self.client()
        assert c.login(self.password).status == 303
        return c


@pytest.fixture(autouse=True)
def fast_scrypt(request, monkeypatch):
    """Cheaper password hashing in tests (same code path); `@pytest.mark.real_scrypt` opts out."""
    if request.node.get_closest_marker("real_scrypt") is None:
        monkeypatch.setattr(auth, "SCRYPT_N", 2 ** 10)
    monkeypatch.setattr(UIServer, "poll_interval", 0.05)


@pytest.fixture
def make_ui(tmp_path):
    """Start UIs on free ports with databases in tmp_path; closed after the test."""
    started: list[UIServer] = []

    def start(**overrides) -> RunningUI:
        settings = UISettings(listen_port=0, db_path=str(tmp_path / "webui.db"),
                              retention_interval_s=0.2, synchronous="normal")
        for k, v in overrides.items():
            setattr(settings, k, v)
        server = UIServer(settings).start()
        started.append(server)
        password = server.auth.ensure_password() or ""
        return RunningUI(server, password)

    yield start
    for s in started:
        s.close()


@pytest.fixture
def ui(make_ui) -> RunningUI:
    return make_ui()


def pytest_configure(config):
    config.addinivalue_line("markers", "real_scrypt: hash passwords at production cost")
