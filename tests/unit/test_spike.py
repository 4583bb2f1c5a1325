"""Spike-aware placement: the predicted-peak fit filter and the correlation term (issue 5)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from extender import scoring
from extender.app import create_app
from extender.config import ExtenderConfig, Weights
from extender.objects import Node, Pod
from extender.offline import build_state
from extender.placement import PodContext, candidates_from_names, resolve_names, run_prioritize
from extender.state import ClusterState
from kinship.profile import AgentProfile
from tests import objects as k
from tests.conftest import NODES, PODS, args

GIB = 2**30


def profile_doc(
    agent: str,
    namespace: str,
    *,
    cpu: float | None = None,
    memory: float | None = None,
    correlations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    peak = {key: v for key, v in (("cpuMillicores", cpu), ("memoryBytes", memory)) if v is not None}
    return {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentProfile",
        "metadata": {"name": agent, "namespace": namespace},
        "spec": {"agent": agent},
        "status": {
            "containers": [{"name": "agent", "predictedPeak": peak}],
            "correlations": correlations or [],
        },
    }


def profile(*a: Any, **kw: Any) -> AgentProfile:
    return AgentProfile.model_validate(profile_doc(*a, **kw))


def as_pod(obj: dict[str, Any]) -> Pod:
    return msgspec.convert(obj, Pod)


def as_node(obj: dict[str, Any]) -> Node:
    return msgspec.convert(obj, Node)


def make_client(tmp_path: Path, profiles: list[dict[str, Any]], config: ExtenderConfig | None = None):
    snap = tmp_path / "snapshot.json"
    snap.write_text(json.dumps(k.snapshot(NODES, PODS)))
    files = []
    if profiles:
        files.append(tmp_path / "profiles.yaml")
        files[0].write_text(yaml.safe_dump_all(profiles))
    state = build_state(snap, [], 0.5, files)
    return state, TestClient(create_app(state, config or ExtenderConfig()))


# ---- pure terms ----------------------------------------------------------------------------


def test_peaks_over_is_sum_plus_pod_above_allocatable_and_unknown_allocatable_is_never_over() -> None:
    sums = np.array([0.0, 30.0, 31.0, 5.0])
    alloc = np.array([64.0, 64.0, 64.0, np.nan])
    assert scoring.peaks_over(34.0, sums, alloc).tolist() == [False, False, True, False]  # 64 fits exactly


def test_spike_correlation_term_is_one_minus_the_strongest_correlation_on_the_node() -> None:
    np.testing.assert_allclose(scoring.spike_correlation(np.array([0.0, 0.9, 0.4])), [1.0, 0.1, 0.6])


# ---- the cache's sums ----------------------------------------------------------------------


def peaks(state: ClusterState, node: str) -> tuple[float, float]:
    slot = int(state.slots_of([node])[0])
    return float(state.cpu_peak[slot]), float(state.mem_peak[slot])


def test_node_sums_follow_pod_add_and_delete_with_requests_then_profile_peaks() -> None:
    state = ClusterState()
    state.upsert_node(as_node(k.node("n1", cpu="16", memory="64Gi")))
    slot = int(state.slots_of(["n1"])[0])
    assert (state.cpu_alloc[slot], state.mem_alloc[slot]) == (16000.0, 64 * GIB)
    a = as_pod(k.pod("a-1", "ns", node_name="n1", agent_label="a"))  # 250m, 512Mi requested
    b = as_pod(k.pod("b-1", "ns", node_name="n1", agent_label="b"))
    state.upsert_pod(a)
    state.upsert_pod(b)
    assert peaks(state, "n1") == (500.0, 1 * GIB)
    state.upsert_profile(profile("a", "ns", cpu=2000, memory=8 * GIB))
    assert peaks(state, "n1") == (2250.0, 8.5 * GIB)  # a's peak replaces its requests
    state.upsert_profile(profile("a", "ns", memory=10 * GIB))  # no CPU peak: requests again
    assert peaks(state, "n1") == (500.0, 10.5 * GIB)
    state.delete_pod(b.key)
    assert peaks(state, "n1") == (250.0, 10 * GIB)
    state.delete_profile("ns", "a")
    assert peaks(state, "n1") == (250.0, 0.5 * GIB)
    state.delete_pod(a.key)
    assert peaks(state, "n1") == (0.0, 0.0)


def test_replace_profiles_recomputes_only_changed_agents_and_pods_without_agent_count_requests() -> None:
    state = ClusterState()
    for name in ("n1", "n2"):
        state.upsert_node(as_node(k.node(name)))
    bare = k.pod("bare", "ns", node_name="n2")  # no agent identity: its requests count
    empty = k.pod("empty", "ns", node_name="n2")
    empty["spec"]["containers"][0]["resources"] = {}  # no requests, no profile: counts 0
    state.replace_pods(
        [as_pod(k.pod("a-1", "ns", node_name="n1", agent_label="a")), as_pod(bare), as_pod(empty)]
    )
    assert peaks(state, "n2") == (250.0, 0.5 * GIB)
    state.replace_profiles([profile("a", "ns", cpu=1000, memory=GIB), profile("z", "ns", cpu=5)])
    assert peaks(state, "n1") == (1000.0, 1 * GIB)
    state.replace_profiles([])
    assert peaks(state, "n1") == (250.0, 0.5 * GIB)


def test_pods_seen_before_their_node_are_summed_when_it_arrives_and_deleted_nodes_reset() -> None:
    state = ClusterState()
    state.upsert_profile(profile("a", "ns", memory=3 * GIB))
    state.upsert_pod(as_pod(k.pod("a-1", "ns", node_name="late", agent_label="a")))
    state.upsert_node(as_node(k.node("late")))
    assert peaks(state, "late") == (250.0, 3 * GIB)
    state.delete_node("late")
    state.upsert_node(as_node(k.node("other")))  # reuses the freed slot
    assert peaks(state, "other") == (0.0, 0.0)


def test_node_without_stated_cpu_or_memory_has_unknown_allocatable() -> None:
    state = ClusterState()
    state.upsert_node(msgspec.convert({"metadata": {"name": "bare"}}, Node))
    slot = int(state.slots_of(["bare"])[0])
    assert np.isnan(state.cpu_alloc[slot]) and np.isnan(state.mem_alloc[slot])


def test_correlations_are_symmetric_and_the_larger_coefficient_wins() -> None:
    state = ClusterState()
    state.replace_profiles(
        [
            profile("a", "ns", correlations=[{"agent": "b", "cpu": 0.4, "memory": 0.7}]),
            profile("c", "ns", correlations=[{"agent": "a", "memory": 0.5}, {"agent": "b", "cpu": 0.1}]),
            profile("b", "ns", correlations=[{"agent": "a", "cpu": 0.6}]),
            profile("a", "other", correlations=[{"agent": "x", "cpu": 0.9}]),
        ]
    )
    assert state.correlated("ns", "a") == {"b": 0.7, "c": 0.5}
    assert state.correlated("ns", "b") == {"a": 0.7, "c": 0.1}
    state.delete_profile("ns", "c")
    assert state.correlated("ns", "a") == {"b": 0.7}
    assert state.correlated("other", "x") == {"a": 0.9}


# ---- /filter -------------------------------------------------------------------------------


def test_profile_peak_above_requests_rejects_a_node_requests_alone_accept(tmp_path: Path) -> None:
    docs = k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent")  # requests 512Mi
    _, plain = make_client(tmp_path, [])
    assert "n-a1" in plain.post("/filter", json=args(docs)).json()["NodeNames"]

    # The orchestrator on n-a1 peaks at 40 GiB, docs-agent at 30 GiB: 70 GiB > 64 GiB there,
    # while n-a2 holds only the unrelated web pod's 512Mi (30.5 GiB).
    _, client = make_client(
        tmp_path,
        [
            profile_doc("orchestrator", "ops", memory=40 * GIB),
            profile_doc("docs-agent", "ops", cpu=500, memory=30 * GIB),
        ],
    )
    for full_nodes in (False, True):
        body = client.post("/filter", json=args(docs, full_nodes=full_nodes)).json()
        kept = body["NodeNames"] or [n["metadata"]["name"] for n in body["Nodes"]["items"]]
        assert "n-a1" not in kept and "n-a2" in kept
        assert body["FailedNodes"] == {
            "n-a1": "predicted memory peak 70 GiB > allocatable 64 GiB "
            "(pods on the node 40 GiB + this pod 30 GiB from its AgentProfile)"
        }
    assert 'kinship_extender_nodes_filtered_out_total{reason="spike_fit"} 2.0' in client.get("/metrics").text


def test_cpu_peak_reason_names_cores_and_requests_source(tmp_path: Path) -> None:
    _, client = make_client(tmp_path, [profile_doc("planner", "research", cpu=15_900)])
    pod = k.pod("big", "research", agent_label="nobody")  # no profile: its 250m request counts
    body = client.post("/filter", json=args(pod, ["n-b2", "n-b1"])).json()
    assert body["NodeNames"] == ["n-b1"]
    assert body["FailedNodes"]["n-b2"] == (
        "predicted cpu peak 16.15 cores > allocatable 16 cores "
        "(pods on the node 15.9 cores + this pod 0.25 cores from its requests)"
    )


def test_nodes_mode_uses_the_requests_allocatable(tmp_path: Path) -> None:
    _, client = make_client(tmp_path, [profile_doc("docs-agent", "ops", memory=40 * GIB)])
    small = k.node("n-a2", "zone-a", memory="32Gi")  # fresher than the cache's 64Gi
    docs = k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent")
    body = client.post("/filter", json={"Pod": docs, "Nodes": {"items": [small]}, "NodeNames": None}).json()
    assert body["Nodes"]["items"] == []
    assert "allocatable 32 GiB" in body["FailedNodes"]["n-a2"]


# ---- /prioritize ---------------------------------------------------------------------------


CORRELATED = [
    # docs-agent spikes with argocd-agent (n-b1) and, listed only on the orchestrator's side,
    # with the orchestrator (n-a1); ticketing-agent (n-c1) is under the 0.3 threshold.
    profile_doc(
        "docs-agent",
        "ops",
        correlations=[{"agent": "argocd-agent", "cpu": 0.9}, {"agent": "ticketing-agent", "memory": 0.2}],
    ),
    profile_doc("orchestrator", "ops", correlations=[{"agent": "docs-agent", "memory": 0.5}]),
]


def test_correlation_term_ranks_nodes_by_the_strongest_correlated_agent_there(tmp_path: Path) -> None:
    state, _ = make_client(tmp_path, CORRELATED)
    names = ["n-a1", "n-b1", "n-c1", "n-a2"]
    docs = as_pod(k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent"))
    ctx = PodContext.of(docs, state)
    cand = candidates_from_names(state, resolve_names(state, names))
    prio = run_prioritize(state, ctx, cand, ExtenderConfig())
    np.testing.assert_allclose(prio.terms["spike_correlation"], [0.5, 0.1, 1.0, 1.0])
    assert sorted((a, c) for a, c, _ in prio.correlated) == [("argocd-agent", 0.9), ("orchestrator", 0.5)]

    only_corr = ExtenderConfig(weights=Weights(communication=0, spread=0, gpu=0, spike_correlation=1))
    got = run_prioritize(state, ctx, cand, only_corr).scores.tolist()
    assert got == [5, 1, 10, 10]
    lower = ExtenderConfig(spike_correlation_threshold=0.1)
    np.testing.assert_allclose(
        run_prioritize(state, ctx, cand, lower).terms["spike_correlation"], [0.5, 0.1, 0.8, 1.0]
    )


def test_correlation_term_is_left_out_without_correlated_placed_agents(tmp_path: Path) -> None:
    state, _ = make_client(tmp_path, CORRELATED)
    cand = candidates_from_names(state, resolve_names(state, ["n-a1", "n-b1"]))
    for pod in (k.pod("bare", "ops"), k.pod("planner-2", "research", agent_label="planner")):
        prio = run_prioritize(state, PodContext.of(as_pod(pod), state), cand, ExtenderConfig())
        assert "spike_correlation" not in prio.terms and "spike_correlation" not in prio.uniform
    # correlated agents on every candidate equally: the term is uniform and dropped
    docs = PodContext.of(as_pod(k.pod("docs-agent-1", "ops", agent_label="docs-agent")), state)
    prio = run_prioritize(
        state, docs, candidates_from_names(state, resolve_names(state, ["n-b1"])), ExtenderConfig()
    )
    assert "spike_correlation" in prio.uniform


def test_http_prioritize_prefers_the_node_without_correlated_agents(tmp_path: Path) -> None:
    config = ExtenderConfig(weights=Weights(communication=0, spread=0, gpu=0, spike_correlation=1))
    _, client = make_client(tmp_path, CORRELATED, config)
    docs = k.pod("docs-agent-5d8f7c9b64-q", "ops", deployment="docs-agent")
    got = {
        hp["Host"]: hp["Score"]
        for hp in client.post("/prioritize", json=args(docs, ["n-a1", "n-b1", "n-c1"])).json()
    }
    assert got == {"n-a1": 5, "n-b1": 1, "n-c1": 10}


# ---- cluster mode: the profile watch -------------------------------------------------------


def test_watched_profiles_parse_through_the_contract_and_bad_ones_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kubernetes import client

    from extender import kube_sync

    state = ClusterState()
    state.upsert_node(as_node(k.node("n1")))
    state.upsert_pod(as_pod(k.pod("a-1", "ns", node_name="n1", agent_label="a")))
    res = next(r for r in kube_sync.resources(state, client.ApiClient()) if r.name == "agentprofiles")

    def raw(obj: dict[str, Any]) -> msgspec.Raw:
        return msgspec.Raw(json.dumps(obj).encode())

    good = profile_doc("a", "ns", memory=4 * GIB)
    res.replace([raw(good)])
    assert peaks(state, "n1")[1] == 4 * GIB
    bad = profile_doc("a", "ns", memory=-1)
    with caplog.at_level(logging.WARNING, logger="kinship.extender"):
        res.apply("MODIFIED", raw(bad))
        res.replace([raw(bad)])
    assert "ignoring invalid AgentProfile ns/a" in caplog.text
    assert "status.containers[0].predictedPeak.memoryBytes" in caplog.text
    assert peaks(state, "n1")[1] == 0.5 * GIB  # the relist without a valid profile: requests again
    res.apply("ADDED", raw(good))
    assert peaks(state, "n1")[1] == 4 * GIB
    res.apply("DELETED", raw(bad))  # a deleted object's last state need not be valid
    assert peaks(state, "n1")[1] == 0.5 * GIB
    assert state.sizes()["agentprofiles"] == 0


def test_bad_cpu_quantity_is_a_400_in_a_request_and_unchecked_in_the_cache(tmp_path: Path) -> None:
    bad = k.node("n-a2", "zone-a", cpu="lots")
    _, client = make_client(tmp_path, [])
    r = client.post("/filter", json={"Pod": k.pod("p", "ops"), "Nodes": {"items": [bad]}, "NodeNames": None})
    assert r.status_code == 400
    assert "invalid quantity 'lots'" in r.json()["error"]
    state = ClusterState()
    state.upsert_node(as_node(bad))
    slot = int(state.slots_of(["n-a2"])[0])
    assert np.isnan(state.cpu_alloc[slot]) and np.isnan(state.mem_alloc[slot])
