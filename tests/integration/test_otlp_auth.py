"""Who may write the graph through the OTLP receiver: real TLS over real gRPC, the OpenTelemetry SDK's
own exporter as the client, certificates made at test time by openssl.

Each refusal is checked where it matters: no span reached the matcher (`spans_received` stays 0).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from profiler.otlp import OtlpReceiver, OtlpReceiverConfig
from tests.otlp_spans import CLIENT, request, resource_spans, span
from tests.pki import CA, Pair

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-t0ken-0123456789abcdef"
# The exporter retries UNAVAILABLE (a refused handshake) until its timeout: keep that short.
EXPORT_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Pki:
    ca: CA
    server: Pair
    client: Pair
    rogue_client: Pair  # signed by a CA the receiver does not trust
    token_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("otlp-pki")
    ca = CA.create(root / "ca", "kinship-otlp-ca")
    rogue = CA.create(root / "rogue", "rogue-ca")
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    return Pki(
        ca=ca,
        server=ca.issue("receiver", "serverAuth", "IP:127.0.0.1"),
        client=ca.issue("collector", "clientAuth"),
        rogue_client=rogue.issue("collector", "clientAuth"),
        token_file=token_file,
    )


@pytest.fixture
def spans() -> list[ReadableSpan]:
    """Two finished SDK spans of one agent, ready for an exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orchestrator"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("turn"),
        tracer.start_as_current_span("POST /planner", kind=SpanKind.CLIENT),
    ):
        pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def serve(**config: object) -> OtlpReceiver:
    rx = OtlpReceiver(OtlpReceiverConfig(port=0, **config))  # type: ignore[arg-type]
    rx.start()
    return rx


@pytest.fixture
def receivers() -> Iterator[list[OtlpReceiver]]:
    started: list[OtlpReceiver] = []
    yield started
    for rx in started:
        rx.stop(grace_seconds=0.5)


def credentials(pki: Pki, client: Pair | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.pair.cert.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )


def export(port: int, spans: list[ReadableSpan], **exporter: object) -> SpanExportResult:
    sdk = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", timeout=EXPORT_TIMEOUT_SECONDS, **exporter)  # type: ignore[arg-type]
    try:
        return sdk.export(spans)
    finally:
        sdk.shutdown()


def raw_export(
    port: int, channel_credentials: grpc.ChannelCredentials, metadata: tuple = ()
) -> grpc.StatusCode:
    """The status code one Export gets, straight from grpcio (the SDK exporter only says FAILURE)."""
    with grpc.secure_channel(f"127.0.0.1:{port}", channel_credentials) as channel:
        try:
            TraceServiceStub(channel).Export(
                request(resource_spans("orchestrator", [span(1, CLIENT)])), timeout=5, metadata=metadata
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


# --- client certificates -------------------------------------------------------------------------


def mtls(pki: Pki) -> dict[str, object]:
    return {
        "tls_cert_file": pki.server.cert,
        "tls_key_file": pki.server.key,
        "client_ca_file": pki.ca.pair.cert,
    }


def test_client_without_a_certificate_is_refused_and_nothing_is_ingested(pki, spans, receivers) -> None:
    rx = serve(**mtls(pki))
    receivers.append(rx)
    assert rx.port is not None
    assert export(rx.port, spans, credentials=credentials(pki)) is SpanExportResult.FAILURE
    assert export(rx.port, spans, insecure=True) is SpanExportResult.FAILURE  # plaintext to a TLS port
    assert raw_export(rx.port, credentials(pki)) is grpc.StatusCode.UNAVAILABLE
    assert rx.stats().spans_received == 0 and rx.stats().requests == 0


def test_client_certificate_from_another_ca_is_refused(pki, spans, receivers) -> None:
    rx = serve(**mtls(pki))
    receivers.append(rx)
    assert rx.port is not None
    assert export(rx.port, spans, credentials=credentials(pki, pki.rogue_client)) is SpanExportResult.FAILURE
    assert raw_export(rx.port, credentials(pki, pki.rogue_client)) is grpc.StatusCode.UNAVAILABLE
    assert rx.stats().spans_received == 0


def test_client_certificate_signed_by_the_configured_ca_is_accepted(pki, spans, receivers) -> None:
    rx = serve(**mtls(pki))
    receivers.append(rx)
    assert rx.port is not None
    assert export(rx.port, spans, credentials=credentials(pki, pki.client)) is SpanExportResult.SUCCESS
    assert rx.stats().spans_received == len(spans) == 2


# --- bearer token --------------------------------------------------------------------------------


def test_the_right_bearer_token_over_tls_is_accepted(pki, spans, receivers) -> None:
    rx = serve(tls_cert_file=pki.server.cert, tls_key_file=pki.server.key, bearer_token_file=pki.token_file)
    receivers.append(rx)
    assert rx.port is not None
    result = export(
        rx.port, spans, credentials=credentials(pki), headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert result is SpanExportResult.SUCCESS
    assert rx.stats().spans_received == 2 and rx.stats().requests_unauthenticated == 0


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Bearer wrong-token-0123456789abcdef"),),
        (("authorization", f"Bearer {TOKEN}x"),),  # a longer token sharing the right one's prefix
        (("authorization", f"Basic {TOKEN}"),),
        (("authorization", TOKEN),),
    ],
    ids=["missing", "wrong", "prefix", "other-scheme", "no-scheme"],
)
def test_a_missing_or_wrong_bearer_token_is_unauthenticated_and_ingests_nothing(
    pki, spans, receivers, metadata
) -> None:
    rx = serve(tls_cert_file=pki.server.cert, tls_key_file=pki.server.key, bearer_token_file=pki.token_file)
    receivers.append(rx)
    assert rx.port is not None
    assert raw_export(rx.port, credentials(pki), metadata) is grpc.StatusCode.UNAUTHENTICATED
    headers = dict(metadata)
    assert export(rx.port, spans, credentials=credentials(pki), headers=headers) is SpanExportResult.FAILURE
    stats = rx.stats()
    assert stats.spans_received == 0 and stats.requests == 0
    assert stats.requests_unauthenticated == 2
    scraped = rx.registry.get_sample_value(
        "kinship_profiler_otlp_requests_rejected_total", {"reason": "unauthenticated"}
    )
    assert scraped == 2


def test_with_both_configured_a_certificate_alone_is_not_enough(pki, spans, receivers) -> None:
    rx = serve(**mtls(pki), bearer_token_file=pki.token_file)
    receivers.append(rx)
    assert rx.port is not None
    with_cert = credentials(pki, pki.client)
    assert raw_export(rx.port, with_cert) is grpc.StatusCode.UNAUTHENTICATED
    assert raw_export(rx.port, with_cert, (("authorization", f"Bearer {TOKEN}"),)) is grpc.StatusCode.OK
    assert rx.stats().spans_received == 1


def test_plaintext_token_when_allowed_still_checks_the_token(pki, spans, receivers) -> None:
    rx = serve(bearer_token_file=pki.token_file, allow_plaintext_token=True)
    receivers.append(rx)
    assert rx.port is not None
    assert export(rx.port, spans, insecure=True) is SpanExportResult.FAILURE
    ok = export(rx.port, spans, insecure=True, headers={"authorization": f"bearer {TOKEN}"})
    assert ok is SpanExportResult.SUCCESS
    assert rx.stats().spans_received == 2


# --- certificate renewal -------------------------------------------------------------------------


def test_a_renewed_server_certificate_is_served_to_new_connections(pki, spans, receivers, tmp_path) -> None:
    """cert-manager rewrites the mounted Secret: new handshakes use the new pair, no restart."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server.cert, cert)
    shutil.copy(pki.server.key, key)
    rx = serve(tls_cert_file=cert, tls_key_file=key, client_ca_file=pki.ca.pair.cert)
    receivers.append(rx)
    assert rx.port is not None
    renewed_ca = CA.create(tmp_path / "renewed", "renewed-ca")
    renewed = renewed_ca.issue("receiver", "serverAuth", "IP:127.0.0.1")
    trusting_renewed = grpc.ssl_channel_credentials(
        root_certificates=renewed_ca.pair.cert.read_bytes(),
        private_key=pki.client.key.read_bytes(),
        certificate_chain=pki.client.cert.read_bytes(),
    )
    assert raw_export(rx.port, trusting_renewed) is grpc.StatusCode.UNAVAILABLE
    for src, dst in ((renewed.cert, cert), (renewed.key, key)):
        tmp = dst.with_suffix(".tmp")
        shutil.copy(src, tmp)
        os.replace(tmp, dst)
    assert raw_export(rx.port, trusting_renewed) is grpc.StatusCode.OK
    assert rx.stats().spans_received == 1
