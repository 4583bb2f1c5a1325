"""The extender's in-memory view of the cluster: nodes as numpy columns, pods as indexes.

Written by one producer at a time (watch threads or a snapshot loader), read by request handlers.
Nodes live in reusable slots so that per-node facts (zone, GPUs, allocatable CPU and memory, the
sum of predicted peaks) are numpy arrays the scorer can gather from without a Python loop; pods are
kept only as the indexes placement needs (agent -> node counts, node -> pods), so memory stays
linear in nodes + pods.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from extender.config import ProfilePolicy
from extender.objects import (
    CPU_RESOURCE,
    GPU_RESOURCE,
    MEMORY_RESOURCE,
    Node,
    Pod,
    Workload,
    node_allocatable,
    pod_resource_request,
)
from kinship.graph import AgentGraph, Neighbour, team_adjacency
from kinship.profile import AgentProfile, stale_reason, unconfident_reason

log = logging.getLogger("kinship.extender.state")
AgentKey = tuple[str, str]  # (namespace, agent)
NO_ZONE = -1
_NOWHERE = (np.empty(0, np.intp), np.empty(0))  # no slots, no counts: shared, never written
for _array in _NOWHERE:
    _array.flags.writeable = False


def node_fit_allocatable(node: Node) -> tuple[float, float]:
    """Allocatable (cpu millicores, memory bytes) of a node; NaN for a resource the Node object
    does not state, so that an unknown capacity rejects no pod. ValueError on a bad quantity."""
    status = node.status
    out = []
    for resource, scale in ((CPU_RESOURCE, 1000.0), (MEMORY_RESOURCE, 1.0)):
        stated = status is not None and any(
            resource in (d or {}) for d in (status.allocatable, status.capacity)
        )
        out.append(node_allocatable(node, resource) * scale if stated else np.nan)
    return out[0], out[1]


def pod_fit_requests(pod: Pod) -> tuple[float, float]:
    """Declared (cpu millicores, memory bytes) requests, sidecar-aware as kube-scheduler sums them."""
    return pod_resource_request(pod, CPU_RESOURCE) * 1000, pod_resource_request(pod, MEMORY_RESOURCE)


class UnknownNodes(LookupError):
    def __init__(self, names: list[str]) -> None:
        self.names = names
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        super().__init__(f"unknown node names (not in the extender's cache): {shown}")


@dataclass(frozen=True, slots=True)
class PodRecord:
    namespace: str
    name: str
    agent: str | None
    node: str
    gpu: float
    # Declared requests, kept so that a pod's predicted peak can be recomputed when its agent's
    # profile appears, changes or goes away (the fallback when the profile lacks a resource).
    cpu_millicores: float
    memory_bytes: float


@dataclass(frozen=True, slots=True)
class InFlight:
    """A pod the extender scored and has not seen bound: who it is, what it requests (to place it
    the moment kube-scheduler says where it goes) and when to stop expecting its binding."""

    namespace: str
    name: str
    agent: str | None
    gpu: float
    cpu_millicores: float
    memory_bytes: float
    deadline: float


@dataclass(frozen=True, slots=True)
class SpikeProfile:
    """What spike-aware placement reads from one AgentProfile: the pod's predicted peak (None per
    resource the predictor has not measured, or when the profile is ignored) and its correlations
    with other agents."""

    cpu_millicores: float | None
    memory_bytes: float | None
    # (other agent, correlation): the larger of the CPU and memory coefficients, because a spike
    # in either resource is what stacking correlated agents risks.
    correlations: tuple[tuple[str, float], ...]
    # Why the profile's peaks are not used (the policy's verdict when it was read), for explain.
    ignored: str | None = None

    @classmethod
    def of(cls, profile: AgentProfile, policy: ProfilePolicy, now: float) -> SpikeProfile:
        """Read a profile as of `now` (unix seconds, the time it is ingested). A profile the
        policy rejects keeps no peaks, so `pod_peak` falls back to requests as with no profile.
        A stale one also loses its correlations (measured over the same old window); a
        low-confidence one keeps them, since confidence grades the peak model, not the Pearson
        coefficients."""
        stale = stale_reason(profile.status.lastTrained, policy.max_age_seconds, now)
        ignored = stale or unconfident_reason(profile.status.confidence, policy.min_confidence)
        pairs = []
        for c in () if stale else profile.status.correlations:
            known = [v for v in (c.cpu, c.memory) if v is not None]
            if known and c.agent != profile.agent:
                pairs.append((c.agent, max(known)))
        if ignored:
            return cls(None, None, tuple(pairs), ignored)
        totals = profile.peak_totals()
        return cls(totals.cpuMillicores, totals.memoryBytes, tuple(pairs))


def pod_peak(profile: SpikeProfile | None, cpu_request: float, memory_request: float) -> tuple[float, float]:
    """A pod's predicted (cpu millicores, memory bytes) peak: its agent's profile per resource the
    profile knows, else the declared request.

    The profile's per-container peaks are summed and compared as a pod total, not matched to the
    pod's containers by name: a profile trained on an older revision (a renamed or added sidecar)
    still describes what the agent's pod as a whole uses at once.
    """
    if profile is None:
        return cpu_request, memory_request
    cpu = profile.cpu_millicores if profile.cpu_millicores is not None else cpu_request
    memory = profile.memory_bytes if profile.memory_bytes is not None else memory_request
    return cpu, memory


class ClusterState:
    """Cache of nodes, bound pods and AgentGraphs. All public methods take the lock."""

    def __init__(
        self,
        observed_fraction: float = 0.5,
        initial_capacity: int = 64,
        profile_policy: ProfilePolicy | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self._observed_fraction = observed_fraction
        self._profile_policy = profile_policy or ProfilePolicy()
        self._slot: dict[str, int] = {}
        self._names: list[str | None] = [None] * initial_capacity
        self._free: list[int] = list(range(initial_capacity - 1, -1, -1))
        self.zone_id: NDArray[np.intp] = np.full(initial_capacity, NO_ZONE, dtype=np.intp)
        self.gpu_alloc: NDArray[np.float64] = np.zeros(initial_capacity)
        self.gpu_used: NDArray[np.float64] = np.zeros(initial_capacity)
        # Spike-aware fit, by slot: allocatable (NaN when the Node object does not say, so that
        # an unknown capacity rejects nothing) and the sum of the predicted peaks of its pods.
        # Kept up to date on every pod, node and profile change, never recomputed per request.
        self.cpu_alloc: NDArray[np.float64] = np.full(initial_capacity, np.nan)
        self.mem_alloc: NDArray[np.float64] = np.full(initial_capacity, np.nan)
        self.cpu_peak: NDArray[np.float64] = np.zeros(initial_capacity)
        self.mem_peak: NDArray[np.float64] = np.zeros(initial_capacity)
        self._zones: dict[str, int] = {}
        self._pods: dict[str, PodRecord] = {}
        self._agent_nodes: dict[AgentKey, Counter[str]] = defaultdict(Counter)
        self._placements: dict[AgentKey, tuple[NDArray[np.intp], NDArray[np.float64]]] = {}
        # One float object per distinct request value: the replicas of a workload all request
        # the same, and a float object per pod would cost 48 bytes per pod at 150,000 pods.
        self._request_values: dict[float, float] = {}
        self._node_pods: dict[str, set[str]] = defaultdict(set)
        self._graphs: dict[tuple[str, str], AgentGraph] = {}
        # What spike-aware placement reads from each AgentProfile, by (namespace, agent), and the
        # correlations made symmetric per namespace: agent -> {other agent: coefficient}.
        self._profiles: dict[AgentKey, SpikeProfile] = {}
        self._correlations: dict[str, dict[str, dict[str, float]]] = {}
        self._adjacency: dict[str, dict[str, tuple[Neighbour, ...]]] = {}
        self._synced: dict[str, bool] = {}
        # Bumped whenever a node gets or loses a slot: anything caching name -> slot checks it.
        self.node_generation = 0
        # Pods the extender scored but has not yet seen bound. kube-scheduler binds
        # asynchronously and schedules the next pod at once; without this, a team deployed
        # together would be placed as if its just-scheduled members did not exist.
        self._in_flight: dict[str, InFlight] = {}
        # GPU demand not placed yet, by source ("pod/<key>" for an unbound pod, "<Kind>/<ns>/<name>"
        # for a Deployment or StatefulSet) -> (namespace, agent, GPUs per pod). A team deployed in
        # one burst is scored pod by pod; where a GPU agent will land is predictable (its
        # tightest GPU fit) before it is scheduled, even before its pods exist, and its chatty
        # peers, often scheduled first, should head for that zone rather than away from it.
        self._gpu_demand: dict[str, tuple[str, str, float]] = {}
        # The same by agent, so that scoring asks one dict lookup per neighbour, not a scan.
        self._gpu_demand_of: dict[AgentKey, dict[str, float]] = {}
        # Pods placed by the extender's own bind verb before the watch confirms them: key ->
        # monotonic deadline. Indexed like bound pods (kube-scheduler's "assumed" pods), so the
        # next pod is scored with them in place; the watch's bound pod replaces the entry, a
        # failed binding removes it, and the deadline drops one the watch never confirms.
        self._assumed: dict[str, float] = {}
        # True when watches feed the cache, so that bindings of scored pods will arrive; an
        # offline snapshot never changes, and waiting for a binding there would be pointless.
        self.watched = False

    # ---- readiness -------------------------------------------------------------------------
    def expect(self, *kinds: str) -> None:
        """Declare the sources that must sync before the cache is ready."""
        with self.lock:
            for kind in kinds:
                self._synced.setdefault(kind, False)

    def mark_synced(self, kind: str) -> None:
        with self.lock:
            self._synced[kind] = True

    @property
    def ready(self) -> bool:
        with self.lock:
            return bool(self._synced) and all(self._synced.values())

    def unsynced(self) -> list[str]:
        with self.lock:
            return sorted(k for k, ok in self._synced.items() if not ok)

    # ---- nodes -----------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return len(self._names)

    @property
    def zone_count(self) -> int:
        return len(self._zones)

    def upsert_node(self, node: Node) -> None:
        name = node.metadata.name
        try:
            gpus = node_allocatable(node, GPU_RESOURCE)
        except ValueError as exc:  # one bad object must not stop the cache from following
            log.warning("node %s: %s; counting no GPUs on it", name, exc)
            gpus = 0.0
        try:
            cpu, memory = node_fit_allocatable(node)
        except ValueError as exc:
            log.warning("node %s: %s; not checking CPU and memory fit on it", name, exc)
            cpu = memory = np.nan
        with self.lock:
            slot = self._slot.get(name)
            if slot is None:
                slot = self._allocate_slot()
                self.node_generation += 1
                self._placements.clear()
                self._slot[name] = slot
                self._names[slot] = name
                self.gpu_used[slot] = sum(self._pods[k].gpu for k in self._node_pods.get(name, ()))
                self._recompute_peaks(name)
            self.zone_id[slot] = self.zone_index(node.zone)
            self.gpu_alloc[slot] = gpus
            self.cpu_alloc[slot] = cpu
            self.mem_alloc[slot] = memory

    def delete_node(self, name: str) -> None:
        with self.lock:
            slot = self._slot.pop(name, None)
            if slot is None:
                return
            self.node_generation += 1
            self._placements.clear()
            self._names[slot] = None
            self.zone_id[slot] = NO_ZONE
            self.gpu_alloc[slot] = 0.0
            self.gpu_used[slot] = 0.0
            self.cpu_alloc[slot] = np.nan
            self.mem_alloc[slot] = np.nan
            self.cpu_peak[slot] = 0.0
            self.mem_peak[slot] = 0.0
            self._free.append(slot)

    def replace_nodes(self, nodes: Iterable[Node]) -> None:
        """Make the node set exactly `nodes` (a relist), keeping slots of nodes that remain."""
        nodes = list(nodes)
        with self.lock:
            keep = {n.metadata.name for n in nodes}
            for name in [n for n in self._slot if n not in keep]:
                self.delete_node(name)
            for node in nodes:
                self.upsert_node(node)

    def zone_index(self, zone: str | None) -> int:
        if not zone:
            return NO_ZONE
        with self.lock:
            return self._zones.setdefault(zone, len(self._zones))

    def zones(self) -> dict[str, int]:
        with self.lock:
            return dict(self._zones)

    def known_zone_index(self, zone: str | None) -> int:
        """Zone id without registering a new zone (request path: must not grow the cache).

        A zone no cached node is in hosts no peer, so it is as good as no zone at all."""
        if not zone:
            return NO_ZONE
        return self._zones.get(zone, NO_ZONE)

    def slots_of(self, names: list[str]) -> NDArray[np.intp]:
        try:
            return np.fromiter(map(self._slot.__getitem__, names), dtype=np.intp, count=len(names))
        except KeyError:
            raise UnknownNodes([n for n in names if n not in self._slot]) from None

    def slot_or_missing(self, names: list[str]) -> NDArray[np.intp]:
        """Slots for names, -1 where the cache does not know the node (Nodes mode)."""
        get = self._slot.get
        return np.fromiter((get(n, -1) for n in names), dtype=np.intp, count=len(names))

    def node_names(self) -> list[str]:
        with self.lock:
            return [n for n in self._names if n is not None]

    def node_name(self, slot: int) -> str | None:
        return self._names[slot]

    def _allocate_slot(self) -> int:
        if not self._free:
            old = len(self._names)
            new = old * 2
            self._names.extend([None] * (new - old))
            self.zone_id = np.concatenate([self.zone_id, np.full(new - old, NO_ZONE, np.intp)])
            self.gpu_alloc = np.concatenate([self.gpu_alloc, np.zeros(new - old)])
            self.gpu_used = np.concatenate([self.gpu_used, np.zeros(new - old)])
            self.cpu_alloc = np.concatenate([self.cpu_alloc, np.full(new - old, np.nan)])
            self.mem_alloc = np.concatenate([self.mem_alloc, np.full(new - old, np.nan)])
            self.cpu_peak = np.concatenate([self.cpu_peak, np.zeros(new - old)])
            self.mem_peak = np.concatenate([self.mem_peak, np.zeros(new - old)])
            self._free = list(range(new - 1, old - 1, -1))
        return self._free.pop()

    # ---- pods ------------------------------------------------------------------------------
    def upsert_pod(self, pod: Pod) -> None:
        """Index a pod if it occupies a node: bound and not terminated. Otherwise forget it."""
        key = pod.key
        with self.lock:
            node = pod.spec.nodeName
            if key in self._assumed and not node and not pod.terminated:
                return  # an older, unbound view of a pod the extender has just bound
            self._assumed.pop(key, None)
            self._forget_pod(key)
            if node or pod.terminated:
                self._in_flight.pop(key, None)
            if not node or pod.terminated:
                return
            try:
                gpus = pod_resource_request(pod, GPU_RESOURCE)
                cpu, memory = pod_fit_requests(pod)
            except ValueError as exc:  # one bad object must not stop the cache from following
                log.warning("pod %s/%s: %s; not indexed", pod.namespace, pod.metadata.name, exc)
                return
            self._add_record(key, pod.namespace, pod.metadata.name, pod.agent, node, gpus, cpu, memory)

    def _add_record(
        self,
        key: str,
        namespace: str,
        name: str,
        agent: str | None,
        node: str,
        gpu: float,
        cpu: float,
        memory: float,
    ) -> None:
        values = self._request_values
        record = PodRecord(
            namespace, name, agent, node, gpu, values.setdefault(cpu, cpu), values.setdefault(memory, memory)
        )
        self._pods[key] = record
        self._node_pods[node].add(key)
        if record.agent is not None:
            self._agent_nodes[(record.namespace, record.agent)][node] += 1
            self._placements.pop((record.namespace, record.agent), None)
        slot = self._slot.get(node)
        if slot is not None:
            self.gpu_used[slot] += record.gpu
            cpu_peak, mem_peak = self._peak_of(record)
            self.cpu_peak[slot] += cpu_peak
            self.mem_peak[slot] += mem_peak

    def delete_pod(self, key: str) -> None:
        with self.lock:
            self._in_flight.pop(key, None)
            self._assumed.pop(key, None)
            self._forget_pod(key)

    # ---- pods being scheduled --------------------------------------------------------------
    def note_in_flight(self, key: str, pod: InFlight, now: float) -> None:
        """Remember a pod the extender just scored, until it is bound (by the extender's bind
        verb or seen through the watch) or its deadline passes. A later note (prioritize after
        filter, a retry after a failed cycle) moves the deadline on."""
        with self.lock:
            self._expire(now)
            if key not in self._pods:
                self._in_flight[key] = pod

    def in_flight(self, namespace: str, agents: frozenset[str], exclude: str, now: float) -> bool:
        """Whether any other pod of these agents was scored and is not bound yet."""
        with self.lock:
            self._expire(now)
            return any(
                p.namespace == namespace and p.agent in agents and key != exclude
                for key, p in self._in_flight.items()
            )

    # ---- pods waiting to be scheduled -------------------------------------------------------
    def upsert_pending_pod(self, pod: Pod) -> None:
        """Index an unbound pod of an agent if it requests GPUs; forget it otherwise."""
        unbound = not pod.spec.nodeName and not pod.terminated
        self._set_demand(f"pod/{pod.key}", pod.namespace, pod.agent if unbound else None, pod)

    def delete_pending_pod(self, key: str) -> None:
        with self.lock:
            self._pop_demand(f"pod/{key}")

    def replace_pending_pods(self, pods: Iterable[Pod]) -> None:
        pods = list(pods)
        with self.lock:
            self._drop_demand("pod/")
            for pod in pods:
                self.upsert_pending_pod(pod)

    def upsert_workload(self, kind: str, workload: Workload) -> None:
        """Index a Deployment or StatefulSet whose pods request GPUs (0 replicas: none)."""
        wanted = workload.spec.replicas != 0
        name = f"{kind}/{workload.namespace}/{workload.metadata.name}"
        self._set_demand(name, workload.namespace, workload.agent(kind) if wanted else None, workload.pod())

    def delete_workload(self, kind: str, namespace: str, name: str) -> None:
        with self.lock:
            self._pop_demand(f"{kind}/{namespace}/{name}")

    def replace_workloads(self, kind: str, workloads: Iterable[Workload]) -> None:
        workloads = list(workloads)
        with self.lock:
            self._drop_demand(f"{kind}/")
            for workload in workloads:
                self.upsert_workload(kind, workload)

    def _set_demand(self, key: str, namespace: str, agent: str | None, pod: Pod) -> None:
        with self.lock:
            self._pop_demand(key)
            if agent is None:
                return
            try:
                gpus = pod_resource_request(pod, GPU_RESOURCE)
            except ValueError:
                return  # a bad quantity only loses a hint; the pod itself is rejected when scored
            if gpus > 0:
                self._gpu_demand[key] = (namespace, agent, gpus)
                self._gpu_demand_of.setdefault((namespace, agent), {})[key] = gpus

    def _drop_demand(self, prefix: str) -> None:
        for key in [k for k in self._gpu_demand if k.startswith(prefix)]:
            self._pop_demand(key)

    def _pop_demand(self, key: str) -> None:
        entry = self._gpu_demand.pop(key, None)
        if entry is None:
            return
        namespace, agent, _ = entry
        of_agent = self._gpu_demand_of[(namespace, agent)]
        del of_agent[key]
        if not of_agent:
            del self._gpu_demand_of[(namespace, agent)]

    def anticipated(self, namespace: str, agent: str) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Where a GPU agent with no pod placed yet is expected to land: the nodes with the
        tightest GPU fit for its largest GPU request (from its pending pods or its Deployment or
        StatefulSet; GPU pods prefer the tightest fit, and `gpu_packing` outweighs communication),
        one pod's worth split over tied nodes. Empty when the agent has pods placed, requests no
        GPU, or no node fits it."""
        none = _NOWHERE
        with self.lock:
            if self._agent_nodes.get((namespace, agent)):
                return none
            demand = self._gpu_demand_of.get((namespace, agent))
            if not demand:
                return none
            gpus = max(demand.values())
            free = self.gpu_alloc - self.gpu_used
            fits = np.flatnonzero((free >= gpus) & (self.gpu_alloc > 0))
            if fits.size == 0:
                return none
            tightest = fits[free[fits] == free[fits].min()]
            return tightest.astype(np.intp), np.full(tightest.size, 1.0 / tightest.size)

    def assume(self, key: str, node: str, now: float, ttl_seconds: float) -> bool:
        """Place a scored pod on the node kube-scheduler chose, before the binding is written:
        the next pod is scored with it in place. False when the extender never scored the pod
        (it restarted in between) or the watch already delivered it bound."""
        with self.lock:
            self._expire(now)
            self._pop_demand(f"pod/{key}")
            pod = self._in_flight.pop(key, None)
            if pod is None or key in self._pods:
                return False
            self._add_record(
                key, pod.namespace, pod.name, pod.agent, node, pod.gpu, pod.cpu_millicores, pod.memory_bytes
            )
            self._assumed[key] = now + ttl_seconds
            return True

    def forget_assumed(self, key: str) -> None:
        """The binding failed: take the pod off the node it was assumed on (unless the watch has
        meanwhile confirmed it bound, e.g. by the scheduler's fallback binder)."""
        with self.lock:
            if self._assumed.pop(key, None) is not None:
                self._forget_pod(key)

    def _expire(self, now: float) -> None:
        for key in [k for k, p in self._in_flight.items() if p.deadline <= now]:
            del self._in_flight[key]
        for key in [k for k, deadline in self._assumed.items() if deadline <= now]:
            del self._assumed[key]
            self._forget_pod(key)

    def replace_pods(self, pods: Iterable[Pod]) -> None:
        """Make the bound pods exactly `pods` (a relist), keeping pods assumed since: a list
        taken before their binding was written does not show them yet."""
        pods = list(pods)
        with self.lock:
            keep = {p.key for p in pods} | self._assumed.keys()
            for key in [k for k in self._pods if k not in keep]:
                self._forget_pod(key)
            for pod in pods:
                self.upsert_pod(pod)

    def _forget_pod(self, key: str) -> None:
        record = self._pods.pop(key, None)
        if record is None:
            return
        on_node = self._node_pods[record.node]
        on_node.discard(key)
        emptied = not on_node
        if emptied:
            del self._node_pods[record.node]
        if record.agent is not None:
            agent_key = (record.namespace, record.agent)
            self._placements.pop(agent_key, None)
            counts = self._agent_nodes[agent_key]
            counts[record.node] -= 1
            if counts[record.node] <= 0:
                del counts[record.node]
            if not counts:
                del self._agent_nodes[agent_key]
        slot = self._slot.get(record.node)
        if slot is not None:
            self.gpu_used[slot] -= record.gpu
            if emptied:  # exact zero: no rounding residue left behind by float additions
                self.cpu_peak[slot] = self.mem_peak[slot] = 0.0
            else:
                cpu_peak, mem_peak = self._peak_of(record)
                self.cpu_peak[slot] -= cpu_peak
                self.mem_peak[slot] -= mem_peak

    def _peak_of(self, record: PodRecord) -> tuple[float, float]:
        profile = self._profiles.get((record.namespace, record.agent)) if record.agent else None
        return pod_peak(profile, record.cpu_millicores, record.memory_bytes)

    def _recompute_peaks(self, node: str) -> None:
        """Sum the peaks of a node's pods afresh (a new slot, or a profile that changed)."""
        slot = self._slot.get(node)
        if slot is None:
            return
        cpu = memory = 0.0
        for key in self._node_pods.get(node, ()):
            c, m = self._peak_of(self._pods[key])
            cpu += c
            memory += m
        self.cpu_peak[slot] = cpu
        self.mem_peak[slot] = memory

    def placement(self, namespace: str, agent: str) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Slots hosting this agent's pods and how many pods on each (nodes unknown to the cache
        are skipped: nothing can be placed next to them). Read-only arrays, cached until one of
        the agent's pods or any node slot changes: every call reads a few agents' placements
        (graph peers, own replicas, correlated agents), and pods move far less often."""
        key = (namespace, agent)
        cached = self._placements.get(key)
        if cached is not None:
            return cached
        counts = self._agent_nodes.get(key)
        pairs = [(self._slot[n], c) for n, c in counts.items() if n in self._slot] if counts else []
        if pairs:
            slots, weights = zip(*pairs, strict=True)
            found = (np.asarray(slots, dtype=np.intp), np.asarray(weights, dtype=np.float64))
        else:
            found = (np.empty(0, np.intp), np.empty(0))
        for array in found:
            array.flags.writeable = False
        if counts:  # no entries for agents without pods: requests must not grow the cache
            self._placements[key] = found
        return found

    # ---- graphs ----------------------------------------------------------------------------
    def upsert_graph(self, graph: AgentGraph) -> None:
        with self.lock:
            self._graphs[graph.key] = graph
            self._rebuild_adjacency(graph.metadata.namespace)

    def delete_graph(self, namespace: str, name: str) -> None:
        with self.lock:
            if self._graphs.pop((namespace, name), None) is not None:
                self._rebuild_adjacency(namespace)

    def replace_graphs(self, graphs: Iterable[AgentGraph]) -> None:
        graphs = list(graphs)
        with self.lock:
            touched = {ns for ns, _ in self._graphs} | {g.metadata.namespace for g in graphs}
            self._graphs = {g.key: g for g in graphs}
            for namespace in touched:
                self._rebuild_adjacency(namespace)

    def neighbours(self, namespace: str, agent: str) -> tuple[Neighbour, ...]:
        return self._adjacency.get(namespace, {}).get(agent, ())

    def _rebuild_adjacency(self, namespace: str) -> None:
        graphs = [g for (ns, _), g in self._graphs.items() if ns == namespace]
        if graphs:
            self._adjacency[namespace] = team_adjacency(graphs, self._observed_fraction)
        else:
            self._adjacency.pop(namespace, None)

    # ---- agent profiles --------------------------------------------------------------------
    # A profile is judged (confidence, age) when it is read, with `now` the time of reading:
    # one that ages past the limit while cached counts until its next update or the next relist.
    def upsert_profile(self, profile: AgentProfile, now: float | None = None) -> None:
        read = SpikeProfile.of(profile, self._profile_policy, time.time() if now is None else now)
        with self.lock:
            self._set_profiles({profile.key: read}, {profile.key})

    def delete_profile(self, namespace: str, agent: str) -> None:
        with self.lock:
            self._set_profiles({}, {(namespace, agent)})

    def replace_profiles(self, profiles: Iterable[AgentProfile], now: float | None = None) -> None:
        at = time.time() if now is None else now
        fresh = {p.key: SpikeProfile.of(p, self._profile_policy, at) for p in profiles}
        with self.lock:
            self._set_profiles(fresh, set(self._profiles) | set(fresh))

    def profile(self, namespace: str, agent: str) -> SpikeProfile | None:
        return self._profiles.get((namespace, agent))

    def correlated(self, namespace: str, agent: str) -> dict[str, float]:
        """Other agents' usage correlation with this agent's, whichever profile lists the pair."""
        return self._correlations.get(namespace, {}).get(agent, {})

    def _set_profiles(self, fresh: dict[AgentKey, SpikeProfile], keys: set[AgentKey]) -> None:
        """Make the profiles of `keys` those in `fresh` (absent: deleted), then recompute the peak
        sums of the nodes hosting the pods of agents whose profile changed. Profiles change when
        the predictor retrains, rarely next to pod churn, so a few nodes' worth of pods is cheap."""
        changed = [k for k in keys if self._profiles.get(k) != fresh.get(k)]
        if not changed:
            return
        for key in changed:
            if key in fresh:
                self._profiles[key] = fresh[key]
                if fresh[key].ignored:
                    log.info("AgentProfile %s/%s ignored: %s", *key, fresh[key].ignored)
            else:
                del self._profiles[key]
        nodes = {node for key in changed for node in self._agent_nodes.get(key, ())}
        for node in nodes:
            self._recompute_peaks(node)
        for namespace in {ns for ns, _ in changed}:
            self._rebuild_correlations(namespace)

    def _rebuild_correlations(self, namespace: str) -> None:
        # Pearson correlation is symmetric, but each profile is trained on its own window: when
        # both agents list the pair, the larger coefficient wins (stacking is the risk to avoid).
        table: dict[str, dict[str, float]] = defaultdict(dict)
        for (ns, agent), profile in self._profiles.items():
            if ns != namespace:
                continue
            for other, value in profile.correlations:
                for a, b in ((agent, other), (other, agent)):
                    table[a][b] = max(value, table[a].get(b, -1.0))
        if table:
            self._correlations[namespace] = dict(table)
        else:
            self._correlations.pop(namespace, None)

    # ---- sizes (for /metrics) --------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        with self.lock:
            return {
                "nodes": len(self._slot),
                "pods": len(self._pods),
                "agents": len(self._agent_nodes),
                "agentgraphs": len(self._graphs),
                "agentprofiles": len(self._profiles),
                "pods_in_flight": len(self._in_flight),
                "pods_assumed": len(self._assumed),
                "gpu_demand_not_placed": len(self._gpu_demand),
            }
