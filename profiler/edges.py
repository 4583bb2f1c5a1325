"""The one record every telemetry source produces, so that sources and the graph model stay apart.

Rates, not counters: each source turns its own counters into per-second rates over its own window
(PromQL `rate()`, or span counts over a flush interval), so that the model can merge sources with
different clocks and never sees a counter reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EdgeSample:
    """Traffic from one agent to another in one namespace, as seen by one source."""

    namespace: str
    source: str  # agent identity (DESIGN.md: workload name / service.name unless labels say otherwise)
    destination: str
    requests_per_second: float
    bytes_per_second: float = 0.0
    p50_latency_ms: float | None = None
    origin: str = ""  # which source saw it ("istio", "linkerd", "servicegraph", "otlp"), for logs


class SourceError(RuntimeError):
    """A source could not answer this round (down, slow, bad reply); the caller keeps its last graph."""


class EdgeSource(Protocol):
    name: str

    def collect(self) -> list[EdgeSample]:
        """Current rates per edge. Raises SourceError when the source cannot answer."""
        ...
