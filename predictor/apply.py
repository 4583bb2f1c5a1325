"""Publish AgentProfile status by server-side apply, as field manager `kinship-predictor`.

Only the status subresource is applied, so the predictor can never own or change `spec` (the
team's, or whoever created the object). A profile that does not exist yet is reported, or, with
`create_missing`, created with just `spec.agent` first (the one time the predictor writes spec).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kinship.kube import APPLY_PATCH, apply_status

GROUP = "kinship.dev"
VERSION = "v1alpha1"
PLURAL = "agentprofiles"
FIELD_MANAGER = "kinship-predictor"


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def apply_profiles(api_client: Any, documents: Iterable[dict[str, Any]], create_missing: bool) -> ApplyResult:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    custom = client.CustomObjectsApi(api_client)
    result = ApplyResult()
    for doc in documents:
        meta = doc["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        key = f"{namespace}/{name}"
        status_patch = {
            "apiVersion": doc["apiVersion"],
            "kind": doc["kind"],
            "metadata": {"name": name, "namespace": namespace},
            "status": doc["status"],
        }
        try:
            apply_status(custom, PLURAL, namespace, name, status_patch, FIELD_MANAGER)
        except ApiException as exc:
            if exc.status != 404:
                raise
            if not create_missing:
                result.missing.append(key)
                continue
            custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {
                    "apiVersion": doc["apiVersion"],
                    "kind": doc["kind"],
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": doc["spec"],
                },
                field_manager=FIELD_MANAGER,
                _content_type=APPLY_PATCH,
            )
            apply_status(custom, PLURAL, namespace, name, status_patch, FIELD_MANAGER)
            result.created.append(key)
            continue
        result.applied.append(key)
    return result
