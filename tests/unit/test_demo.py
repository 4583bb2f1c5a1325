"""The demo's measures: what share of a team's graph traffic crosses nodes and zones, and which
agents squat on GPU nodes. The demo's table is only as honest as these."""

from __future__ import annotations

import pytest

from kinship.demo import gpu_squatters, load_team, parsed_graphs, traffic_share
from kinship.graph import parse_agent_graph
from tests.serving import EXAMPLES


def graph(*edges: tuple[str, str, float]) -> list:
    doc = {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentGraph",
        "metadata": {"name": "g", "namespace": "t"},
        "spec": {"edges": [{"from": a, "to": b, "weight": w} for a, b, w in edges]},
    }
    return [parse_agent_graph(doc, "test")]


ZONES = {"n1": "a", "n2": "a", "n3": "b"}


def test_same_node_is_no_crossing_and_other_zone_is_both() -> None:
    g = graph(("a", "b", 3), ("b", "c", 1))
    # a-b (weight 1.0 after scaling) on one node; b-c (1/3) across zones
    share = traffic_share(g, {"a": ["n1"], "b": ["n1"], "c": ["n3"]}, ZONES)
    assert share.cross_node == pytest.approx((1 / 3) / (1 + 1 / 3))
    assert share.cross_zone == pytest.approx((1 / 3) / (1 + 1 / 3))


def test_same_zone_other_node_crosses_nodes_only() -> None:
    share = traffic_share(graph(("a", "b", 1)), {"a": ["n1"], "b": ["n2"]}, ZONES)
    assert (share.cross_node, share.cross_zone) == (1.0, 0.0)


def test_traffic_is_split_evenly_over_replicas() -> None:
    # one of b's two pods shares a's node, the other is in another zone
    share = traffic_share(graph(("a", "b", 1)), {"a": ["n1"], "b": ["n1", "n3"]}, ZONES)
    assert (share.cross_node, share.cross_zone) == (0.5, 0.5)


def test_agents_without_pods_carry_no_traffic() -> None:
    share = traffic_share(graph(("a", "b", 1), ("a", "c", 1)), {"a": ["n1"], "b": ["n1"]}, ZONES)
    assert (share.cross_node, share.cross_zone) == (0.0, 0.0)
    assert traffic_share(graph(("a", "b", 1)), {}, ZONES).cross_node == 0.0


def test_example_team_copy_moves_namespace_and_scheduler() -> None:
    team = load_team(
        EXAMPLES / "research-team.yaml", EXAMPLES / "research-team-graph.yaml", "copy-ns", scheduler=None
    )
    assert {d["metadata"]["namespace"] for d in team.workloads + team.graphs} == {"copy-ns"}
    assert all("schedulerName" not in d["spec"]["template"]["spec"] for d in team.workloads)
    assert team.replicas == 5
    assert [g.metadata.namespace for g in parsed_graphs(team)] == ["copy-ns"]
    # the executor asks for a GPU; everyone else on a GPU node is a squatter
    gpus = {"gpu-node": 4, "cpu-node": 0}
    placed = {"executor": ["gpu-node"], "planner": ["gpu-node"], "reviewer": ["cpu-node"]}
    assert gpu_squatters(placed, team, gpus) == ["planner"]
