"""Agent identity of a pod, as DESIGN.md's contract defines it.

One function, shared by the extender (pods from the API) and later the profiler (mesh telemetry
mapped back to agents), so that both sides name an agent the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

AGENT_LABEL = "kinship.dev/agent"
NAME_LABEL = "app.kubernetes.io/name"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"

# Workload kinds whose name is the agent name when no label says otherwise. A ReplicaSet is
# resolved to its Deployment through the pod-template-hash suffix.
_WORKLOAD_KINDS = frozenset({"ReplicaSet", "StatefulSet", "Job", "DaemonSet", "Deployment"})


def agent_of(
    labels: Mapping[str, str] | None,
    owners: Iterable[tuple[str, str]] = (),
) -> str | None:
    """Return the agent a pod belongs to, or None when nothing names it.

    `owners` are (kind, name) pairs of the pod's ownerReferences. Returning None (rather than the
    pod name) matters: a bare pod is not an agent team member and must not get graph terms.
    """
    labels = labels or {}
    agent = labels.get(AGENT_LABEL) or labels.get(NAME_LABEL)
    if agent:
        return agent
    for kind, name in owners:
        if kind not in _WORKLOAD_KINDS or not name:
            continue
        if kind == "ReplicaSet":
            return _deployment_of_replicaset(name, labels.get(POD_TEMPLATE_HASH_LABEL))
        return name
    return None


def _deployment_of_replicaset(rs_name: str, template_hash: str | None) -> str:
    # A Deployment names its ReplicaSets "<deployment>-<pod-template-hash>"; a bare ReplicaSet
    # has no such label and is its own workload.
    if template_hash and rs_name.endswith("-" + template_hash):
        return rs_name[: -len(template_hash) - 1]
    return rs_name
