"""A namespace's LimitRanges as bounds on the requests right-sizing sets: pure, no I/O.

The LimitRanger admission plugin validates a pod after every mutating webhook has run. A request
the webhook lowered below a Container `min`, or below `limit / maxLimitRequestRatio`, gets the
whole pod refused with 403, and a Deployment's ReplicaSet then creates no pods at all: far worse
than the request the user wrote. So each request is kept within what the namespace's LimitRanges
allow (the nearest allowed value to the recommendation), and a resource whose LimitRanges allow
no request at or under the container's limit is left as it was. Pod-type items bound the pod's
total; a change that would break one is dropped for that resource (`pod_breaks`).

Only cpu and memory are read: they are what profiles recommend. Values are exact integer
thousandths of the base unit (millicores, millibytes), as LimitRanger compares them
(`MilliValue`): float sums miss a pod minimum by one ulp.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kinship.errors import InputError
from kinship.quantity import millis

CONTAINER, POD = "Container", "Pod"
CONTAINER_LIMIT = "the container's limit"
RESOURCES = ("cpu", "memory")


@dataclass(frozen=True)
class LimitItem:
    """One resource's constraints from one `spec.limits` entry of a LimitRange."""

    source: str  # "LimitRange team/limits", for the reasons logged
    kind: str  # CONTAINER or POD
    resource: str
    min: int | None = None  # millis, as every value below
    max: int | None = None
    max_ratio: int | None = None  # maxLimitRequestRatio x 1000: limit / request at most this


@dataclass(frozen=True)
class Bounds:
    """The requests a container may have for one resource: [low, high], each with the LimitRange
    or limit that sets it (empty: unbounded on that side)."""

    low: int = 0
    low_by: str = ""
    high: int | None = None
    high_by: str = ""

    @property
    def empty(self) -> bool:
        return self.high is not None and self.low > self.high


def parse_limit_range(obj: Mapping[str, Any]) -> list[LimitItem]:
    """The cpu/memory items of a LimitRange object (InputError naming the object and field)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    source = f"LimitRange {meta.get('namespace', '?')}/{meta.get('name', '?')}"
    spec = obj.get("spec")
    limits = spec.get("limits") if isinstance(spec, Mapping) else None
    if not isinstance(limits, list):
        return []
    items: list[LimitItem] = []
    problems: list[str] = []
    for i, entry in enumerate(limits):
        if not isinstance(entry, Mapping) or entry.get("type") not in (CONTAINER, POD):
            continue  # PersistentVolumeClaim items, or what the API server would not store
        values: dict[str, dict[str, int]] = {r: {} for r in RESOURCES}
        for field, key in (("min", "min"), ("max", "max"), ("maxLimitRequestRatio", "max_ratio")):
            given = entry.get(field)
            if not isinstance(given, Mapping):
                continue
            for resource in RESOURCES:
                if resource in given:
                    try:
                        values[resource][key] = millis(given[resource])
                    except ValueError as exc:
                        problems.append(f"spec.limits[{i}].{field}.{resource}: {exc}")
        items.extend(
            LimitItem(source, str(entry["type"]), resource, **found)
            for resource, found in values.items()
            if found
        )
    if problems:
        raise InputError(source, problems)
    return items


def request_bounds(items: Iterable[LimitItem], resource: str, limit: int | None) -> Bounds:
    """Where a container's request for `resource` may lie (millis), given its limit (None: no
    limit). The ratio bound is LimitRanger's check solved for the request, rounded up."""
    bounds = Bounds() if limit is None else Bounds(high=limit, high_by=CONTAINER_LIMIT)
    for item in items:
        if item.kind != CONTAINER or item.resource != resource:
            continue
        lows = [(item.min, f"the {item.source} min")]
        if item.max_ratio and limit is not None:
            lows.append((-(-limit * 1000 // item.max_ratio), f"the {item.source} maxLimitRequestRatio"))
        for low, why in lows:
            if low is not None and low > bounds.low:
                bounds = Bounds(low, why, bounds.high, bounds.high_by)
        if item.max is not None and (bounds.high is None or item.max < bounds.high):
            bounds = Bounds(bounds.low, bounds.low_by, item.max, f"the {item.source} max")
    return bounds


def pod_total(spec: Mapping[str, Any], field: str, resource: str, changed: Mapping[int, int]) -> int | None:
    """The pod's total request or limit (`field`) of `resource` as LimitRanger sums it: app
    containers and restartable init containers (sidecars) add up, a plain init container counts
    on its own with the sidecars started before it, the largest wins. `changed` replaces the
    request of app container i. None when no container sets it."""
    seen = False

    def value(container: Any, index: int | None = None) -> int:
        nonlocal seen
        if index is not None and index in changed and field == "requests":
            seen = True
            return changed[index]
        resources = container.get("resources") if isinstance(container, Mapping) else None
        given = resources.get(field) if isinstance(resources, Mapping) else None
        if not isinstance(given, Mapping) or resource not in given:
            return 0
        seen = True
        return millis(given[resource])

    total = sum(value(c, i) for i, c in enumerate(spec.get("containers") or ()))
    sidecars = largest = 0
    for init in spec.get("initContainers") or ():
        own = value(init)
        if isinstance(init, Mapping) and init.get("restartPolicy") == "Always":
            sidecars += own
            total += own
        else:
            largest = max(largest, own + sidecars)
    return max(total, largest) if seen else None


def pod_breaks(
    items: Sequence[LimitItem], spec: Mapping[str, Any], resource: str, changed: Mapping[int, int]
) -> str | None:
    """Why the pod with requests `changed` (millis) would break a Pod-type constraint it did not
    break as it was, or None. Each constraint is judged on its own: one the pod already broke
    must not hide another the change would break."""
    for item in items:
        if item.kind != POD or item.resource != resource:
            continue
        before = _pod_problems(item, spec, {})
        for problem in _pod_problems(item, spec, changed) - before:
            return f"the pod's total would break the {item.source} {problem}"
    return None


def _pod_problems(item: LimitItem, spec: Mapping[str, Any], changed: Mapping[int, int]) -> set[str]:
    request = pod_total(spec, "requests", item.resource, changed)
    limit = pod_total(spec, "limits", item.resource, changed)
    problems = set()
    if item.min is not None and (request is None or request < item.min):
        problems.add("min")
    if item.max is not None and (request or 0) > item.max:
        problems.add("max")
    if item.max_ratio and request and limit and limit * 1000 > item.max_ratio * request:
        problems.add("maxLimitRequestRatio")
    return problems
