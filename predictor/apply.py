"""Publish AgentProfile status by server-side apply, as field manager `kinship-predictor`.

Only the status subresource is applied, so the predictor can never own or change `spec` (the
team's, or whoever created the object). A profile that does not exist yet is reported, or, with
`create_missing`, created with just `spec.agent` first (the one time the predictor writes spec).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinship.errors import InputError

GROUP = "kinship.dev"
VERSION = "v1alpha1"
PLURAL = "agentprofiles"
FIELD_MANAGER = "kinship-predictor"
_APPLY = "application/apply-patch+yaml"


def cluster_client(kubeconfig: Path | None) -> Any:
    """An API client: in-cluster config when in a pod and no file is given, else the kubeconfig."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            kube_config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None, client_configuration=configuration
            )
    except (ConfigException, OSError) as exc:
        raise InputError(str(kubeconfig or "kubeconfig"), [f"cannot load Kubernetes config: {exc}"]) from None
    return client.ApiClient(configuration)


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
            _apply_status(custom, namespace, name, status_patch)
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
                _content_type=_APPLY,
            )
            _apply_status(custom, namespace, name, status_patch)
            result.created.append(key)
            continue
        result.applied.append(key)
    return result


def _apply_status(custom: Any, namespace: str, name: str, body: dict[str, Any]) -> None:
    # force: the predictor is the only writer of status; a stale manager's fields are taken over.
    custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        body,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type=_APPLY,
    )
