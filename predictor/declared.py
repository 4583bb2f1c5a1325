"""Declared requests from Kubernetes manifests: the static baseline a team gets without a predictor.

A workload's request is the sum over its containers (as the scheduler sees the pod); init
containers and sidecars injected at admission are not in a manifest and are not counted.
"""

from __future__ import annotations

from pathlib import Path

from kinship.documents import read_yaml_documents
from kinship.errors import InputError
from kinship.quantity import quantity
from predictor.usage import Resource

_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"})
_KEY = {"cpu": "cpu", "memory": "memory"}
# Trace units: CPU in millicores, memory in bytes; quantities parse to cores and bytes.
_UNIT = {"cpu": 1000.0, "memory": 1.0}


def declared_requests(path: Path, resource: Resource) -> dict[str, float]:
    """Workload name -> summed container request of `resource`, in the usage table's unit."""
    docs = read_yaml_documents(path)
    requests: dict[str, float] = {}
    problems: list[str] = []
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict) or doc.get("kind") not in _WORKLOADS:
            continue
        name = (doc.get("metadata") or {}).get("name")
        spec = doc.get("spec") or {}
        pod_spec = spec if doc["kind"] == "Pod" else ((spec.get("template") or {}).get("spec") or {})
        total, found = 0.0, False
        for j, container in enumerate(pod_spec.get("containers") or []):
            value = ((container.get("resources") or {}).get("requests") or {}).get(_KEY[resource])
            if value is None:
                continue
            try:
                total += quantity(value) * _UNIT[resource]
                found = True
            except ValueError as exc:
                field = f"containers[{j}].resources.requests.{resource}"
                problems.append(f"document {i} ({name}): {field}: {exc}")
        if name and found:
            requests[str(name)] = total
    if problems:
        raise InputError(str(path), problems)
    if not requests:
        raise InputError(str(path), [f"no workload declares a {resource} request"])
    return requests
