"""OTLP protobuf in, small flat span records out: the only module that reads trace protobufs.

Matching spans into calls needs a handful of fields per span; copying just those out of the
protobuf objects lets the rest of each request be freed at once and keeps the matcher independent
of the wire format. Attribute names follow the OpenTelemetry semantic conventions, with the older
names that SDKs still emit accepted as well.

Everything copied is capped (SpanLimits): what a record keeps is the sender's to choose, and a
record held for the match window must not grow with a long attribute. A value over its cap names
no agent (Kubernetes names are short) and is dropped, not truncated: a truncated name could
collide with a real agent's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, SpanFlags

SERVICE_NAME = "service.name"
# Namespace of the agent: the Kubernetes one first (DESIGN.md: scope is the namespace), then
# OTel's own service.namespace, which teams outside Kubernetes use for the same purpose.
NAMESPACE_KEYS = ("k8s.namespace.name", "service.namespace")

PEER_SERVICE = "peer.service"
# Host the client called, in order of preference (current semconv, then the pre-1.21 name).
PEER_HOST_KEYS = ("server.address", "net.peer.name")
# Payload sizes of one call; request and response both count, the link carries both.
SIZE_KEYS = frozenset(
    {
        "http.request.body.size",
        "http.response.body.size",
        "messaging.message.body.size",
        "http.request_content_length",  # pre-1.21 HTTP semconv
        "http.response_content_length",
        "messaging.message_payload_size_bytes",  # pre-1.22 messaging semconv
    }
)
_PEER_KEYS = frozenset({PEER_SERVICE, *PEER_HOST_KEYS})

KIND_SERVER = Span.SPAN_KIND_SERVER
KIND_CLIENT = Span.SPAN_KIND_CLIENT
KIND_PRODUCER = Span.SPAN_KIND_PRODUCER
KIND_CONSUMER = Span.SPAN_KIND_CONSUMER
CALLER_KINDS = frozenset({KIND_CLIENT, KIND_PRODUCER})
_CALLEE_KINDS = frozenset({KIND_SERVER, KIND_CONSUMER})

# OTLP span ids are 8 bytes; anything else matches nothing and would only take memory.
SPAN_ID_BYTES = 8
# Links read per CONSUMER span: the SDKs' default span link limit (OTEL_SPAN_LINK_COUNT_LIMIT).
MAX_LINKS = 128
# A Kubernetes namespace is a DNS label: the AgentGraph a longer one names cannot exist.
MAX_NAMESPACE_LENGTH = 63

_HAS_IS_REMOTE = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK


@dataclass(slots=True)
class SpanRecord:
    """What matching needs of one span. Mutable flags are the matcher's bookkeeping."""

    span_id: bytes
    service: str
    namespace: str
    kind: int
    duration_seconds: float
    size_bytes: int
    # Spans this one was caused by in another process: its parent, and for CONSUMER spans the
    # producer spans it links to. Empty when the parent is known to be in-process.
    remote_refs: tuple[bytes, ...]
    # Refs whose span was flagged in-process by the SDK (still matched if they are in the index).
    local_refs: tuple[bytes, ...]
    peer_service: str | None = None
    peer_host: str | None = None
    # A span of another service (or a SERVER/CONSUMER span) named this one as its parent: the call
    # was seen from both sides, so peer attributes must not count it again.
    answered: bool = False


@dataclass(frozen=True, slots=True)
class SpanLimits:
    """Caps on what one span record keeps (the receiver's config holds the reasons)."""

    default_namespace: str = "default"
    max_attribute_length: int = 253
    max_call_bytes: int = 64 * 1024 * 1024


@dataclass(slots=True)
class SpanCounters:
    """What decoding dropped, for metrics."""

    oversized_attributes: int = 0  # identity or peer values longer than their cap, ignored
    malformed_ids: int = 0  # span ids (or parent/link ids) that are not 8 bytes
    capped_sizes: int = 0  # payload-size claims above max_call_bytes

    def add(self, other: SpanCounters) -> None:
        self.oversized_attributes += other.oversized_attributes
        self.malformed_ids += other.malformed_ids
        self.capped_sizes += other.capped_sizes


def resource_identity(
    resource_spans: ResourceSpans, limits: SpanLimits, counters: SpanCounters | None = None
) -> tuple[str, str]:
    """(namespace, service) of every span in one ResourceSpans; service "" when there is none.

    An over-long service.name or namespace makes the whole resource unattributable: guessing
    another identity for its spans would put them on someone else's edge.
    """
    service = ""
    found: dict[str, str] = {}
    for kv in resource_spans.resource.attributes:
        if kv.key == SERVICE_NAME:
            service = kv.value.string_value
        elif kv.key in NAMESPACE_KEYS:
            found[kv.key] = kv.value.string_value
    namespace = next((found[k] for k in NAMESPACE_KEYS if found.get(k)), limits.default_namespace)
    if len(service) > limits.max_attribute_length or len(namespace) > MAX_NAMESPACE_LENGTH:
        if counters is not None:
            counters.oversized_attributes += 1
        return namespace[:MAX_NAMESPACE_LENGTH], ""
    return namespace, service


def _int_value(value: AnyValue) -> int:
    if value.HasField("int_value"):
        return max(0, value.int_value)
    if value.HasField("double_value"):
        return max(0, int(value.double_value))
    return 0


def _scan_attributes(
    attributes: Iterable[KeyValue], limits: SpanLimits, counters: SpanCounters
) -> tuple[int, str | None, str | None]:
    size_bytes = 0
    peer_service: str | None = None
    hosts: dict[str, str] = {}
    for kv in attributes:
        key = kv.key
        if key in SIZE_KEYS:
            size_bytes += _int_value(kv.value)
        elif key in _PEER_KEYS:
            text = kv.value.string_value
            if not text:
                continue
            if len(text) > limits.max_attribute_length:
                counters.oversized_attributes += 1
                continue
            if key == PEER_SERVICE:
                peer_service = text
            else:
                hosts[key] = text
    peer_host = next((hosts[k] for k in PEER_HOST_KEYS if k in hosts), None)
    if size_bytes > limits.max_call_bytes:
        counters.capped_sizes += 1
        size_bytes = limits.max_call_bytes
    return size_bytes, peer_service, peer_host


def _is_local(flags: int) -> bool:
    return bool(flags & _HAS_IS_REMOTE) and not flags & _IS_REMOTE


def span_record(
    span: Span, namespace: str, service: str, limits: SpanLimits, counters: SpanCounters
) -> SpanRecord:
    """Flatten one span.

    Links count only on CONSUMER spans: there they name the messages consumed (batch receive); on
    other kinds they are loose "related to" pointers, not calls. Attributes are read only on the
    four call kinds, where the semantic conventions put sizes and peers: INTERNAL spans (LLM and
    tool steps, most of an agent's spans) skip the costliest part of decoding.
    """
    kind = span.kind
    remote: list[bytes] = []
    local: list[bytes] = []
    parent = span.parent_span_id
    if len(parent) == SPAN_ID_BYTES:
        (local if _is_local(span.flags) else remote).append(parent)
    elif parent:
        counters.malformed_ids += 1
    if kind == KIND_CONSUMER:
        for link in span.links[:MAX_LINKS]:
            ref = link.span_id
            if len(ref) != SPAN_ID_BYTES:
                counters.malformed_ids += 1
            elif ref not in remote and ref not in local:
                (local if _is_local(link.flags) else remote).append(ref)
    size_bytes, peer_service, peer_host = 0, None, None
    if kind in CALLER_KINDS:
        size_bytes, peer_service, peer_host = _scan_attributes(span.attributes, limits, counters)
    elif kind in _CALLEE_KINDS:
        size_bytes, _, _ = _scan_attributes(span.attributes, limits, counters)
    duration_ns = span.end_time_unix_nano - span.start_time_unix_nano
    return SpanRecord(
        span_id=span.span_id,
        service=service,
        namespace=namespace,
        kind=kind,
        duration_seconds=duration_ns / 1e9 if duration_ns > 0 else 0.0,
        size_bytes=size_bytes,
        remote_refs=tuple(remote),
        local_refs=tuple(local),
        peer_service=peer_service,
        peer_host=peer_host,
    )


def span_records(
    resource_spans: Iterable[ResourceSpans], limits: SpanLimits, counters: SpanCounters
) -> Iterator[SpanRecord]:
    """Every span of a request's ResourceSpans, with its resource's agent identity.

    Spans without a well-formed id or a usable service.name cannot be matched to anything and are
    skipped.
    """
    for rs in resource_spans:
        namespace, service = resource_identity(rs, limits, counters)
        if not service:
            continue
        for scope_spans in rs.scope_spans:
            for span in scope_spans.spans:
                span_id = span.span_id
                if len(span_id) == SPAN_ID_BYTES:
                    yield span_record(span, namespace, service, limits, counters)
                elif span_id:
                    counters.malformed_ids += 1


def request_records(
    request: ExportTraceServiceRequest, limits: SpanLimits, counters: SpanCounters | None = None
) -> list[SpanRecord]:
    return list(span_records(request.resource_spans, limits, counters or SpanCounters()))


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
