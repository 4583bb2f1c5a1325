"""Example teams on the real local control plane, shared by the e2e placement tests."""

from __future__ import annotations

import time

import httpx2 as httpx
from kubernetes import client

from kinship.demo import Team, deploy, load_team
from tests.e2e.conftest import STATE_DIR
from tests.serving import EXAMPLES

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


def extender_metric(sample: str) -> float:
    """One sample of the cluster's extender's /metrics, by name and labels as exposed (0 when
    absent: a labelled counter appears once it is first incremented)."""
    text = httpx.get(f"{cluster_env()['KINSHIP_EXTENDER_URL']}/metrics", timeout=5).text
    line = next((x for x in text.splitlines() if x.startswith(f"{sample} ")), f"{sample} 0")
    return float(line.rsplit(" ", 1)[1])


def cached(kind: str) -> float:
    """How many objects of `kind` (nodes, agentgraphs, ...) the cluster's extender holds."""
    return extender_metric(f'kinship_extender_cache_objects{{kind="{kind}"}}')


def example_team(namespace: str, scheduler: str | None = "kinship", copy_of: str | None = None) -> Team:
    manifest, graph = TEAMS[copy_of or namespace]
    return load_team(EXAMPLES / manifest, EXAMPLES / graph, namespace, scheduler)


def deploy_team(api: client.ApiClient, team: Team, one_by_one: bool = False) -> None:
    """The graph reaches the extender's cache before the first pod is scheduled, as when a team
    applies its graph with GitOps; see kinship.demo.deploy."""
    before = cached("agentgraphs")

    def graphs_cached() -> None:
        deadline = time.monotonic() + 20
        while cached("agentgraphs") < before + len(team.graphs) and time.monotonic() < deadline:
            time.sleep(0.1)

    deploy(api, team, one_by_one=one_by_one, after_graphs=graphs_cached)
