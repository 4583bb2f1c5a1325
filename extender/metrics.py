"""Prometheus metrics of the extender (kinship_ prefix, base units, bounded labels)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from extender.state import ClusterState

# kube-scheduler waits on every call: resolution down to 0.5 ms is where a regression shows.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _CacheCollector(Collector):
    """Reads cache sizes at scrape time instead of updating gauges on every watch event."""

    def __init__(self, state: ClusterState) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        objects = GaugeMetricFamily(
            "kinship_extender_cache_objects", "Objects in the extender's cache.", labels=["kind"]
        )
        for kind, count in self._state.sizes().items():
            objects.add_metric([kind], count)
        yield objects
        yield GaugeMetricFamily(
            "kinship_extender_cache_synced",
            "1 once every watched source has completed its first list.",
            value=1.0 if self._state.ready else 0.0,
        )


class ExtenderMetrics:
    def __init__(self, state: ClusterState) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kinship_extender_requests",
            "Extender HTTP calls by verb and status code.",
            ["verb", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kinship_extender_request_duration_seconds",
            "Time to answer an extender call, body read to response encoded.",
            ["verb"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.placements = Counter(
            "kinship_extender_placements_scored",
            "Pods for which prioritize returned scores.",
            registry=self.registry,
        )
        self.filtered_out = Counter(
            "kinship_extender_nodes_filtered_out",
            "Candidate nodes removed by the extender's filter, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.peer_wait = Counter(
            "kinship_extender_peer_bind_wait_seconds",
            "Time calls spent waiting for just-scored peers to be bound (bind call or watch).",
            registry=self.registry,
        )
        self.peer_wait_timeouts = Counter(
            "kinship_extender_peer_bind_wait_timeouts",
            "Calls that stopped waiting for a just-scored peer (it may have failed to schedule).",
            registry=self.registry,
        )
        self.bind_failures = Counter(
            "kinship_extender_bind_failures",
            "Bind calls whose binding the API server refused or could not take in time.",
            registry=self.registry,
        )
        self.registry.register(_CacheCollector(state))
