"""`kinship serve` as a process, offline mode, over real HTTP."""

from __future__ import annotations

import json

import httpx2 as httpx
import yaml

from tests.serving import EXAMPLES, kinship_serve, wait_ready


def example_pod(file: str, name: str) -> dict:
    import msgspec

    from extender.offline import load_pod_file

    return json.loads(msgspec.json.encode(load_pod_file(EXAMPLES / file, name)))


def test_offline_serve_answers_like_explain_and_stops_cleanly() -> None:
    snapshot = json.loads((EXAMPLES / "cluster-snapshot.json").read_text())
    nodes = [i["metadata"]["name"] for i in snapshot["items"] if i["kind"] == "Node"]
    args = [
        "--snapshot",
        str(EXAMPLES / "cluster-snapshot.json"),
        "--graph",
        str(EXAMPLES / "ops-team-graph.yaml"),
        "--graph",
        str(EXAMPLES / "research-team-graph.yaml"),
    ]
    with kinship_serve(*args) as (url, proc):
        wait_ready(f"{url}/readyz", timeout_seconds=30, proc=proc)
        body = {"Pod": example_pod("ops-team.yaml", "docs-agent"), "Nodes": None, "NodeNames": nodes}
        scores = {hp["Host"]: hp["Score"] for hp in httpx.post(f"{url}/prioritize", json=body).json()}
        assert scores["node-a1"] == scores["node-b1"] == 10  # the orchestrator's nodes
        assert scores["gpu-a1"] < scores["node-c1"]
        assert httpx.post(f"{url}/filter", content=b"{oops").status_code == 400
        assert httpx.get(f"{url}/livez").status_code == 200
        proc.terminate()
        # uvicorn drains, then re-raises the SIGTERM it caught so the exit status tells the truth
        assert proc.wait(timeout=10) in (0, -15)
        log = proc.stdout.read().decode()
    assert "Application shutdown complete." in log


def test_serve_with_a_bad_graph_exits_2_naming_the_file(tmp_path) -> None:
    bad = tmp_path / "g.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kinship.dev/v1alpha1",
                "kind": "AgentGraph",
                "metadata": {"name": "x"},
                "spec": {"edges": [{"from": "a"}]},
            }
        )
    )
    with kinship_serve("--snapshot", str(EXAMPLES / "cluster-snapshot.json"), "--graph", str(bad)) as (
        _,
        proc,
    ):
        assert proc.wait(timeout=30) == 2
        out = proc.stdout.read().decode()
    assert f"{bad}: document 1: spec.edges[0].to: Field required" in out
    assert "Traceback" not in out


def test_offline_serve_with_profiles_filters_nodes_where_predicted_peaks_do_not_fit(tmp_path) -> None:
    """docs-agent's profile predicts a 63.3 GiB memory peak: on the 64 GiB nodes that already
    host pods with 1 GiB or more of peaks (node-a1, node-b2) it does not fit; elsewhere it does."""
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kinship.dev/v1alpha1",
                "kind": "AgentProfile",
                "metadata": {"name": "docs-agent", "namespace": "agents-ops"},
                "spec": {"agent": "docs-agent"},
                "status": {"containers": [{"name": "agent", "predictedPeak": {"memoryBytes": 68e9}}]},
            }
        )
    )
    snapshot = json.loads((EXAMPLES / "cluster-snapshot.json").read_text())
    nodes = [i["metadata"]["name"] for i in snapshot["items"] if i["kind"] == "Node"]
    args = [
        "--snapshot",
        str(EXAMPLES / "cluster-snapshot.json"),
        "--graph",
        str(EXAMPLES / "ops-team-graph.yaml"),
        "--profile",
        str(profiles),
    ]
    with kinship_serve(*args) as (url, proc):
        wait_ready(f"{url}/readyz", timeout_seconds=30, proc=proc)
        body = {"Pod": example_pod("ops-team.yaml", "docs-agent"), "Nodes": None, "NodeNames": nodes}
        reply = httpx.post(f"{url}/filter", json=body).json()
        assert sorted(reply["FailedNodes"]) == ["node-a1", "node-b2"]
        assert reply["FailedNodes"]["node-a1"].startswith(
            "predicted memory peak 64.8 GiB > allocatable 64 GiB"
        )
        assert sorted(reply["NodeNames"]) == sorted(set(nodes) - {"node-a1", "node-b2"})
        metrics = httpx.get(f"{url}/metrics").text
        assert 'kinship_extender_cache_objects{kind="agentprofiles"} 1.0' in metrics
