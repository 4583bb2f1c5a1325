"""A namespace's ResourceQuotas as limits on what right-sizing may change: pure, no I/O.

The ResourceQuota admission plugin judges a pod after every mutating webhook, and a Deployment's
ReplicaSet whose pods it refuses ("exceeded quota") creates none, though the pods as the user wrote
them fit. Two rules keep the webhook from causing that:
- where a quota limits a resource's requests (`requests.cpu` or its short form `cpu`, the same for
  memory), the webhook never raises the pod's total request of that resource. A raise spends
  quota the namespace's pods were sized for: even one that fits when the pod is created can leave
  its sibling replicas without room, and the webhook sees usage through a watch, a moment late.
  Lowering only frees quota.
- a BestEffort pod (no cpu or memory requests or limits above zero) is left alone where a quota
  is scoped to `NotBestEffort` pods: adding a request would bring the pod under that quota, which
  may refuse it for reasons the webhook does not know (a pod count, limits it requires).
Other scopes do not depend on requests, so they change nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kinship.documents import as_mapping

REQUEST_KEYS = {"requests.cpu": "cpu", "cpu": "cpu", "requests.memory": "memory", "memory": "memory"}
NOT_BEST_EFFORT = "NotBestEffort"


@dataclass(frozen=True)
class QuotaItem:
    """One thing a ResourceQuota constrains: a resource's requests (`resource` cpu or memory), or
    (`resource` NOT_BEST_EFFORT) the pods that are not BestEffort."""

    source: str  # "ResourceQuota team/compute", for the reasons logged
    resource: str


def parse_resource_quota(obj: Mapping[str, Any]) -> list[QuotaItem]:
    """The items of a ResourceQuota object. The keys of `spec.hard` and `status.hard` both count
    (they differ only until the quota controller has synced a change)."""
    meta = as_mapping(obj.get("metadata"))
    source = f"ResourceQuota {meta.get('namespace', '')}/{meta.get('name', '')}"
    spec = as_mapping(obj.get("spec"))
    keys = set(as_mapping(spec.get("hard"))) | set(as_mapping(as_mapping(obj.get("status")).get("hard")))
    items = [QuotaItem(source, r) for r in sorted({REQUEST_KEYS[k] for k in keys if k in REQUEST_KEYS})]
    expressions = as_mapping(spec.get("scopeSelector")).get("matchExpressions")
    scopes = [str(s) for s in spec.get("scopes") or ()] + [
        str(e.get("scopeName")) for e in expressions or () if isinstance(e, Mapping)
    ]
    if NOT_BEST_EFFORT in scopes:
        items.append(QuotaItem(source, NOT_BEST_EFFORT))
    return items


def limiting(items: Sequence[QuotaItem], what: str) -> QuotaItem | None:
    """The first quota that limits `what` (cpu or memory requests, or NOT_BEST_EFFORT pods)."""
    return next((item for item in items if item.resource == what), None)
