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


def test_observed_requests_per_second_scale_to_the_busiest_pair() -> None:
    g = parsed(
        [],
        observed=[
            {"from": "a", "to": "b", "requestsPerSecond": 40.0},
            {"from": "a", "to": "c", "requestsPerSecond": 10.0},
        ],
    )
    assert weights(team_adjacency([g], 0.5), "a") == {"b": 1.0, "c": 0.25}


def test_a_tcp_only_edge_weighs_by_its_bytes_share() -> None:
    # a database over raw TCP: bytes, no requests; the profiler writes it and placement must see it
    g = parsed(
        [],
        observed=[
            {"from": "a", "to": "b", "requestsPerSecond": 40.0},
            {"from": "a", "to": "c", "requestsPerSecond": 10.0},
            {"from": "a", "to": "db", "bytesPerSecond": 4e6},
            {"from": "db", "to": "e", "bytesPerSecond": 1e6},
        ],
    )
    adj = team_adjacency([g], 0.5)
    assert weights(adj, "a") == {"b": 1.0, "c": 0.25, "db": 1.0}
    assert weights(adj, "db") == {"a": 1.0, "e": 0.25}


def test_observed_share_is_the_larger_of_the_requests_and_bytes_shares_both_directions_summed() -> None:
    g = parsed(
        [],
        observed=[
            {"from": "a", "to": "b", "requestsPerSecond": 100.0, "bytesPerSecond": 1e3},
            # chatty but small: requests share 0.5, bytes share 0.001
            {"from": "a", "to": "c", "requestsPerSecond": 50.0, "bytesPerSecond": 1.0},
            # few calls, big payloads both ways: requests 0.02, bytes (0.6 + 0.2) / 1 = 0.8 of d-e's
            {"from": "a", "to": "d", "requestsPerSecond": 2.0, "bytesPerSecond": 6e5},
            {"from": "d", "to": "a", "bytesPerSecond": 2e5},
            {"from": "d", "to": "e", "bytesPerSecond": 1e6},
            {"from": "e", "to": "e", "bytesPerSecond": 1e9},  # self-edges count for nothing
        ],
    )
    adj = team_adjacency([g], 0.5)
    assert weights(adj, "a") == {"b": 1.0, "c": 0.5, "d": 0.8}
    assert weights(adj, "e") == {"d": 1.0}


def test_a_tcp_only_observed_edge_blends_with_declared_weights() -> None:
    g = parsed(
        [{"from": "a", "to": "b", "weight": 10}],
        observed=[{"from": "a", "to": "db", "bytesPerSecond": 3e6}],
    )
    # b: declared 1.0, observed 0 -> 0.75 with f=0.25; db: declared 0, observed 1.0 -> 0.25
    assert weights(team_adjacency([g], 0.25), "a") == {"b": 0.75, "db": 0.25}


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
