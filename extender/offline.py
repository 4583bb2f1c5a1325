"""Offline mode: fill the same cache from files instead of watches.

A snapshot is what `kubectl get nodes,pods -A -o json` prints (a List; nodes carry their allocatable
CPU and memory in status); graph and profile files hold AgentGraph and AgentProfile objects
(multi-document YAML, or a List as `kubectl get agentgraphs -o yaml` prints). Every problem in a
file is reported with the file, the item and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from extender.config import ProfilePolicy
from extender.objects import (
    CPU_RESOURCE,
    GPU_RESOURCE,
    MEMORY_RESOURCE,
    Node,
    Pod,
    node_allocatable,
    pod_resource_request,
)
from extender.state import ClusterState, pod_fit_requests
from kinship.documents import load_yaml, object_documents, read_yaml_documents
from kinship.errors import InputError
from kinship.graph import AgentGraph, parse_agent_graph
from kinship.profile import load_profile_files


class _Kinded(msgspec.Struct):
    kind: str | None = None


class _ListIn(msgspec.Struct):
    items: list[msgspec.Raw] = []
    kind: str | None = None


_kinded = msgspec.json.Decoder(_Kinded)
_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    "Node": msgspec.json.Decoder(Node),
    "Pod": msgspec.json.Decoder(Pod),
}


def load_snapshot(path: Path) -> tuple[list[Node], list[Pod]]:
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(source, [f"cannot read snapshot: {exc.strerror or exc}"]) from None
    if path.suffix in (".yaml", ".yml"):
        data = _yaml_as_json(data, source)
    try:
        listing = msgspec.json.decode(data, type=_ListIn)
    except msgspec.DecodeError as exc:
        raise InputError(
            source, [f"not a Kubernetes List (kubectl get nodes,pods -A -o json): {exc}"]
        ) from None
    nodes: list[Node] = []
    pods: list[Pod] = []
    problems: list[str] = []
    for i, raw in enumerate(listing.items):
        try:
            kind = _kinded.decode(raw).kind
            decoder = _decoders.get(kind or "")
            if decoder is None:
                continue  # Services, Events... a snapshot may hold more than we need
            obj = decoder.decode(raw)
        except msgspec.DecodeError as exc:
            problems.append(f"items[{i}]: {str(exc).replace('`$', f'`$.items[{i}]', 1)}")
            continue
        if not obj.metadata.name:
            problems.append(f"items[{i}] ({kind}): missing metadata.name")
            continue
        try:  # quantities are read lazily by the cache; a bad one is the file's problem
            if isinstance(obj, Node):
                for resource in (GPU_RESOURCE, CPU_RESOURCE, MEMORY_RESOURCE):
                    node_allocatable(obj, resource)
                nodes.append(obj)
            else:
                pod_resource_request(obj, GPU_RESOURCE)
                pod_fit_requests(obj)
                pods.append(obj)
        except ValueError as exc:
            problems.append(f"items[{i}] ({kind} {obj.metadata.name}): {exc}")
    if problems:
        raise InputError(source, problems)
    if not nodes:
        raise InputError(
            source, ["no Node objects in the snapshot (was it `kubectl get nodes,pods -A -o json`?)"]
        )
    return nodes, pods


def _yaml_as_json(data: bytes, source: str) -> bytes:
    document = load_yaml(data, source)
    try:
        return msgspec.json.encode(document)
    except TypeError as exc:  # a YAML timestamp or binary has no JSON form
        raise InputError(source, [f"invalid YAML: {exc}"]) from None


def load_graph_files(paths: Iterable[Path]) -> list[AgentGraph]:
    graphs: list[AgentGraph] = []
    problems: list[InputError] = []
    for path in paths:
        for where, doc in object_documents(path, "AgentGraph"):
            try:
                graphs.append(parse_agent_graph(doc, where))
            except InputError as exc:
                problems.append(exc)
    if problems:
        raise InputError("graph files", [p.render() for p in problems])
    return graphs


def build_state(
    snapshot: Path,
    graph_files: Iterable[Path],
    observed_fraction: float,
    profile_files: Iterable[Path] = (),
    profile_policy: ProfilePolicy | None = None,
) -> ClusterState:
    """Load everything first, then fill the cache: a bad file leaves no half-built state.

    Profiles are judged as of now, as the cluster mode would read them: an old file's profiles
    may be ignored (raise `profiles.max_age_seconds` in --config to replay them)."""
    nodes, pods = load_snapshot(snapshot)
    graphs = load_graph_files(graph_files)
    profiles = load_profile_files(profile_files)
    state = ClusterState(observed_fraction=observed_fraction, profile_policy=profile_policy)
    state.expect("snapshot")
    state.replace_nodes(nodes)
    state.replace_pods(pods)
    state.replace_pending_pods(pods)
    state.replace_graphs(graphs)
    state.replace_profiles(profiles)
    state.mark_synced("snapshot")
    return state


_WORKLOADS = {"Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"}
_pod_decoder = msgspec.json.Decoder(Pod)


def load_pod_file(path: Path, name: str | None = None) -> Pod:
    """The pod to explain: a Pod, or the pod a workload's template would create.

    For a Deployment the pod gets the ReplicaSet owner and pod-template-hash a real one would
    carry, so agent identity resolves exactly as it will in the cluster.
    """
    source = str(path)
    docs = [d for d in read_yaml_documents(path) if isinstance(d, dict)]
    usable = [d for d in docs if d.get("kind") == "Pod" or d.get("kind") in _WORKLOADS]
    if name is not None:
        usable = [d for d in usable if (d.get("metadata") or {}).get("name") == name]
    if not usable:
        wanted = f" named {name!r}" if name else ""
        raise InputError(source, [f"no Pod or Deployment/StatefulSet/Job/DaemonSet/ReplicaSet{wanted}"])
    doc = usable[0]
    if doc.get("kind") != "Pod":
        doc = _pod_from_workload(doc, source)
    try:
        return _pod_decoder.decode(msgspec.json.encode(doc))
    except msgspec.DecodeError as exc:
        raise InputError(source, [str(exc)]) from None


def _pod_from_workload(doc: dict[str, Any], source: str) -> dict[str, Any]:
    kind = doc["kind"]
    meta = doc.get("metadata") or {}
    workload = meta.get("name")
    template = (doc.get("spec") or {}).get("template")
    if not workload or not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise InputError(source, [f"{kind} needs metadata.name and spec.template.spec"])
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    owner = {"kind": kind, "name": workload}
    if kind == "Deployment":
        labels["pod-template-hash"] = "explain"
        owner = {"kind": "ReplicaSet", "name": f"{workload}-explain"}
    return {
        "metadata": {
            "name": f"{workload}-explain",
            "namespace": meta.get("namespace") or "default",
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": template["spec"],
    }
