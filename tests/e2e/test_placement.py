"""The stock kube-scheduler (profile `kinship`) calling the extender, with Deployments created
through the API: the controller manager makes the pods, the kinship scheduler binds them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import yaml
from kubernetes import client, utils

from tests.e2e.conftest import STATE_DIR
from tests.serving import EXAMPLES, ROOT

pytestmark = pytest.mark.e2e
TEAMS = {
    "agents-ops": ("ops-team.yaml", "ops-team-graph.yaml"),
    "agents-research": ("research-team.yaml", "research-team-graph.yaml"),
}


def cluster_env() -> dict[str, str]:
    lines = (STATE_DIR / "cluster.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def extender_calls() -> float:
    text = httpx.get(f"{cluster_env()['KINSHIP_EXTENDER_URL']}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("kinship_extender_requests_total{")
    )


def wait_bound(
    core: client.CoreV1Api, namespace: str, count: int, timeout: float = 90
) -> dict[str, list[str]]:
    """agent -> nodes of its pods, once `count` pods of the namespace are bound."""
    deadline = time.monotonic() + timeout
    while True:
        pods = core.list_namespaced_pod(namespace).items
        bound = [p for p in pods if p.spec.node_name]
        if len(bound) >= count:
            placed: dict[str, list[str]] = {}
            for p in bound:
                placed.setdefault(
                    (p.metadata.labels or {}).get("kinship.dev/agent", p.metadata.name), []
                ).append(p.spec.node_name)
            return placed
        if time.monotonic() > deadline:
            pending = [p.metadata.name for p in pods if not p.spec.node_name]
            raise AssertionError(f"{namespace}: {len(bound)}/{count} pods bound; pending {pending}")
        time.sleep(0.2)


def delete_namespace(core: client.CoreV1Api, namespace: str) -> None:
    # No kubelet confirms pod deletion: remove pods at once, then the namespace.
    apps = client.AppsV1Api(core.api_client)
    for d in apps.list_namespaced_deployment(namespace).items:
        apps.delete_namespaced_deployment(d.metadata.name, namespace, propagation_policy="Orphan")
    for rs in apps.list_namespaced_replica_set(namespace).items:
        apps.delete_namespaced_replica_set(rs.metadata.name, namespace, propagation_policy="Orphan")
    core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    core.delete_namespace(namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not [n for n in core.list_namespace().items if n.metadata.name == namespace]:
            return
        time.sleep(0.5)


def replicas(manifest: str) -> int:
    docs = yaml.safe_load_all((EXAMPLES / manifest).read_text())
    return sum(d["spec"].get("replicas", 1) for d in docs if d and d.get("kind") == "Deployment")


def cached_graphs() -> float:
    text = httpx.get(f"{cluster_env()['KINSHIP_EXTENDER_URL']}/metrics", timeout=5).text
    line = next(
        x for x in text.splitlines() if x.startswith('kinship_extender_cache_objects{kind="agentgraphs"}')
    )
    return float(line.rsplit(" ", 1)[1])


def deploy_team(api: client.ApiClient, manifest: str, graph: str, one_by_one: bool = False) -> None:
    """Namespace, then the AgentGraph, then the Deployments: the graph reaches the extender's
    cache before the first pod is scheduled, as when a team applies its graph with GitOps.
    `one_by_one` waits for each Deployment's pods to be bound before creating the next, as a
    staged rollout does; otherwise they all arrive at once."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / manifest).read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Namespace":
            utils.create_from_dict(api, doc)
    before = cached_graphs()
    custom = client.CustomObjectsApi(api)
    for doc in yaml.safe_load_all((EXAMPLES / graph).read_text()):
        custom.create_namespaced_custom_object(
            "kinship.dev", "v1alpha1", doc["metadata"]["namespace"], "agentgraphs", doc
        )
    deadline = time.monotonic() + 20
    while cached_graphs() <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    core = client.CoreV1Api(api)
    expected = 0
    for doc in docs:
        if doc["kind"] != "Namespace":
            utils.create_from_dict(api, doc)
            expected += doc["spec"].get("replicas", 1)
            if one_by_one:
                wait_bound(core, doc["metadata"]["namespace"], expected)


@pytest.fixture
def teams(api: client.ApiClient) -> Iterator[dict[str, dict[str, list[str]]]]:
    core = client.CoreV1Api(api)
    try:
        # the ops team arrives in one burst; the research team is rolled out in graph order
        for namespace, (manifest, graph) in TEAMS.items():
            deploy_team(api, manifest, graph, one_by_one=namespace == "agents-research")
        yield {ns: wait_bound(core, ns, replicas(manifest)) for ns, (manifest, _) in TEAMS.items()}
    finally:
        for namespace in TEAMS:
            delete_namespace(core, namespace)


def gpu_nodes(api: client.ApiClient) -> dict[str, int]:
    nodes = client.CoreV1Api(api).list_node().items
    return {
        n.metadata.name: int(n.status.allocatable.get("nvidia.com/gpu", "0"))
        for n in nodes
        if int(n.status.allocatable.get("nvidia.com/gpu", "0")) > 0
    }


def zone_of(api: client.ApiClient) -> dict[str, str]:
    return {
        n.metadata.name: n.metadata.labels["topology.kubernetes.io/zone"]
        for n in client.CoreV1Api(api).list_node().items
    }


def test_example_teams_land_next_to_their_peers(api: client.ApiClient, teams) -> None:
    gpus, zones = gpu_nodes(api), zone_of(api)
    ops, research = teams["agents-ops"], teams["agents-research"]
    # Required co-location: the MCP server shares the Argo CD agent's node
    assert ops["argocd-mcp"] == ops["argocd-agent"]
    # the ops team came in one burst, in no fixed order. Whichever of argocd-agent and the
    # orchestrator was scored first, the other followed it: they share a node.
    assert set(ops["argocd-agent"]) & set(ops["orchestrator"])
    # the GPU agent gets a GPU node, the tightest fit: 1 GPU fits best on the 4-GPU node
    (executor_node,) = research["executor"]
    assert gpus.get(executor_node) == min(gpus.values())
    # Rolled out in graph order, each research agent follows the peers already placed: the
    # researchers go to the planner's zone (the second replica spreads to another node there),
    # and the reviewer beside the executor or the planner, off the GPU node.
    (planner_node,) = research["planner"]
    for node in research["researcher"]:
        assert zones[node] == zones[planner_node], f"placement {research}"
    (reviewer_node,) = research["reviewer"]
    assert zones[reviewer_node] in {zones[executor_node], zones[planner_node]}, f"placement {research}"
    # no agent without GPUs sits on a GPU node while other nodes have room
    for team in (ops, research):
        for agent, nodes in team.items():
            if agent != "executor":
                assert not set(nodes) & set(gpus), f"{agent} on a GPU node: {nodes}"


def test_default_scheduler_pods_are_untouched(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    ns = "e2e-default"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        before = extender_calls()
        core.create_namespaced_pod(
            ns, {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        )
        wait_bound(core, ns, 1)
        time.sleep(1)
        assert extender_calls() == before
    finally:
        delete_namespace(core, ns)


def test_pods_schedule_without_the_extender_and_it_serves_again_after_restart(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    ns = "e2e-ignorable"
    core.create_namespace({"metadata": {"name": ns}})
    pod = {
        "metadata": {"name": "agent-0", "labels": {"kinship.dev/agent": "agent"}},
        "spec": {"schedulerName": "kinship", "containers": [{"name": "c", "image": "busybox"}]},
    }
    script = str(ROOT / "local-cluster.sh")
    try:
        subprocess.run([script, "extender", "stop"], check=True, capture_output=True, timeout=60)
        core.create_namespaced_pod(ns, pod)
        wait_bound(core, ns, 1, timeout=60)  # ignorable: true
        subprocess.run([script, "extender", "start"], check=True, capture_output=True, timeout=120)
        before = extender_calls()
        pod["metadata"]["name"] = "agent-1"
        core.create_namespaced_pod(ns, pod)
        wait_bound(core, ns, 2)
        assert extender_calls() > before
    finally:
        subprocess.run([script, "extender", "start"], check=False, capture_output=True, timeout=120)
        delete_namespace(core, ns)
