"""One way to reach the Kubernetes API for every Kinship command: in-cluster config first when in
a pod and no kubeconfig is given, else the kubeconfig (flag, $KUBECONFIG, ~/.kube/config)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kinship.errors import InputError


def in_pod() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def api_client(kubeconfig: Path | None) -> Any:
    """A kubernetes ApiClient; a config that cannot be loaded is an InputError naming the file."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if kubeconfig is None and in_pod():
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            kube_config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None, client_configuration=configuration
            )
    except (ConfigException, OSError) as exc:
        where = str(kubeconfig) if kubeconfig else ("in-cluster config" if in_pod() else "kubeconfig")
        raise InputError(where, [f"cannot load Kubernetes config: {exc}"]) from None
    return client.ApiClient(configuration)


APPLY_PATCH = "application/apply-patch+yaml"


def apply_status(custom: Any, plural: str, namespace: str, name: str, body: Any, field_manager: str) -> None:
    """Server-side apply of a kinship.dev object's status subresource. Forced: each producer
    (profiler, predictor) is the only writer of the status it publishes, so fields a stale
    manager left are taken over rather than reported as conflicts."""
    custom.patch_namespaced_custom_object_status(
        "kinship.dev",
        "v1alpha1",
        namespace,
        plural,
        name,
        body,
        field_manager=field_manager,
        force=True,
        _content_type=APPLY_PATCH,
    )
