"""The OTLP receiver over real gRPC: the OpenTelemetry SDK's exporter, size limits, back-pressure."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Tracer, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from profiler.edges import SourceError
from profiler.otlp import OtlpReceiver, OtlpReceiverConfig
from tests.otlp_spans import CLIENT, SERVER, request, resource_spans, span

pytestmark = pytest.mark.integration

NAMESPACE = "research"
AGENTS = ("orchestrator", "planner", "researcher", "executor", "reviewer")
PROPAGATOR = TraceContextTextMapPropagator()


class ManualClock:
    """Time the test moves: match windows expire and rates divide by a known interval."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def receiver(clock: ManualClock) -> Iterator[OtlpReceiver]:
    rx = OtlpReceiver(OtlpReceiverConfig(port=0, match_window_seconds=30.0), clock=clock)
    rx.start()
    try:
        yield rx
    finally:
        rx.stop(grace_seconds=1.0)


def http_call(caller: Tracer, callee: Tracer, name: str, *, body_bytes: int) -> None:
    """A CLIENT span in the caller, its context carried in headers to a SERVER span in the callee."""
    with caller.start_as_current_span(
        f"POST /{name}",
        kind=SpanKind.CLIENT,
        attributes={"peer.service": name, "http.request.body.size": body_bytes},
    ):
        headers: dict[str, str] = {}
        PROPAGATOR.inject(headers)
        with (
            callee.start_as_current_span(
                f"POST /{name}", context=PROPAGATOR.extract(headers), kind=SpanKind.SERVER
            ),
            callee.start_as_current_span("think"),
        ):
            pass


def conversation(tracers: dict[str, Tracer], queue: list[dict[str, str]]) -> None:
    """One turn of the team: the orchestrator fans out; the executor hands work to the reviewer by queue."""
    orchestrator = tracers["orchestrator"]
    with orchestrator.start_as_current_span("conversation"):
        http_call(orchestrator, tracers["planner"], "planner", body_bytes=1000)
        for _ in range(2):
            http_call(orchestrator, tracers["researcher"], "researcher", body_bytes=4000)
        with orchestrator.start_as_current_span("POST /executor", kind=SpanKind.CLIENT):
            headers: dict[str, str] = {}
            PROPAGATOR.inject(headers)
            executor = tracers["executor"]
            with (
                executor.start_as_current_span(
                    "run", context=PROPAGATOR.extract(headers), kind=SpanKind.SERVER
                ),
                executor.start_as_current_span(
                    "reviews publish", kind=SpanKind.PRODUCER, attributes={"messaging.message.body.size": 512}
                ),
            ):
                message_headers: dict[str, str] = {}
                PROPAGATOR.inject(message_headers)
                queue.append(message_headers)
        http_call(orchestrator, tracers["reviewer"], "reviewer", body_bytes=200)
        # An external API: a CLIENT span to a host that is no agent adds no edge.
        with orchestrator.start_as_current_span(
            "GET", kind=SpanKind.CLIENT, attributes={"server.address": "api.search.example.com"}
        ):
            pass
        # The planner calls the reviewer on an endpoint the reviewer does not trace: only the client
        # side exists, named by its Kubernetes Service hostname.
        with tracers["planner"].start_as_current_span(
            "POST /notes",
            kind=SpanKind.CLIENT,
            attributes={"server.address": "reviewer.research.svc.cluster.local"},
        ):
            pass


def consume(reviewer: Tracer, queue: list[dict[str, str]]) -> None:
    """The reviewer receives the queued messages later, in a trace of its own, linked to each producer."""
    links = [Link(get_current_span(PROPAGATOR.extract(h)).get_span_context()) for h in queue]
    with reviewer.start_as_current_span("reviews process", kind=SpanKind.CONSUMER, links=links):
        pass
    queue.clear()


def test_sdk_exporters_of_a_team_yield_its_edges_ranked_by_calls(
    receiver: OtlpReceiver, clock: ManualClock
) -> None:
    assert receiver.port
    providers: dict[str, TracerProvider] = {}
    for agent in AGENTS:
        provider = TracerProvider(
            resource=Resource.create({"service.name": agent, "k8s.namespace.name": NAMESPACE})
        )
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True, timeout=10)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        providers[agent] = provider
    tracers = {agent: p.get_tracer("kinship.test") for agent, p in providers.items()}
    queue: list[dict[str, str]] = []
    turns = 3
    try:
        for _ in range(turns):
            conversation(tracers, queue)
            consume(tracers["reviewer"], queue)
        # Callees first: every SERVER/CONSUMER span arrives before the span that caused it.
        for agent in reversed(AGENTS[1:]):
            assert providers[agent].force_flush(timeout_millis=10_000)
        # Each SERVER span now waits for its orchestrator CLIENT parent (the consumer's links found
        # the executor's PRODUCER spans once the executor flushed).
        assert receiver.stats().pending_spans == 5 * turns
        assert providers["orchestrator"].force_flush(timeout_millis=10_000)
    finally:
        for provider in providers.values():
            provider.shutdown()

    clock.now += 31.0  # past the match window: unanswered CLIENT spans fall back to peer attributes
    samples = receiver.collect()

    calls = {(s.source, s.destination): round(s.requests_per_second * 31.0) for s in samples}
    assert calls == {
        ("orchestrator", "researcher"): 2 * turns,
        ("orchestrator", "planner"): turns,
        ("orchestrator", "executor"): turns,
        ("orchestrator", "reviewer"): turns,
        ("executor", "reviewer"): turns,  # the queue hop, through the consumer's links
        ("planner", "reviewer"): turns,  # client side only, hostname mapped to the agent
    }
    assert (samples[0].source, samples[0].destination) == ("orchestrator", "researcher")
    assert {s.namespace for s in samples} == {NAMESPACE}
    assert {s.origin for s in samples} == {"otlp"}
    by_edge = {(s.source, s.destination): s for s in samples}
    assert by_edge["orchestrator", "researcher"].bytes_per_second == pytest.approx(2 * turns * 4000 / 31.0)
    assert by_edge["executor", "reviewer"].bytes_per_second == pytest.approx(turns * 512 / 31.0)
    assert all(s.p50_latency_ms is not None and s.p50_latency_ms >= 0 for s in samples)

    def metric(name: str, **labels: str) -> float | None:
        return receiver.registry.get_sample_value(f"kinship_profiler_otlp_{name}", labels)

    assert metric("calls_total", rule="pair") == 6 * turns  # 5 HTTP calls and the queue hop
    assert metric("calls_total", rule="peer") == turns
    assert metric("calls_dropped_total", reason="unresolved_peer") == turns
    assert metric("spans_orphaned_total") == 0
    assert metric("pending_spans") == 0
    assert receiver.collect() == []  # nothing new since the last collect


def stub_for(port: int) -> tuple[grpc.Channel, TraceServiceStub]:
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    )
    return channel, TraceServiceStub(channel)


def pair_request(first_id: int) -> ExportTraceServiceRequest:
    return request(
        resource_spans("orchestrator", [span(first_id, CLIENT)]),
        resource_spans("planner", [span(first_id + 1, SERVER, parent=first_id)]),
    )


def test_oversized_and_malformed_requests_are_refused_and_the_receiver_keeps_serving() -> None:
    rx = OtlpReceiver(OtlpReceiverConfig(port=0, max_request_bytes=64 * 1024))
    port = rx.start()
    channel, stub = stub_for(port)
    try:
        big = request(resource_spans("planner", [span(i, SERVER, parent=10**6 + i) for i in range(2000)]))
        assert big.ByteSize() > 64 * 1024
        with pytest.raises(grpc.RpcError) as refused:
            stub.Export(big, timeout=10)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (refused.value.details() or "")

        raw = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as malformed:
            raw(b"\xff\xff\xff", timeout=10)
        assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "ExportTraceServiceRequest" in (malformed.value.details() or "")

        stub.Export(pair_request(1), timeout=10)
        assert [(s.source, s.destination) for s in rx.collect()] == [("orchestrator", "planner")]
        assert (
            rx.registry.get_sample_value(
                "kinship_profiler_otlp_requests_rejected_total", {"reason": "invalid"}
            )
            == 1
        )
        assert rx.stats().spans_received == 2  # nothing of the refused requests was taken in
    finally:
        channel.close()
        rx.stop(grace_seconds=1.0)
    with pytest.raises(SourceError):
        rx.collect()


def test_a_port_already_taken_fails_start_instead_of_sharing_it() -> None:
    first = OtlpReceiver(OtlpReceiverConfig(port=0))
    port = first.start()
    try:
        with pytest.raises(OSError, match=str(port)):
            OtlpReceiver(OtlpReceiverConfig(port=port)).start()
    finally:
        first.stop(grace_seconds=0)


def test_requests_over_the_concurrency_limit_get_resource_exhausted() -> None:
    rx = OtlpReceiver(OtlpReceiverConfig(port=0, max_concurrent_requests=2, worker_threads=2))
    port = rx.start()
    channel, stub = stub_for(port)
    try:
        with rx._lock:  # a receiver stuck on slow work: admitted calls wait for the lock
            admitted = [stub.Export.future(pair_request(10 * i), timeout=30) for i in range(1, 3)]
            time.sleep(1.0)  # let gRPC register both as active (milliseconds; generous on a busy box)
            with pytest.raises(grpc.RpcError) as busy:
                stub.Export(pair_request(100), timeout=10)
            assert busy.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert not any(f.done() for f in admitted)
        for future in admitted:
            future.result(timeout=20)
        stub.Export(pair_request(200), timeout=10)
        assert rx.stats().calls_pair == 3
    finally:
        channel.close()
        rx.stop(grace_seconds=1.0)


def test_a_flood_with_small_bounds_keeps_memory_bounded_and_the_receiver_alive() -> None:
    config = OtlpReceiverConfig(
        port=0, max_indexed_spans=2000, max_pending_spans=500, max_concurrent_requests=4
    )
    rx = OtlpReceiver(config)
    port = rx.start()
    channel, stub = stub_for(port)
    refused = 0
    lock = threading.Lock()

    def send(batch: int) -> None:
        nonlocal refused
        # 512 SERVER spans whose CLIENT parents never come: all of them wait, then get evicted.
        base = 1_000_000 * (batch + 1)
        flood = request(
            resource_spans("planner", [span(base + i, SERVER, parent=base + 600 + i) for i in range(512)])
        )
        for _ in range(200):
            try:
                stub.Export(flood, timeout=10)
                return
            except grpc.RpcError as exc:
                if exc.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                with lock:
                    refused += 1
                time.sleep(0.01)
        raise AssertionError("receiver never accepted the batch")

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, range(60)))
        stats = rx.stats()
        assert stats.spans_received == 60 * 512
        assert stats.indexed_spans <= config.max_indexed_spans
        assert stats.pending_spans <= config.max_pending_spans
        assert stats.match.evicted_pending >= 60 * 512 - config.max_pending_spans
        assert stats.match.evicted_indexed >= 60 * 512 - config.max_indexed_spans
        # Still serving, still matching.
        stub.Export(pair_request(1), timeout=10)
        assert [(s.source, s.destination) for s in rx.collect()] == [("orchestrator", "planner")]
    finally:
        channel.close()
        rx.stop(grace_seconds=1.0)
    print(f"flood: {refused} requests refused with RESOURCE_EXHAUSTED and retried")
