"""`nodeCacheCapable: false`: kube-scheduler sends whole Node objects and reads only `Nodes` from a
filter reply. A third kube-scheduler runs the shipped config with that one setting flipped and its
own schedulerName, against the same extender."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kinship.demo import delete_namespace, gpu_squatters, wait_bound
from tests.e2e.teams import cluster_env, deploy_team, example_team, extender_calls
from tests.serving import extra_kube_scheduler

pytestmark = pytest.mark.e2e
SCHEDULER = "kinship-nodes"


def rendered_config(source: Path) -> dict[str, Any]:
    """The local cluster's rendered copy of manifests/scheduler/kinship-scheduler-config.yaml, with
    only the scheduler name and the cache mode changed."""
    config = yaml.safe_load(source.read_text())
    (profile,) = config["profiles"]
    profile["schedulerName"] = SCHEDULER
    (extender,) = config["extenders"]
    assert extender["nodeCacheCapable"] is True  # the shipped mode; this test flips it
    extender["nodeCacheCapable"] = False
    return config


@pytest.fixture(scope="module")
def nodes_mode_scheduler() -> Iterator[str]:
    env = cluster_env()
    config = rendered_config(Path(env["KINSHIP_SCHEDULER_CONFIG"]))
    with extra_kube_scheduler(env, config, "kinship-nodes-scheduler"):
        yield str(Path(env["KINSHIP_STATE_DIR"]) / "logs" / "kinship-nodes-scheduler.log")


def test_whole_node_objects_mode_places_the_team(api: client.ApiClient, nodes_mode_scheduler: str) -> None:
    ns = "agents-ops-nodes"
    team = example_team(ns, scheduler=SCHEDULER, copy_of="agents-ops")
    core = client.CoreV1Api(api)
    before = extender_calls()
    try:
        deploy_team(api, team)  # one burst, as in the NodeNames-mode test
        placed = wait_bound(core, ns, team.replicas)
    finally:
        delete_namespace(api, ns)
    assert extender_calls() > before
    # Required co-location is a filter: with a reply in the wrong mode every node would be
    # dropped and the pods would stay Pending (wait_bound would have failed).
    assert placed["argocd-mcp"] == placed["argocd-agent"]
    # (Which preferred pairs share a node in a burst depends on the order kube-scheduler takes the
    # pods in; test_placement.py checks placement quality. This test is about the wire mode.)
    gpus = {
        n.metadata.name: int(n.status.allocatable.get("nvidia.com/gpu", "0")) for n in core.list_node().items
    }
    assert gpu_squatters(placed, team, gpus) == []
    log = Path(nodes_mode_scheduler).read_text()
    assert not re.search(r"extender.*(error|failed)", log, re.IGNORECASE), log[-2000:]
