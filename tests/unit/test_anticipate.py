"""A team deployed in one burst: a GPU agent's pending pod tells its chatty peers, scheduled before
it, which zone it will land in (its tightest GPU fit)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import yaml
from fastapi.testclient import TestClient

from extender.app import create_app
from extender.config import ExtenderConfig
from extender.objects import Pod, Workload
from extender.offline import build_state
from extender.state import ClusterState
from tests import objects as k
from tests.conftest import NODES, args

NS = "burst"
GRAPH = k.graph("team", NS, [{"from": "researcher", "to": "executor", "weight": 60}])


def as_pod(obj) -> Pod:
    return msgspec.convert(obj, Pod)


@pytest.fixture
def state(tmp_path: Path) -> ClusterState:
    """The shared test nodes (gpu-a1: 8 GPUs in zone a, gpu-b1: 4 in zone b), no pods."""
    snap = tmp_path / "snapshot.json"
    snap.write_text(json.dumps(k.snapshot(NODES, [])))
    graphs = tmp_path / "graphs.yaml"
    graphs.write_text(yaml.safe_dump(GRAPH))
    return build_state(snap, [graphs], 0.5)


def scores(state: ClusterState, pod) -> dict[str, int]:
    body = TestClient(create_app(state, ExtenderConfig())).post("/prioritize", json=args(pod)).json()
    return {hp["Host"]: hp["Score"] for hp in body}


def test_a_peer_heads_for_the_zone_its_pending_gpu_peer_will_land_in(state: ClusterState) -> None:
    researcher = k.pod("researcher-0", NS, agent_label="researcher")
    before = scores(state, researcher)
    assert before["n-a1"] == before["n-b1"] == before["n-c1"]  # nothing known about the executor

    state.upsert_pending_pod(as_pod(k.pod("executor-0", NS, agent_label="executor", gpus=1)))
    slots, _ = state.anticipated(NS, "executor")
    assert [state.node_name(int(s)) for s in slots] == ["gpu-b1"]  # 4 free beats 8 free for 1 GPU
    got = scores(state, researcher)
    assert got["n-b1"] == got["n-b2"] > got["n-a1"] == got["n-c1"]
    assert got["n-b1"] > got["gpu-b1"]  # beside the GPU agent, not squatting on its node


def test_the_expectation_gives_way_to_the_real_placement(state: ClusterState) -> None:
    executor = k.pod("executor-0", NS, agent_label="executor", gpus=1)
    state.upsert_pending_pod(as_pod(executor))
    # it went to the bigger GPU node after all (say, the L4 node filled up meanwhile)
    state.upsert_pod(as_pod({**executor, "spec": {**executor["spec"], "nodeName": "gpu-a1"}}))
    assert state.anticipated(NS, "executor")[0].size == 0
    got = scores(state, k.pod("researcher-0", NS, agent_label="researcher"))
    assert got["n-a1"] > got["n-b1"]


def test_no_expectation_without_a_gpu_request_or_a_fitting_node(state: ClusterState) -> None:
    state.upsert_pending_pod(as_pod(k.pod("executor-0", NS, agent_label="executor")))  # no GPU
    assert state.anticipated(NS, "executor")[0].size == 0
    state.upsert_pending_pod(as_pod(k.pod("executor-1", NS, agent_label="executor", gpus=16)))  # fits nowhere
    assert state.anticipated(NS, "executor")[0].size == 0
    state.delete_pending_pod(as_pod(k.pod("executor-1", NS, agent_label="executor", gpus=16)).key)
    state.upsert_pending_pod(as_pod(k.pod("executor-2", NS, agent_label="executor", gpus=1)))
    state.replace_pending_pods([])  # a relist without it
    assert state.anticipated(NS, "executor")[0].size == 0
    assert state.sizes()["gpu_demand_not_placed"] == 0


def test_explain_names_the_expected_node(state: ClusterState) -> None:
    from extender.explain import header_lines
    from extender.placement import NameResolver, PodContext, candidates, run_prioritize
    from extender.wire import decode_args

    state.upsert_pending_pod(as_pod(k.pod("executor-0", NS, agent_label="executor", gpus=1)))
    request = decode_args(json.dumps(args(k.pod("researcher-0", NS, agent_label="researcher"))).encode())
    ctx = PodContext.of(request.pod, state)
    prio = run_prioritize(state, ctx, candidates(state, request, NameResolver()), ExtenderConfig())
    text = "\n".join(header_lines(ctx, prio, state))
    assert "peer executor: weight 1.00; not placed yet, its pending GPU pod expected on gpu-b1" in text


def deployment(name: str, gpus: int, replicas: int = 1) -> Workload:
    """A Deployment as the API returns it in a list (no kind), its template like the examples'."""
    template = k.pod("x", NS, agent_label=None, gpus=gpus)
    template["metadata"] = {"labels": {"app.kubernetes.io/name": name}}
    obj = {"metadata": {"name": name, "namespace": NS}, "spec": {"replicas": replicas, "template": template}}
    return msgspec.convert(obj, Workload)


def test_a_gpu_deployment_is_anticipated_before_its_pods_exist(state: ClusterState) -> None:
    state.upsert_workload("Deployment", deployment("executor", gpus=1))
    assert [state.node_name(int(s)) for s in state.anticipated(NS, "executor")[0]] == ["gpu-b1"]
    got = scores(state, k.pod("researcher-0", NS, agent_label="researcher"))
    assert got["n-b1"] > got["n-a1"]

    state.upsert_workload("Deployment", deployment("executor", gpus=1, replicas=0))  # scaled to zero
    assert state.anticipated(NS, "executor")[0].size == 0
    state.upsert_workload("Deployment", deployment("executor", gpus=1))
    state.delete_workload("Deployment", NS, "executor")
    assert state.anticipated(NS, "executor")[0].size == 0
    state.upsert_workload("StatefulSet", deployment("executor", gpus=1))
    state.replace_workloads("Deployment", [])  # a Deployment relist leaves StatefulSets alone
    assert state.anticipated(NS, "executor")[0].size == 1
