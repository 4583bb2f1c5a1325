"""Prometheus metrics of the OTLP receiver (kinship_profiler_otlp_ prefix, bounded labels).

Counts are plain ints kept by the receiver and read at scrape time: a prometheus_client Counter
takes a lock per increment, which at tens of thousands of spans per second would cost more than
the matching itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from profiler.otlp.span_edges import MatchCounters
from profiler.otlp.spans import SpanCounters

PREFIX = "kinship_profiler_otlp_"


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """One consistent reading of the receiver's counters and buffer sizes."""

    requests: int
    requests_invalid: int
    requests_unauthenticated: int
    spans_received: int
    spans_unattributed: int  # no service.name or no span id: nothing to attribute them to
    calls_pair: int
    calls_peer: int
    calls_over_edge_limit: int
    spans: SpanCounters
    match: MatchCounters
    indexed_spans: int
    pending_spans: int
    indexed_bytes: int
    pending_bytes: int
    window_edges: int


class _StatsCollector(Collector):
    def __init__(self, read: Callable[[], ReceiverStats]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        s = self._read()
        m = s.match
        yield _counter("requests", "Export requests decoded and processed.", s.requests)
        rejected = CounterMetricFamily(
            PREFIX + "requests_rejected",
            "Export requests the receiver refused, by reason. Oversized requests, requests over the "
            "concurrency limit (RESOURCE_EXHAUSTED) and failed TLS handshakes are refused by gRPC "
            "itself and not counted here.",
            labels=["reason"],
        )
        rejected.add_metric(["invalid"], s.requests_invalid)
        rejected.add_metric(["unauthenticated"], s.requests_unauthenticated)
        yield rejected
        yield _counter("spans_received", "Spans received in Export requests.", s.spans_received)
        yield _counter(
            "spans_unattributed",
            "Spans skipped for lack of a usable service.name, namespace or span id.",
            s.spans_unattributed,
        )
        ignored = CounterMetricFamily(
            PREFIX + "attributes_ignored",
            "Span values not used as sent, by reason: longer than max_attribute_length (names), "
            "ids not 8 bytes, payload sizes above max_call_bytes (counted as the cap).",
            labels=["reason"],
        )
        ignored.add_metric(["too_long"], s.spans.oversized_attributes)
        ignored.add_metric(["malformed_id"], s.spans.malformed_ids)
        ignored.add_metric(["size_capped"], s.spans.capped_sizes)
        yield ignored
        yield _counter("spans_duplicate", "Spans received again (exporter retries).", m.duplicate_spans)
        evicted = CounterMetricFamily(
            PREFIX + "spans_evicted",
            "Spans dropped from a full buffer before their match window ended.",
            labels=["buffer"],
        )
        evicted.add_metric(["index"], m.evicted_indexed)
        evicted.add_metric(["pending"], m.evicted_pending)
        yield evicted
        evicted_bytes = CounterMetricFamily(
            PREFIX + "spans_evicted_bytes",
            "Estimated bytes of the spans counted in spans_evicted, by buffer.",
            labels=["buffer"],
        )
        evicted_bytes.add_metric(["index"], m.evicted_indexed_bytes)
        evicted_bytes.add_metric(["pending"], m.evicted_pending_bytes)
        yield evicted_bytes
        yield _counter(
            "spans_orphaned", "Children whose remote parent did not arrive within the window.", m.orphaned
        )
        calls = CounterMetricFamily(
            PREFIX + "calls", "Agent-to-agent calls counted, by the rule that matched them.", labels=["rule"]
        )
        calls.add_metric(["pair"], s.calls_pair)
        calls.add_metric(["peer"], s.calls_peer)
        yield calls
        dropped = CounterMetricFamily(
            PREFIX + "calls_dropped", "Calls seen but not turned into edges, by reason.", labels=["reason"]
        )
        dropped.add_metric(["self_loop"], m.self_loops)
        dropped.add_metric(["cross_namespace"], m.cross_namespace)
        dropped.add_metric(["unresolved_peer"], m.unresolved_peers)
        dropped.add_metric(["edge_limit"], s.calls_over_edge_limit)
        yield dropped
        yield GaugeMetricFamily(
            PREFIX + "indexed_spans", "Spans held as possible parents.", value=s.indexed_spans
        )
        yield GaugeMetricFamily(
            PREFIX + "pending_spans", "Children waiting for a remote parent.", value=s.pending_spans
        )
        yield GaugeMetricFamily(
            PREFIX + "indexed_bytes",
            "Estimated bytes held by the span index (bounded by max_indexed_bytes).",
            value=s.indexed_bytes,
        )
        yield GaugeMetricFamily(
            PREFIX + "pending_bytes",
            "Estimated bytes held by waiting children (bounded by max_pending_bytes).",
            value=s.pending_bytes,
        )
        yield GaugeMetricFamily(
            PREFIX + "edges", "Distinct edges in the current collect window.", value=s.window_edges
        )


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, documentation, value=value)


def receiver_registry(read: Callable[[], ReceiverStats]) -> CollectorRegistry:
    """A registry of its own, so that several receivers (tests) and the CLI's other metrics coexist."""
    registry = CollectorRegistry()
    registry.register(_StatsCollector(read))
    return registry
