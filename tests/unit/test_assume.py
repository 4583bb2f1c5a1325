"""Pods bound through the extender's bind verb: placed in the cache before the binding is written,
confirmed by the watch, removed when the write fails."""

from __future__ import annotations

import msgspec
import pytest
from fastapi.testclient import TestClient

from extender.app import create_app
from extender.config import ExtenderConfig
from extender.objects import Pod
from extender.offline import build_state
from extender.state import ClusterState, InFlight
from tests import objects as k
from tests.conftest import args

TTL = 30.0


def as_pod(obj) -> Pod:
    return msgspec.convert(obj, Pod)


def scored(state: ClusterState, obj, deadline: float = 100.0) -> Pod:
    """Note a pod as filter/prioritize do."""
    pod = as_pod(obj)
    state.note_in_flight(
        pod.key, InFlight(pod.namespace, pod.metadata.name, pod.agent, 1.0, 250.0, 2**30, deadline), now=0.0
    )
    return pod


@pytest.fixture
def state(cluster_files) -> ClusterState:
    snap, graphs = cluster_files
    state = build_state(snap, [graphs], 0.5)
    state.watched = True
    return state


def gpus_used(state: ClusterState, node: str) -> float:
    return float(state.gpu_used[state.slots_of([node])[0]])


def nodes_of(state: ClusterState, namespace: str, agent: str) -> dict[str, int]:
    slots, counts = state.placement(namespace, agent)
    return {state.node_name(int(s)): int(c) for s, c in zip(slots, counts, strict=True)}


def test_an_assumed_pod_counts_on_its_node_at_once(state: ClusterState) -> None:
    before = gpus_used(state, "gpu-b1")
    pod = scored(state, k.pod("executor-9", "research", agent_label="executor", gpus=1))
    assert state.in_flight("research", frozenset({"executor"}), "other", now=0.0)
    assert state.assume(pod.key, "gpu-b1", now=0.0, ttl_seconds=TTL)
    assert not state.in_flight("research", frozenset({"executor"}), "other", now=0.0)
    assert nodes_of(state, "research", "executor")["gpu-b1"] == 1
    assert gpus_used(state, "gpu-b1") == before + 1


def test_the_watch_confirms_without_counting_twice(state: ClusterState) -> None:
    before = gpus_used(state, "gpu-b1")
    obj = k.pod("executor-9", "research", agent_label="executor", gpus=1)
    pod = scored(state, obj)
    state.assume(pod.key, "gpu-b1", now=0.0, ttl_seconds=TTL)
    state.upsert_pod(as_pod({**obj, "spec": {**obj["spec"], "nodeName": "gpu-b1"}}))
    assert gpus_used(state, "gpu-b1") == before + 1
    state.forget_assumed(pod.key)  # a late failure report must not undo a confirmed binding
    assert gpus_used(state, "gpu-b1") == before + 1
    assert state.sizes()["pods_assumed"] == 0


def test_a_failed_binding_takes_the_pod_off_again(state: ClusterState) -> None:
    before = gpus_used(state, "gpu-b1")
    pod = scored(state, k.pod("executor-9", "research", agent_label="executor", gpus=1))
    state.assume(pod.key, "gpu-b1", now=0.0, ttl_seconds=TTL)
    state.forget_assumed(pod.key)
    assert gpus_used(state, "gpu-b1") == before
    assert "gpu-b1" not in nodes_of(state, "research", "executor")


def test_a_relist_taken_before_the_binding_keeps_the_assumed_pod(state: ClusterState) -> None:
    obj = k.pod("executor-9", "research", agent_label="executor", gpus=1)
    pod = scored(state, obj)
    state.assume(pod.key, "gpu-b1", now=0.0, ttl_seconds=TTL)
    bound_before = [as_pod(p) for p in k.snapshot([], [])["items"]]  # a list without it
    state.replace_pods(bound_before)
    assert nodes_of(state, "research", "executor") == {"gpu-b1": 1}
    # an older, unbound view of the pod does not undo the placement either
    state.upsert_pod(as_pod(obj))
    assert nodes_of(state, "research", "executor") == {"gpu-b1": 1}


def test_an_assumed_pod_the_watch_never_confirms_expires(state: ClusterState) -> None:
    pod = scored(state, k.pod("executor-9", "research", agent_label="executor", gpus=1))
    state.assume(pod.key, "gpu-b1", now=0.0, ttl_seconds=TTL)
    state.in_flight("research", frozenset({"executor"}), "x", now=TTL + 1)  # any call sweeps
    assert "gpu-b1" not in nodes_of(state, "research", "executor")
    assert state.sizes()["pods_assumed"] == 0


def test_a_pod_the_extender_never_scored_is_not_assumed(state: ClusterState) -> None:
    assert not state.assume("unknown-uid", "gpu-b1", now=0.0, ttl_seconds=TTL)
    assert state.sizes()["pods_assumed"] == 0


def test_an_expired_in_flight_pod_is_not_assumed(state: ClusterState) -> None:
    pod = scored(state, k.pod("executor-9", "research", agent_label="executor", gpus=1), deadline=3.0)
    assert not state.assume(pod.key, "gpu-b1", now=5.0, ttl_seconds=TTL)


def test_a_pod_no_node_passes_is_not_waited_for(state: ClusterState) -> None:
    client = TestClient(create_app(state, ExtenderConfig()))
    huge = k.pod("huge", "research", agent_label="executor", gpus=64)
    assert client.post("/filter", json=args(huge)).json()["NodeNames"] == []
    assert state.sizes()["pods_in_flight"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "invalid ExtenderBindingArgs"),
        (b'{"PodName": "p", "PodNamespace": "ns"}', "missing `Node`"),
        (b'{"PodName": 3, "PodNamespace": "ns", "Node": "n"}', "Expected `str`"),
    ],
)
def test_bind_rejects_bad_arguments_with_400(state: ClusterState, body: bytes, message: str) -> None:
    client = TestClient(create_app(state, ExtenderConfig()))
    r = client.post("/bind", content=body)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_offline_bind_says_it_cannot(state: ClusterState) -> None:
    client = TestClient(create_app(state, ExtenderConfig()))
    r = client.post("/bind", json={"PodName": "p", "PodNamespace": "ns", "PodUID": "u", "Node": "n-a1"})
    assert r.status_code == 501
    assert "cannot bind; remove bindVerb" in r.json()["Error"]


def test_verbs_answer_only_post_and_other_paths_reach_the_app(state: ClusterState) -> None:
    client = TestClient(create_app(state, ExtenderConfig()))
    assert client.get("/filter").status_code in (404, 405)  # FastAPI's answer, not a verb's
    assert client.post("/nowhere", content=b"{}").status_code == 404
    assert client.get("/livez").text == "ok"
    r = client.post("/filter", content=b"{")
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)


def test_a_later_note_moves_the_deadline_on(state: ClusterState) -> None:
    """A pod filtered at t=0 whose cycle failed is scored again at 2.9 s and bound at 3.05 s: it
    is still in flight, so the bind call places it."""
    obj = k.pod("executor-9", "research", agent_label="executor", gpus=1)
    scored(state, obj, deadline=3.0)
    pod = as_pod(obj)
    state.note_in_flight(
        pod.key, InFlight("research", "executor-9", "executor", 1.0, 250.0, 2**30, 5.9), now=2.9
    )
    assert state.assume(pod.key, "gpu-b1", now=3.05, ttl_seconds=TTL)
