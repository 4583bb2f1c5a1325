"""Cluster mode: list-then-watch reflectors that keep the cache in step with the API server.

The list/watch loop is kinship.watch's (shared with the admission webhook); this module says which
kinds the extender follows and how each event changes the cache. Objects are decoded with the same
msgspec views as the request path, so watched and posted objects are read one way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from kubernetes import client

from extender.objects import Node, Pod, Workload
from extender.state import ClusterState
from kinship import watch
from kinship.errors import InputError
from kinship.graph import parse_agent_graph
from kinship.profile import AgentProfile, parse_agent_profile
from kinship.watch import GROUP, VERSION, Resource

log = logging.getLogger("kinship.extender.sync")

__all__ = ["GROUP", "VERSION", "Reflector", "Resource", "pending_pods", "resources", "start", "workloads"]


class Reflector(watch.Reflector):
    """The shared reflector, logging under the extender's name (what operators filter on)."""

    log = log


_node = msgspec.json.Decoder(Node)
_pod = msgspec.json.Decoder(Pod)


PodEvent = Callable[[str, msgspec.Raw], None]


def pod_events(delete: Callable[[str], None], upsert: Callable[[Pod], None]) -> PodEvent:
    """A pod watch event applied to one of the cache's pod indexes (bound or pending)."""

    def apply(kind: str, raw: msgspec.Raw) -> None:
        pod = _pod.decode(raw)
        if kind == "DELETED":
            delete(pod.key)
        else:
            upsert(pod)

    return apply


def pending_pods(state: ClusterState, core: client.CoreV1Api) -> Resource:
    """Unbound pods, for the GPU agents among them (ClusterState.anticipated). A pod leaves the
    selector when it is bound and arrives as DELETED."""

    def list_pending(**kwargs: Any) -> Any:
        return core.list_pod_for_all_namespaces(
            field_selector="spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed", **kwargs
        )

    def relist(raws: list[msgspec.Raw]) -> None:
        state.replace_pending_pods(map(_pod.decode, raws))

    apply = pod_events(state.delete_pending_pod, state.upsert_pending_pod)
    return Resource("pending-pods", list_pending, relist, apply, hint=True)


_workload = msgspec.json.Decoder(Workload)


def workloads(state: ClusterState, api: client.ApiClient, kind: str) -> Resource:
    """Deployments or StatefulSets, for the GPU agents among them (ClusterState.anticipated): a
    workload exists before its pods, so a burst deploy is anticipated from its first pod on."""
    apps = client.AppsV1Api(api)
    call = (
        apps.list_deployment_for_all_namespaces
        if kind == "Deployment"
        else apps.list_stateful_set_for_all_namespaces
    )

    def event(event_type: str, raw: msgspec.Raw) -> None:
        workload = _workload.decode(raw)
        if event_type == "DELETED":
            state.delete_workload(kind, workload.namespace, workload.metadata.name)
        else:
            state.upsert_workload(kind, workload)

    def relist(raws: list[msgspec.Raw]) -> None:
        state.replace_workloads(kind, map(_workload.decode, raws))

    return Resource(kind.lower() + "s", call, relist, event, hint=True)


def resources(state: ClusterState, api: client.ApiClient) -> list[Resource]:
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)

    def node_event(kind: str, raw: msgspec.Raw) -> None:
        node = _node.decode(raw)
        if kind == "DELETED":
            state.delete_node(node.metadata.name)
        else:
            state.upsert_node(node)

    def graph_of(raw: msgspec.Raw) -> Any:
        obj = msgspec.json.decode(raw)
        meta = obj.get("metadata", {})
        try:
            return parse_agent_graph(obj, f"AgentGraph {meta.get('namespace')}/{meta.get('name')}")
        except InputError as exc:
            log.warning("ignoring invalid %s", exc.render())
            return None

    def graph_event(kind: str, raw: msgspec.Raw) -> None:
        if kind == "DELETED":
            state.delete_graph(*watch.object_name(raw))
        elif (graph := graph_of(raw)) is not None:
            state.upsert_graph(graph)

    def profile_of(raw: msgspec.Raw) -> AgentProfile | None:
        obj = msgspec.json.decode(raw)
        meta = (obj.get("metadata") if isinstance(obj, dict) else None) or {}
        try:
            return parse_agent_profile(obj, f"AgentProfile {meta.get('namespace')}/{meta.get('name')}")
        except InputError as exc:  # one bad object is skipped; the watch keeps following
            log.warning("ignoring invalid %s", exc.render())
            return None

    def profile_event(kind: str, raw: msgspec.Raw) -> None:
        if kind == "DELETED":
            # the last state of a deleted object need not be valid: its identity is enough
            obj = msgspec.json.decode(raw)
            meta = obj.get("metadata") or {}
            agent = (obj.get("spec") or {}).get("agent") or meta.get("name")
            if agent:
                state.delete_profile(meta.get("namespace") or "default", agent)
        elif (profile := profile_of(raw)) is not None:
            state.upsert_profile(profile)

    def list_profiles(**kwargs: Any) -> Any:
        return custom.list_cluster_custom_object(GROUP, VERSION, "agentprofiles", **kwargs)

    def list_graphs(**kwargs: Any) -> Any:
        return custom.list_cluster_custom_object(GROUP, VERSION, "agentgraphs", **kwargs)

    # Only bound, live pods occupy nodes; the selector keeps pending and finished pods (most of a
    # busy cluster's churn) out of the cache. A pod leaving the selector arrives as DELETED.
    def list_pods(**kwargs: Any) -> Any:
        return core.list_pod_for_all_namespaces(
            field_selector="spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed", **kwargs
        )

    return [
        Resource(
            "nodes", core.list_node, lambda raws: state.replace_nodes(map(_node.decode, raws)), node_event
        ),
        Resource(
            "pods",
            list_pods,
            lambda raws: state.replace_pods(map(_pod.decode, raws)),
            pod_events(state.delete_pod, state.upsert_pod),
        ),
        pending_pods(state, core),
        workloads(state, api, "Deployment"),
        workloads(state, api, "StatefulSet"),
        Resource(
            "agentgraphs",
            list_graphs,
            lambda raws: state.replace_graphs(g for g in map(graph_of, raws) if g is not None),
            graph_event,
            optional=True,
        ),
        Resource(
            "agentprofiles",
            list_profiles,
            lambda raws: state.replace_profiles(p for p in map(profile_of, raws) if p is not None),
            profile_event,
            optional=True,
        ),
    ]


def start(state: ClusterState, api: client.ApiClient) -> list[Reflector]:
    state.watched = True
    reflectors = []
    for resource in resources(state, api):
        state.expect(resource.name)
        reflector = Reflector(resource, state)
        reflector.start()
        reflectors.append(reflector)
    return reflectors
