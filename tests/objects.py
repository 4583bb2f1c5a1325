"""Builders for Node and Pod objects shaped as kube-apiserver serializes them.

Tests and benchmarks post these inside ExtenderArgs exactly as kube-scheduler would, so they carry
the bulk a real object has (managedFields, conditions, images, nodeInfo), not just the fields
Kinship reads.
"""

from __future__ import annotations

import uuid
from typing import Any

_TS = "2026-11-21T09:00:00Z"


def node(
    name: str,
    zone: str | None = "zone-a",
    gpus: int = 0,
    cpu: str = "16",
    memory: str = "64Gi",
    gpu_product: str = "NVIDIA-A100-SXM4-80GB",
) -> dict[str, Any]:
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "n2-standard-16",
    }
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
        labels["topology.kubernetes.io/region"] = "region-1"
    resources = {
        "cpu": cpu,
        "ephemeral-storage": "101430960Ki",
        "hugepages-2Mi": "0",
        "memory": memory,
        "pods": "110",
    }
    if gpus:
        labels["nvidia.com/gpu.present"] = "true"
        labels["nvidia.com/gpu.product"] = gpu_product
        labels["nvidia.com/gpu.count"] = str(gpus)
        resources["nvidia.com/gpu"] = str(gpus)
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            "resourceVersion": "12345",
            "creationTimestamp": _TS,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            "managedFields": [
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": _TS,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {k.join(["f:", ""]): {} for k in labels}}},
                },
            ],
        },
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "lastHeartbeatTime": _TS,
                    "lastTransitionTime": _TS,
                    "reason": r,
                    "message": m,
                }
                for t, s, r, m in [
                    (
                        "MemoryPressure",
                        "False",
                        "KubeletHasSufficientMemory",
                        "kubelet has sufficient memory available",
                    ),
                    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    (
                        "PIDPressure",
                        "False",
                        "KubeletHasSufficientPID",
                        "kubelet has sufficient PID available",
                    ),
                    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ]
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "0" * 32,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                "bootID": "b",
                "kernelVersion": "6.1.0-27-cloud-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": "v1.36.2",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [
                {
                    "names": [
                        f"registry.example.com/agents/image-{i}@sha256:{i:064x}",
                        f"registry.example.com/agents/image-{i}:v1",
                    ],
                    "sizeBytes": 100_000_000 + i,
                }
                for i in range(8)
            ],
        },
    }


def pod(
    name: str,
    namespace: str = "default",
    *,
    node_name: str | None = None,
    agent_label: str | None = None,
    app_name: str | None = None,
    deployment: str | None = None,
    gpus: int = 0,
    phase: str | None = None,
    scheduler: str = "kinship",
) -> dict[str, Any]:
    """A pod; `deployment` makes it owned by that Deployment's ReplicaSet (with the hash label)."""
    labels: dict[str, str] = {}
    owners: list[dict[str, Any]] = []
    if agent_label:
        labels["kinship.dev/agent"] = agent_label
    if app_name:
        labels["app.kubernetes.io/name"] = app_name
    if deployment:
        labels["pod-template-hash"] = "5d8f7c9b64"
        owners.append(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{deployment}-5d8f7c9b64",
                "uid": str(uuid.uuid4()),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        )
    resources: dict[str, Any] = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    if gpus:
        resources["limits"]["nvidia.com/gpu"] = str(gpus)  # extended resources: limit implies request
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "agent",
                "image": "registry.example.com/agents/agent:v1",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": resources,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [
                    {
                        "name": "kube-api-access",
                        "readOnly": True,
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    }
                ],
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": scheduler,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    }
    if node_name:
        spec["nodeName"] = node_name
    status: dict[str, Any] = {
        "phase": phase or ("Running" if node_name else "Pending"),
        "qosClass": "Burstable",
    }
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": "2345",
            "creationTimestamp": _TS,
            "labels": labels,
            "ownerReferences": owners,
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": _TS,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {}},
                }
            ],
        },
        "spec": spec,
        "status": status,
    }


def snapshot(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """What `kubectl get nodes,pods -A -o json` prints."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [*nodes, *pods]}


def graph(
    name: str, namespace: str, edges: list[dict[str, Any]], observed: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentGraph",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"edges": edges},
    }
    if observed is not None:
        obj["status"] = {"observedEdges": observed, "observedAt": _TS}
    return obj


def profile(name: str, namespace: str, agent: str) -> dict[str, Any]:
    """An AgentProfile with a spec only, as created before the predictor writes its status."""
    return {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentProfile",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"agent": agent},
    }
