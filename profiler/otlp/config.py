"""The OTLP receiver's one config object: every default in one place, each bound a number you can read."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MIB = 1024 * 1024
# A bearer token travels as an HTTP/2 header value: visible ASCII, no spaces (RFC 6750 b64token).
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))


def read_pem(path: Path) -> bytes:
    """The file's bytes, if it looks like PEM; ValueError (naming the file) otherwise.

    Checked when the config is loaded, so a wrong path fails `kinship profile` at start with the
    field's name instead of as a TLS handshake error on every export.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"{path} is not a PEM file (no -----BEGIN line)")
    return data


def read_token(path: Path) -> bytes:
    """The bearer token in the file (surrounding whitespace stripped); ValueError when unusable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: a bearer token is printable ASCII") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text:
        raise ValueError(f"{path} is empty")
    if not set(text) <= _TOKEN_CHARS:
        raise ValueError(f"{path}: a bearer token is one line of printable ASCII without spaces")
    # Guessing is the attack a token resists: 16 characters of a random base64 are ~96 bits.
    if len(text) < 16:
        raise ValueError(f"{path}: the token is {len(text)} characters; use at least 16 random ones")
    return text.encode("ascii")


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class OtlpReceiverConfig(BaseModel):
    """Where to listen, who may send, how much to accept, and how long to wait for a call's other side.

    Every buffer is bounded by a count and in bytes, so the receiver's memory has a ceiling no
    matter what arrives: max_indexed_bytes + max_pending_bytes of span records, plus
    max_concurrent_requests x max_request_bytes of request buffers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Loopback by default: a sender that reaches the receiver writes the graph, so exposing it is a
    # deliberate act, and needs authentication (below) unless allow_unauthenticated says otherwise.
    host: str = "127.0.0.1"
    # 4317 is the OTLP/gRPC port every SDK exporter sends to by default; 0 picks a free port (tests).
    port: int = Field(default=4317, ge=0, le=65535)

    # TLS: the server's certificate chain and key (PEM), e.g. a cert-manager Secret's tls.crt/tls.key.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Client certificates signed by this CA (PEM) are required: a client without one gets no TLS
    # session at all. Needs tls_cert_file.
    client_ca_file: Path | None = None
    # Every Export must carry `authorization: Bearer <token>` with the token in this file; the
    # Collector's bearertokenauth extension sends it. With client_ca_file, both are required.
    bearer_token_file: Path | None = None
    # A token over plaintext can be read off the wire and replayed: refused unless this says so
    # (a mesh sidecar that encrypts the hop, say).
    allow_plaintext_token: bool = False
    # Listening beyond loopback with neither client certificates nor a token lets anyone who
    # reaches the port write any namespace's graph: refused unless this says so.
    allow_unauthenticated: bool = False

    # Same as the Collector's OTLP receiver default (max_recv_msg_size_mib: 4): an SDK's batch of
    # 512 spans is ~100-300 KiB, so only a misconfigured or hostile client comes near it.
    max_request_bytes: int = Field(default=4 * MIB, gt=0)
    # Decoding and matching hold the GIL, so more threads than cores only add contention.
    worker_threads: int = Field(default=2, ge=1)
    # RPCs admitted at once (running + queued for a worker); beyond it gRPC answers
    # RESOURCE_EXHAUSTED and OTLP exporters retry with backoff. Bounds request buffers in memory.
    max_concurrent_requests: int = Field(default=16, ge=1)
    # How long a span waits for the other side of its call: a parent for a child that arrived
    # first, a remote child for a CLIENT span before falling back to its peer attributes. SDKs
    # export every 5 s and agent calls (LLM round trips) last tens of seconds, so one minute
    # matches nearly all calls while keeping peer-only edges at most a minute late.
    match_window_seconds: float = Field(default=60.0, gt=0)
    # Recent spans kept as possible parents (~460 B each with ordinary attributes). At 1,000
    # spans/s this holds 100 s, more than the match window; above that the oldest go first (counted).
    max_indexed_spans: int = Field(default=100_000, ge=1)
    # The same index in bytes (estimated per record, see span_edges.record_bytes): the count alone
    # let long attributes inflate each entry. 64 MiB holds the 100,000 ordinary spans above.
    max_indexed_bytes: int = Field(default=64 * MIB, ge=1024)
    # Children whose remote parent has not arrived yet. Only spans whose parent may live in another
    # process wait here (SERVER/CONSUMER entry spans, in practice), a small share of all spans.
    max_pending_spans: int = Field(default=20_000, ge=1)
    max_pending_bytes: int = Field(default=16 * MIB, ge=1024)
    # Longest service.name, peer.service or peer host kept: a Kubernetes object name or DNS name
    # is at most 253 characters, so a longer value names no agent and is ignored (counted).
    # Namespaces are Kubernetes namespaces: at most 63 characters, whatever this says.
    max_attribute_length: int = Field(default=253, ge=1, le=4096)
    # One span's claimed payload size (request + response) counts at most this much: sizes are
    # the sender's word, and one span claiming 2^62 bytes would make every real edge's bytes
    # share zero (shares are scaled to the namespace's strongest edge). 64 MiB is above any
    # LLM request or response body; larger transfers are not what agents' calls carry.
    max_call_bytes: int = Field(default=64 * MIB, ge=1)
    # service.name values seen per namespace, used to map server.address to an agent.
    max_known_services: int = Field(default=10_000, ge=1)
    # Distinct (namespace, from, to) edges per collect window; more would be a label explosion in
    # the AgentGraph too. Calls on further new edges are dropped and counted.
    max_edges: int = Field(default=10_000, ge=1)
    # Latency reservoir per edge: the median of 128 uniform samples is within ~±9% (rank) of the
    # true median, plenty for a placement hint, at 1 KiB per edge.
    latency_samples_per_edge: int = Field(default=128, ge=1)
    # Namespace of spans whose resource has neither k8s.namespace.name nor service.namespace.
    default_namespace: str = Field(default="default", min_length=1, max_length=63)

    @field_validator("tls_cert_file", "tls_key_file", "client_ca_file")
    @classmethod
    def _pem(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_pem(value)
        return value

    @field_validator("bearer_token_file")
    @classmethod
    def _token(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_token(value)
        return value

    @model_validator(mode="after")
    def _secure(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        if self.client_ca_file is not None and not self.tls:
            raise ValueError("client_ca_file needs TLS: give tls_cert_file and tls_key_file too")
        if self.bearer_token_file is not None and not self.tls and not self.allow_plaintext_token:
            raise ValueError(
                "bearer_token_file without TLS sends the token in clear text: give tls_cert_file "
                "and tls_key_file, or set allow_plaintext_token if the hop is encrypted otherwise"
            )
        if not self.authenticated and not is_loopback(self.host) and not self.allow_unauthenticated:
            raise ValueError(
                f"host {self.host} is reachable beyond loopback but no client is authenticated: "
                "give client_ca_file (with tls_cert_file/tls_key_file) or bearer_token_file, "
                "or set allow_unauthenticated"
            )
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @property
    def authenticated(self) -> bool:
        """Whether every sender must prove who it is (a client certificate or the token)."""
        return self.client_ca_file is not None or self.bearer_token_file is not None
