"""The extender's in-memory view of the cluster: nodes as numpy columns, pods as indexes.

Written by one producer at a time (watch threads or a snapshot loader), read by request handlers.
Nodes live in reusable slots so that per-node facts (zone, GPUs) are numpy arrays the scorer can
gather from without a Python loop; pods are kept only as the indexes placement needs
(agent -> node counts, node -> pods), so memory stays linear in nodes + pods.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from extender.objects import GPU_RESOURCE, Node, Pod, node_allocatable, pod_resource_request
from kinship.graph import AgentGraph, Neighbour, team_adjacency

log = logging.getLogger("kinship.extender.state")
AgentKey = tuple[str, str]  # (namespace, agent)
NO_ZONE = -1


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


class ClusterState:
    """Cache of nodes, bound pods and AgentGraphs. All public methods take the lock."""

    def __init__(self, observed_fraction: float = 0.5, initial_capacity: int = 64) -> None:
        self.lock = threading.RLock()
        self._observed_fraction = observed_fraction
        self._slot: dict[str, int] = {}
        self._names: list[str | None] = [None] * initial_capacity
        self._free: list[int] = list(range(initial_capacity - 1, -1, -1))
        self.zone_id: NDArray[np.intp] = np.full(initial_capacity, NO_ZONE, dtype=np.intp)
        self.gpu_alloc: NDArray[np.float64] = np.zeros(initial_capacity)
        self.gpu_used: NDArray[np.float64] = np.zeros(initial_capacity)
        self._zones: dict[str, int] = {}
        self._pods: dict[str, PodRecord] = {}
        self._agent_nodes: dict[AgentKey, Counter[str]] = defaultdict(Counter)
        self._node_pods: dict[str, set[str]] = defaultdict(set)
        self._graphs: dict[tuple[str, str], AgentGraph] = {}
        # AgentProfile status by (namespace, agent), as the predictor publishes it; read by
        # spike-aware fit (issue 5), held here so that it is synced before /readyz says ready.
        self._profiles: dict[AgentKey, dict[str, object]] = {}
        self._adjacency: dict[str, dict[str, tuple[Neighbour, ...]]] = {}
        self._synced: dict[str, bool] = {}
        # Bumped whenever a node gets or loses a slot: anything caching name -> slot checks it.
        self.node_generation = 0
        # Pods the extender scored but has not yet seen bound: pod key -> (namespace, agent,
        # monotonic deadline). kube-scheduler binds asynchronously and schedules the next pod
        # at once; without this, a team deployed together would be placed as if its
        # just-scheduled members did not exist.
        self._in_flight: dict[str, tuple[str, str, float]] = {}
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
        with self.lock:
            slot = self._slot.get(name)
            if slot is None:
                slot = self._allocate_slot()
                self.node_generation += 1
                self._slot[name] = slot
                self._names[slot] = name
                self.gpu_used[slot] = sum(self._pods[k].gpu for k in self._node_pods.get(name, ()))
            self.zone_id[slot] = self.zone_index(node.zone)
            self.gpu_alloc[slot] = gpus

    def delete_node(self, name: str) -> None:
        with self.lock:
            slot = self._slot.pop(name, None)
            if slot is None:
                return
            self.node_generation += 1
            self._names[slot] = None
            self.zone_id[slot] = NO_ZONE
            self.gpu_alloc[slot] = 0.0
            self.gpu_used[slot] = 0.0
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
            self._free = list(range(new - 1, old - 1, -1))
        return self._free.pop()

    # ---- pods ------------------------------------------------------------------------------
    def upsert_pod(self, pod: Pod) -> None:
        """Index a pod if it occupies a node: bound and not terminated. Otherwise forget it."""
        key = pod.key
        with self.lock:
            self._forget_pod(key)
            node = pod.spec.nodeName
            if node or pod.terminated:
                self._in_flight.pop(key, None)
            if not node or pod.terminated:
                return
            try:
                gpus = pod_resource_request(pod, GPU_RESOURCE)
            except ValueError as exc:  # one bad object must not stop the cache from following
                log.warning("pod %s/%s: %s; not indexed", pod.namespace, pod.metadata.name, exc)
                return
            record = PodRecord(
                namespace=pod.namespace,
                name=pod.metadata.name,
                agent=pod.agent,
                node=node,
                gpu=gpus,
            )
            self._pods[key] = record
            self._node_pods[node].add(key)
            if record.agent is not None:
                self._agent_nodes[(record.namespace, record.agent)][node] += 1
            slot = self._slot.get(node)
            if slot is not None:
                self.gpu_used[slot] += record.gpu

    def delete_pod(self, key: str) -> None:
        with self.lock:
            self._in_flight.pop(key, None)
            self._forget_pod(key)

    # ---- pods being scheduled --------------------------------------------------------------
    def note_in_flight(self, key: str, namespace: str, agent: str, ttl_seconds: float, now: float) -> None:
        """Remember a pod the extender just scored, until it is seen bound or `ttl` passes."""
        with self.lock:
            if key not in self._pods:
                self._in_flight[key] = (namespace, agent, now + ttl_seconds)

    def in_flight(self, namespace: str, agents: frozenset[str], exclude: str, now: float) -> bool:
        """Whether any other pod of these agents was scored and is not bound yet."""
        with self.lock:
            for key in [k for k, (_, _, deadline) in self._in_flight.items() if deadline <= now]:
                del self._in_flight[key]
            return any(
                ns == namespace and agent in agents and key != exclude
                for key, (ns, agent, _) in self._in_flight.items()
            )

    def replace_pods(self, pods: Iterable[Pod]) -> None:
        pods = list(pods)
        with self.lock:
            keep = {p.key for p in pods}
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
        if not on_node:
            del self._node_pods[record.node]
        if record.agent is not None:
            agent_key = (record.namespace, record.agent)
            counts = self._agent_nodes[agent_key]
            counts[record.node] -= 1
            if counts[record.node] <= 0:
                del counts[record.node]
            if not counts:
                del self._agent_nodes[agent_key]
        slot = self._slot.get(record.node)
        if slot is not None:
            self.gpu_used[slot] -= record.gpu

    def placement(self, namespace: str, agent: str) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Slots hosting this agent's pods and how many pods on each (nodes unknown to the cache
        are skipped: nothing can be placed next to them)."""
        counts = self._agent_nodes.get((namespace, agent))
        if not counts:
            return np.empty(0, np.intp), np.empty(0)
        pairs = [(self._slot[n], c) for n, c in counts.items() if n in self._slot]
        if not pairs:
            return np.empty(0, np.intp), np.empty(0)
        slots, weights = zip(*pairs, strict=True)
        return np.asarray(slots, dtype=np.intp), np.asarray(weights, dtype=np.float64)

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
    def upsert_profile(self, namespace: str, agent: str, status: dict[str, object]) -> None:
        with self.lock:
            self._profiles[(namespace, agent)] = status

    def delete_profile(self, namespace: str, agent: str) -> None:
        with self.lock:
            self._profiles.pop((namespace, agent), None)

    def replace_profiles(self, profiles: Iterable[tuple[str, str, dict[str, object]]]) -> None:
        fresh = {(ns, agent): status for ns, agent, status in profiles}
        with self.lock:
            self._profiles = fresh

    # ---- sizes (for /metrics) --------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        with self.lock:
            return {
                "nodes": len(self._slot),
                "pods": len(self._pods),
                "agents": len(self._agent_nodes),
                "agentgraphs": len(self._graphs),
                "agentprofiles": len(self._profiles),
            }
