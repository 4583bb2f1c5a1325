"""Cluster mode against a real kube-apiserver: the cache follows watches and scores follow it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from kubernetes import client

from tests import objects as k
from tests.serving import eventually, kinship_serve, wait_ready

pytestmark = pytest.mark.e2e


def api_pod(name: str, ns: str, node: str, agent: str, gpus: int = 0) -> dict[str, Any]:
    """A pod created already bound (spec.nodeName), as if a scheduler had placed it."""
    body = k.pod(name, ns, node_name=node, agent_label=agent, gpus=gpus)
    for drop in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences"):
        body["metadata"].pop(drop, None)
    body.pop("status", None)
    body["spec"]["containers"][0].pop("volumeMounts")
    return body


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def extender(kubeconfig: Path) -> Iterator[str]:
    with kinship_serve("--kubeconfig", str(kubeconfig)) as (url, proc):
        wait_ready(f"{url}/readyz", timeout_seconds=60, proc=proc)
        yield url


def create_orchestrator_docs_graph(custom: client.CustomObjectsApi, namespace: str) -> None:
    graph = k.graph("team", namespace, [{"from": "orchestrator", "to": "docs"}])
    custom.create_namespaced_custom_object("kinship.dev", "v1alpha1", namespace, "agentgraphs", graph)


def node_names(api: client.ApiClient) -> list[str]:
    return [n.metadata.name for n in client.CoreV1Api(api).list_node().items]


def prioritize(url: str, pod: dict[str, Any], names: list[str]) -> dict[str, int]:
    r = httpx.post(f"{url}/prioritize", json={"Pod": pod, "Nodes": None, "NodeNames": names}, timeout=10)
    assert r.status_code == 200, r.text
    return {hp["Host"]: hp["Score"] for hp in r.json()}


def test_scores_follow_pods_graphs_and_nodes(api: client.ApiClient, namespace: str, extender: str) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    names = node_names(api)
    peer_node = names[0]
    core.create_namespaced_pod(namespace, api_pod("orchestrator-0", namespace, peer_node, "orchestrator"))
    create_orchestrator_docs_graph(custom, namespace)
    docs = k.pod("docs-0", namespace, agent_label="docs")

    # the watch delivers the pod and the graph: the orchestrator's node scores 10
    got = eventually(lambda: (s := prioritize(extender, docs, names))[peer_node] == 10 and s)
    assert sorted(got.values())[-2] < 10

    # the peer moves: delete and recreate it elsewhere, the preference follows
    core.delete_namespaced_pod("orchestrator-0", namespace, grace_period_seconds=0)
    core.create_namespaced_pod(namespace, api_pod("orchestrator-1", namespace, names[1], "orchestrator"))
    eventually(
        lambda: (
            prioritize(extender, docs, names)[names[1]] == 10
            and prioritize(extender, docs, names)[peer_node] < 10
        )
    )

    # the graph is deleted: no communication term any more, all non-GPU nodes equal
    custom.delete_namespaced_custom_object("kinship.dev", "v1alpha1", namespace, "agentgraphs", "team")
    eventually(
        lambda: prioritize(extender, docs, names)[names[1]] == prioritize(extender, docs, names)[names[2]]
    )


def test_new_nodes_are_known_and_gpu_usage_tracked(
    api: client.ApiClient, namespace: str, extender: str
) -> None:
    core = client.CoreV1Api(api)
    name = f"e2e-gpu-{uuid.uuid4().hex[:6]}"
    node = k.node(name, "zone-a", gpus=2)
    for drop in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        node["metadata"].pop(drop, None)
    status = node.pop("status")
    created = core.create_node(node)
    try:
        core.patch_node_status(
            name, {"status": {"capacity": status["capacity"], "allocatable": status["allocatable"]}}
        )
        gpu_pod = k.pod("trainer", namespace, agent_label="trainer", gpus=2)

        def filt():
            return httpx.post(
                f"{extender}/filter", json={"Pod": gpu_pod, "Nodes": None, "NodeNames": [name]}
            ).json()

        eventually(lambda: filt().get("NodeNames") == [name])
        # a bound pod takes both GPUs: the node no longer fits
        core.create_namespaced_pod(namespace, api_pod("holder", namespace, name, "holder", gpus=2))
        failed = eventually(lambda: filt()["FailedNodes"].get(name))
        assert "pod requests 2, node has 0 free of 2" in failed
    finally:
        with contextlib.suppress(client.ApiException):
            core.delete_node(created.metadata.name)
    # a deleted node is unknown again: naming it is a 400
    eventually(
        lambda: (
            httpx.post(
                f"{extender}/prioritize", json={"Pod": k.pod("x", namespace), "NodeNames": [name]}
            ).status_code
            == 400
        )
    )


def test_relists_after_410_gone_from_the_real_api_server(api: client.ApiClient) -> None:
    import dataclasses

    from extender import kube_sync
    from extender.state import ClusterState
    from kinship import watch

    state = ClusterState()
    nodes = next(r for r in kube_sync.resources(state, api) if r.name == "nodes")
    # resourceVersion 1 predates the API server's watch cache (local-cluster.sh starts it after a
    # few etcd writes, as on any real cluster): the server answers with an ERROR event, 410 Gone
    with pytest.raises(watch.Expired):
        kube_sync.Reflector(nodes, state).watch_once("1", timeout_seconds=10)

    # The reflector's first watch is made to resume from that stale version, as after a long
    # disconnect; the real 410 must lead to a second list, after which the watch works.
    calls: list[str] = []

    def call(**kwargs: Any) -> Any:
        if kwargs.get("watch"):
            if "watch" not in calls:
                kwargs["resource_version"] = "1"
            calls.append("watch")
        else:
            calls.append("list")
        return nodes.call(**kwargs)

    reflector = kube_sync.Reflector(dataclasses.replace(nodes, call=call), state)
    state.expect("nodes")
    reflector.start()
    try:
        eventually(lambda: calls.count("list") >= 2 and calls.count("watch") >= 2)
        assert calls[:3] == ["list", "watch", "list"]
        assert state.ready and state.sizes()["nodes"] == len(node_names(api))
    finally:
        reflector.stop()


def test_readyz_waits_for_the_first_list_and_missing_api_server_is_not_ready(tmp_path: Path) -> None:
    dead = tmp_path / "kubeconfig"
    dead.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    with kinship_serve("--kubeconfig", str(dead)) as (url, proc):
        wait_ready(f"{url}/livez", timeout_seconds=30, proc=proc)
        r = httpx.get(f"{url}/readyz")
        assert r.status_code == 503
        assert "nodes" in r.text and "pods" in r.text


def test_agent_profiles_are_watched(api: client.ApiClient, namespace: str, extender: str) -> None:
    custom = client.CustomObjectsApi(api)

    def cached() -> float:
        text = httpx.get(f"{extender}/metrics").text
        line = next(
            x
            for x in text.splitlines()
            if x.startswith('kinship_extender_cache_objects{kind="agentprofiles"}')
        )
        return float(line.split()[1])

    before = cached()
    profile = k.profile("executor", namespace, "executor")
    custom.create_namespaced_custom_object("kinship.dev", "v1alpha1", namespace, "agentprofiles", profile)
    eventually(lambda: cached() == before + 1)
    custom.delete_namespaced_custom_object("kinship.dev", "v1alpha1", namespace, "agentprofiles", "executor")
    eventually(lambda: cached() == before)


def unscheduled_pod(core: client.CoreV1Api, ns: str, name: str, agent: str) -> dict[str, Any]:
    """A pod no scheduler will pick up, as the API server returns it (with its UID), in the shape
    kube-scheduler posts to the extender."""
    body = api_pod(name, ns, "unused", agent)
    del body["spec"]["nodeName"]
    body["spec"]["schedulerName"] = "nobody"
    created = core.create_namespaced_pod(ns, body)
    return core.api_client.sanitize_for_serialization(created)


def bind(url: str, pod: dict[str, Any], node: str, uid: str | None = None) -> str:
    meta = pod["metadata"]
    binding = {
        "PodName": meta["name"],
        "PodNamespace": meta["namespace"],
        "PodUID": uid or meta["uid"],
        "Node": node,
    }
    r = httpx.post(f"{url}/bind", json=binding, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["Error"]


def test_bind_writes_the_binding_and_places_the_pod_at_once(
    api: client.ApiClient, namespace: str, extender: str
) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    names = node_names(api)
    create_orchestrator_docs_graph(custom, namespace)
    orchestrator = unscheduled_pod(core, namespace, "orchestrator-0", "orchestrator")
    docs = k.pod("docs-0", namespace, agent_label="docs")
    # the graph is cached once a bound orchestrator pulls docs to its node; then it goes away
    core.create_namespaced_pod(namespace, api_pod("anchor", namespace, names[2], "orchestrator"))
    eventually(lambda: prioritize(extender, docs, names)[names[2]] == 10)
    core.delete_namespaced_pod("anchor", namespace, grace_period_seconds=0)
    eventually(lambda: (s := prioritize(extender, docs, names))[names[2]] == s[names[1]])

    r = httpx.post(
        f"{extender}/filter", json={"Pod": orchestrator, "Nodes": None, "NodeNames": names}, timeout=10
    )
    assert r.status_code == 200 and names[0] in r.json()["NodeNames"]
    assert bind(extender, orchestrator, names[0]) == ""
    assert core.read_namespaced_pod("orchestrator-0", namespace).spec.node_name == names[0]
    # in the cache the moment the bind call returned, whether or not the watch has caught up
    got = prioritize(extender, docs, names)
    assert got[names[0]] == 10 > got[names[1]]

    # a second binding is refused by the API server; the pod stays where it is
    error = bind(extender, orchestrator, names[1])
    assert "already assigned" in error, error
    assert prioritize(extender, docs, names)[names[0]] == 10

    # a pod recreated under the same name is not bound with the old one's UID
    again = unscheduled_pod(core, namespace, "docs-1", "docs")
    core.delete_namespaced_pod("docs-1", namespace, grace_period_seconds=0)
    unscheduled_pod(core, namespace, "docs-1", "docs")
    error = bind(extender, again, names[1])
    assert "409" in error or "UID" in error, error
    assert core.read_namespaced_pod("docs-1", namespace).spec.node_name is None

    assert "not found" in bind(
        extender, {"metadata": {"name": "ghost", "namespace": namespace, "uid": ""}}, names[0]
    )
    metrics = httpx.get(f"{extender}/metrics", timeout=10).text
    assert "kinship_extender_bind_failures_total 3.0" in metrics


def test_a_hint_watch_the_extender_may_not_read_does_not_block_readiness(
    api: client.ApiClient, namespace: str
) -> None:
    """Deployments only feed a scoring hint: a service account without RBAC for them (an upgrade
    that kept the old ClusterRole) gets 403 from the real API server, and the extender runs
    without the hint instead of staying unready."""
    from kubernetes import client as k8s

    from extender import kube_sync
    from extender.state import ClusterState

    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    name = f"kinship-limited-{namespace}"
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "limited"}})
    rules = [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list", "watch"]}]
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    subject = {"kind": "ServiceAccount", "name": "limited", "namespace": namespace}
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    rbac.create_cluster_role_binding({"metadata": {"name": name}, "subjects": [subject], "roleRef": role_ref})
    try:
        token = core.create_namespaced_service_account_token("limited", namespace, {"spec": {}}).status.token
        configuration = k8s.Configuration()
        configuration.host = api.configuration.host
        configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
        configuration.api_key = {"authorization": f"Bearer {token}"}
        limited = k8s.ApiClient(configuration)
        state = ClusterState()
        wanted = {"pods", "deployments"}
        reflectors = []
        for resource in kube_sync.resources(state, limited):
            if resource.name in wanted:
                state.expect(resource.name)
                reflectors.append(kube_sync.Reflector(resource, state))
        for reflector in reflectors:
            reflector.start()
        try:
            eventually(lambda: state.ready)
        finally:
            for reflector in reflectors:
                reflector.stop()
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)
