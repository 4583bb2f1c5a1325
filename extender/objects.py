"""Lightweight views of Pods and Nodes: only the fields placement reads.

Pods and Nodes arrive as full API objects (with managedFields, images, conditions...). Decoding them
with msgspec into these structs skips everything else in C, which is what keeps /filter fast when
kube-scheduler sends thousands of full Node objects. The same views decode watch events and
snapshot files, so every mode reads objects one way.
"""

from __future__ import annotations

import msgspec

from kinship.identity import agent_of
from kinship.quantity import Quantity, quantity

ZONE_LABEL = "topology.kubernetes.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"
CPU_RESOURCE = "cpu"
MEMORY_RESOURCE = "memory"


class OwnerReference(msgspec.Struct):
    kind: str = ""
    name: str = ""
    controller: bool | None = None


class ObjectMeta(msgspec.Struct):
    name: str = ""
    namespace: str | None = None
    uid: str = ""
    resourceVersion: str = ""
    labels: dict[str, str] | None = None
    ownerReferences: list[OwnerReference] | None = None


class Resources(msgspec.Struct):
    requests: dict[str, Quantity] | None = None
    limits: dict[str, Quantity] | None = None


class Container(msgspec.Struct):
    name: str = ""
    resources: Resources | None = None
    restartPolicy: str | None = None  # "Always" on an init container: a sidecar


class PodSpec(msgspec.Struct):
    nodeName: str | None = None
    schedulerName: str | None = None
    containers: list[Container] = []
    initContainers: list[Container] | None = None


class PodStatus(msgspec.Struct):
    phase: str | None = None


class Pod(msgspec.Struct):
    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus | None = None

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        return self.metadata.uid or f"{self.namespace}/{self.metadata.name}"

    @property
    def agent(self) -> str | None:
        owners = ((o.kind, o.name) for o in self.metadata.ownerReferences or ())
        return agent_of(self.metadata.labels, owners)

    @property
    def terminated(self) -> bool:
        return self.status is not None and self.status.phase in ("Succeeded", "Failed")


class PodTemplate(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)


class WorkloadSpec(msgspec.Struct):
    replicas: int | None = None
    template: PodTemplate = msgspec.field(default_factory=PodTemplate)


class Workload(msgspec.Struct):
    """A Deployment or StatefulSet: the pods it will create, known before it creates them."""

    metadata: ObjectMeta
    spec: WorkloadSpec = msgspec.field(default_factory=WorkloadSpec)

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    def agent(self, kind: str) -> str | None:
        """The agent of its pods, as `Pod.agent` will derive it once they exist."""
        return agent_of(self.spec.template.metadata.labels, [(kind, self.metadata.name)])

    def pod(self) -> Pod:
        template = self.spec.template
        return Pod(
            metadata=ObjectMeta(namespace=self.metadata.namespace, labels=template.metadata.labels),
            spec=template.spec,
        )


class NodeStatus(msgspec.Struct):
    allocatable: dict[str, Quantity] | None = None
    capacity: dict[str, Quantity] | None = None


class Node(msgspec.Struct):
    metadata: ObjectMeta
    status: NodeStatus | None = None

    @property
    def zone(self) -> str | None:
        return (self.metadata.labels or {}).get(ZONE_LABEL)


def pod_resource_request(pod: Pod, resource: str) -> float:
    """Effective request of one resource, as kube-scheduler computes it (PodRequests in
    k8s.io/component-helpers): sidecars (init containers with restartPolicy Always) run beside
    the app containers and add to them; an ordinary init container runs alone, next to the
    sidecars started before it. A container that sets only a limit for an extended resource
    requests that limit (extended resources cannot be overcommitted).
    """
    total = sum(_container_request(c, resource) for c in pod.spec.containers)
    sidecars = 0.0
    init_peak = 0.0
    for c in pod.spec.initContainers or ():
        request = _container_request(c, resource)
        if c.restartPolicy == "Always":
            total += request
            sidecars += request
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, request + sidecars)
    return max(total, init_peak)


def _container_request(container: Container, resource: str) -> float:
    res = container.resources
    if res is None:
        return 0.0
    value = (res.requests or {}).get(resource)
    if value is None:
        value = (res.limits or {}).get(resource)
    return 0.0 if value is None else quantity(value)


def node_allocatable(node: Node, resource: str) -> float:
    status = node.status
    if status is None:
        return 0.0
    value = (status.allocatable or {}).get(resource)
    if value is None:  # a Node object written by hand may carry capacity only
        value = (status.capacity or {}).get(resource)
    return 0.0 if value is None else quantity(value)
