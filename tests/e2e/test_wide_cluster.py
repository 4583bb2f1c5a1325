"""More nodes than kube-scheduler shows an extender by default.

Past 100 nodes kube-scheduler stops filtering once it has found max(100, (50 - nodes/125) %)
feasible nodes, starting each pod where the previous one stopped, and only those reach the
extender. The kinship profile sets `percentageOfNodesToScore: 100`. Without it, a chain of agents
rolled out one by one on 308 nodes never ends on one node: each pod's window of 147 nodes starts
where the previous pod's ended, so the node its peer just took is never a candidate. The
extender's filter then passes on only the 100 it scores best (`filter_keep_best`), which keeps
the peer's node among them.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client

from kinship.demo import Team, delete_namespace, wait_bound
from tests import objects as k
from tests.e2e.teams import cached, deploy_team, extender_metric
from tests.serving import eventually

pytestmark = pytest.mark.e2e

EXTRA_NODES = 300
CHAIN = [f"step-{i}" for i in range(6)]


def _create(core: client.CoreV1Api, name: str, zone: str) -> None:
    node = k.node(name, zone)
    for drop in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        node["metadata"].pop(drop, None)
    status = node.pop("status")
    core.create_node(node)
    core.patch_node_status(name, {"status": status})
    # NodeTaint admission adds the not-ready taint on create; nothing else here lifts it
    core.patch_node(name, {"spec": {"taints": None}})


@pytest.fixture(scope="module")
def wide_cluster(api: client.ApiClient) -> Iterator[list[str]]:
    core = client.CoreV1Api(api)
    before = len(core.list_node().items)
    names = [f"wide-{i:03d}" for i in range(EXTRA_NODES)]
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: _create(core, names[i], f"zone-{'abc'[i % 3]}"), range(EXTRA_NODES)))
        eventually(lambda: cached("nodes") >= before + EXTRA_NODES, timeout=60)
        yield names
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: _delete(core, n), names))


def _delete(core: client.CoreV1Api, name: str) -> None:
    with contextlib.suppress(client.ApiException):
        core.delete_node(name)


def chain_team(namespace: str) -> Team:
    edges = [{"from": a, "to": b, "weight": 10} for a, b in itertools.pairwise(CHAIN)]
    graph = {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentGraph",
        "metadata": {"name": "chain", "namespace": namespace},
        "spec": {"edges": edges},
    }
    workloads = []
    for agent in CHAIN:
        labels = {"kinship.dev/agent": agent}
        container = {"name": "agent", "image": "agent", "resources": {"requests": {"cpu": "100m"}}}
        workloads.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": agent, "namespace": namespace},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"schedulerName": "kinship", "containers": [container]},
                    },
                },
            }
        )
    return Team(namespace, workloads, [graph])


def test_a_chain_rolled_out_in_order_shares_one_node_among_hundreds(
    api: client.ApiClient, wide_cluster: list[str]
) -> None:
    ns = "agents-wide"
    left_out = 'kinship_extender_nodes_filtered_out_total{reason="not_best"}'
    before = extender_metric(left_out)
    try:
        deploy_team(api, chain_team(ns), one_by_one=True)
        placed = wait_bound(client.CoreV1Api(api), ns, len(CHAIN))
        # each agent followed the one before it: every step's only placed neighbour
        assert len({node for nodes in placed.values() for node in nodes}) == 1, placed
        # and kube-scheduler was shown only Kinship's best 100 of the 300-odd fitting nodes
        assert extender_metric(left_out) - before >= len(CHAIN) * (EXTRA_NODES - 100)
    finally:
        delete_namespace(api, ns)


def test_no_controller_rewrites_the_fake_nodes(api: client.ApiClient, wide_cluster: list[str]) -> None:
    """Past 100 nodes kube-controller-manager's TTL controller rewrites every node's
    `node.alpha.kubernetes.io/ttl` annotation for kubelets' caches (there are no kubelets here) at
    20 requests/s, again at 500, 1,000 and 2,000 nodes: a minute of node updates that every
    scheduler and the extender process, which slowed whichever scheduler
    benchmarks/bench_throughput.py measured first. local-cluster.sh turns the controller off; with
    it on, this cluster's nodes are rewritten within a second of crossing 100."""
    core = client.CoreV1Api(api)
    time.sleep(2)  # with the controller on, 40 more nodes would be rewritten meanwhile
    rewritten = [
        n.metadata.name
        for n in core.list_node().items
        if any(f.manager == "kube-controller-manager" for f in n.metadata.managed_fields or ())
    ]
    assert rewritten == [], f"kube-controller-manager updated {len(rewritten)} nodes, e.g. {rewritten[:3]}"
