"""Calls in, per-second edge rates out: what one collect window saw on each edge.

The graph model wants rates, not counts (profiler/edges.py), so the window counts calls and bytes
per edge and divides by the window's length when drained. Latency keeps a fixed-size uniform
reservoir per edge, so a busy edge costs the same memory as a quiet one.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

from profiler.edges import EdgeSample
from profiler.otlp.span_edges import Call

ORIGIN = "otlp"


@dataclass(slots=True)
class _Tally:
    calls: int = 0
    size_bytes: int = 0
    latency_samples_seconds: list[float] = field(default_factory=list)


class EdgeWindow:
    """Per-edge tallies since the last drain, bounded in edges and in samples per edge."""

    def __init__(self, *, max_edges: int, latency_samples_per_edge: int, seed: int = 0) -> None:
        self.max_edges = max_edges
        self.latency_samples_per_edge = latency_samples_per_edge
        self.dropped_calls = 0  # calls on new edges refused because the window held max_edges
        # Seeded: the same spans give the same p50, run after run (tests, benchmarks).
        self._random = random.Random(seed)
        self._tallies: dict[tuple[str, str, str], _Tally] = {}

    @property
    def edges(self) -> int:
        return len(self._tallies)

    def add(self, call: Call) -> None:
        key = (call.namespace, call.source, call.destination)
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) >= self.max_edges:
                self.dropped_calls += 1
                return
            tally = self._tallies[key] = _Tally()
        tally.calls += 1
        tally.size_bytes += call.size_bytes
        samples = tally.latency_samples_seconds
        if len(samples) < self.latency_samples_per_edge:
            samples.append(call.latency_seconds)
        else:  # reservoir sampling (Vitter's algorithm R): every call equally likely to be kept
            slot = self._random.randrange(tally.calls)
            if slot < self.latency_samples_per_edge:
                samples[slot] = call.latency_seconds

    def drain(self, elapsed_seconds: float) -> list[EdgeSample]:
        """Rates over `elapsed_seconds`, busiest edge first; the window starts empty again."""
        if elapsed_seconds <= 0:
            raise ValueError(f"elapsed_seconds must be positive, got {elapsed_seconds}")
        tallies, self._tallies = self._tallies, {}
        samples = [
            EdgeSample(
                namespace=namespace,
                source=source,
                destination=destination,
                requests_per_second=tally.calls / elapsed_seconds,
                bytes_per_second=tally.size_bytes / elapsed_seconds,
                p50_latency_ms=statistics.median(tally.latency_samples_seconds) * 1000.0,
                origin=ORIGIN,
            )
            for (namespace, source, destination), tally in tallies.items()
        ]
        samples.sort(key=lambda s: (-s.requests_per_second, s.namespace, s.source, s.destination))
        return samples
