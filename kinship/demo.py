"""The cluster demo: the example teams deployed twice, once per scheduler, and what that does to
their traffic.

Both copies run in the same cluster at the same time, so they see the same nodes; each copy lives
in its own namespace because a team is a namespace (DESIGN.md) and the copies must not count as
each other's peers. The e2e tests deploy teams with the same functions, so the demo shows exactly
what the tests check.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinship.documents import read_yaml_documents
from kinship.graph import AgentGraph, parse_agent_graph, team_adjacency
from kinship.identity import AGENT_LABEL

ZONE_LABEL = "topology.kubernetes.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"
# Scores use observed traffic as half of an edge's weight; the demo measures with the same blend.
OBSERVED_FRACTION = 0.5


@dataclass(frozen=True)
class Team:
    """One copy of an example team: its manifests rewritten for a namespace and a scheduler."""

    namespace: str
    workloads: list[dict[str, Any]]
    graphs: list[dict[str, Any]]

    @property
    def replicas(self) -> int:
        return sum(int(d["spec"].get("replicas", 1)) for d in self.workloads)


def load_team(manifest: Path, graph: Path, namespace: str, scheduler: str | None) -> Team:
    """Read an example team and move it to `namespace`; `scheduler` None means the default one."""
    workloads = []
    for original in read_yaml_documents(manifest):
        if not original or original.get("kind") == "Namespace":
            continue
        doc = copy.deepcopy(original)
        doc["metadata"]["namespace"] = namespace
        pod_spec = doc["spec"]["template"]["spec"]
        if scheduler is None:
            pod_spec.pop("schedulerName", None)
        else:
            pod_spec["schedulerName"] = scheduler
        workloads.append(doc)
    graphs = []
    for original in read_yaml_documents(graph):
        if original:
            doc = copy.deepcopy(original)
            doc["metadata"]["namespace"] = namespace
            graphs.append(doc)
    return Team(namespace, workloads, graphs)


def deploy(
    api: Any,
    team: Team,
    *,
    one_by_one: bool = False,
    after_graphs: Callable[[], None] | None = None,
    timeout_seconds: float = 90,
) -> None:
    """Namespace, AgentGraphs (spec, then status as the profiler would write it), workloads.

    `after_graphs` runs before the first workload (the e2e tests wait there until the extender
    has cached the graph, as a GitOps rollout applies the graph first). `one_by_one` waits for
    each Deployment's pods to be bound before creating the next, as a staged rollout does.
    """
    from kubernetes import client, utils

    core: Any = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": team.namespace}})
    custom: Any = client.CustomObjectsApi(api)
    for doc in team.graphs:
        # The status subresource drops `status` on create; the profiler writes it separately.
        created = custom.create_namespaced_custom_object(
            "kinship.dev", "v1alpha1", team.namespace, "agentgraphs", {**doc, "status": None}
        )
        if doc.get("status"):
            created["status"] = doc["status"]
            custom.replace_namespaced_custom_object_status(
                "kinship.dev", "v1alpha1", team.namespace, "agentgraphs", doc["metadata"]["name"], created
            )
    if after_graphs is not None:
        after_graphs()
    expected = 0
    for doc in team.workloads:
        utils.create_from_dict(api, doc)
        expected += int(doc["spec"].get("replicas", 1))
        if one_by_one:
            wait_bound(core, team.namespace, expected, timeout_seconds)


def wait_bound(core: Any, namespace: str, count: int, timeout_seconds: float = 90) -> dict[str, list[str]]:
    """agent -> nodes of its pods, once `count` pods of the namespace are bound."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        pods = core.list_namespaced_pod(namespace).items
        bound = [p for p in pods if p.spec.node_name]
        if len(bound) >= count:
            placed: dict[str, list[str]] = {}
            for p in bound:
                agent = (p.metadata.labels or {}).get(AGENT_LABEL, p.metadata.name)
                placed.setdefault(agent, []).append(p.spec.node_name)
            return placed
        if time.monotonic() > deadline:
            pending = sorted(p.metadata.name for p in pods if not p.spec.node_name)
            raise TimeoutError(
                f"{namespace}: {len(bound)}/{count} pods bound after {timeout_seconds:.0f} s; "
                f"pending: {', '.join(pending)}"
            )
        time.sleep(0.2)


def delete_namespace(api: Any, namespace: str, timeout_seconds: float = 60) -> None:
    """Remove a team at once. No kubelet confirms pod deletion here, so pods go with grace 0."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core: Any = client.CoreV1Api(api)
    apps: Any = client.AppsV1Api(api)
    try:
        for d in apps.list_namespaced_deployment(namespace).items:
            apps.delete_namespaced_deployment(d.metadata.name, namespace, propagation_policy="Orphan")
        for rs in apps.list_namespaced_replica_set(namespace).items:
            apps.delete_namespaced_replica_set(rs.metadata.name, namespace, propagation_policy="Orphan")
        core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not [n for n in core.list_namespace().items if n.metadata.name == namespace]:
            return
        time.sleep(0.5)
    raise TimeoutError(f"namespace {namespace} still terminating after {timeout_seconds:.0f} s")


@dataclass(frozen=True)
class TrafficShare:
    """Shares of a team's graph traffic (effective edge weights) that leave a node or a zone."""

    cross_node: float
    cross_zone: float


def traffic_share(
    graphs: Iterable[AgentGraph], placement: dict[str, list[str]], zone_of: dict[str, str]
) -> TrafficShare:
    """Traffic to an agent is split evenly over its pods, as the communication term assumes, so an
    edge's crossing share is the share of its (pod, pod) pairs on different nodes (or zones)."""
    adjacency = team_adjacency(graphs, OBSERVED_FRACTION)
    total = node_cross = zone_cross = 0.0
    for agent, neighbours in adjacency.items():
        for n in neighbours:
            if n.agent < agent or agent not in placement or n.agent not in placement:
                continue  # each undirected edge once; an agent with no pods carries no traffic
            pairs = [(a, b) for a in placement[agent] for b in placement[n.agent]]
            total += n.weight
            node_cross += n.weight * sum(a != b for a, b in pairs) / len(pairs)
            zone_cross += n.weight * sum(zone_of.get(a) != zone_of.get(b) for a, b in pairs) / len(pairs)
    if total == 0:
        return TrafficShare(0.0, 0.0)
    return TrafficShare(node_cross / total, zone_cross / total)


def parsed_graphs(team: Team) -> list[AgentGraph]:
    return [parse_agent_graph(doc, f"{team.namespace} graph") for doc in team.graphs]


def gpu_squatters(placement: dict[str, list[str]], team: Team, gpus_of: dict[str, int]) -> list[str]:
    """Agents that request no GPU but sit on a GPU node: the expensive mistake."""
    wanting = {
        (d["spec"]["template"]["metadata"].get("labels") or {}).get(AGENT_LABEL, d["metadata"]["name"])
        for d in team.workloads
        for c in d["spec"]["template"]["spec"].get("containers", [])
        if GPU_RESOURCE in ((c.get("resources") or {}).get("requests") or {})
        or GPU_RESOURCE in ((c.get("resources") or {}).get("limits") or {})
    }
    on_gpu = {agent for agent, nodes in placement.items() if any(gpus_of.get(n) for n in nodes)}
    return sorted(on_gpu - wanting)


# ---- the demo itself: deploy both copies, wait, report ------------------------------------------
EXAMPLE_TEAMS = (
    ("agents-ops", "ops-team.yaml", "ops-team-graph.yaml"),
    ("agents-research", "research-team.yaml", "research-team-graph.yaml"),
)
# (column title, namespace suffix, schedulerName); None is the default scheduler
SCHEDULERS = (("kinship", "", "kinship"), ("default scheduler", "-default", None))


def run_demo(api: Any, examples: Path, console: Any, graphs_cached: Callable[[int], None]) -> None:
    """Deploy every example team under both schedulers at once, then print placements and shares.

    `graphs_cached(n)` returns once the extender has n AgentGraphs cached, so that no kinship pod
    is scored before its team's graph is known (a GitOps rollout applies the graph first).
    """
    from kubernetes import client
    from rich.table import Table

    # The files first: a bad one is reported before anything is asked of the cluster.
    teams = {
        (base, title): load_team(examples / manifest, examples / graph, base + suffix, scheduler)
        for base, manifest, graph in EXAMPLE_TEAMS
        for title, suffix, scheduler in SCHEDULERS
    }
    core: Any = client.CoreV1Api(api)
    nodes = core.list_node().items
    zone_of = {n.metadata.name: (n.metadata.labels or {}).get(ZONE_LABEL, "-") for n in nodes}
    gpus_of = {n.metadata.name: int((n.status.allocatable or {}).get(GPU_RESOURCE, "0")) for n in nodes}
    for team in teams.values():
        delete_namespace(api, team.namespace)  # a previous run's copy
    graph_count = sum(len(t.graphs) for t in teams.values())
    console.print(
        f"deploying {len(teams)} team copies ({sum(t.replicas for t in teams.values())} pods) "
        f"on {len(nodes)} nodes..."
    )
    for i, team in enumerate(teams.values()):
        last = i == len(teams) - 1
        deploy(api, team, after_graphs=(lambda: graphs_cached(graph_count)) if last else None)
    placements = {key: wait_bound(core, t.namespace, t.replicas) for key, t in teams.items()}

    def where(nodes_: list[str]) -> str:
        return ", ".join(
            f"{n.removeprefix('kinship-')} ({zone_of.get(n, '-').removeprefix('zone-')}"
            f"{', GPU' if gpus_of.get(n) else ''})"
            for n in sorted(nodes_)
        )

    titles = [title for title, _, _ in SCHEDULERS]
    table = Table(title="Where the agents landed: node (zone)")
    for column in ("team / agent", *titles):
        table.add_column(column)
    for base, _, _ in EXAMPLE_TEAMS:
        table.add_row(f"[bold]{base}[/]")
        for agent in sorted(placements[(base, titles[0])]):
            table.add_row(f"  {agent}", *(where(placements[(base, t)].get(agent, [])) for t in titles))
        table.add_section()
    console.print(table)

    vs = " vs ".join(titles)
    shares = Table(title=f"Graph traffic crossing nodes and zones, and GPU squatters ({vs})")
    for column in ("team", "crossing nodes", "crossing zones", "non-GPU agents on GPU nodes"):
        shares.add_column(column)
    for base, _, _ in EXAMPLE_TEAMS:
        cells: dict[str, list[str]] = {"node": [], "zone": [], "gpu": []}
        for title in titles:
            team = teams[(base, title)]
            share = traffic_share(parsed_graphs(team), placements[(base, title)], zone_of)
            cells["node"].append(f"{share.cross_node:.0%}")
            cells["zone"].append(f"{share.cross_zone:.0%}")
            cells["gpu"].append(str(len(gpu_squatters(placements[(base, title)], team, gpus_of))))
        shares.add_row(base, *(" vs ".join(v) for v in cells.values()))
    console.print(shares)
    console.print(
        "Traffic is each team's AgentGraph (declared weights blended with observed requests/s), split"
        " evenly over an agent's pods."
    )
