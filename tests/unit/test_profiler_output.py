"""Output: documents the extender reads, the choice of graph per namespace, write throttling."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client

from extender.offline import load_graph_files
from kinship.graph import team_adjacency
from profiler.config import OutputConfig
from profiler.graph_model import SmoothedEdge
from profiler.output import (
    ExistingGraph,
    StatusWriter,
    changed_beyond,
    graph_name,
    parse_rfc3339,
    render_documents,
    rfc3339,
    write_yaml,
)

AB = SmoothedEdge("ops", "orchestrator", "argocd-agent", 48.0, 2.1e6, 3.2)
AC = SmoothedEdge("ops", "orchestrator", "docs-agent", 12.0, 1000.0, None)


def test_documents_round_trip_through_the_extenders_loader(tmp_path: Path) -> None:
    spec = {"edges": [{"from": "orchestrator", "to": "argocd-agent", "weight": 50}]}
    docs = render_documents(
        {("ops", "ops-team"): [AB, AC], ("research", "research"): []},
        observed_at=1700000000.0,
        specs={("ops", "ops-team"): spec},
    )
    path = tmp_path / "g.yaml"
    write_yaml(path, docs)
    graphs = {g.key: g for g in load_graph_files([path])}
    ops = graphs[("ops", "ops-team")]
    assert ops.status.observedAt == "2023-11-14T22:13:20Z"
    assert [(e.from_, e.to, e.requestsPerSecond, e.p50LatencyMs) for e in ops.status.observedEdges] == [
        ("orchestrator", "argocd-agent", 48.0, 3.2),
        ("orchestrator", "docs-agent", 12.0, None),
    ]
    assert ops.spec.edges[0].weight == 50  # the declared part travels with it
    assert graphs[("research", "research")].status.observedEdges == []
    weights = {n.agent: n.weight for n in team_adjacency([ops], 0.5)["orchestrator"]}
    assert weights == {"argocd-agent": 1.0, "docs-agent": 0.125}  # 0.5*declared + 0.5*observed share


def test_timestamps_round_trip() -> None:
    assert parse_rfc3339(rfc3339(1700000000.0)) == 1700000000.0


def test_one_graph_per_namespace_carries_the_observed_edges() -> None:
    cfg = OutputConfig(graph_names={"pinned": "team-a"})
    existing = [
        ExistingGraph("ops", "zeta", {}),
        ExistingGraph("ops", "alpha", {}),
        ExistingGraph("research", "declared", {}),
        ExistingGraph("research", "written-before", {}, (), observed_at=5.0),
        ExistingGraph("pinned", "other", {}),
    ]
    assert graph_name("pinned", cfg, existing) == "team-a"
    assert graph_name("research", cfg, existing) == "written-before"
    assert graph_name("ops", cfg, existing) == "alpha"
    assert graph_name("new-team", cfg, existing) == "new-team"


def test_changes_within_the_tolerance_are_not_changes() -> None:
    slightly = SmoothedEdge("ops", "orchestrator", "argocd-agent", 50.0, 2.0e6, 9.0)
    assert not changed_beyond([AB, AC], [slightly, AC], 0.1)
    much = SmoothedEdge("ops", "orchestrator", "argocd-agent", 60.0, 2.1e6, 3.2)
    assert changed_beyond([AB, AC], [much, AC], 0.1)
    assert changed_beyond([AB, AC], [AB], 0.1)  # an edge vanished


def test_writes_are_throttled() -> None:
    cfg = OutputConfig(
        min_write_interval_seconds=30, max_write_interval_seconds=600, change_tolerance_fraction=0.1
    )
    writer = StatusWriter(client.ApiClient(client.Configuration()), cfg)  # never called: `due` is pure
    key = ("ops", "ops-team")
    assert writer.due(key, [AB], 0.0)  # never written
    writer.remember([ExistingGraph("ops", "ops-team", {}, (AB,), observed_at=100.0)])
    changed = [SmoothedEdge("ops", "orchestrator", "argocd-agent", 90.0, 2.1e6, 3.2)]
    assert not writer.due(key, changed, 110.0)  # changed, but written 10 s ago
    assert writer.due(key, changed, 131.0)
    assert not writer.due(key, [AB], 500.0)  # unchanged...
    assert writer.due(key, [AB], 701.0)  # ...until observedAt needs a refresh


def test_yaml_numbers_and_names_come_back_as_written(tmp_path: Path) -> None:
    odd = [
        SmoothedEdge("ops", "planner", "yes", 1e-05, 1e16, 0.5),  # "yes" is a YAML 1.1 boolean unquoted
        SmoothedEdge("ops", "a:b #c", "d'e\"f", 12.0, 0.0, None),
    ]
    path = tmp_path / "g.yaml"
    write_yaml(path, render_documents({("ops", "ops"): odd}, 0.0))
    (graph,) = load_graph_files([path])
    assert [
        (e.from_, e.to, e.requestsPerSecond, e.bytesPerSecond, e.p50LatencyMs)
        for e in graph.status.observedEdges
    ] == [
        ("planner", "yes", 1e-05, 1e16, 0.5),
        ("a:b #c", "d'e\"f", 12.0, 0.0, None),
    ]
    raw = yaml.safe_load(path.read_text())
    assert isinstance(raw["status"]["observedEdges"][0]["requestsPerSecond"], float)
