"""Who may send spans: the gRPC server credentials (TLS, client certificates) and the bearer-token check.

Any sender that reaches the receiver writes the graph, so authentication is what keeps one pod
from rewriting another team's AgentGraph. The token is checked in a server interceptor, before
the request reaches the Export handler, so a refused call decodes and ingests nothing.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from profiler.otlp.config import OtlpReceiverConfig, read_pem

log = logging.getLogger(__name__)


class CertificateFiles:
    """The server's key pair and client CA, read again on a handshake after the files change.

    grpcio asks the fetcher before every TLS handshake; a stat of three files is cheap next to a
    handshake, and it lets a renewed cert-manager Secret take effect without a restart. A renewal
    caught half-written (unreadable, not PEM) keeps the previous pair until the next handshake.
    """

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self._paths = tuple(p for p in (cert, key, client_ca) if p is not None)
        self._cert, self._key, self._client_ca = cert, key, client_ca
        self._stamp = self._stat()
        self.initial = self._load()

    def _stat(self) -> tuple[tuple[int, int], ...]:
        try:
            return tuple((s.st_mtime_ns, s.st_size) for s in (os.stat(p) for p in self._paths))
        except OSError:
            return ()

    def _load(self) -> Any:
        pair = (read_pem(self._key), read_pem(self._cert))
        ca = read_pem(self._client_ca) if self._client_ca is not None else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca)

    def fetch(self) -> Any:
        """None (keep the current pair) unless the files changed and still read as PEM."""
        stamp = self._stat()
        if not stamp or stamp == self._stamp:
            return None
        try:
            loaded = self._load()
        except ValueError as exc:
            log.warning("OTLP receiver keeps its previous certificate: %s", exc)
            return None
        self._stamp = stamp
        log.info("OTLP receiver loaded a renewed certificate from %s", self._cert)
        return loaded


def server_credentials(config: OtlpReceiverConfig) -> grpc.ServerCredentials | None:
    """TLS credentials for the listening port, None for plaintext."""
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    files = CertificateFiles(config.tls_cert_file, config.tls_key_file, config.client_ca_file)
    return grpc.dynamic_ssl_server_credentials(
        files.initial, files.fetch, require_client_authentication=config.client_ca_file is not None
    )


def _refuse(_request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


class BearerToken(grpc.ServerInterceptor):  # type: ignore[misc]
    """Lets a call through only with `authorization: Bearer <token>`; others get UNAUTHENTICATED."""

    def __init__(self, token: bytes, on_refused: Callable[[], None]) -> None:
        self._expected = b"bearer " + token
        self._on_refused = on_refused
        self._refusal = grpc.unary_unary_rpc_method_handler(_refuse)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        presented = b""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str):
                presented = value.encode("utf-8", "replace")
                break
        # The scheme is case-insensitive (RFC 7235); the token itself is compared in constant time.
        scheme, _, token = presented.partition(b" ")
        if hmac.compare_digest(scheme.lower() + b" " + token.strip(), self._expected):
            return continuation(handler_call_details)
        self._on_refused()
        return self._refusal
