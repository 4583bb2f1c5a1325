"""Defects found in review, each pinned by the case that exposed it."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from fastapi.testclient import TestClient

from extender import scoring
from extender.objects import Node, Pod, pod_resource_request
from extender.offline import load_snapshot
from extender.state import ClusterState
from kinship.errors import InputError
from kinship.quantity import quantity
from tests import objects as k
from tests.conftest import NODES, args


def pod_with(containers, init=None) -> Pod:
    spec = {"containers": containers, "initContainers": init}
    return msgspec.convert({"metadata": {"name": "p"}, "spec": spec}, Pod)


def gpu(n, policy=None):
    c = {"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(n)}}}
    if policy:
        c["restartPolicy"] = policy
    return c


@pytest.mark.parametrize(
    ("containers", "init", "expected"),
    [
        ([gpu(1)], [gpu(1, "Always")], 2.0),  # a sidecar runs beside the app
        ([gpu(1)], [gpu(3)], 3.0),  # an ordinary init container runs alone
        ([gpu(1)], [gpu(1, "Always"), gpu(2)], 3.0),  # init after a sidecar runs beside it
        ([gpu(2)], [gpu(1), gpu(1, "Always")], 3.0),
    ],
)
def test_gpu_requests_follow_kube_scheduler_for_sidecars(containers, init, expected) -> None:
    assert pod_resource_request(pod_with(containers, init), "nvidia.com/gpu") == expected


def test_infinite_quantities_are_invalid() -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        quantity("1e400")
    with pytest.raises(ValueError, match="invalid quantity"):
        quantity("9" * 400 + "Ei")


def test_a_pod_with_a_bad_quantity_is_skipped_not_fatal() -> None:
    state = ClusterState()
    good = msgspec.convert(k.pod("good", "ns", node_name="n1", agent_label="a"), Pod)
    bad = msgspec.convert(k.pod("bad", "ns", node_name="n1", agent_label="a", gpus=1), Pod)
    bad.spec.containers[0].resources.limits["nvidia.com/gpu"] = "10e399"
    state.replace_pods([good, bad])
    assert state.sizes()["pods"] == 1


def test_snapshot_with_a_bad_quantity_names_the_item(tmp_path: Path) -> None:
    bad = k.pod("bad", "ns", node_name="n-a1", gpus=1)
    bad["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "abc"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(k.snapshot([NODES[0]], [bad])))
    with pytest.raises(InputError, match=r"items\[1\] \(Pod bad\): invalid quantity 'abc'"):
        load_snapshot(path)


def test_a_node_without_the_required_peer_is_unresolvable_even_if_gpus_are_short(client: TestClient) -> None:
    reviewer = k.pod("reviewer-1", "research", agent_label="reviewer", gpus=8)
    body = client.post("/filter", json=args(reviewer)).json()
    assert body["NodeNames"] == []
    assert "gpu-b1" in body["FailedAndUnresolvableNodes"] and "gpu-b1" not in body["FailedNodes"]
    assert "insufficient nvidia.com/gpu" in body["FailedNodes"]["gpu-a1"]  # hosts the executor


def test_duplicate_node_names_are_a_400(client: TestClient) -> None:
    r = client.post("/prioritize", json=args(k.pod("p", "ops"), ["n-a1", "n-a1"]))
    assert r.status_code == 400
    assert "duplicate names" in r.json()["error"]


def test_same_node_credit_when_the_request_relabels_the_node_zone() -> None:
    # the peer's node was cached in zone 0; the request says the candidate is in zone 1 now
    peer = scoring.PeerPlacement(1.0, np.array([0]), np.array([1.0]), np.array([0]))
    got = scoring.communication(np.array([1, 0]), [peer], 0.5, n_zones=2)
    assert got.tolist() == [1.0, 0.5]


def test_offline_mode_keeps_no_in_flight_entries(cluster_files) -> None:
    # nothing prunes them without watches: a long-running offline server would grow forever
    from extender.app import create_app
    from extender.config import ExtenderConfig
    from extender.offline import build_state

    snap, graphs = cluster_files
    state = build_state(snap, [graphs], 0.5)
    client = TestClient(create_app(state, ExtenderConfig()))
    for i in range(5):
        client.post("/prioritize", json=args(k.pod(f"docs-{i}", "ops", deployment="docs-agent")))
    assert state._in_flight == {}


def test_cached_placements_follow_pod_and_node_changes() -> None:
    state = ClusterState()
    for name in ("n1", "n2"):
        state.upsert_node(msgspec.convert(k.node(name), Node))
    first = msgspec.convert(k.pod("a-1", "ns", node_name="n1", agent_label="a"), Pod)
    state.upsert_pod(first)
    slots, counts = state.placement("ns", "a")
    assert (slots.tolist(), counts.tolist()) == (state.slots_of(["n1"]).tolist(), [1.0])
    assert not slots.flags.writeable  # shared between calls: nobody may write into it
    state.upsert_pod(msgspec.convert(k.pod("a-2", "ns", node_name="n2", agent_label="a"), Pod))
    assert sorted(state.placement("ns", "a")[0].tolist()) == sorted(state.slots_of(["n1", "n2"]).tolist())
    state.delete_node("n2")
    assert state.placement("ns", "a")[0].tolist() == state.slots_of(["n1"]).tolist()
    state.delete_pod(first.key)
    assert state.placement("ns", "a")[0].size == 0
    assert state.placement("ns", "nobody")[0].size == 0
