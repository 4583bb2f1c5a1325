"""A namespace's ResourceQuotas as a ceiling on raising requests: pure, no I/O.

The ResourceQuota admission plugin runs after every mutating webhook and refuses a pod whose
requests would take a quota past its `hard` ("exceeded quota"), and a Deployment's ReplicaSet then
creates no pods at all, even though the pod as the user wrote it fit. So the webhook raises a
pod's total request for a resource only when the raised total fits in what every quota
constraining that resource has left (`hard - used`, from the quota's status as last counted).
Lowering is always allowed: it can only free quota.

Every quota of the namespace counts, whatever its scopes: a quota scoped to other pods costs at
most a raise that would have been fine, never a refused pod. Only cpu and memory requests are read
(`requests.cpu` and its short form `cpu`, the same for memory): they are what profiles recommend,
and limits are never changed. Values are exact millis, as the quota plugin compares them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kinship.errors import InputError
from kinship.quantity import millis

_KEYS = {"requests.cpu": "cpu", "cpu": "cpu", "requests.memory": "memory", "memory": "memory"}


@dataclass(frozen=True)
class QuotaItem:
    """What one ResourceQuota leaves of one resource's requests."""

    source: str  # "ResourceQuota team/compute", for the reasons logged
    resource: str  # cpu or memory
    left: int | None  # millis: hard - used; None until the quota controller has counted usage


def parse_resource_quota(obj: Mapping[str, Any]) -> list[QuotaItem]:
    """The cpu/memory request items of a ResourceQuota object (InputError naming the object and
    field). A quota listing both `cpu` and `requests.cpu` gives two items: both must hold."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    source = f"ResourceQuota {meta.get('namespace', '')}/{meta.get('name', '')}"
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)
    hard = spec.get("hard") if isinstance(spec.get("hard"), Mapping) else {}
    used = status.get("used") if isinstance(status.get("used"), Mapping) else {}
    assert isinstance(hard, Mapping) and isinstance(used, Mapping)
    items, problems = [], []
    for key, resource in _KEYS.items():
        if key not in hard:
            continue
        try:
            limit = millis(hard[key])
        except ValueError as exc:
            problems.append(f"spec.hard.{key}: {exc}")
            continue
        try:
            left = limit - millis(used[key]) if key in used else None
        except ValueError as exc:
            problems.append(f"status.used.{key}: {exc}")
            continue
        items.append(QuotaItem(source, resource, left))
    if problems:
        raise InputError(source, problems)
    return items


def quota_refuses(items: Sequence[QuotaItem], resource: str, before: int, after: int) -> str | None:
    """Why a new pod whose total `resource` request the webhook changes from `before` to `after`
    millis could be refused by one of `items`, or None. The whole request of a pod being created
    is charged against each quota, so a raise must fit in what the quota has left; no raise
    (after <= before) can make the pod's admission worse."""
    if after <= before:
        return None
    for item in items:
        if item.resource != resource:
            continue
        if item.left is None:
            return f"{item.source} has not counted its {resource} usage yet"
        if after > item.left:
            return (
                f"the pod's {resource} requests would total {_shown(resource, after)}, more than the "
                f"{_shown(resource, max(item.left, 0))} {item.source} has left"
            )
    return None


def _shown(resource: str, value: int) -> str:
    """Millis as a quantity a user reads: millicores for cpu, bytes (rounded up) for memory."""
    return f"{value}m" if resource == "cpu" else f"{-(-value // 1000)}"
