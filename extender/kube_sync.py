"""Cluster mode: list-then-watch reflectors that keep the cache in step with the API server.

The kubernetes client provides the calls (auth, TLS, paging, watch parameters); the event loop is
ours because its `Watch` helper either deserializes every event into slow swagger models or, in
raw mode, neither tracks resourceVersion nor handles ERROR events. Objects are decoded with the
same msgspec views as the request path, so watched and posted objects are read one way.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

from extender.objects import Node, Pod, Workload
from extender.state import ClusterState
from kinship.errors import InputError
from kinship.graph import parse_agent_graph
from kinship.profile import AgentProfile, parse_agent_profile

log = logging.getLogger("kinship.extender.sync")

GROUP, VERSION = "kinship.dev", "v1alpha1"
PAGE_SIZE = 500  # the API server's recommended chunk: bounded memory per response
WATCH_TIMEOUT_SECONDS = 290  # server ends the watch; we resume from the last resourceVersion
MAX_BACKOFF_SECONDS = 30.0


class _ListMeta(msgspec.Struct):
    resourceVersion: str = ""
    continue_: str | None = msgspec.field(default=None, name="continue")


class _ListEnvelope(msgspec.Struct):
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)
    items: list[msgspec.Raw] | None = None


class _Event(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


class _Meta(msgspec.Struct):
    name: str = ""
    namespace: str = "default"
    resourceVersion: str = ""


class _Object(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


_env = msgspec.json.Decoder(_ListEnvelope)
_event = msgspec.json.Decoder(_Event)
_status = msgspec.json.Decoder(_Status)
_object = msgspec.json.Decoder(_Object)


class _Expired(Exception):
    """410 Gone: our resourceVersion is older than etcd's compaction; relist."""


@dataclass(frozen=True)
class Resource:
    """How to list one kind and how to apply its objects to the cache."""

    name: str
    call: Callable[..., Any]  # a kubernetes client list function taking watch/limit/... kwargs
    replace: Callable[[list[msgspec.Raw]], None]
    apply: Callable[[str, msgspec.Raw], None]
    optional: bool = False  # a missing CRD means "none yet", not an error
    # Only a hint for scoring (GPU demand not placed yet): without RBAC for it (403), run without
    # it rather than stay unready and leave every pod to kube-scheduler alone.
    hint: bool = False


class Reflector(threading.Thread):
    def __init__(self, resource: Resource, state: ClusterState) -> None:
        super().__init__(name=f"reflector-{resource.name}", daemon=True)
        self.resource = resource
        self.state = state
        self._stop_event = threading.Event()
        self._response: Any = None

    def stop(self) -> None:
        self._stop_event.set()
        response = self._response
        if response is not None:
            # close() alone waits for the reading thread (TLS), up to the watch's timeout;
            # shutting the socket's read side down interrupts the read at once.
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                response.shutdown()
            response.close()

    def run(self) -> None:
        backoff = 0.5
        while not self._stop_event.is_set():
            try:
                version = self._relist()
                self.state.mark_synced(self.resource.name)
                backoff = 0.5
                self._watch(version)
            except _Expired:
                log.info("%s: resourceVersion expired (410 Gone), relisting", self.resource.name)
                continue
            except ApiException as exc:
                if (exc.status == 404 and self.resource.optional) or (
                    exc.status == 403 and self.resource.hint
                ):
                    why = "forbidden (RBAC)" if exc.status == 403 else "CRD not installed"
                    log.warning("%s: %s; treating as empty until it is not", self.resource.name, why)
                    self.resource.replace([])
                    self.state.mark_synced(self.resource.name)
                    backoff = MAX_BACKOFF_SECONDS
                else:
                    log.warning(
                        "%s: API error %s %s; retrying in %.1fs",
                        self.resource.name,
                        exc.status,
                        exc.reason,
                        backoff,
                    )
            except (HTTPError, OSError, msgspec.DecodeError) as exc:
                if self._stop_event.is_set():
                    return
                log.warning("%s: %s; retrying in %.1fs", self.resource.name, exc, backoff)
            except Exception:
                # stop() closes the response under the reading thread (urllib3 then fails in its
                # own ways); anything else is a bug, but a dead reflector would leave the cache
                # stale forever, so log it and keep going.
                if self._stop_event.is_set():
                    return
                log.exception("%s: unexpected error; retrying in %.1fs", self.resource.name, backoff)
            self._stop_event.wait(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _relist(self) -> str:
        items: list[msgspec.Raw] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            try:
                response = self.resource.call(**kwargs)
            except ApiException as exc:
                if exc.status == 410:  # continue token expired mid-list: start over
                    items, token = [], None
                    continue
                raise
            page = _env.decode(response.data)
            items.extend(page.items or ())
            token = page.metadata.continue_
            if not token:
                self.resource.replace(items)
                log.info(
                    "%s: listed %d at resourceVersion %s",
                    self.resource.name,
                    len(items),
                    page.metadata.resourceVersion,
                )
                return page.metadata.resourceVersion

    def _watch(self, version: str) -> None:
        while not self._stop_event.is_set():
            started = time.monotonic()
            version = self.watch_once(version, WATCH_TIMEOUT_SECONDS)
            if time.monotonic() - started < 1.0:  # ended at once (a proxy?): don't hammer
                self._stop_event.wait(1.0)

    def watch_once(self, version: str, timeout_seconds: int) -> str:
        """One watch request from `version` until the server ends it; returns the last version
        seen. Raises _Expired on 410 Gone."""
        response = self.resource.call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _preload_content=False,
            _request_timeout=(10, timeout_seconds + 30),
        )
        self._response = response
        try:
            for line in iter_resp_lines(response):
                if not line:
                    continue
                event = _event.decode(line)
                if event.type == "ERROR":
                    status = _status.decode(event.object)
                    if status.code == 410:
                        raise _Expired
                    raise ApiException(status=status.code, reason=f"{status.reason}: {status.message}")
                version = _object.decode(event.object).metadata.resourceVersion or version
                if event.type != "BOOKMARK":
                    self.resource.apply(event.type, event.object)
        finally:
            self._response = None
            response.release_conn()
        return version


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
            meta = _object.decode(raw).metadata
            state.delete_graph(meta.namespace, meta.name)
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
