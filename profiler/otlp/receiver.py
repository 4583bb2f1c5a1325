"""The OTLP/gRPC trace receiver: an `EdgeSource` fed by OpenTelemetry SDK exporters.

The I/O rim of profiler.otlp: a grpcio server answering `TraceService/Export`, one lock around the
matcher and the collect window, and a monotonic clock. Everything it decides is delegated to the
pure modules (spans, span_edges, window).

Who may send is decided before any of our code runs: TLS and client certificates in the
handshake, the bearer token in an interceptor (profiler.otlp.auth).

Back-pressure is gRPC's own: requests over `max_request_bytes` and RPCs over
`max_concurrent_requests` are refused with RESOURCE_EXHAUSTED before any of our code runs, and
OTLP exporters retry those with backoff. Inside, buffers are bounded and evict their oldest entries.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from profiler.edges import EdgeSample, SourceError
from profiler.otlp.auth import BearerToken, server_credentials
from profiler.otlp.config import OtlpReceiverConfig, read_token
from profiler.otlp.metrics import ReceiverStats, receiver_registry
from profiler.otlp.span_edges import Call, CallMatcher
from profiler.otlp.spans import SpanCounters, SpanLimits, count_spans, request_records
from profiler.otlp.window import EdgeWindow

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_OK_RESPONSE: bytes = ExportTraceServiceResponse().SerializeToString()


class OtlpReceiver:
    """Receives OTLP spans and reports agent-to-agent edges.

    `start()` binds and returns the port; `collect()` returns rates since the previous collect
    (or since start); `stop()` ends the server. Not restartable: build a new one.
    """

    name = "otlp"

    def __init__(self, config: OtlpReceiverConfig | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config or OtlpReceiverConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._matcher = CallMatcher(
            match_window_seconds=self.config.match_window_seconds,
            max_indexed_spans=self.config.max_indexed_spans,
            max_pending_spans=self.config.max_pending_spans,
            max_known_services=self.config.max_known_services,
            max_indexed_bytes=self.config.max_indexed_bytes,
            max_pending_bytes=self.config.max_pending_bytes,
        )
        self._limits = SpanLimits(
            default_namespace=self.config.default_namespace,
            max_attribute_length=self.config.max_attribute_length,
            max_call_bytes=self.config.max_call_bytes,
        )
        self._span_counters = SpanCounters()
        self._window = EdgeWindow(
            max_edges=self.config.max_edges, latency_samples_per_edge=self.config.latency_samples_per_edge
        )
        self._window_started = clock()
        self._requests = 0
        self._requests_invalid = 0
        self._requests_unauthenticated = 0
        self._spans_received = 0
        self._spans_unattributed = 0
        self._calls = {"pair": 0, "peer": 0}
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.port: int | None = None
        self.registry = receiver_registry(self.stats)

    def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        if self._server is not None or self.port is not None:
            raise RuntimeError("OtlpReceiver.start() called twice; build a new receiver instead")
        cfg = self.config
        try:
            # Read here, not kept from config load: a token rotated before a restart takes effect.
            interceptors = (
                [BearerToken(read_token(cfg.bearer_token_file), self._refused)]
                if cfg.bearer_token_file is not None
                else []
            )
            credentials = server_credentials(cfg)
        except ValueError as exc:
            raise OSError(f"OTLP receiver cannot load its credentials: {exc}") from exc
        self._executor = ThreadPoolExecutor(cfg.worker_threads, thread_name_prefix="otlp-receiver")
        server = grpc.server(
            self._executor,
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", cfg.max_request_bytes),
                # Without this a second receiver would silently share port 4317 with the first.
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=cfg.max_concurrent_requests,
        )
        # No (de)serializer: the handler gets raw bytes, so a malformed payload gets a clear
        # INVALID_ARGUMENT instead of gRPC's generic "Exception deserializing request!".
        handler = grpc.unary_unary_rpc_method_handler(self._export)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        host = f"[{cfg.host}]" if ":" in cfg.host and not cfg.host.startswith("[") else cfg.host
        try:
            address = f"{host}:{cfg.port}"
            bound = (
                server.add_insecure_port(address)
                if credentials is None
                else server.add_secure_port(address, credentials)
            )
            port = int(bound)
        except RuntimeError as exc:
            self._executor.shutdown(wait=False)
            raise OSError(f"OTLP receiver cannot listen on {host}:{cfg.port}: {exc}") from exc
        server.start()
        with self._lock:
            self._window_started = self._clock()
        self._server, self.port = server, port
        log.info(
            "OTLP receiver listening on %s:%d (%s; clients authenticated by %s)",
            host,
            port,
            "TLS" if credentials is not None else "plaintext",
            " and ".join(
                name
                for name, on in (
                    ("certificate", cfg.client_ca_file is not None),
                    ("bearer token", cfg.bearer_token_file is not None),
                )
                if on
            )
            or "nothing",
        )
        return port

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Finish in-flight Export calls (up to grace_seconds), then release the port and threads."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop(grace_seconds).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def collect(self) -> list[EdgeSample]:
        """Edges seen since the previous collect, as per-second rates over that interval."""
        if self._server is None:
            raise SourceError("OTLP receiver is not running")
        with self._lock:
            now = self._clock()
            self._count(self._matcher.expire(now))
            elapsed_seconds = now - self._window_started
            if elapsed_seconds <= 0:
                return []
            self._window_started = now
            return self._window.drain(elapsed_seconds)

    def ingest(self, request: ExportTraceServiceRequest) -> None:
        """Match one request's spans (the Export handler's work, callable without gRPC)."""
        counters = SpanCounters()
        records = request_records(request, self._limits, counters)
        total = count_spans(request)
        with self._lock:
            self._span_counters.add(counters)
            self._requests += 1
            self._spans_received += total
            self._spans_unattributed += total - len(records)
            self._count(self._matcher.add(records, self._clock()))

    def stats(self) -> ReceiverStats:
        with self._lock:
            return ReceiverStats(
                requests=self._requests,
                requests_invalid=self._requests_invalid,
                requests_unauthenticated=self._requests_unauthenticated,
                spans_received=self._spans_received,
                spans_unattributed=self._spans_unattributed,
                calls_pair=self._calls["pair"],
                calls_peer=self._calls["peer"],
                calls_over_edge_limit=self._window.dropped_calls,
                spans=dataclasses.replace(self._span_counters),
                match=dataclasses.replace(self._matcher.counters),
                indexed_spans=self._matcher.indexed_spans,
                pending_spans=self._matcher.pending_spans,
                indexed_bytes=self._matcher.indexed_bytes,
                pending_bytes=self._matcher.pending_bytes,
                window_edges=self._window.edges,
            )

    def _refused(self) -> None:
        with self._lock:
            self._requests_unauthenticated += 1

    def _count(self, calls: list[Call]) -> None:
        for call in calls:
            self._calls[call.rule] += 1
            self._window.add(call)

    def _export(self, payload: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            request = ExportTraceServiceRequest.FromString(payload)
        except DecodeError as exc:
            with self._lock:
                self._requests_invalid += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not an ExportTraceServiceRequest: {exc}")
        self.ingest(request)
        return _OK_RESPONSE
