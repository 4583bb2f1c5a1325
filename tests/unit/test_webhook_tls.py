"""The webhook's certificate reload: a real uvicorn server over TLS, the mounted Secret swapped as
the kubelet does it, and what new connections are then served."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from kinship.cli import app
from kinship.profile import ProfilePolicy
from kinship.watch import Reflector
from predictor.tls import CertificateReloader
from predictor.webhook import LimitRangeCache, ProfileCache, QuotaCache, create_app, server_config
from tests.serving import eventually, free_port

POLL_SECONDS = 0.05


def soon(check: Callable[[], Any]) -> Any:
    """`eventually` at the reloader's test poll interval: a renewal is seen within a few polls."""
    return eventually(check, timeout=5.0, poll=POLL_SECONDS)


def make_pair(directory: Path, name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for IP:127.0.0.1 (CN=name) and its key, PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", "k.pem", "-out", "c.pem"],
        check=True, capture_output=True, cwd=directory, timeout=60,
    )  # fmt: skip
    return (directory / "c.pem").read_bytes(), (directory / "k.pem").read_bytes()


class SecretVolume:
    """A Secret volume as the kubelet lays it out: tls.crt -> ..data/tls.crt, ..data -> ..<version>,
    and an update written to a new version directory, then ..data renamed over (AtomicWriter)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = 0
        root.mkdir()
        for name in ("tls.crt", "tls.key"):
            (root / name).symlink_to(Path("..data") / name)

    @property
    def cert(self) -> Path:
        return self.root / "tls.crt"

    @property
    def key(self) -> Path:
        return self.root / "tls.key"

    def write(self, cert: bytes, key: bytes) -> None:
        self.versions += 1
        version = self.root / f"..2026_01_01_00_00_0{self.versions}"
        version.mkdir()
        (version / "tls.crt").write_bytes(cert)
        (version / "tls.key").write_bytes(key)
        (self.root / "..data_tmp").symlink_to(version.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")


def served_certificate(port: int) -> bytes:
    """The DER certificate a new TLS connection to the port is shown."""
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, client.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


@contextlib.contextmanager
def webhook_server(cert: Path, key: Path) -> Iterator[int]:
    """The webhook's app behind uvicorn over TLS, with the reloader wired as `predict webhook`
    wires it; the port once serving."""
    reloader = CertificateReloader(cert, key, poll_interval_seconds=POLL_SECONDS)
    port = free_port()
    app = create_app(ProfileCache(), LimitRangeCache(), QuotaCache(), ProfilePolicy())
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, reloader))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    reloader.start()
    try:
        soon(lambda: server.started)
        yield port
    finally:
        reloader.stop()
        server.should_exit = True
        thread.join(timeout=10)
        reloader.join(timeout=10)


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    return make_pair(tmp_path / "a", "a"), make_pair(tmp_path / "b", "b")


def test_a_renewed_secret_is_served_to_new_connections_without_a_restart(
    tmp_path: Path, pairs: tuple[tuple[bytes, bytes], tuple[bytes, bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    (cert_a, key_a), (cert_b, key_b) = pairs
    volume = SecretVolume(tmp_path / "tls")
    volume.write(cert_a, key_a)
    caplog.set_level(logging.INFO, logger="kinship.predictor.tls")
    with webhook_server(volume.cert, volume.key) as port:
        assert served_certificate(port) == der(cert_a)
        volume.write(cert_b, key_b)
        soon(lambda: served_certificate(port) == der(cert_b))
    loaded = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serving the certificate")]
    assert len(loaded) == 2 and "notAfter" in loaded[1] and "unknown" not in loaded[1]


def test_a_half_written_pair_keeps_the_old_one_served_and_warns_until_it_is_whole(
    tmp_path: Path, pairs: tuple[tuple[bytes, bytes], tuple[bytes, bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    (cert_a, key_a), (cert_b, key_b) = pairs
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(cert_a)
    key.write_bytes(key_a)
    caplog.set_level(logging.DEBUG, logger="kinship.predictor.tls")
    with webhook_server(cert, key) as port:
        cert.write_bytes(cert_b)  # a copy in place, the key not yet written
        soon(lambda: any(r.levelno == logging.WARNING for r in caplog.records))
        soon(lambda: sum(r.levelno == logging.DEBUG for r in caplog.records) >= 2)  # retried
        assert served_certificate(port) == der(cert_a)
        key.write_bytes(key_b)
        soon(lambda: served_certificate(port) == der(cert_b))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per problem, not per poll
    assert str(cert) in warnings[0] and str(key) in warnings[0] and "KEY_VALUES_MISMATCH" in warnings[0]


def test_a_missing_file_during_a_swap_keeps_the_old_pair(
    tmp_path: Path, pairs: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]
) -> None:
    (cert_a, key_a), _ = pairs
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(cert_a)
    key.write_bytes(key_a)
    reloader = CertificateReloader(cert, key)
    reloader.ssl_context_factory(None, lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    key.unlink()
    assert reloader.poll() is False


def test_the_cli_serves_through_the_reloader(
    tmp_path: Path, pairs: tuple[tuple[bytes, bytes], tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    (cert_a, key_a), (cert_b, key_b) = pairs
    volume = SecretVolume(tmp_path / "tls")
    volume.write(cert_a, key_a)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    served: list[ssl.SSLContext | None] = []

    def run(server: uvicorn.Server) -> None:  # the config as the command built it, not served
        server.config.load()
        served.append(server.config.ssl)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(Reflector, "start", lambda self: None)  # no API server here
    result = CliRunner().invoke(
        app,
        ["predict", "webhook", "--tls-cert-file", str(volume.cert), "--tls-key-file", str(volume.key),
         "--kubeconfig", str(kubeconfig), "--log-format", "text"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (context,) = served
    assert context is not None and context.sni_callback is not None
    reloader = context.sni_callback.__self__  # type: ignore[attr-defined]
    assert isinstance(reloader, CertificateReloader)
    volume.write(cert_b, key_b)
    assert reloader.poll() is True
