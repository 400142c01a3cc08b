"""Shared fixtures for the output tests: alerts, configs, a manager that always closes, certs."""

from __future__ import annotations

import datetime
import ipaddress
import os
import threading
import time

import pytest

from collector.alert import Alert, Priority
from collector.config import Config
from collector.outputs import Channel, OutputManager

T0 = 1_743_606_903_434_319_636  # 2025-04-02T15:15:03.434319636Z


def make_alert(i: int = 0, priority: Priority = Priority.WARNING, rule: str = "Read sensitive file",
               tags: tuple[str, ...] = ("filesystem", "T1555"), source: str = "syscall",
               **fields) -> Alert:
    of = {"evt.time": T0 + i, "fd.name": "/etc/shadow", "proc.name": "cat", "proc.tty": 34817,
          "k8s.pod.name": None, "n": i}
    of.update(fields)
    return Alert(time_ns=T0 + i, rule=rule, priority=priority,
                 output=f"Sensitive file opened (file=/etc/shadow n={i})", output_fields=of,
                 source=source, tags=tags)


def config(*overrides: str, quiet: bool = True) -> Config:
    """Built-in defaults plus overrides; stdout off unless asked for (keeps pytest output clean)."""
    base = ["stdout_output.enabled=false"] if quiet else []
    return Config.load(None, [*base, *overrides])


class Probe(Channel):
    """A channel that records what it is given (optionally blocking until released)."""

    def __init__(self, name: str = "probe", capacity: int = 10000, gate: threading.Event | None = None):
        super().__init__()
        self.name = name
        self.queue_capacity = capacity
        self.got: list[Alert] = []
        self.gate = gate

    def deliver(self, alert: Alert) -> None:
        if self.gate is not None:
            self.gate.wait(30)
        self.got.append(alert)


@pytest.fixture
def managers():
    """Build OutputManagers that are closed at the end of the test whatever happens."""
    made: list[OutputManager] = []

    def build(cfg: Config, hostname: str = "node1") -> OutputManager:
        m = OutputManager(cfg, hostname)
        made.append(m)
        return m

    yield build
    for m in made:
        m.close(timeout=2)


def wait_for(pred, timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


# -- certificates for mutual TLS, generated per test session -------------------------------

def _cert(subject_cn: str, key, issuer_cn: str, issuer_key, ca: bool, sans=()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if sans:
        names = [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s)
                 for s in sans]
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """ca.crt, server.{crt,key} (localhost, 127.0.0.1), client.{crt,key}, and a rogue client
    signed by another CA -- written as PEM files; returns a dict of paths."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    d = tmp_path_factory.mktemp("certs")

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def write(name, obj):
        path = d / name
        if hasattr(obj, "private_bytes"):
            data = obj.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        else:
            data = obj.public_bytes(serialization.Encoding.PEM)
        path.write_bytes(data)
        os.chmod(path, 0o600)
        return str(path)

    ca_key, other_key = key(), key()
    ca = _cert("falconet test CA", ca_key, "falconet test CA", ca_key, True)
    other = _cert("rogue CA", other_key, "rogue CA", other_key, True)
    s_key, c_key, r_key = key(), key(), key()
    paths = {
        "ca": write("ca.crt", ca),
        "server_crt": write("server.crt", _cert("localhost", s_key, "falconet test CA", ca_key,
                                                 False, ("localhost", "127.0.0.1"))),
        "server_key": write("server.key", s_key),
        "client_crt": write("client.crt", _cert("subscriber", c_key, "falconet test CA", ca_key,
                                                 False)),
        "client_key": write("client.key", c_key),
        "rogue_crt": write("rogue.crt", _cert("rogue", r_key, "rogue CA", other_key, False)),
        "rogue_key": write("rogue.key", r_key),
    }
    write("other-ca.crt", other)
    return paths
