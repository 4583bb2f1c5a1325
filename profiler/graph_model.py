"""The observed communication graph: per-namespace directed graphs of smoothed edge rates.

Pure: every call takes an explicit `now` (Unix seconds), so tests need no clock and no sleeps.

- Smoothing: each edge's requests/s, bytes/s and p50 latency follow an exponentially weighted
  moving average whose weight depends on the time since the last update (half-life
  `half_life_seconds`), so irregular rounds (retries, a restart) weigh what they should. A new
  edge starts at its first sample rather than ramping up from zero: a one-shot run
  (`kinship profile --once`) then reports what Prometheus measured.
- Decay: an edge that a source which answered no longer reports is averaged towards zero, and
  leaves the graph once both its requests/s and bytes/s are below the configured minimums.
- Merge: Istio, Linkerd and servicegraph may all see the same calls. Summing them would count a
  call once per source, so per edge and quantity the highest rate across sources wins, and the p50
  comes from the source with the most requests on that edge (its histogram saw the most calls).
  The cost: traffic split between sources (half the team meshed, half traced) is undercounted.
- A source that fails this round keeps contributing its last answer for `source_max_age_seconds`;
  after that its edges decay like any edge nobody reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from profiler.config import ModelConfig
from profiler.edges import EdgeSample

EdgeKey = tuple[str, str, str]  # (namespace, source agent, destination agent)


@dataclass(frozen=True, slots=True)
class SmoothedEdge:
    namespace: str
    source: str
    destination: str
    requests_per_second: float
    bytes_per_second: float
    p50_latency_ms: float | None


def merge_sources(samples_by_source: Mapping[str, Sequence[EdgeSample]]) -> dict[EdgeKey, SmoothedEdge]:
    """One value per edge from several sources: add within a source, max across sources."""
    per_source: dict[str, dict[EdgeKey, EdgeSample]] = {}
    for name, samples in samples_by_source.items():
        edges: dict[EdgeKey, EdgeSample] = {}
        for sample in samples:
            key = (sample.namespace, sample.source, sample.destination)
            old = edges.get(key)
            if old is not None:
                latencies = [x for x in (old.p50_latency_ms, sample.p50_latency_ms) if x is not None]
                sample = EdgeSample(  # noqa: PLW2901 - the sum replaces the part
                    sample.namespace,
                    sample.source,
                    sample.destination,
                    old.requests_per_second + sample.requests_per_second,
                    old.bytes_per_second + sample.bytes_per_second,
                    max(latencies) if latencies else None,
                    sample.origin,
                )
            edges[key] = sample
        per_source[name] = edges
    merged: dict[EdgeKey, SmoothedEdge] = {}
    for key in sorted({k for edges in per_source.values() for k in edges}):
        seen = [per_source[n][key] for n in sorted(per_source) if key in per_source[n]]
        busiest = max(seen, key=lambda s: (s.requests_per_second, s.p50_latency_ms is not None))
        latency = busiest.p50_latency_ms
        if latency is None:
            latency = next((s.p50_latency_ms for s in seen if s.p50_latency_ms is not None), None)
        merged[key] = SmoothedEdge(
            *key,
            requests_per_second=max(s.requests_per_second for s in seen),
            bytes_per_second=max(s.bytes_per_second for s in seen),
            p50_latency_ms=latency,
        )
    return merged


class GraphModel:
    """Smoothed, merged edges of every namespace; one networkx DiGraph per namespace."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self._graphs: dict[str, nx.DiGraph] = {}
        self._last_by_source: dict[str, tuple[float, list[EdgeSample]]] = {}
        self.updated_at: float | None = None

    # ---- learning ------------------------------------------------------------------------------
    def seed(self, namespace: str, edges: Iterable[SmoothedEdge], observed_at: float) -> None:
        """Start from a previous run's output (AgentGraph status) so a restart loses nothing."""
        graph = self._graphs.setdefault(namespace, nx.DiGraph())
        for e in edges:
            graph.add_edge(
                e.source,
                e.destination,
                rps=e.requests_per_second,
                bps=e.bytes_per_second,
                p50=e.p50_latency_ms,
                at=observed_at,
            )
        if self.updated_at is None or observed_at > self.updated_at:
            self.updated_at = observed_at

    def update(self, now: float, fresh: Mapping[str, Sequence[EdgeSample]]) -> None:
        """Fold one round in. `fresh` holds the sources that answered; others count as before."""
        for name, samples in fresh.items():
            self._last_by_source[name] = (now, list(samples))
        usable = {
            name: samples
            for name, (at, samples) in self._last_by_source.items()
            if now - at <= self.cfg.source_max_age_seconds
        }
        merged = merge_sources(usable)
        for key, sample in merged.items():
            ns, src, dst = key
            graph = self._graphs.setdefault(ns, nx.DiGraph())
            if not graph.has_edge(src, dst):
                graph.add_edge(
                    src,
                    dst,
                    rps=sample.requests_per_second,
                    bps=sample.bytes_per_second,
                    p50=sample.p50_latency_ms,
                    at=now,
                )
                continue
            data = graph.edges[src, dst]
            alpha = self._alpha(now - data["at"])
            data["rps"] += alpha * (sample.requests_per_second - data["rps"])
            data["bps"] += alpha * (sample.bytes_per_second - data["bps"])
            if sample.p50_latency_ms is not None:
                old = data["p50"]
                data["p50"] = (
                    sample.p50_latency_ms if old is None else old + alpha * (sample.p50_latency_ms - old)
                )
            data["at"] = max(now, data["at"])
        self._decay_unreported(now, merged.keys())
        self.updated_at = now

    def _alpha(self, elapsed_seconds: float) -> float:
        """Weight of a new sample after `elapsed_seconds`: half the memory goes per half-life."""
        if elapsed_seconds <= 0:
            return 0.0
        return float(1.0 - 0.5 ** (elapsed_seconds / self.cfg.half_life_seconds))

    def _decay_unreported(self, now: float, reported: Iterable[EdgeKey]) -> None:
        seen = set(reported)
        for ns, graph in list(self._graphs.items()):
            gone = []
            for src, dst, data in graph.edges(data=True):
                if (ns, src, dst) not in seen:
                    keep = 1.0 - self._alpha(now - data["at"])
                    data["rps"] *= keep
                    data["bps"] *= keep
                    data["at"] = max(now, data["at"])
                quiet = data["rps"] < self.cfg.min_requests_per_second
                if quiet and data["bps"] < self.cfg.min_bytes_per_second:
                    gone.append((src, dst))
            graph.remove_edges_from(gone)
            graph.remove_nodes_from([n for n in list(graph.nodes) if graph.degree(n) == 0])
            if graph.number_of_edges() == 0:
                del self._graphs[ns]

    # ---- reading -------------------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        return sorted(self._graphs)

    def edges(self, namespace: str) -> list[SmoothedEdge]:
        graph = self._graphs.get(namespace)
        if graph is None:
            return []
        return [
            SmoothedEdge(namespace, src, dst, data["rps"], data["bps"], data["p50"])
            for src, dst, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1]))
        ]

    def edge_count(self) -> int:
        return sum(g.number_of_edges() for g in self._graphs.values())

    def graph(self, namespace: str) -> nx.DiGraph:
        """A copy of one namespace's graph (edge attributes rps, bps, p50) for analysis."""
        return self._graphs.get(namespace, nx.DiGraph()).copy()
