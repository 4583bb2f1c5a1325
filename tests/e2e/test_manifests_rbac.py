"""The install's RBAC against the real API server: the extender's ClusterRole, as
`kubectl kustomize manifests/` renders it, is enough for every watch and for the bind verb.

Hint watches (pending pods, Deployments, StatefulSets) treat 403 as "no hint" and still report
ready, so readiness alone would not show a missing rule: each watch must deliver an event, and
nothing may be logged as forbidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from kubernetes import client

from extender import kube_sync
from extender.binder import Binder
from extender.state import ClusterState
from kinship.demo import delete_namespace
from tests import objects as k
from tests.e2e.test_cluster_mode import api_pod, unscheduled_pod
from tests.manifests import find, kubectl
from tests.serving import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(kubectl() is None, reason="no kubectl to render manifests/ with"),
]


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"e2e-rbac-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    delete_namespace(api, name)


@pytest.fixture
def extender_api(api: client.ApiClient, namespace: str) -> Iterator[client.ApiClient]:
    """An API client acting as a fresh ServiceAccount bound to the rendered extender ClusterRole."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    name = f"kinship-extender-{namespace}"  # cluster-scoped: unique per run, deleted below
    role = find("ClusterRole", "kinship-extender")
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "kinship-extender"}})
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": role["rules"]})
    try:
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": "kinship-extender", "namespace": namespace}],
            }
        )
        token = core.create_namespaced_service_account_token("kinship-extender", namespace, {"spec": {}})
        configuration = client.Configuration()
        configuration.host = api.configuration.host
        configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
        configuration.api_key = {"authorization": f"Bearer {token.status.token}"}
        with client.ApiClient(configuration) as limited:
            # The authorizer learns of new bindings through its own watch: wait until it grants
            # the role's first rule, so that a 403 below means a missing rule, not a binding a few
            # milliseconds old.
            eventually(lambda: _allowed(limited, role["rules"][0]))
            yield limited
    finally:
        with contextlib.suppress(client.ApiException):
            rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


def _allowed(api: client.ApiClient, rule: dict[str, list[str]]) -> bool:
    resource, _, subresource = rule["resources"][0].partition("/")
    attributes = {
        "group": rule["apiGroups"][0],
        "resource": resource,
        "subresource": subresource,
        "verb": rule["verbs"][0],
    }
    review = {"spec": {"resourceAttributes": attributes}}
    return bool(client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed)


def workload(kind: str, name: str, gpus: int, **spec: Any) -> dict[str, Any]:
    """A Deployment or StatefulSet that creates no pod (paused, or no replicas)."""
    labels = {"kinship.dev/agent": name}
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "schedulerName": "nobody",
                    "containers": [{"name": "agent", "image": "agent:1", "resources": resources}],
                },
            },
            **spec,
        },
    }


def test_the_rendered_extender_role_is_enough_for_every_watch_and_the_bind(
    api: client.ApiClient, namespace: str, extender_api: client.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=kube_sync.log.name)
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    node = f"e2e-rbac-{uuid.uuid4().hex[:6]}"
    # what each watch must deliver: one object the test creates, by name
    expected = {
        "nodes": node,
        "pods": "bound-0",
        "pending-pods": "pending-0",
        "deployments": "planner",
        "statefulsets": "executor",
        "agentgraphs": "team",
        "agentprofiles": "executor",
    }
    seen: dict[str, set[str]] = defaultdict(set)

    def complaints() -> list[str]:  # a 403 on any watch is logged here, hint or not
        return [r.getMessage() for r in caplog.records if r.name == kube_sync.log.name]

    def recorded(resource: kube_sync.Resource) -> kube_sync.Resource:
        def apply(event: str, raw: msgspec.Raw) -> None:
            seen[resource.name].add(msgspec.json.decode(raw)["metadata"]["name"])
            resource.apply(event, raw)

        return dataclasses.replace(resource, apply=apply)

    state = ClusterState()
    state.watched = True
    resources = kube_sync.resources(state, extender_api)
    assert {r.name for r in resources} == set(expected), "a new watch: cover it here and in the ClusterRole"
    reflectors = []
    for resource in resources:
        state.expect(resource.name)
        reflectors.append(kube_sync.Reflector(recorded(resource), state))
    for reflector in reflectors:
        reflector.start()
    body = k.node(node, "zone-a")
    for drop in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        body["metadata"].pop(drop, None)
    body.pop("status")
    try:
        eventually(lambda: state.ready or complaints(), timeout=30)
        assert not complaints(), complaints()

        core.create_node(body)
        core.create_namespaced_pod(namespace, api_pod("bound-0", namespace, node, "reviewer"))
        pending = unscheduled_pod(core, namespace, "pending-0", "researcher")
        apps.create_namespaced_deployment(namespace, workload("Deployment", "planner", 0, paused=True))
        apps.create_namespaced_stateful_set(
            namespace, workload("StatefulSet", "executor", 1, replicas=0, serviceName="executor")
        )
        graph = k.graph("team", namespace, [{"from": "planner", "to": "executor"}])
        custom.create_namespaced_custom_object("kinship.dev", "v1alpha1", namespace, "agentgraphs", graph)
        profile = k.profile("executor", namespace, "executor")
        custom.create_namespaced_custom_object("kinship.dev", "v1alpha1", namespace, "agentprofiles", profile)
        eventually(lambda: all(name in seen[kind] for kind, name in expected.items()))

        # the bind verb's write, with the same token
        async def bind() -> None:
            binder = Binder(extender_api.configuration, connections=1)
            try:
                meta = pending["metadata"]
                await binder.bind(namespace, meta["name"], meta["uid"], node)
            finally:
                await binder.close()

        asyncio.run(bind())
        assert core.read_namespaced_pod("pending-0", namespace).spec.node_name == node
        eventually(lambda: "pending-0" in seen["pods"])  # and the watch of bound pods sees it bound
        assert not complaints(), complaints()
    finally:
        for reflector in reflectors:
            reflector.stop()
        core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
        with contextlib.suppress(client.ApiException):
            core.delete_node(node)
