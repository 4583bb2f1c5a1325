"""The AgentGraph contract (kinship.dev/v1alpha1) and the effective, undirected weights built from it.

Teams declare edges in `spec` (GitOps); the profiler writes what the mesh observed into `status`.
Placement needs one number per agent pair, so every measure is scaled to its own maximum within a
namespace before they are combined: declared weights are relative ("any positive number"),
observed traffic is requests per second and bytes per second, and none of these units can be
compared to another directly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinship.errors import InputError, describe_validation_error

API_VERSION = "kinship.dev/v1alpha1"
KIND = "AgentGraph"


class Colocation(StrEnum):
    REQUIRED = "Required"
    PREFERRED = "Preferred"
    NONE = "None"


# When two declarations of one pair disagree, the stronger intent wins.
_STRENGTH = {Colocation.NONE: 0, Colocation.PREFERRED: 1, Colocation.REQUIRED: 2}


class DeclaredEdge(BaseModel):
    # Unknown keys in spec are typos a user wants to hear about ("colocaton"), hence forbid.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    colocation: Colocation = Colocation.PREFERRED


class ObservedEdge(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    requestsPerSecond: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    bytesPerSecond: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    p50LatencyMs: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class GraphSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    edges: list[DeclaredEdge] = Field(default_factory=list)


class GraphStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")
    observedEdges: list[ObservedEdge] = Field(default_factory=list)
    observedAt: str | None = None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    namespace: str = "default"


class AgentGraph(BaseModel):
    model_config = ConfigDict(extra="ignore")

    apiVersion: Literal["kinship.dev/v1alpha1"]
    kind: Literal["AgentGraph"]
    metadata: Metadata
    spec: GraphSpec = Field(default_factory=GraphSpec)
    status: GraphStatus = Field(default_factory=GraphStatus)

    @property
    def key(self) -> tuple[str, str]:
        return (self.metadata.namespace, self.metadata.name)


def parse_agent_graph(obj: Any, source: str) -> AgentGraph:
    """Validate one AgentGraph object, reporting every bad field at once."""
    try:
        return AgentGraph.model_validate(obj)
    except ValidationError as exc:
        raise InputError(source, [describe_validation_error(err) for err in exc.errors()]) from None


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One undirected edge seen from an agent: who it talks to and how much that matters."""

    agent: str
    weight: float  # effective weight in (0, 1]: share of the namespace's strongest edge
    colocation: Colocation


def team_adjacency(
    graphs: Iterable[AgentGraph], observed_fraction: float
) -> dict[str, tuple[Neighbour, ...]]:
    """Merge one namespace's AgentGraphs into agent -> neighbours with effective weights.

    Directions are summed (traffic both ways shares the same link). Declared weights, observed
    requests/s and observed bytes/s are each scaled to their own maximum in the namespace. A
    pair's observed share is the larger of its requests/s and bytes/s shares: a raw TCP stream
    (a database, a model server) has bytes and no requests and must pull its agents together as
    much as the chattiest HTTP pair does, and an HTTP pair moving the namespace's most bytes is as
    worth keeping close (latency, cross-zone egress per byte) as the one with the most calls.
    Taking the larger rather than a mean keeps a pair that leads on one measure from being diluted
    by a mesh that does not report the other (the OTel servicegraph reports no bytes).
    When a namespace has both sources, effective = (1-f)*declared + f*observed with
    f = `observed_fraction`, a missing side counting 0. Edges declared `None` keep no weight:
    the team said placement should ignore them. Self-edges are dropped: replicas of one agent are
    the spread term's business.
    """
    declared: dict[frozenset[str], float] = defaultdict(float)
    requests: dict[frozenset[str], float] = defaultdict(float)
    bytes_: dict[frozenset[str], float] = defaultdict(float)
    colocation: dict[frozenset[str], Colocation] = {}
    for graph in graphs:
        for d in graph.spec.edges:
            if d.from_ == d.to:
                continue
            pair = frozenset((d.from_, d.to))
            declared[pair] += d.weight
            old = colocation.get(pair)
            if old is None or _STRENGTH[d.colocation] > _STRENGTH[old]:
                colocation[pair] = d.colocation
        for o in graph.status.observedEdges:
            if o.from_ == o.to:
                continue
            pair = frozenset((o.from_, o.to))
            if o.requestsPerSecond > 0:
                requests[pair] += o.requestsPerSecond
            if o.bytesPerSecond > 0:
                bytes_[pair] += o.bytesPerSecond

    declared_shares = _shares(declared)
    requests_shares, bytes_shares = _shares(requests), _shares(bytes_)
    observed = {
        pair: max(requests_shares.get(pair, 0.0), bytes_shares.get(pair, 0.0))
        for pair in requests_shares.keys() | bytes_shares.keys()
    }
    f = observed_fraction if declared and observed else (1.0 if observed else 0.0)
    adjacency: dict[str, list[Neighbour]] = defaultdict(list)
    for pair in declared.keys() | observed.keys():
        mode = colocation.get(pair, Colocation.PREFERRED)
        declared_share = declared_shares.get(pair, 0.0)
        observed_share = observed.get(pair, 0.0)
        weight = 0.0 if mode is Colocation.NONE else (1.0 - f) * declared_share + f * observed_share
        if weight <= 0.0 and mode is not Colocation.REQUIRED:
            continue
        a, b = sorted(pair)
        adjacency[a].append(Neighbour(b, weight, mode))
        adjacency[b].append(Neighbour(a, weight, mode))
    return {agent: tuple(sorted(ns, key=lambda n: n.agent)) for agent, ns in adjacency.items()}


def _shares(values: Mapping[frozenset[str], float]) -> dict[frozenset[str], float]:
    """Each pair's value as a share of the largest (values are positive; empty stays empty)."""
    top = max(values.values(), default=0.0)
    return {pair: v / top for pair, v in values.items()} if top > 0 else {}
