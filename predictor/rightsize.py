"""Right-sized requests for a pod being created, as a JSONPatch (RFC 6902): pure, no I/O.

The admission webhook's whole decision lives here, so every rule is a unit test on a dict:
- the pod's agent is named as everywhere in Kinship (kinship.identity), and its AgentProfile is
  judged by the same ProfilePolicy as the extender's, so a profile the extender ignores (stale, low
  confidence) never right-sizes a pod either;
- containers are matched to the profile by name; each resource the profile recommends replaces
  that container's request, capped at its limit (a request above the limit is an invalid pod)
  and kept within the namespace's LimitRanges (predictor.limitrange: LimitRanger validates after
  the webhook, and refuses the whole pod); limits are never touched;
- where a ResourceQuota limits a resource's requests, the pod's total request of it is never
  raised, and a BestEffort pod is left alone under a quota scoped to NotBestEffort pods
  (predictor.quota: the quota plugin also judges the pod after the webhook);
- what was there before is kept in the `kinship.dev/requests` annotation, so nothing the user
  declared is lost;
- a Guaranteed pod (requests equal to limits everywhere) is left alone: lowering a request would
  change its QoS class, and with it eviction order and CPU pinning, which the user chose.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kinship.documents import as_mapping
from kinship.identity import agent_of
from kinship.profile import AgentProfile, ProfilePolicy, Resources, ignored_reason
from kinship.quantity import millis, quantity
from predictor.limitrange import CONTAINER_LIMIT, LimitItem, pod_breaks, pod_total, request_bounds
from predictor.quota import NOT_BEST_EFFORT, QuotaItem, limiting

ANNOTATION = "kinship.dev/requests"
CPU, MEMORY = "cpu", "memory"


@dataclass(frozen=True)
class Mutation:
    """The patch for one pod (empty: leave it as it is) and why, for the log."""

    patch: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""


def pointer_token(text: str) -> str:
    """`text` as one JSON Pointer reference token (RFC 6901): `~` is `~0`, `/` is `~1`."""
    return text.replace("~", "~0").replace("/", "~1")


def pod_agent(pod: Mapping[str, Any]) -> str | None:
    """The agent of a pod in an AdmissionReview. At admission a Deployment's pod has no name yet
    (only generateName) but already its labels (pod-template-hash) and its ReplicaSet owner, which
    is all kinship.identity needs: no API call."""
    meta = as_mapping(pod.get("metadata"))
    owners = [
        (str(o.get("kind") or ""), str(o.get("name") or ""))
        for o in meta.get("ownerReferences") or ()
        if isinstance(o, Mapping)
    ]
    labels = meta.get("labels")
    return agent_of(labels if isinstance(labels, Mapping) else None, owners)


def cpu_quantity(millicores: float) -> str:
    """Millicores as a Kubernetes quantity ("250m"), rounded up: CPU has millicore precision, and
    rounding down would request less than recommended."""
    return f"{max(1, math.ceil(millicores))}m"


def memory_quantity(memory_bytes: float) -> str:
    """Bytes as a Kubernetes quantity: an integer string, rounded up."""
    return str(max(1, math.ceil(memory_bytes)))


def right_size(
    pod: Mapping[str, Any],
    profile: AgentProfile | None,
    policy: ProfilePolicy,
    now: float,
    limit_items: Sequence[LimitItem] = (),
    quota_items: Sequence[QuotaItem] = (),
) -> Mutation:
    """The JSONPatch setting a new pod's requests from its agent's profile, as of `now` (unix s),
    within the LimitRanges (`limit_items`) and ResourceQuotas (`quota_items`) of its namespace."""
    if profile is None:
        return Mutation(reason="no AgentProfile for this agent")
    name = f"AgentProfile {profile.metadata.namespace}/{profile.metadata.name}"
    ignored = ignored_reason(profile, policy, now)
    if ignored:
        return Mutation(reason=f"{name} ignored: {ignored}")
    spec = as_mapping(pod.get("spec"))
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return Mutation(reason="pod has no containers")
    if _guaranteed(spec):
        return Mutation(reason="Guaranteed QoS pod: lowering a request would change its QoS class")
    if _best_effort(spec) and (quota := limiting(quota_items, NOT_BEST_EFFORT)):
        why = f"a request would bring it under {quota.source} (scope {NOT_BEST_EFFORT})"
        return Mutation(reason=f"BestEffort pod: {why}")
    recommended = {c.name: c.recommendedRequests for c in profile.status.containers}
    changes: dict[int, dict[str, str]] = {}
    skipped: list[str] = []
    notes: list[str] = []
    pod_level = _pod_level(spec)
    skipped.extend(f"{r}: the pod sets pod-level {r} (spec.resources); left as it is" for r in pod_level)
    for index, container in enumerate(containers):
        rec = recommended.get(str(container.get("name"))) if isinstance(container, Mapping) else None
        if rec is not None and (wanted := _wanted(container, rec, limit_items, skipped, notes)):
            changes[index] = {r: v for r, v in wanted.items() if r not in pod_level}
    # Quotas first: the pod's LimitRange total must hold for the changes that are finally made
    changes = _within_quotas(changes, spec, quota_items, skipped)
    changes = _within_pod_limits(changes, spec, limit_items, skipped)
    patch: list[dict[str, Any]] = []
    original: dict[str, dict[str, str | None]] = {}
    for index, wanted in changes.items():
        if not wanted:
            continue
        container = containers[index]
        requests = as_mapping(as_mapping(container.get("resources")).get("requests"))
        original[str(container["name"])] = {r: _text(requests.get(r)) for r in sorted(wanted)}
        patch.extend(_request_ops(f"/spec/containers/{index}", container, wanted))
    if not patch:
        why = "requests already as recommended" if not skipped else "; ".join(skipped)
        matched = any(isinstance(c, Mapping) and c.get("name") in recommended for c in containers)
        return Mutation(reason=why if matched else f"no container of the pod is in {name}")
    record = {"profile": profile.metadata.name, "original": original}
    patch.extend(_annotation_ops(pod, json.dumps(record, sort_keys=True, separators=(",", ":"))))
    changed = ", ".join(f"{c} {'+'.join(r)}" for c, r in original.items())
    kept = "".join(f"; {why}" for why in [*notes, *skipped])
    return Mutation(patch=patch, reason=f"set requests of {changed} from {name}{kept}")


def _wanted(
    container: Mapping[str, Any],
    rec: Resources,
    limit_items: Sequence[LimitItem],
    skipped: list[str],
    notes: list[str],
) -> dict[str, str]:
    """The requests to set on one container (resource -> quantity text), noting what moved them
    and what had to be left alone."""
    resources = as_mapping(container.get("resources"))
    requests, limits = as_mapping(resources.get("requests")), as_mapping(resources.get("limits"))
    wanted: dict[str, str] = {}
    for resource, value in ((CPU, rec.cpuMillicores), (MEMORY, rec.memoryBytes)):
        if value is None:
            continue
        try:
            text, note = _within(resource, value, limits.get(resource), limit_items)
            if resource in requests and quantity(requests[resource]) == quantity(text):
                continue
        except ValueError as exc:  # the API server would reject the pod anyway; leave it be
            skipped.append(f"{container.get('name')} {resource}: {exc}")
            continue
        wanted[resource] = text
        if note:
            notes.append(f"{container.get('name')} {resource} {note}")
    return wanted


def _pod_level(spec: Mapping[str, Any]) -> set[str]:
    """Resources the pod sets for itself (spec.resources): the API server requires the containers'
    requests to fit in them, and LimitRanger then judges the pod by them, so a container request
    moved under them could get the pod refused."""
    resources = as_mapping(spec.get("resources"))
    given = [as_mapping(resources.get("requests")), as_mapping(resources.get("limits"))]
    return {r for r in (CPU, MEMORY) if any(r in g for g in given)}


def _within_pod_limits(
    changes: dict[int, dict[str, str]],
    spec: Mapping[str, Any],
    limit_items: Sequence[LimitItem],
    skipped: list[str],
) -> dict[int, dict[str, str]]:
    """`changes` less every resource whose new requests would break a Pod-type LimitRange item."""

    def refusal(resource: str, changed: dict[int, int]) -> str | None:
        try:
            return pod_breaks(limit_items, spec, resource, changed)
        except ValueError as exc:  # another container's quantity: the pod's total is unknown
            return f"the pod's total cannot be checked against its LimitRanges: {exc}"

    return _drop_refused(changes, refusal, skipped)


def _within_quotas(
    changes: dict[int, dict[str, str]],
    spec: Mapping[str, Any],
    quota_items: Sequence[QuotaItem],
    skipped: list[str],
) -> dict[int, dict[str, str]]:
    """`changes` less the raises of every resource whose requests a ResourceQuota limits, when
    they would raise the pod's total (the quota plugin's: containers summed, the largest init
    container if more). The containers lowered keep their change: that only frees quota."""

    def refusal(resource: str, changed: dict[int, int]) -> str | None:
        quota = limiting(quota_items, resource)
        if quota is None:
            return None
        try:
            before = pod_total(spec, "requests", resource, {}) or 0
            after = pod_total(spec, "requests", resource, changed) or 0
        except ValueError as exc:  # another container's quantity: the pod's total is unknown
            return f"the pod's total cannot be checked against its ResourceQuotas: {exc}"
        if after <= before:  # lowering only frees quota
            return None
        return f"{quota.source} limits {resource} requests here: the pod's total is not raised"

    containers = spec.get("containers") or []

    def lowered(resource: str, index: int) -> bool:
        requests = as_mapping(as_mapping(containers[index].get("resources")).get("requests"))
        try:
            return resource in requests and millis(changes[index][resource]) < millis(requests[resource])
        except ValueError:
            return False

    return _drop_refused(changes, refusal, skipped, keep=lowered)


def _drop_refused(
    changes: dict[int, dict[str, str]],
    refusal: Callable[[str, dict[int, int]], str | None],
    skipped: list[str],
    keep: Callable[[str, int], bool] = lambda resource, index: False,
) -> dict[int, dict[str, str]]:
    """`changes` less every resource `refusal` objects to, given the changed containers' new
    requests of it (index -> millis), except the containers `keep` says may keep theirs; each
    objection goes to `skipped`."""
    for resource in (CPU, MEMORY):
        changed = {i: millis(w[resource]) for i, w in changes.items() if resource in w}
        refused = refusal(resource, changed) if changed else None
        if refused:
            skipped.append(f"{resource}: {refused}")
            changes = {
                i: {r: v for r, v in w.items() if r != resource or keep(resource, i)}
                for i, w in changes.items()
            }
    return changes


def _within(resource: str, value: float, limit: Any, items: Sequence[LimitItem]) -> tuple[str, str]:
    """The request for a recommended `value` (millicores or bytes) that the container's limit and
    the namespace's LimitRanges allow, and a note when they moved it; ValueError when the limit
    does not parse or they allow nothing. Compared in exact millis, as LimitRanger does. At the
    limit, the limit's own text: a request equal to it reads as such in the pod."""
    bounds = request_bounds(items, resource, None if limit is None else millis(limit))
    if bounds.empty:
        raise ValueError(f"{bounds.low_by} is above {bounds.high_by}: no request fits")
    text = _text_of(resource, value)
    if bounds.high is not None and millis(text) > bounds.high:
        if bounds.high_by == CONTAINER_LIMIT:
            return str(limit), ""
        text, note = _from_millis(resource, bounds.high, up=False), f"held at {bounds.high_by}"
    elif millis(text) < bounds.low:
        text, note = _from_millis(resource, bounds.low, up=True), f"raised to {bounds.low_by}"
    else:
        return text, ""
    if millis(text) < bounds.low or (bounds.high is not None and millis(text) > bounds.high):
        raise ValueError(f"no whole {resource} unit between {bounds.low_by} and {bounds.high_by}")
    return text, note


def _from_millis(resource: str, value: int, up: bool) -> str:
    """Millis as a request: millicores exactly, bytes rounded toward the inside of the bound."""
    if resource == CPU:
        return f"{max(1, value)}m"
    return str(max(1, -(-value // 1000) if up else value // 1000))


def _text_of(resource: str, value: float) -> str:
    return cpu_quantity(value) if resource == CPU else memory_quantity(value)


def _request_ops(path: str, container: Mapping[str, Any], wanted: dict[str, str]) -> list[dict[str, Any]]:
    # `add` on a member that exists replaces it (RFC 6902 4.1); a missing parent map must be
    # added whole, since no operation creates intermediate objects.
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return [{"op": "add", "path": f"{path}/resources", "value": {"requests": wanted}}]
    if not isinstance(resources.get("requests"), Mapping):
        return [{"op": "add", "path": f"{path}/resources/requests", "value": wanted}]
    return [
        {"op": "add", "path": f"{path}/resources/requests/{pointer_token(r)}", "value": v}
        for r, v in wanted.items()
    ]


def _annotation_ops(pod: Mapping[str, Any], value: str) -> list[dict[str, Any]]:
    meta = pod.get("metadata")
    if not isinstance(meta, Mapping):
        return [{"op": "add", "path": "/metadata", "value": {"annotations": {ANNOTATION: value}}}]
    if not isinstance(meta.get("annotations"), Mapping):
        return [{"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION: value}}]
    return [{"op": "add", "path": f"/metadata/annotations/{pointer_token(ANNOTATION)}", "value": value}]


def _best_effort(spec: Mapping[str, Any]) -> bool:
    """Kubernetes' BestEffort QoS class: no container (init ones too), nor the pod itself, requests
    or limits CPU or memory above zero (pkg/apis/core/helper/qos: a zero quantity counts as none)."""
    every = [as_mapping(spec.get("resources"))] + [
        as_mapping(c.get("resources"))
        for key in ("initContainers", "containers")
        for c in spec.get(key) or ()
        if isinstance(c, Mapping)
    ]
    return not any(
        _above_zero(as_mapping(res.get(f)).get(r))
        for res in every
        for f in ("requests", "limits")
        for r in (CPU, MEMORY)
    )


def _above_zero(value: Any) -> bool:
    try:
        return value is not None and millis(value) > 0
    except ValueError:  # unreadable: the API server rejects the pod anyway; not BestEffort here
        return True


def _guaranteed(spec: Mapping[str, Any]) -> bool:
    """Kubernetes' Guaranteed QoS class: every container (init ones too) limits CPU and memory
    and requests exactly that (a missing request defaults to the limit)."""
    every = [
        c for key in ("initContainers", "containers") for c in spec.get(key) or () if isinstance(c, Mapping)
    ]
    for container in every:
        resources = as_mapping(container.get("resources"))
        requests, limits = as_mapping(resources.get("requests")), as_mapping(resources.get("limits"))
        for resource in (CPU, MEMORY):
            if resource not in limits:
                return False
            try:
                if resource in requests and quantity(requests[resource]) != quantity(limits[resource]):
                    return False
            except ValueError:
                return False
    return bool(every)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
