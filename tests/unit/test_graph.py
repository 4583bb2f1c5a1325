import pytest

from kinship.errors import InputError
from kinship.graph import Colocation, parse_agent_graph, team_adjacency
from tests.objects import graph


def parsed(edges, observed=None, name="team", ns="agents"):
    return parse_agent_graph(graph(name, ns, edges, observed), "test")


def weights(adj, agent):
    return {n.agent: round(n.weight, 6) for n in adj.get(agent, ())}


def test_declared_only_weights_scale_to_the_strongest_edge_and_are_undirected() -> None:
    g = parsed([{"from": "orch", "to": "argocd", "weight": 50}, {"from": "orch", "to": "docs", "weight": 10}])
    adj = team_adjacency([g], observed_fraction=0.5)
    assert weights(adj, "orch") == {"argocd": 1.0, "docs": 0.2}
    assert weights(adj, "argocd") == {"orch": 1.0}


def test_both_directions_add_up() -> None:
    g = parsed(
        [
            {"from": "a", "to": "b", "weight": 3},
            {"from": "b", "to": "a", "weight": 1},
            {"from": "a", "to": "c", "weight": 2},
        ]
    )
    assert weights(team_adjacency([g], 0.5), "a") == {"b": 1.0, "c": 0.5}


def test_observed_only_uses_requests_per_second() -> None:
    g = parsed(
        [],
        observed=[
            {"from": "a", "to": "b", "requestsPerSecond": 40.0},
            {"from": "a", "to": "c", "requestsPerSecond": 10.0},
        ],
    )
    assert weights(team_adjacency([g], 0.5), "a") == {"b": 1.0, "c": 0.25}


def test_declared_and_observed_blend_with_missing_side_counting_zero() -> None:
    g = parsed(
        [{"from": "a", "to": "b", "weight": 10}],
        observed=[{"from": "a", "to": "c", "requestsPerSecond": 5.0}],
    )
    # b: declared 1.0, observed 0 -> 0.75 with f=0.25; c: declared 0, observed 1.0 -> 0.25
    assert weights(team_adjacency([g], 0.25), "a") == {"b": 0.75, "c": 0.25}


def test_none_colocation_drops_the_edge_and_required_is_kept() -> None:
    g = parsed(
        [{"from": "a", "to": "b", "colocation": "None"}, {"from": "a", "to": "c", "colocation": "Required"}]
    )
    adj = team_adjacency([g], 0.5)
    assert [(n.agent, n.colocation) for n in adj["a"]] == [("c", Colocation.REQUIRED)]


def test_strongest_colocation_wins_across_graphs_and_self_edges_are_ignored() -> None:
    g1 = parsed([{"from": "a", "to": "b"}, {"from": "a", "to": "a"}], name="one")
    g2 = parsed([{"from": "b", "to": "a", "colocation": "Required"}], name="two")
    adj = team_adjacency([g1, g2], 0.5)
    assert [(n.agent, n.colocation) for n in adj["a"]] == [("b", Colocation.REQUIRED)]


def test_every_bad_field_is_reported_at_once() -> None:
    bad = graph(
        "team",
        "agents",
        [{"from": "", "to": "b", "weight": -1}, {"from": "a", "to": "b", "colocaton": "Required"}],
    )
    with pytest.raises(InputError) as err:
        parse_agent_graph(bad, "g.yaml: document 1")
    text = err.value.render()
    assert "spec.edges[0].from" in text
    assert "spec.edges[0].weight" in text
    assert "spec.edges[1].colocaton" in text
    assert text.startswith("g.yaml: document 1: 3 problems")


def test_wrong_kind_is_rejected() -> None:
    obj = graph("x", "ns", [])
    obj["kind"] = "AgentProfile"
    with pytest.raises(InputError, match="kind"):
        parse_agent_graph(obj, "f")
