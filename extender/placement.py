"""Placement decisions for one pod: gather arrays from the cache, apply the pure terms.

Holds no state of its own. The caller holds `state.lock` so that every array read for one
decision comes from the same version of the cache.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import msgspec
import numpy as np
from numpy.typing import NDArray

from extender import scoring, wire
from extender.config import ExtenderConfig
from extender.objects import GPU_RESOURCE, Pod, node_allocatable, pod_resource_request
from extender.state import ClusterState, SpikeProfile, node_fit_allocatable, pod_fit_requests, pod_peak
from kinship.graph import Colocation, Neighbour

TERMS = ("communication", "spread", "gpu", "spike_correlation")


@dataclass(frozen=True, slots=True)
class Relayed:
    """A neighbour of a Required partner that has no pod placed yet.

    The partner will have to join this pod on its node, so its traffic will leave from here too:
    the pod is scored as if the partner's other edges were its own. Without this, whichever of two
    Required partners is scheduled first ignores where the other one's peers run, and the pair
    then sits away from them (an Argo CD MCP server placed before its agent drags the agent away
    from the orchestrator). One hop only, and for scoring only: the filter enforces this pod's own
    Required edges, not the partner's.
    """

    via: str  # the Required partner, not placed yet
    peer: Neighbour  # the partner's neighbour, with the partner's edge weight


def relayed_neighbours(state: ClusterState, namespace: str, agent: str) -> tuple[Relayed, ...]:
    return tuple(
        Relayed(nb.agent, other)
        for nb in state.neighbours(namespace, agent)
        if nb.colocation is Colocation.REQUIRED and state.placement(namespace, nb.agent)[0].size == 0
        for other in state.neighbours(namespace, nb.agent)
        if other.agent != agent and other.weight > 0
    )


def scoring_agents(state: ClusterState, namespace: str, agent: str) -> frozenset[str]:
    """Every agent whose placement a pod of `agent` is scored by: itself (spread), its neighbours
    and the relayed ones. The pod waits for in-flight pods of these (`wait_for_peers`)."""
    direct = (nb.agent for nb in state.neighbours(namespace, agent))
    relayed = (r.peer.agent for r in relayed_neighbours(state, namespace, agent))
    return frozenset([agent, *direct, *relayed])


@dataclass(frozen=True, slots=True)
class PodContext:
    namespace: str
    name: str
    agent: str | None
    gpus: float
    neighbours: tuple[Neighbour, ...]
    profile: SpikeProfile | None  # the agent's AgentProfile, if the predictor has published one
    cpu_request_millicores: float
    memory_request_bytes: float

    @classmethod
    def of(cls, pod: Pod, state: ClusterState) -> PodContext:
        try:
            gpus = pod_resource_request(pod, GPU_RESOURCE)
            cpu, memory = pod_fit_requests(pod)
        except ValueError as exc:
            raise wire.WireError(f"invalid Pod: {exc} - at `$.Pod.spec.containers[*].resources`") from None
        agent = pod.agent
        neighbours = state.neighbours(pod.namespace, agent) if agent else ()
        profile = state.profile(pod.namespace, agent) if agent else None
        return cls(pod.namespace, pod.metadata.name, agent, gpus, neighbours, profile, cpu, memory)

    @property
    def peak(self) -> tuple[float, float]:
        """Predicted (cpu millicores, memory bytes) peak of this pod, as the fit filter sums it."""
        return pod_peak(self.profile, self.cpu_request_millicores, self.memory_request_bytes)

    def peak_source(self, resource: str) -> str:
        known = None
        if self.profile is not None:
            known = self.profile.cpu_millicores if resource == "cpu" else self.profile.memory_bytes
        return "AgentProfile" if known is not None else "requests"


@dataclass(frozen=True, slots=True)
class Candidates:
    names: list[str]
    slots: NDArray[np.intp]  # -1: node unknown to the cache
    zones: NDArray[np.intp]
    gpu_alloc: NDArray[np.float64]
    gpu_free: NDArray[np.float64]
    # cache slot -> position among the candidates (-1: not a candidate); one spare element so
    # that slot -1 maps to -1 too
    positions: NDArray[np.intp]
    template: wire.PriorityTemplate | None = None  # the reply laid out for these names, if cached
    # Nodes mode: allocatable (cpu millicores, memory bytes) from the request's Node objects,
    # fresher than the watch. None: read it from the cache (only the filter needs it).
    fit_alloc: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def position_of(self, slots: NDArray[np.intp]) -> NDArray[np.intp]:
        return self.positions[slots]

    def take(self, where: NDArray[np.intp], capacity: int) -> Candidates:
        """The candidates at positions `where`, in that order (no reply template: other names)."""
        slots = self.slots[where]
        return Candidates(
            [self.names[i] for i in where],
            slots,
            self.zones[where],
            self.gpu_alloc[where],
            self.gpu_free[where],
            slot_positions(slots, capacity),
            fit_alloc=None
            if self.fit_alloc is None
            else (self.fit_alloc[0][where], self.fit_alloc[1][where]),
        )


def slot_positions(slots: NDArray[np.intp], capacity: int) -> NDArray[np.intp]:
    positions = np.full(capacity + 1, -1, dtype=np.intp)
    known = slots >= 0
    positions[slots[known]] = np.flatnonzero(known)
    return positions


class NameResolver:
    """Node names -> cache slots, remembering the last NodeNames list.

    kube-scheduler sends the same feasible-node list for pod after pod; recognizing it by its raw
    bytes skips decoding and looking up thousands of names (most of a 5,000-node call's cost).
    The answer is reused only while no node has been added or removed.
    """

    def __init__(self) -> None:
        self._key: tuple[bytes, int] | None = None
        self._value = ResolvedNames([], np.empty(0, np.intp), np.full(1, -1, np.intp), None)

    def resolve(self, state: ClusterState, raw: bytes) -> ResolvedNames:
        key = (raw, state.node_generation)
        if key != self._key:
            names = wire.decode_node_names(raw)
            if len(set(names)) != len(names):
                raise wire.WireError("invalid ExtenderArgs: duplicate names in `NodeNames`")
            template = wire.PriorityTemplate(names) if wire.json_safe(names) else None
            self._value = resolve_names(state, names, template)
            self._key = key
        return self._value


@dataclass(frozen=True, slots=True)
class ResolvedNames:
    names: list[str]
    slots: NDArray[np.intp]
    positions: NDArray[np.intp]
    template: wire.PriorityTemplate | None


def resolve_names(
    state: ClusterState, names: list[str], template: wire.PriorityTemplate | None = None
) -> ResolvedNames:
    slots = state.slots_of(names)
    return ResolvedNames(names, slots, slot_positions(slots, state.capacity), template)


def candidates_from_names(state: ClusterState, resolved: ResolvedNames) -> Candidates:
    """nodeCacheCapable: every fact about a node comes from the cache."""
    slots = resolved.slots
    alloc = state.gpu_alloc[slots]
    return Candidates(
        names=resolved.names,
        slots=slots,
        zones=state.zone_id[slots],
        gpu_alloc=alloc,
        gpu_free=alloc - state.gpu_used[slots],
        positions=resolved.positions,
        template=resolved.template,
    )


def candidates_from_nodes(state: ClusterState, items: list[msgspec.Raw]) -> Candidates:
    """Full Node objects: labels and allocatable from the request (fresher than the watch),
    pods from the cache; a node the cache has never seen simply hosts nothing yet."""
    nodes = wire.decode_nodes(items)
    names = [n.metadata.name for n in nodes]
    slots = state.slot_or_missing(names)
    try:
        alloc = np.array([node_allocatable(n, GPU_RESOURCE) for n in nodes], dtype=np.float64)
        fit = np.array([node_fit_allocatable(n) for n in nodes], dtype=np.float64).reshape(len(nodes), 2)
    except ValueError as exc:
        raise wire.WireError(f"invalid Node: {exc} - at `$.Nodes.items[*].status.allocatable`") from None
    used = np.where(slots >= 0, state.gpu_used[np.maximum(slots, 0)], 0.0)
    zones = np.array([state.known_zone_index(n.zone) for n in nodes], dtype=np.intp)
    return Candidates(
        names,
        slots,
        zones,
        alloc,
        alloc - used,
        slot_positions(slots, state.capacity),
        fit_alloc=(fit[:, 0], fit[:, 1]),
    )


def candidates(state: ClusterState, args: wire.ExtenderArgs, resolver: NameResolver) -> Candidates:
    if args.node_names_raw is not None:
        return candidates_from_names(state, resolver.resolve(state, args.node_names_raw))
    return candidates_from_nodes(state, args.node_items or [])


@dataclass(frozen=True, slots=True)
class NodeFit:
    """Per candidate: allocatable and the sum of the predicted peaks of the pods already there."""

    cpu_alloc: NDArray[np.float64]
    mem_alloc: NDArray[np.float64]
    cpu_peak: NDArray[np.float64]
    mem_peak: NDArray[np.float64]

    @classmethod
    def of(cls, state: ClusterState, cand: Candidates) -> NodeFit:
        slots = cand.slots
        if cand.fit_alloc is None:  # NodeNames mode: every candidate has a slot
            return cls(
                state.cpu_alloc[slots], state.mem_alloc[slots], state.cpu_peak[slots], state.mem_peak[slots]
            )
        known = slots >= 0  # Nodes mode: a node the cache has not seen hosts no pods yet
        safe = np.where(known, slots, 0)
        cpu_alloc, mem_alloc = cand.fit_alloc
        return cls(
            cpu_alloc,
            mem_alloc,
            np.where(known, state.cpu_peak[safe], 0.0),
            np.where(known, state.mem_peak[safe], 0.0),
        )


def _cores(millicores: float) -> str:
    return f"{millicores / 1000:.2f}".rstrip("0").rstrip(".") + " cores"


def _gib(size: float) -> str:
    return f"{size / 2**30:.1f}".rstrip("0").rstrip(".") + " GiB"


@dataclass(slots=True)
class FilterOutcome:
    passed: NDArray[np.bool_]
    failed: dict[str, str] = field(default_factory=dict)  # preemption could help
    unresolvable: dict[str, str] = field(default_factory=dict)  # preemption cannot help
    removed: dict[str, int] = field(default_factory=dict)  # nodes removed per reason (metrics)
    # fitting nodes left out by filter_keep_best: not in the reply at all (kube-scheduler would
    # decode a reason per node for nothing: a pod with a node left never reports them)
    not_best: list[int] = field(default_factory=list)


def run_filter(state: ClusterState, ctx: PodContext, cand: Candidates) -> FilterOutcome:
    """Co-location first: a node without the Required peer is unresolvable whatever else is
    wrong with it (preemption cannot bring the peer there); then GPU fit and spike-aware fit,
    which preemption can change.

    Spike-aware fit sums the predicted peaks of the pods the cache holds as bound to the node.
    Pods in flight (scored, not yet seen bound) are not counted: the extender does not know
    which node kube-scheduler picked for them until the binding arrives, and counting one on
    every candidate would reject nodes it never went to. kube-scheduler's own NodeResourcesFit
    does count them (by requests), and a pod waits for its in-flight graph peers and replicas
    (`peer_bind_wait_seconds`), so only unrelated pods scheduled in the same instant can
    overcommit a node's peaks together.
    """
    outcome = FilterOutcome(passed=np.ones(len(cand), dtype=bool))
    for peer in ctx.neighbours:
        if peer.colocation is not Colocation.REQUIRED:
            continue
        peer_slots, _ = state.placement(ctx.namespace, peer.agent)
        if peer_slots.size == 0:
            continue  # peer not placed yet: whoever lands first picks the node
        hosts = scoring.hosts_peer(cand.slots, peer_slots)
        where = ", ".join(sorted(filter(None, map(state.node_name, peer_slots.tolist())))[:3])
        for i in np.flatnonzero(~hosts & outcome.passed):
            outcome.unresolvable[cand.names[i]] = (
                f"Required co-location with agent {peer.agent!r}, which runs on {where}"
            )
            outcome.removed["colocation"] = outcome.removed.get("colocation", 0) + 1
        outcome.passed &= hosts
    fits = scoring.gpu_fits(ctx.gpus, cand.gpu_free)
    for i in np.flatnonzero(~fits & outcome.passed):
        outcome.failed[cand.names[i]] = (
            f"insufficient {GPU_RESOURCE}: pod requests {ctx.gpus:g}, node has "
            f"{max(cand.gpu_free[i], 0):g} free of {cand.gpu_alloc[i]:g}"
        )
        outcome.removed["gpu"] = outcome.removed.get("gpu", 0) + 1
    outcome.passed &= fits
    _filter_peaks(ctx, NodeFit.of(state, cand), cand.names, outcome)
    return outcome


def _filter_peaks(ctx: PodContext, fit: NodeFit, names: list[str], outcome: FilterOutcome) -> None:
    cpu, memory = ctx.peak
    for resource, peak, sums, alloc, unit in (
        ("cpu", cpu, fit.cpu_peak, fit.cpu_alloc, _cores),
        ("memory", memory, fit.mem_peak, fit.mem_alloc, _gib),
    ):
        over = scoring.peaks_over(peak, sums, alloc)
        if not over.any():  # the usual case: one pass over the candidates and done
            continue
        source = ctx.peak_source(resource)
        for i in np.flatnonzero(over & outcome.passed):
            outcome.failed[names[i]] = (
                f"predicted {resource} peak {unit(sums[i] + peak)} > allocatable {unit(alloc[i])} "
                f"(pods on the node {unit(sums[i])} + this pod {unit(peak)} from its {source})"
            )
            outcome.removed["spike_fit"] = outcome.removed.get("spike_fit", 0) + 1
        outcome.passed &= ~over


def keep_best(
    state: ClusterState, ctx: PodContext, cand: Candidates, outcome: FilterOutcome, config: ExtenderConfig
) -> None:
    """Narrow `outcome` to the config's `filter_keep_best` fitting nodes Kinship scores best, when
    more fit: each node kube-scheduler is shown costs it an encode, a decode and its score plugins.

    The ranking is prioritize's own, over the fitting nodes only (a term is scaled by its best
    candidate, so a node the filter rejected must not set that scale), before rounding to 0..10."""
    keep = config.filter_keep_best
    fitting = np.flatnonzero(outcome.passed)
    if keep <= 0 or fitting.size <= keep:
        return
    prio = run_prioritize(state, ctx, cand.take(fitting, state.capacity), config)
    values = scoring.weighted_mean(prio.terms, prio.weights, fitting.size)
    offset = zlib.crc32(f"{ctx.namespace}/{ctx.name}".encode()) % fitting.size
    kept = fitting[scoring.keep_best(values, keep, offset)]
    outcome.passed = np.zeros_like(outcome.passed)
    outcome.passed[kept] = True
    outcome.not_best = np.setdiff1d(fitting, kept).tolist()
    outcome.removed["not_best"] = fitting.size - kept.size


@dataclass(slots=True)
class Priorities:
    scores: NDArray[np.int64]
    terms: dict[str, NDArray[np.float64]]  # applied terms only, each in [0, 1]
    weights: dict[str, float]
    uniform: list[str]  # terms equal on every candidate, left out of the mean
    peers: list[tuple[Neighbour, NDArray[np.intp]]]  # placed neighbours and the slots hosting them
    # placed agents correlated with this one at or above the threshold: (agent, coefficient, slots)
    correlated: list[tuple[str, float, NDArray[np.intp]]] = field(default_factory=list)
    # neighbours with no pod placed yet, counted where their pending GPU pod is expected to land
    anticipated: list[tuple[Neighbour, NDArray[np.intp]]] = field(default_factory=list)
    # placed neighbours of an unplaced Required partner, and the slots hosting them
    relayed: list[tuple[Relayed, NDArray[np.intp]]] = field(default_factory=list)


def _peer_placements(
    state: ClusterState,
    ctx: PodContext,
    cand: Candidates,
    peers: list[tuple[Neighbour, NDArray[np.intp]]],
    anticipated: list[tuple[Neighbour, NDArray[np.intp]]],
    relayed: list[tuple[Relayed, NDArray[np.intp]]],
) -> list[scoring.PeerPlacement]:
    """Where each weighted neighbour runs, or for a GPU agent with nothing placed yet, where its
    pending pod is expected to land, then where the relayed neighbours run; appends each to
    `peers`, `anticipated` or `relayed` for explain."""
    placements = []
    for nb in ctx.neighbours:
        if nb.weight <= 0:
            continue
        slots, counts = state.placement(ctx.namespace, nb.agent)
        if slots.size:
            peers.append((nb, slots))
        else:
            slots, counts = state.anticipated(ctx.namespace, nb.agent)
            if slots.size == 0:
                continue
            anticipated.append((nb, slots))
        placements.append(
            scoring.PeerPlacement(nb.weight, cand.position_of(slots), counts, state.zone_id[slots])
        )
    # Only prioritize needs these (the filter enforces this pod's own Required edges alone).
    for r in relayed_neighbours(state, ctx.namespace, ctx.agent) if ctx.agent else ():
        slots, counts = state.placement(ctx.namespace, r.peer.agent)
        if slots.size == 0:
            continue
        relayed.append((r, slots))
        placements.append(
            scoring.PeerPlacement(r.peer.weight, cand.position_of(slots), counts, state.zone_id[slots])
        )
    return placements


def run_prioritize(
    state: ClusterState, ctx: PodContext, cand: Candidates, config: ExtenderConfig
) -> Priorities:
    weights = config.weights.model_dump()
    terms: dict[str, NDArray[np.float64]] = {}
    peers: list[tuple[Neighbour, NDArray[np.intp]]] = []

    anticipated: list[tuple[Neighbour, NDArray[np.intp]]] = []
    relayed: list[tuple[Relayed, NDArray[np.intp]]] = []
    placements = _peer_placements(state, ctx, cand, peers, anticipated, relayed)
    if placements:
        raw = scoring.communication(cand.zones, placements, config.same_zone_fraction, state.zone_count)
        comm = scoring.normalized(raw)
        if comm is not None:
            terms["communication"] = comm

    if ctx.agent is not None:
        own_slots, own_counts = state.placement(ctx.namespace, ctx.agent)
        own = np.zeros(len(cand))
        pos = cand.position_of(own_slots)
        np.add.at(own, pos[pos >= 0], own_counts[pos >= 0])
        terms["spread"] = scoring.spread(own)

    gpu = scoring.gpu_preference(ctx.gpus, cand.gpu_alloc, cand.gpu_free)
    if ctx.gpus > 0:
        weights["gpu"] = weights["gpu_packing"]
        if (packed := scoring.normalized(gpu)) is not None:
            gpu = packed
    terms["gpu"] = gpu

    correlated: list[tuple[str, float, NDArray[np.intp]]] = []
    if ctx.agent is not None:
        worst: NDArray[np.float64] | None = None
        for other, coefficient in state.correlated(ctx.namespace, ctx.agent).items():
            if coefficient < config.spike_correlation_threshold or coefficient <= 0:
                continue
            slots, _ = state.placement(ctx.namespace, other)
            if slots.size == 0:
                continue
            correlated.append((other, coefficient, slots))
            if worst is None:
                worst = np.zeros(len(cand))
            pos = cand.position_of(slots)
            np.maximum.at(worst, pos[pos >= 0], coefficient)
        if worst is not None:
            terms["spike_correlation"] = scoring.spike_correlation(worst)
    # kube-scheduler compares extender scores across nodes only, so a term that is equal on every
    # node says nothing; averaging it in would squeeze the informative terms into fewer of the
    # ten integer levels.
    uniform = [t for t, v in terms.items() if v.size == 0 or np.ptp(v) == 0]
    applied = {t: v for t, v in terms.items() if t not in uniform}
    scores = scoring.combine(applied, weights, len(cand))
    return Priorities(
        scores=scores,
        terms=applied,
        weights=weights,
        uniform=uniform,
        peers=peers,
        correlated=correlated,
        anticipated=anticipated,
        relayed=relayed,
    )
