"""The kinship CLI on the shipped examples, and its errors on bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from kinship.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SNAPSHOT = EXAMPLES / "cluster-snapshot.json"
GRAPHS = [
    "--graph",
    str(EXAMPLES / "ops-team-graph.yaml"),
    "--graph",
    str(EXAMPLES / "research-team-graph.yaml"),
]
runner = CliRunner()


def explain(*extra: str):
    return runner.invoke(app, ["explain", "--snapshot", str(SNAPSHOT), *GRAPHS, *extra])


def ranked_nodes(output: str) -> list[str]:
    return re.findall(r"^│ (\S+)\s+│", output, flags=re.M)


def test_explain_ranks_the_orchestrators_nodes_first_for_docs_agent() -> None:
    result = explain("--pod", str(EXAMPLES / "ops-team.yaml"), "--name", "docs-agent")
    assert result.exit_code == 0, result.output
    assert "peer orchestrator: weight 0.60; runs on node-a1, node-b1" in result.output
    order = ranked_nodes(result.output)
    assert set(order[:2]) == {"node-a1", "node-b1"}
    assert set(order[-2:]) == {"gpu-a1", "gpu-b1"}


def test_explain_shows_required_colocation_reasons() -> None:
    result = explain("--pod", str(EXAMPLES / "ops-team.yaml"), "--name", "argocd-mcp")
    assert result.exit_code == 0, result.output
    assert ranked_nodes(result.output)[0] == "node-a1"
    assert "node-c2: Required co-location with agent 'argocd-agent', which runs on node-a1" in result.output


def test_explain_names_the_nodes_filter_keep_best_leaves_out(tmp_path: Path) -> None:
    config = tmp_path / "kinship.yaml"
    config.write_text("filter_keep_best: 2\n")
    result = explain(
        "--pod", str(EXAMPLES / "ops-team.yaml"), "--name", "docs-agent", "--config", str(config)
    )
    assert result.exit_code == 0, result.output
    left_out = re.findall(
        r"^  (\S+): fits, but not among the filter_keep_best nodes", result.output, flags=re.M
    )
    assert "node-a1" not in left_out and "node-b1" not in left_out  # the orchestrator's nodes stay
    assert {"gpu-a1", "gpu-b1"} <= set(left_out)
    assert "filter_keep_best 2: kube-scheduler is shown the 2 of 8 fitting nodes" in result.output


def table_rows(output: str) -> dict[str, list[str]]:
    """node -> its table cells after the name (zone, GPUs, peaks, terms..., score, filter)."""
    rows = re.findall(r"^│ (\S+)\s+│(.*)│\s*$", output, flags=re.M)
    return {node: [c.strip() for c in cells.split("│")] for node, cells in rows}


def test_explain_reviewer_goes_beside_its_peers_not_on_the_gpu_node() -> None:
    result = explain("--pod", str(EXAMPLES / "research-team.yaml"), "--name", "reviewer")
    assert result.exit_code == 0, result.output
    # The executor (on gpu-b1, zone-b) pulls hardest: 900 kB/s is 29 % of the team's busiest
    # bytes/s. The planner runs on node-b2, so node-b2 is the best node off the GPU, with the same
    # 0..10 score as node-b1 (same zone) but the larger communication share.
    rows = table_rows(result.output)
    score = {node: int(cells[-2]) for node, cells in rows.items()}
    comm = {node: float(cells[3]) for node, cells in rows.items()}
    best = max(score.values())
    assert score["node-b2"] == best and score["gpu-b1"] < best
    assert comm["node-b2"] == max(c for node, c in comm.items() if node != "gpu-b1")
    assert "peer executor: weight 0.31; runs on gpu-b1" in result.output
    assert "same on every node, so not applied: spread" in result.output


def test_explain_a_gpu_agent_shows_the_gpu_filter() -> None:
    result = explain("--pod", str(EXAMPLES / "research-team.yaml"), "--name", "executor")
    assert result.exit_code == 0, result.output
    assert "node-a1: insufficient nvidia.com/gpu: pod requests 1, node has 0 free of 0" in result.output
    assert set(ranked_nodes(result.output)[:2]) == {"gpu-a1", "gpu-b1"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_clean_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_bad_graph_file_names_file_document_and_every_field(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "g.yaml",
        """
apiVersion: kinship.dev/v1alpha1
kind: AgentGraph
metadata: {name: ok, namespace: ns}
spec: {edges: [{from: a, to: b}]}
---
apiVersion: kinship.dev/v1alpha1
kind: AgentGraph
metadata: {name: team, namespace: ns}
spec:
  edges:
  - {from: a, to: b, weight: -2}
  - {from: a, to: c, colocation: Always}
""",
    )
    result = runner.invoke(
        app,
        [
            "explain",
            "--snapshot",
            str(SNAPSHOT),
            "--graph",
            str(bad),
            "--pod",
            str(EXAMPLES / "ops-team.yaml"),
        ],
    )
    assert_clean_error(result, f"{bad}: document 2", "spec.edges[0].weight", "spec.edges[1].colocation")


def test_missing_and_malformed_snapshot(tmp_path: Path) -> None:
    pod = str(EXAMPLES / "ops-team.yaml")
    result = runner.invoke(app, ["explain", "--snapshot", str(tmp_path / "nope.json"), "--pod", pod])
    assert_clean_error(result, "nope.json", "cannot read snapshot")
    bad = write(
        tmp_path, "s.json", json.dumps({"kind": "List", "items": [{"kind": "Node", "metadata": {"name": 7}}]})
    )
    result = runner.invoke(app, ["explain", "--snapshot", str(bad), "--pod", pod])
    assert_clean_error(result, "s.json", "items[0]", "$.items[0].metadata.name")
    empty = write(tmp_path, "e.json", '{"kind": "List", "items": []}')
    assert_clean_error(
        runner.invoke(app, ["explain", "--snapshot", str(empty), "--pod", pod]), "no Node objects"
    )


def test_bad_pod_file_and_missing_name(tmp_path: Path) -> None:
    result = explain("--pod", str(EXAMPLES / "ops-team.yaml"), "--name", "ghost")
    assert_clean_error(result, "ops-team.yaml", "named 'ghost'")
    bad = write(
        tmp_path,
        "p.yaml",
        "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, resources: {limits: {nvidia.com/gpu: many}}}]}\n",
    )
    assert_clean_error(explain("--pod", str(bad)), "p.yaml", "invalid quantity 'many'")


def test_bad_config_reports_every_field(tmp_path: Path) -> None:
    cfg = write(tmp_path, "c.yaml", "weights: {communication: -1, gpuu: 2}\nsame_zone_fraction: 3\n")
    result = explain("--pod", str(EXAMPLES / "ops-team.yaml"), "--config", str(cfg))
    assert_clean_error(
        result, "c.yaml: 3 problems", "weights.communication", "weights.gpuu", "same_zone_fraction"
    )


def test_serve_rejects_graphs_without_snapshot() -> None:
    result = runner.invoke(app, ["serve", *GRAPHS])
    assert_clean_error(result, "--graph", "add --snapshot")


SPIKY_PROFILES = """
apiVersion: kinship.dev/v1alpha1
kind: AgentProfile
metadata: {name: docs-agent, namespace: agents-ops}
spec: {agent: docs-agent}
status:
  containers:
  - {name: agent, predictedPeak: {cpuMillicores: 1000, memoryBytes: 68000000000}}
  correlations:
  - {agent: orchestrator, cpu: 0.9, memory: 0.4}
"""


def test_explain_with_profiles_shows_fit_reasons_and_the_correlation_term(tmp_path: Path) -> None:
    profiles = write(tmp_path, "profiles.yaml", SPIKY_PROFILES)
    result = runner.invoke(
        app,
        [
            "explain",
            "--snapshot",
            str(SNAPSHOT),
            *GRAPHS,
            "--profile",
            str(profiles),
            "--pod",
            str(EXAMPLES / "ops-team.yaml"),
            "--name",
            "docs-agent",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "predicted peak: cpu 1 cores (from AgentProfile), memory 63.33 GiB (from AgentProfile)" in out
    assert "correlated agent orchestrator: 0.90; runs on node-a1, node-b1" in out
    assert "spike_correlation=1" in out and "spike corr" in out
    # 68e9 bytes is 63.3 GiB: with the pods already on node-a1 it no longer fits 64 GiB
    assert re.search(
        r"node-a1: predicted memory peak 64\.\d GiB > allocatable 64 GiB \(pods on the node 1\.5 GiB "
        r"\+ this pod 63\.3 GiB from its AgentProfile\)",
        out,
    ), out
    assert re.search(r"^│ node-a1 .*│\s+11%/101% │.*│ filtered │$", out, re.M), out
    # node-c2 hosts no orchestrator: full spike_correlation contribution (1 of weight 5 -> 2.00)
    assert re.search(r"^│ node-c2 .*│\s+2\.00 │\s+\d+ │ pass\s+│$", out, re.M), out
    assert re.search(r"^│ node-b1 .*│\s+0\.20 │\s+\d+ │ pass\s+│$", out, re.M), out  # 1 - 0.9


def test_bad_profile_file_names_file_document_and_field(tmp_path: Path) -> None:
    bad = write(tmp_path, "p.yaml", SPIKY_PROFILES.replace("cpu: 0.9", "cpu: 1.9"))
    result = runner.invoke(
        app,
        [
            "explain",
            "--snapshot",
            str(SNAPSHOT),
            "--profile",
            str(bad),
            "--pod",
            str(EXAMPLES / "ops-team.yaml"),
        ],
    )
    assert_clean_error(result, f"{bad}: document 1", "status.correlations[0].cpu", "(got 1.9)")


def test_serve_rejects_profiles_without_snapshot(tmp_path: Path) -> None:
    profiles = write(tmp_path, "profiles.yaml", SPIKY_PROFILES)
    result = runner.invoke(app, ["serve", "--profile", str(profiles)])
    assert_clean_error(result, "--profile", "add --snapshot")
