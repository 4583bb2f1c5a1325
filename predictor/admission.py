"""The admission.k8s.io/v1 AdmissionReview envelope around `rightsize`: pure, no I/O.

The API server sends a review per pod CREATE the MutatingWebhookConfiguration selects; the answer
carries the same uid, is always `allowed: true` (right-sizing is an optimisation, never a reason
to refuse a pod) and, when something changes, a base64 JSONPatch. Anything that is not a CREATE
of a core/v1 Pod is allowed unchanged, whatever the configuration's rules say. A body that is no
AdmissionReview raises BadReview, which the server answers with HTTP 400 and its message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kinship.profile import AgentProfile, ProfilePolicy
from predictor.limitrange import LimitItem
from predictor.quota import QuotaItem
from predictor.rightsize import Mutation, pod_agent, right_size

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
ProfileLookup = Callable[[str, str], AgentProfile | None]  # (namespace, agent) -> profile
LimitLookup = Callable[[str], Sequence[LimitItem]]  # namespace -> its LimitRanges' items
QuotaLookup = Callable[[str], Sequence[QuotaItem]]  # namespace -> its ResourceQuotas' items


class BadReview(ValueError):
    """The body is not an admission.k8s.io/v1 AdmissionReview with a request and a uid."""


@dataclass(frozen=True)
class Decision:
    response: dict[str, Any]  # the AdmissionReview to send back
    subject: str  # namespace/name (or generateName) of the pod, for the log
    mutation: Mutation


def parse_review(body: bytes) -> Mapping[str, Any]:
    """The `request` of an AdmissionReview, checked as far as answering it needs."""
    try:
        review = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadReview(f"body is not JSON: {exc}") from None
    if not isinstance(review, dict):
        raise BadReview("body is not a JSON object")
    problems = []
    if review.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion must be {API_VERSION} (got {review.get('apiVersion')!r})")
    if review.get("kind") != KIND:
        problems.append(f"kind must be {KIND} (got {review.get('kind')!r})")
    request = review.get("request")
    if not isinstance(request, dict):
        problems.append("request: missing or not an object")
    elif not isinstance(request.get("uid"), str) or not request["uid"]:
        problems.append("request.uid: missing or not a string")
    if problems:
        raise BadReview("; ".join(problems))
    assert isinstance(request, dict)
    return request


def decide(
    body: bytes,
    lookup: ProfileLookup,
    policy: ProfilePolicy,
    now: float,
    limit_ranges: LimitLookup = lambda namespace: (),
    quotas: QuotaLookup = lambda namespace: (),
) -> Decision:
    """The answer to one AdmissionReview body (BadReview when it is none)."""
    request = parse_review(body)
    kind = request.get("kind")
    is_pod = isinstance(kind, Mapping) and (kind.get("group"), kind.get("kind")) == ("", "Pod")
    namespace = str(request.get("namespace") or "")
    if request.get("operation") != "CREATE" or not is_pod or request.get("subResource"):
        mutation = Mutation(reason=f"not a pod CREATE ({request.get('operation')} {kind})")
        return Decision(_response(request["uid"], mutation), namespace, mutation)
    pod = request.get("object")
    if not isinstance(pod, Mapping):
        raise BadReview("request.object: a pod CREATE without the pod")
    meta = pod.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    subject = f"{namespace}/{meta.get('name') or meta.get('generateName') or '?'}"
    agent = pod_agent(pod)
    if agent is None:
        mutation = Mutation(reason="pod belongs to no agent")
    else:
        profile = lookup(namespace, agent)
        mutation = right_size(pod, profile, policy, now, limit_ranges(namespace), quotas(namespace))
    return Decision(_response(request["uid"], mutation), subject, mutation)


def _response(uid: str, mutation: Mutation) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if mutation.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(mutation.patch).encode()).decode()
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
