"""The HTTP API with payloads shaped exactly as kube-scheduler posts them, in both node-cache modes."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests import objects as k
from tests.conftest import NODES, args

BOTH_MODES = pytest.mark.parametrize("full_nodes", [False, True], ids=["NodeNames", "Nodes"])


def scores(client: TestClient, pod, names=None, full_nodes=False) -> dict[str, int]:
    r = client.post("/prioritize", json=args(pod, names, full_nodes=full_nodes))
    assert r.status_code == 200, r.text
    body = r.json()
    assert all(set(hp) == {"Host", "Score"} and 0 <= hp["Score"] <= 10 for hp in body)
    return {hp["Host"]: hp["Score"] for hp in body}


@BOTH_MODES
def test_chatty_peers_node_scores_10_and_gpu_nodes_lose(client: TestClient, full_nodes: bool) -> None:
    docs = k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent")
    got = scores(client, docs, full_nodes=full_nodes)
    assert got["n-a1"] == 10  # the orchestrator runs there
    assert got["n-a2"] > got["gpu-a1"]  # same zone as the orchestrator, but no GPU squatting
    assert got["n-a2"] > got["n-b1"] > got["gpu-b1"]
    assert max(got, key=got.__getitem__) == "n-a1"


@BOTH_MODES
def test_orchestrator_replica_prefers_its_chattiest_peer(client: TestClient, full_nodes: bool) -> None:
    orch = k.pod("orchestrator-5d8f7c9b64-x9", "ops", deployment="orchestrator")
    got = scores(client, orch, full_nodes=full_nodes)
    # argocd-agent (weight 50) runs on n-b1; our own replica on n-a1 pushes away from there
    assert got["n-b1"] == 10
    assert got["n-b1"] > got["n-a1"]


def test_modes_agree(client: TestClient) -> None:
    pod = k.pod("researcher-1", "research", agent_label="researcher")
    assert scores(client, pod) == scores(client, pod, full_nodes=True)


def test_pod_without_agent_gets_gpu_term_only_and_every_node_passes(client: TestClient) -> None:
    bare = k.pod("bare", "default")
    got = scores(client, bare)
    assert {n for n, s in got.items() if s == 10} == {"n-a1", "n-a2", "n-b1", "n-b2", "n-c1"}
    assert got["gpu-a1"] == got["gpu-b1"] == 0
    r = client.post("/filter", json=args(bare))
    assert r.status_code == 200
    assert len(r.json()["NodeNames"]) == len(NODES)


def test_gpu_pod_prefers_tightest_fit_and_filter_drops_too_small(client: TestClient) -> None:
    gpu_pod = k.pod("trainer", "research", agent_label="trainer", gpus=4)
    got = scores(client, gpu_pod)
    assert got["gpu-b1"] > got["gpu-a1"]  # 4 of 4 free (succeeded pod frees them) vs 4 of 6 free
    big = k.pod("big", "research", agent_label="big", gpus=6)
    r = client.post("/filter", json=args(big))
    body = r.json()
    assert body["NodeNames"] == ["gpu-a1"]
    assert "insufficient nvidia.com/gpu" in body["FailedNodes"]["gpu-b1"]
    assert body["FailedAndUnresolvableNodes"] == {}
    assert body["Error"] == "" and body["Nodes"] is None


def test_required_colocation_filters_once_peer_is_placed(client: TestClient) -> None:
    reviewer = k.pod("reviewer-1", "research", agent_label="reviewer")
    body = client.post("/filter", json=args(reviewer)).json()
    assert body["NodeNames"] == ["gpu-a1"]  # the executor's node
    assert "Required co-location with agent 'executor'" in body["FailedAndUnresolvableNodes"]["n-a1"]


def test_nodes_mode_answers_with_the_full_node_objects(client: TestClient) -> None:
    reviewer = k.pod("reviewer-1", "research", agent_label="reviewer")
    body = client.post("/filter", json=args(reviewer, full_nodes=True)).json()
    assert body["NodeNames"] is None
    assert [n["metadata"]["name"] for n in body["Nodes"]["items"]] == ["gpu-a1"]
    assert body["Nodes"]["items"][0] == next(n for n in NODES if n["metadata"]["name"] == "gpu-a1")


def test_nodes_mode_accepts_nodes_unknown_to_the_cache(client: TestClient) -> None:
    fresh = k.node("n-new", "zone-a")
    pod = k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent")
    body = {"Pod": pod, "Nodes": {"items": [NODES[0], fresh]}, "NodeNames": None}
    r = client.post("/prioritize", json=body)
    assert r.status_code == 200
    # n-new is in the orchestrator's zone: half the communication credit; other terms are uniform
    assert {hp["Host"]: hp["Score"] for hp in r.json()} == {"n-a1": 10, "n-new": 5}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "invalid ExtenderArgs"),
        (b"[]", "Expected `object`"),
        (b'{"NodeNames": ["n-a1"]}', "missing `Pod`"),
        (b'{"Pod": {"metadata": {"name": "p"}, "spec": {}}}', "neither `Nodes` nor `NodeNames`"),
        (b'{"Pod": {"metadata": {"name": 5}, "spec": {}}, "NodeNames": []}', "$.Pod.metadata.name"),
        (b'{"Pod": {"metadata": {"name": "p"}, "spec": {}}, "NodeNames": "n-a1"}', "$.NodeNames"),
        (
            b'{"Pod": {"metadata": {"name": "p"}, "spec": {}}, "NodeNames": ["n-a1", "ghost"]}',
            "unknown node names",
        ),
        (b'{"Pod": {"metadata": {}, "spec": {}}, "NodeNames": []}', "metadata.name"),
        (
            b'{"Pod": {"metadata": {"name": "p"}, "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "lots"}}}]}}, "NodeNames": []}',
            "invalid quantity 'lots'",
        ),
        (
            b'{"Pod": {"metadata": {"name": "p"}, "spec": {}}, "Nodes": {"items": [{"metadata": {"name": 1}}]}}',
            "$.Nodes.items[0].metadata.name",
        ),
    ],
)
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_bad_input_is_a_400_naming_the_problem(
    client: TestClient, verb: str, body: bytes, needle: str
) -> None:
    r = client.post(f"/{verb}", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert needle in r.json()["error"]
    assert client.post(f"/{verb}", json=args(k.pod("ok", "ops"))).status_code == 200  # still serving


def test_oversized_body_is_413(cluster_files) -> None:
    from extender.app import create_app
    from extender.config import ExtenderConfig
    from extender.offline import build_state

    snap, graphs = cluster_files
    app = create_app(build_state(snap, [graphs], 0.5), ExtenderConfig(max_request_bytes=1024))
    client = TestClient(app)
    r = client.post("/prioritize", json=args(k.pod("p", "ops")))  # a full pod is over 1 KiB
    assert r.status_code == 413
    assert "1024 bytes" in r.json()["error"]
    # chunked upload without a content-length is cut off too
    r = client.post("/prioritize", content=iter([b"x" * 700, b"x" * 700]))
    assert r.status_code == 413


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/healthz").status_code == 200
    client.post("/prioritize", json=args(k.pod("docs", "ops", deployment="docs-agent")))
    client.post("/filter", content=b"{")
    text = client.get("/metrics").text
    assert 'kinship_extender_requests_total{code="200",verb="prioritize"} 1.0' in text
    assert 'kinship_extender_requests_total{code="400",verb="filter"} 1.0' in text
    assert 'kinship_extender_request_duration_seconds_bucket{le="0.0005",verb="prioritize"}' in text
    assert 'kinship_extender_cache_objects{kind="nodes"} 7.0' in text
    assert 'kinship_extender_cache_objects{kind="pods"} 6.0' in text  # the Succeeded pod is not held
    assert "kinship_extender_placements_scored_total 1.0" in text
    assert "kinship_extender_cache_synced 1.0" in text


def test_readyz_is_503_until_synced() -> None:
    from extender.app import create_app
    from extender.config import ExtenderConfig
    from extender.state import ClusterState

    state = ClusterState()
    state.expect("nodes", "pods")
    client = TestClient(create_app(state, ExtenderConfig()))
    r = client.get("/readyz")
    assert r.status_code == 503 and "nodes, pods" in r.text
    assert client.get("/livez").status_code == 200
    state.mark_synced("nodes")
    state.mark_synced("pods")
    assert client.get("/readyz").status_code == 200


def test_terms_equal_on_every_node_do_not_compress_the_scores(client: TestClient) -> None:
    # No reviewer runs yet (spread is uniform); only non-GPU candidates (gpu is uniform):
    # communication alone decides, so the full 0..10 range is used.
    reviewer = k.pod("reviewer-9", "research", agent_label="reviewer-free")
    researcher = k.pod("researcher-1", "research", agent_label="researcher")
    got = scores(client, researcher, ["n-b2", "n-b1", "n-c1"])
    assert got == {"n-b2": 10, "n-b1": 5, "n-c1": 0}
    assert set(scores(client, reviewer, ["n-b2", "n-c1"]).values()) == {0}


def test_debug_log_carries_the_per_term_breakdown(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("DEBUG", logger="kinship.extender"):
        scores(client, k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent"))
    text = caplog.text
    assert "pod ops/docs-agent-5d8f7c9b64-q: agent docs-agent" in text
    assert "peer orchestrator: weight 0.40; runs on n-a1" in text
    assert "n-a1: score 10 (communication=5.00 gpu=5.00)" in text


def test_a_pod_waits_for_its_just_scored_required_peer_to_be_bound(cluster_files) -> None:
    """kube-scheduler binds asynchronously: the Argo CD MCP server is filtered before the
    binding of the agent it must share a node with has arrived. The extender waits for it."""
    import threading

    import msgspec

    from extender.app import create_app
    from extender.config import ExtenderConfig
    from extender.objects import Pod
    from extender.offline import build_state

    snap, graphs = cluster_files
    state = build_state(snap, [graphs], 0.5)
    state.watched = True  # as in cluster mode: bindings arrive through the watch
    client = TestClient(create_app(state, ExtenderConfig()))
    executor = k.pod("executor-2", "research", agent_label="executor", gpus=1)
    # executor-1 runs on gpu-a1; executor-2 is scored (and now in flight) ...
    client.post("/prioritize", json=args(executor))

    def bind_later() -> None:  # ... and its binding arrives 100 ms later, on gpu-b1
        time.sleep(0.1)
        state.upsert_pod(
            msgspec.convert({**executor, "spec": {**executor["spec"], "nodeName": "gpu-b1"}}, Pod)
        )

    threading.Thread(target=bind_later).start()
    reviewer = k.pod("reviewer-1", "research", agent_label="reviewer")
    start = time.monotonic()
    body = client.post("/filter", json=args(reviewer)).json()
    assert time.monotonic() - start >= 0.1
    assert sorted(body["NodeNames"]) == ["gpu-a1", "gpu-b1"]  # both executors' nodes
    waited = next(
        float(line.split()[1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("kinship_extender_peer_bind_wait_seconds_total ")
    )
    assert 0.05 <= waited < 1.0  # the binding lands 0.1 s after the thread starts


def test_a_peer_that_never_binds_only_delays_by_the_configured_wait(cluster_files) -> None:
    from extender.app import create_app
    from extender.config import ExtenderConfig
    from extender.offline import build_state

    snap, graphs = cluster_files
    state = build_state(snap, [graphs], 0.5)
    state.watched = True
    client = TestClient(create_app(state, ExtenderConfig(peer_bind_wait_seconds=0.2)))
    client.post("/filter", json=args(k.pod("orchestrator-x", "ops", deployment="orchestrator")))
    r = client.post("/prioritize", json=args(k.pod("docs-1", "ops", deployment="docs-agent")))
    assert r.status_code == 200
    assert "kinship_extender_peer_bind_wait_timeouts_total 1.0" in client.get("/metrics").text


def test_offline_mode_never_waits(client: TestClient) -> None:
    client.post("/filter", json=args(k.pod("orchestrator-x", "ops", deployment="orchestrator")))
    client.post("/prioritize", json=args(k.pod("docs-1", "ops", deployment="docs-agent")))
    assert "kinship_extender_peer_bind_wait_seconds_total 0.0" in client.get("/metrics").text


def _relay_client(tmp_path, **config) -> TestClient:  # type: ignore[no-untyped-def]
    """The ops pods of the shared snapshot (orchestrator on n-a1), with a docs agent that has no
    pod yet and a docs index that must share its node."""
    import json

    import yaml

    from extender.app import create_app
    from extender.config import ExtenderConfig
    from extender.offline import build_state
    from tests.conftest import NODES, PODS

    snap, graphs = tmp_path / "snapshot.json", tmp_path / "graphs.yaml"
    snap.write_text(json.dumps(k.snapshot(NODES, PODS)))
    edges = [
        {"from": "orchestrator", "to": "docs-agent", "weight": 50},
        {"from": "docs-agent", "to": "docs-index", "weight": 10, "colocation": "Required"},
    ]
    graphs.write_text(yaml.safe_dump(k.graph("ops", "ops", edges)))
    state = build_state(snap, [graphs], 0.5)
    state.watched = bool(config.pop("watched", False))
    return TestClient(create_app(state, ExtenderConfig(**config)))


def test_a_pod_is_scored_by_the_peers_of_its_unplaced_required_partner(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """The docs index is scheduled before the docs agent, which must then join it (Required):
    it heads for the orchestrator, the docs agent's chatty peer, instead of any free node."""
    client = _relay_client(tmp_path)
    index = k.pod("docs-index-0", "ops", agent_label="docs-index")
    with caplog.at_level("DEBUG", logger="kinship.extender"):
        got = scores(client, index)
    assert got["n-a1"] == 10  # the orchestrator's node
    assert got["n-a2"] > got["n-b1"]  # its zone before the others
    assert max(got, key=got.__getitem__) == "n-a1"
    assert "peer orchestrator of docs-agent (Required, not placed yet: it will join this pod)" in caplog.text


def test_a_pod_waits_for_in_flight_peers_of_its_unplaced_required_partner(tmp_path) -> None:
    client = _relay_client(tmp_path, watched=True, peer_bind_wait_seconds=0.2)
    client.post("/filter", json=args(k.pod("orchestrator-x", "ops", deployment="orchestrator")))
    r = client.post("/prioritize", json=args(k.pod("docs-index-0", "ops", agent_label="docs-index")))
    assert r.status_code == 200
    assert "kinship_extender_peer_bind_wait_timeouts_total 1.0" in client.get("/metrics").text


@BOTH_MODES
def test_filter_keep_best_passes_the_nodes_kinship_scores_best(cluster_files, full_nodes: bool) -> None:
    """With filter_keep_best, kube-scheduler scores only Kinship's best nodes: the docs agent's
    orchestrator node and its zone, never a GPU node; failures are still reported as before."""
    from extender.app import create_app
    from extender.config import ExtenderConfig
    from extender.offline import build_state

    snap, graphs = cluster_files
    state = build_state(snap, [graphs], observed_fraction=0.5)
    narrow = TestClient(create_app(state, ExtenderConfig(filter_keep_best=2)))
    docs = k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent")
    body = narrow.post("/filter", json=args(docs, full_nodes=full_nodes)).json()
    kept = body["NodeNames"] if not full_nodes else [n["metadata"]["name"] for n in body["Nodes"]["items"]]
    assert kept == ["n-a1", "n-a2"]  # the orchestrator's node, then its zone
    assert body["FailedNodes"] == {} and body["FailedAndUnresolvableNodes"] == {}
    assert (
        narrow.get("/metrics").text.count('kinship_extender_nodes_filtered_out_total{reason="not_best"} 5.0')
        == 1
    )
    # kube-scheduler then asks to prioritize those alone
    assert set(scores(narrow, docs, kept)) == set(kept)
    # pods that score every non-GPU node alike do not all get the same two: ties rotate per pod
    kept_for_bare = set()
    for i in range(4):
        body = narrow.post("/filter", json=args(k.pod(f"bare-{i}", "default"), full_nodes=full_nodes)).json()
        names = (
            body["NodeNames"] if not full_nodes else [n["metadata"]["name"] for n in body["Nodes"]["items"]]
        )
        assert len(names) == 2 and not any(n.startswith("gpu-") for n in names)
        kept_for_bare.add(tuple(names))
    assert len(kept_for_bare) > 1
    big = k.pod("big", "research", agent_label="big", gpus=6)  # one node fits: nothing to narrow
    body = narrow.post("/filter", json=args(big)).json()
    assert body["NodeNames"] == ["gpu-a1"] and "gpu-b1" in body["FailedNodes"]


def test_filter_keep_best_ranks_as_prioritize_would_over_the_fitting_nodes_only(tmp_path) -> None:
    """A node the filter rejects must not set the scale of a term for the others. `web` talks to
    `api` on node p and has replicas on a0-a2 (zone a); b0-b2 (zone b) are empty. With p rejected,
    prioritize over the fitting nodes prefers zone a (its peer's zone); scaled by p, the
    communication term on zone a would halve and zone b would be kept instead."""
    import json

    import msgspec
    import numpy as np
    import yaml

    from extender import placement
    from extender.config import ExtenderConfig
    from extender.objects import Pod
    from extender.offline import build_state

    nodes = [k.node("p", "zone-a")] + [k.node(f"{z}{i}", f"zone-{z}") for z in "ab" for i in range(3)]
    pods = [k.pod("api-0", "t", node_name="p", agent_label="api")]
    pods += [k.pod(f"web-{i}", "t", node_name=f"a{i}", agent_label="web") for i in range(3)]
    (tmp_path / "s.json").write_text(json.dumps(k.snapshot(nodes, pods)))
    (tmp_path / "g.yaml").write_text(
        yaml.safe_dump(k.graph("t", "t", [{"from": "web", "to": "api", "weight": 10}]))
    )
    state = build_state(tmp_path / "s.json", [tmp_path / "g.yaml"], observed_fraction=0.5)
    ctx = placement.PodContext.of(msgspec.convert(k.pod("web-3", "t", agent_label="web"), Pod), state)
    names = state.node_names()
    cand = placement.candidates_from_names(state, placement.resolve_names(state, names))
    outcome = placement.run_filter(state, ctx, cand)
    outcome.passed[names.index("p")] = False  # as if its predicted peaks were over
    fitting = [names[i] for i in np.flatnonzero(outcome.passed)]
    alone = placement.candidates_from_names(state, placement.resolve_names(state, fitting))
    scores = dict(
        zip(fitting, placement.run_prioritize(state, ctx, alone, ExtenderConfig()).scores, strict=True)
    )
    placement.keep_best(state, ctx, cand, outcome, ExtenderConfig(filter_keep_best=3))
    kept = [names[i] for i in np.flatnonzero(outcome.passed)]
    assert sorted(kept) == ["a0", "a1", "a2"], (kept, scores)
    assert min(scores[n] for n in kept) > max(s for n, s in scores.items() if n not in kept)
