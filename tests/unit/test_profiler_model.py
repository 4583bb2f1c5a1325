"""The graph model: smoothing, decay, merge of sources, seeding. Explicit timestamps, no sleeps."""

from __future__ import annotations

import pytest

from profiler.config import ModelConfig
from profiler.edges import EdgeSample
from profiler.graph_model import GraphModel, SmoothedEdge, merge_sources

HALF_LIFE = 100.0


def sample(
    src: str, dst: str, rps: float, bps: float = 0.0, p50: float | None = None, ns: str = "team"
) -> EdgeSample:
    return EdgeSample(ns, src, dst, rps, bps, p50)


def model(**kw: float) -> GraphModel:
    return GraphModel(ModelConfig(half_life_seconds=HALF_LIFE, **kw))


def rps(m: GraphModel, ns: str = "team") -> dict[tuple[str, str], float]:
    return {(e.source, e.destination): e.requests_per_second for e in m.edges(ns)}


def test_a_new_edge_starts_at_its_sample_and_follows_the_ewma() -> None:
    m = model()
    m.update(0.0, {"istio": [sample("a", "b", 10.0, 1000.0, 4.0)]})
    assert rps(m) == {("a", "b"): 10.0}
    # one half-life later, a sample of 30: half-way from 10 to 30
    m.update(HALF_LIFE, {"istio": [sample("a", "b", 30.0, 3000.0, 8.0)]})
    (edge,) = m.edges("team")
    assert edge.requests_per_second == pytest.approx(20.0)
    assert edge.bytes_per_second == pytest.approx(2000.0)
    assert edge.p50_latency_ms == pytest.approx(6.0)
    # two half-lives at 30 close three quarters of the remaining gap
    m.update(3 * HALF_LIFE, {"istio": [sample("a", "b", 30.0, 3000.0)]})
    assert rps(m)[("a", "b")] == pytest.approx(27.5)
    assert m.edges("team")[0].p50_latency_ms == pytest.approx(6.0)  # no new latency: kept


def test_an_edge_that_stops_decays_then_vanishes_under_the_threshold() -> None:
    m = model(min_requests_per_second=1.0, min_bytes_per_second=1.0)
    m.update(0.0, {"istio": [sample("a", "b", 8.0), sample("a", "c", 100.0)]})
    m.update(HALF_LIFE, {"istio": [sample("a", "c", 100.0)]})
    assert rps(m)[("a", "b")] == pytest.approx(4.0)
    m.update(3 * HALF_LIFE, {"istio": [sample("a", "c", 100.0)]})
    assert rps(m)[("a", "b")] == pytest.approx(1.0)
    m.update(3 * HALF_LIFE + 1, {"istio": [sample("a", "c", 100.0)]})
    assert ("a", "b") not in rps(m)
    assert m.graph("team").number_of_nodes() == 2  # the lone node b went with its edge
    m.update(20 * HALF_LIFE, {"istio": []})
    assert m.namespaces() == [] and m.edge_count() == 0


def test_a_tcp_edge_with_bytes_only_is_kept() -> None:
    m = model(min_requests_per_second=0.01, min_bytes_per_second=1.0)
    m.update(0.0, {"istio": [sample("a", "db", 0.0, 5000.0)]})
    assert [(e.source, e.destination, e.bytes_per_second) for e in m.edges("team")] == [("a", "db", 5000.0)]


def test_the_same_traffic_from_two_sources_counts_once() -> None:
    merged = merge_sources(
        {
            "istio": [sample("a", "b", 50.0, 800.0, 3.0)],
            "servicegraph": [sample("a", "b", 48.0, 0.0, 9.0), sample("b", "c", 5.0)],
        }
    )
    ab = merged[("team", "a", "b")]
    assert (ab.requests_per_second, ab.bytes_per_second) == (50.0, 800.0)
    assert ab.p50_latency_ms == 3.0  # from the source that saw the most calls
    assert merged[("team", "b", "c")].requests_per_second == 5.0


def test_within_one_source_two_series_of_one_edge_add_up() -> None:
    merged = merge_sources({"istio": [sample("a", "b", 2.0, p50=1.0), sample("a", "b", 3.0, p50=7.0)]})
    edge = merged[("team", "a", "b")]
    assert edge.requests_per_second == 5.0 and edge.p50_latency_ms == 7.0


def test_a_failing_source_keeps_its_last_answer_until_it_is_too_old() -> None:
    m = model(source_max_age_seconds=250.0)
    m.update(0.0, {"istio": [sample("a", "b", 10.0)], "servicegraph": [sample("q", "r", 6.0)]})
    # servicegraph fails (absent from `fresh`): its edge holds steady
    m.update(HALF_LIFE, {"istio": [sample("a", "b", 10.0)]})
    m.update(2 * HALF_LIFE, {"istio": [sample("a", "b", 10.0)]})
    assert rps(m)[("q", "r")] == pytest.approx(6.0)
    # past source_max_age_seconds the old answer no longer vouches for the edge
    m.update(3 * HALF_LIFE, {"istio": [sample("a", "b", 10.0)]})
    assert rps(m)[("q", "r")] == pytest.approx(3.0)


def test_namespaces_are_separate_graphs() -> None:
    m = model()
    m.update(0.0, {"istio": [sample("a", "b", 1.0, ns="x"), sample("a", "b", 2.0, ns="y")]})
    assert m.namespaces() == ["x", "y"]
    assert rps(m, "x") == {("a", "b"): 1.0} and rps(m, "y") == {("a", "b"): 2.0}


def test_seeded_edges_continue_smoothly_after_a_restart() -> None:
    m = model()
    m.seed("team", [SmoothedEdge("team", "a", "b", 40.0, 100.0, 2.0)], observed_at=1000.0)
    assert m.updated_at == 1000.0
    m.update(1000.0 + HALF_LIFE, {"istio": [sample("a", "b", 20.0, 100.0)]})
    assert rps(m)[("a", "b")] == pytest.approx(30.0)  # an average, not a jump to the new sample
    m.update(1000.0 + 2 * HALF_LIFE, {"istio": []})
    assert rps(m)[("a", "b")] == pytest.approx(15.0)
