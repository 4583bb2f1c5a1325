"""Build OTLP protobuf spans by hand (unit tests and the benchmark): ids are small ints for reading."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, SpanFlags

SERVER = Span.SPAN_KIND_SERVER
CLIENT = Span.SPAN_KIND_CLIENT
PRODUCER = Span.SPAN_KIND_PRODUCER
CONSUMER = Span.SPAN_KIND_CONSUMER
INTERNAL = Span.SPAN_KIND_INTERNAL
_REMOTE = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_LOCAL = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
T0_NS = 1_700_000_000_000_000_000


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _value(v: str | int | float) -> AnyValue:
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    return AnyValue(double_value=v)


def attrs(values: Mapping[str, str | int | float]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items()]


def span(
    span_id: int,
    kind: int = INTERNAL,
    *,
    parent: int | None = None,
    remote_parent: bool = True,
    links: Iterable[int] = (),
    duration_ms: float = 10.0,
    trace: int = 1,
    **attributes: str | int | float,
) -> Span:
    """A span; keyword attributes use `__` for dots (peer__service -> peer.service)."""
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=sid(span_id),
        parent_span_id=sid(parent) if parent is not None else b"",
        flags=(_REMOTE if remote_parent else _LOCAL) if parent is not None else _LOCAL,
        name=f"span-{span_id}",
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=T0_NS,
        end_time_unix_nano=T0_NS + int(duration_ms * 1e6),
        attributes=attrs({k.replace("__", "."): v for k, v in attributes.items()}),
        links=[
            Span.Link(trace_id=(trace + 1).to_bytes(16, "big"), span_id=sid(i), flags=_REMOTE) for i in links
        ],
    )


def resource_spans(
    service: str | None, spans: Iterable[Span], namespace: str | None = "team", **resource: str
) -> ResourceSpans:
    values = dict(resource)
    if service is not None:
        values["service.name"] = service
    if namespace is not None:
        values["k8s.namespace.name"] = namespace
    return ResourceSpans(
        resource=Resource(attributes=attrs(values)), scope_spans=[ScopeSpans(spans=list(spans))]
    )


def request(*groups: ResourceSpans) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=list(groups))
