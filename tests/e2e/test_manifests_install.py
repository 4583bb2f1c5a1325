"""The whole install (manifests/) on the real API server, moved to a fresh namespace: kubectl
applies every object with strict field validation, Pod Security admission (the namespace's
`restricted` level) admits both pods, and the stock kube-scheduler running as the rendered
kinship-scheduler ServiceAccount schedules and binds a pod.

The local cluster has no kubelet, so the pods are created but never run, and the scheduler runs
as a local process with the account's token. Not covered: the kube-system RoleBinding (the local
process authenticates its own HTTPS callers with the cluster's scheduler credentials) and the
volume-scheduler role (the pod has no volumes). The extender's RBAC has its own test
(test_manifests_rbac.py).
"""

from __future__ import annotations

import copy
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kinship.demo import delete_namespace
from tests.e2e.teams import cluster_env
from tests.e2e.test_cluster_mode import api_pod
from tests.manifests import MANIFESTS, find, kubectl, rendered
from tests.serving import eventually, extra_kube_scheduler

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(kubectl() is None, reason="no kubectl to render manifests/ with"),
]
INSTALL_NAMESPACE = "kinship-system"
LEFT_OUT = {"Namespace", "CustomResourceDefinition"}  # the test makes one; the cluster has the others
SCHEDULER = "kinship-install-scheduler"  # its schedulerName, and its config and log file names


def moved(namespace: str, suffix: str) -> list[dict[str, Any]]:
    """The rendered objects in `namespace`. Objects outside it (cluster-scoped, the kube-system
    RoleBinding) get `suffix` on their names, so that the test deletes exactly what it made."""
    docs = [copy.deepcopy(d) for d in rendered() if d["kind"] not in LEFT_OUT]
    renamed = {}
    for doc in docs:
        meta = doc["metadata"]
        if meta.get("namespace") == INSTALL_NAMESPACE:
            meta["namespace"] = namespace
        else:
            renamed[meta["name"]] = meta["name"] = f"{meta['name']}-{suffix}"
        for subject in doc.get("subjects", ()):
            if subject.get("namespace") == INSTALL_NAMESPACE:
                subject["namespace"] = namespace
    for doc in docs:  # bindings follow the roles they name
        if "roleRef" in doc and doc["roleRef"]["kind"] == "ClusterRole":
            doc["roleRef"]["name"] = renamed.get(doc["roleRef"]["name"], doc["roleRef"]["name"])
    return docs


@pytest.fixture
def installed(api: client.ApiClient, tmp_path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """`kubectl apply` of the moved install; its namespace and objects. Deleted afterwards."""
    suffix = uuid.uuid4().hex[:6]
    namespace = f"e2e-install-{suffix}"
    labels = find("Namespace", INSTALL_NAMESPACE)["metadata"]["labels"]
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace, "labels": labels}})
    docs = moved(namespace, suffix)
    path = tmp_path / "install.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    kubeconfig = cluster_env()["KUBECONFIG"]
    try:
        applied = subprocess.run(
            [str(kubectl()), "--kubeconfig", kubeconfig, "apply", "--validate=strict", "-f", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # A Pod Security violation in a Deployment's template shows as a warning here.
        assert applied.returncode == 0 and "Warning" not in applied.stderr, applied.stderr
        yield namespace, docs
    finally:
        delete_namespace(api, namespace)
        elsewhere = [d for d in docs if d["metadata"].get("namespace") != namespace]
        path.write_text(yaml.safe_dump_all(elsewhere))
        subprocess.run(
            [str(kubectl()), "--kubeconfig", kubeconfig, "delete", "--ignore-not-found", "-f", str(path)],
            capture_output=True,
            timeout=60,
            check=False,
        )


def test_pod_security_admits_both_deployments_pods(
    api: client.ApiClient, installed: tuple[str, list[dict[str, Any]]]
) -> None:
    namespace, docs = installed
    core = client.CoreV1Api(api)
    deployments = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"]
    assert sorted(deployments) == ["kinship-extender", "kinship-scheduler"]

    def created() -> list[str]:
        pods = core.list_namespaced_pod(namespace).items
        return sorted(p.metadata.labels["app.kubernetes.io/name"] for p in pods)

    # a pod refused by admission never appears: its ReplicaSet only records FailedCreate
    eventually(lambda: created() == deployments, timeout=30)


def token_kubeconfig(api: client.ApiClient, namespace: str, account: str, path: Path) -> Path:
    token = client.CoreV1Api(api).create_namespaced_service_account_token(account, namespace, {"spec": {}})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": api.configuration.host,
                    "certificate-authority": api.configuration.ssl_ca_cert,
                },
            }
        ],
        "users": [{"name": account, "user": {"token": token.status.token}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account}}],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_scheduler_account_can_schedule_and_bind(
    api: client.ApiClient, installed: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    namespace, docs = installed
    deployment = next(
        d for d in docs if (d["kind"], d["metadata"]["name"]) == ("Deployment", "kinship-scheduler")
    )
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    kubeconfig = token_kubeconfig(api, namespace, account, tmp_path / "kubeconfig")
    config = yaml.safe_load((MANIFESTS / "scheduler" / "kinship-scheduler-config.yaml").read_text())
    # Its own scheduler name, so that the local cluster's kinship scheduler leaves the pod alone.
    # The extender's in-cluster URL does not resolve here: `ignorable: true` skips it, and
    # kube-scheduler binds with its own binder, under this account's RBAC.
    config["profiles"][0]["schedulerName"] = SCHEDULER
    config["clientConnection"] = {"kubeconfig": str(kubeconfig)}
    env = cluster_env()
    core = client.CoreV1Api(api)
    log = Path(env["KINSHIP_STATE_DIR"]) / "logs" / f"{SCHEDULER}.log"

    def forbidden() -> list[str]:  # a missing rule: its informer never syncs, nothing is scheduled
        return [line for line in log.read_text().splitlines() if "forbidden" in line][:5]

    with extra_kube_scheduler(env, config, SCHEDULER):
        pod = api_pod("agent-0", namespace, "unused", "agent")
        del pod["spec"]["nodeName"]
        pod["spec"]["schedulerName"] = SCHEDULER
        # what the namespace's `restricted` Pod Security level asks of every pod
        pod["spec"]["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        pod["spec"]["containers"][0]["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        core.create_namespaced_pod(namespace, pod)
        eventually(lambda: forbidden() or core.read_namespaced_pod("agent-0", namespace).spec.node_name, 60)
        assert not forbidden(), forbidden()
        assert core.read_namespaced_pod("agent-0", namespace).spec.node_name
