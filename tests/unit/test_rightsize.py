"""The admission webhook's decision (predictor.rightsize, predictor.admission) on hand-written pods.

Patches are applied by a strict `add` (a missing parent map fails, as in the API server), so the
tests check the pod that results, not only the operations' text. The e2e test has the real API
server apply them.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kinship.errors import InputError
from kinship.profile import AgentProfile, ProfilePolicy
from predictor.admission import BadReview, decide
from predictor.limitrange import LimitItem, parse_limit_range, pod_total
from predictor.quota import QuotaItem, parse_resource_quota
from predictor.rightsize import (
    ANNOTATION,
    cpu_quantity,
    memory_quantity,
    pod_agent,
    pointer_token,
    right_size,
)

DAY = 86400.0
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
POLICY = ProfilePolicy()  # min_confidence 0.5, max_age_seconds 7 days
MIB = 2**20


def profile(
    containers: dict[str, dict[str, float]] | None = None,
    *,
    confidence: float | None = 0.9,
    trained_days_ago: float | None = 1.0,
    agent: str = "planner",
) -> AgentProfile:
    status: dict[str, Any] = {
        "containers": [
            {"name": name, "recommendedRequests": rec}
            for name, rec in (
                containers or {"agent": {"cpuMillicores": 250.0, "memoryBytes": 300 * MIB}}
            ).items()
        ]
    }
    if confidence is not None:
        status["confidence"] = confidence
    if trained_days_ago is not None:
        trained = datetime.fromtimestamp(NOW - trained_days_ago * DAY, tz=UTC)
        status["lastTrained"] = trained.isoformat().replace("+00:00", "Z")
    return AgentProfile.model_validate(
        {
            "apiVersion": "kinship.dev/v1alpha1",
            "kind": "AgentProfile",
            "metadata": {"name": f"{agent}-profile", "namespace": "team"},
            "spec": {"agent": agent},
            "status": status,
        }
    )


def pod(*containers: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Deployment's pod as admission sees it: generateName, no name, a ReplicaSet owner."""
    meta: dict[str, Any] = {
        "generateName": "planner-7c9f8d6b5-",
        "labels": {"app": "planner", "pod-template-hash": "7c9f8d6b5"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "planner-7c9f8d6b5",
                "uid": "u",
                "controller": True,
            }
        ],
    }
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": list(containers)}}


def container(name: str = "agent", **resources: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": "agent:1"}
    if resources:
        out["resources"] = dict(resources)
    return out


def resolve(doc: Any, pointer: str) -> tuple[Any, str]:
    """The parent of an RFC 6901 pointer's target and its last token, unescaped."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    for token in tokens[:-1]:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc, tokens[-1]


def apply(patch: list[dict[str, Any]], doc: dict[str, Any]) -> dict[str, Any]:
    """RFC 6902 `add` to object members, as strict as the API server: a missing parent fails."""
    doc = copy.deepcopy(doc)
    for op in patch:
        assert op["op"] == "add", op
        parent, key = resolve(doc, op["path"])
        assert isinstance(parent, dict), f"{op['path']}: parent is not an object"
        parent[key] = op["value"]
    return doc


def recorded(patched: dict[str, Any]) -> Any:
    return json.loads(patched["metadata"]["annotations"][ANNOTATION])


def test_quantities_are_rounded_up_to_what_kubernetes_counts() -> None:
    assert cpu_quantity(249.2) == "250m"
    assert cpu_quantity(0.0) == "1m"
    assert memory_quantity(300 * MIB + 0.5) == str(300 * MIB + 1)


def test_the_agent_of_a_deployment_pod_without_a_name_comes_from_its_replicaset() -> None:
    assert pod_agent(pod(container())) == "planner"
    labelled = pod(container())
    labelled["metadata"]["labels"]["kinship.dev/agent"] = "brain"
    assert pod_agent(labelled) == "brain"
    assert pod_agent({"metadata": {"generateName": "x-"}, "spec": {}}) is None


def test_no_profile_leaves_the_pod_alone() -> None:
    mutation = right_size(pod(container()), None, POLICY, NOW)
    assert mutation.patch == []
    assert "no AgentProfile" in mutation.reason


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"trained_days_ago": 8.0}, "lastTrained"),
        ({"confidence": 0.4}, "confidence 0.40 below"),
    ],
)
def test_profiles_the_extender_ignores_are_ignored(kwargs: dict[str, Any], why: str) -> None:
    mutation = right_size(pod(container()), profile(**kwargs), POLICY, NOW)
    assert mutation.patch == []
    assert "ignored" in mutation.reason and why in mutation.reason


def test_missing_resources_and_annotations_are_added_whole() -> None:
    original = pod(container())
    mutation = right_size(original, profile(), POLICY, NOW)
    assert mutation.patch[0] == {
        "op": "add",
        "path": "/spec/containers/0/resources",
        "value": {"requests": {"cpu": "250m", "memory": str(300 * MIB)}},
    }
    assert mutation.patch[-1]["path"] == "/metadata/annotations"
    patched = apply(mutation.patch, original)
    assert patched["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "250m", "memory": str(300 * MIB)}
    }
    assert recorded(patched) == {
        "profile": "planner-profile",
        "original": {"agent": {"cpu": None, "memory": None}},
    }
    assert "planner-profile" in mutation.reason


def test_resources_without_requests_get_a_requests_map_and_limits_stay() -> None:
    # (limits on both resources and no requests would be a Guaranteed pod: left alone, below)
    original = pod(container(limits={"cpu": "2"}))
    patched = apply(right_size(original, profile(), POLICY, NOW).patch, original)
    assert patched["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "2"},
        "requests": {"cpu": "250m", "memory": str(300 * MIB)},
    }


def test_existing_requests_are_replaced_and_recorded_under_an_escaped_annotation_key() -> None:
    original = pod(container(requests={"cpu": "1", "memory": "2Gi"}), annotations={"team": "ops"})
    mutation = right_size(original, profile(), POLICY, NOW)
    paths = [op["path"] for op in mutation.patch]
    assert paths == [
        "/spec/containers/0/resources/requests/cpu",
        "/spec/containers/0/resources/requests/memory",
        "/metadata/annotations/kinship.dev~1requests",
    ]
    patched = apply(mutation.patch, original)
    assert patched["metadata"]["annotations"]["team"] == "ops"
    assert recorded(patched)["original"] == {"agent": {"cpu": "1", "memory": "2Gi"}}
    assert pointer_token("a~b/c") == "a~0b~1c"


def test_a_request_above_the_limit_is_capped_at_the_limit() -> None:
    rec = {"agent": {"cpuMillicores": 900.0, "memoryBytes": 2.0 * 2**30}}
    original = pod(container(requests={"cpu": "100m"}, limits={"cpu": "500m", "memory": "1Gi"}))
    patched = apply(right_size(original, profile(rec), POLICY, NOW).patch, original)
    resources = patched["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert resources["limits"] == {"cpu": "500m", "memory": "1Gi"}


def test_only_containers_in_the_profile_change() -> None:
    original = pod(container("agent"), container("sidecar", requests={"cpu": "50m"}))
    mutation = right_size(original, profile(), POLICY, NOW)
    assert all(not op["path"].startswith("/spec/containers/1") for op in mutation.patch)
    patched = apply(mutation.patch, original)
    assert patched["spec"]["containers"][1] == original["spec"]["containers"][1]
    assert list(recorded(patched)["original"]) == ["agent"]

    other = right_size(pod(container("sidecar")), profile(), POLICY, NOW)
    assert other.patch == [] and "no container of the pod" in other.reason


def test_cpu_known_memory_unknown_sets_cpu_only() -> None:
    original = pod(container(requests={"memory": "512Mi"}))
    mutation = right_size(original, profile({"agent": {"cpuMillicores": 120.0}}), POLICY, NOW)
    patched = apply(mutation.patch, original)
    assert patched["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "120m", "memory": "512Mi"}
    assert recorded(patched)["original"] == {"agent": {"cpu": None}}


def test_requests_already_as_recommended_need_no_patch() -> None:
    original = pod(container(requests={"cpu": "0.25", "memory": str(300 * MIB)}))
    mutation = right_size(original, profile(), POLICY, NOW)
    assert mutation.patch == [] and "already" in mutation.reason


def test_a_guaranteed_pod_keeps_its_qos_class() -> None:
    limits = {"cpu": "1", "memory": "1Gi"}
    original = pod(container(limits=limits))  # requests default to the limits: Guaranteed
    mutation = right_size(original, profile(), POLICY, NOW)
    assert mutation.patch == [] and "Guaranteed" in mutation.reason


def test_an_unparseable_limit_leaves_that_resource_alone() -> None:
    original = pod(container(limits={"cpu": "lots"}))
    patched = apply(right_size(original, profile(), POLICY, NOW).patch, original)
    assert patched["spec"]["containers"][0]["resources"]["requests"] == {"memory": str(300 * MIB)}


# ---- LimitRanges: LimitRanger validates after the webhook and refuses the whole pod ----------


def limits(*entries: dict[str, Any]) -> list[LimitItem]:
    return parse_limit_range(
        {"metadata": {"name": "limits", "namespace": "team"}, "spec": {"limits": list(entries)}}
    )


def requests_of(mutation_pod: dict[str, Any], mutation: Any, index: int = 0) -> dict[str, str]:
    return dict(apply(mutation.patch, mutation_pod)["spec"]["containers"][index]["resources"]["requests"])


def test_a_request_below_a_container_min_is_raised_to_it() -> None:
    original = pod(container(requests={"cpu": "1", "memory": "1Gi"}))
    items = limits({"type": "Container", "min": {"cpu": "400m"}})
    mutation = right_size(original, profile(), POLICY, NOW, items)
    assert requests_of(original, mutation) == {"cpu": "400m", "memory": str(300 * MIB)}
    assert "agent cpu raised to the LimitRange team/limits min" in mutation.reason


def test_a_request_stays_within_the_limit_to_request_ratio() -> None:
    original = pod(container(requests={"cpu": "1"}, limits={"memory": "1Gi"}))
    items = limits({"type": "Container", "maxLimitRequestRatio": {"memory": "2"}})
    mutation = right_size(original, profile(), POLICY, NOW, items)
    # 300 MiB recommended; a 1 GiB limit at most 2x the request needs 512 MiB
    assert requests_of(original, mutation)["memory"] == str(512 * MIB)
    assert "maxLimitRequestRatio" in mutation.reason


def test_a_request_above_a_container_max_is_held_at_it() -> None:
    original = pod(container(requests={"cpu": "100m"}))
    items = limits({"type": "Container", "max": {"cpu": "200m"}})
    rec = {"agent": {"cpuMillicores": 900.0}}
    assert requests_of(original, right_size(original, profile(rec), POLICY, NOW, items)) == {"cpu": "200m"}


def test_a_resource_no_request_can_satisfy_is_left_as_it_was() -> None:
    original = pod(container(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "2"}))
    items = limits({"type": "Container", "min": {"cpu": "3"}})  # the pod is refused anyway
    mutation = right_size(original, profile(), POLICY, NOW, items)
    assert requests_of(original, mutation) == {"cpu": "1", "memory": str(300 * MIB)}
    assert "no request fits" in mutation.reason


def test_a_change_that_would_break_a_pod_min_is_dropped_for_that_resource() -> None:
    original = pod(
        container(requests={"cpu": "1", "memory": "1Gi"}),
        container("sidecar", requests={"cpu": "100m"}),
    )
    items = limits({"type": "Pod", "min": {"cpu": "1"}})
    mutation = right_size(original, profile(), POLICY, NOW, items)
    # 250m + 100m would be under the pod's 1-core min: cpu stays, memory is right-sized
    assert requests_of(original, mutation) == {"cpu": "1", "memory": str(300 * MIB)}
    assert "the pod's total would break the LimitRange team/limits min" in mutation.reason
    # a pod already under the min is not this change's doing: it is right-sized as usual
    under = pod(container(requests={"cpu": "500m"}))
    assert requests_of(under, right_size(under, profile(), POLICY, NOW, items))["cpu"] == "250m"


def test_pod_totals_are_exact_where_floats_would_miss_a_min_by_one_ulp() -> None:
    # 700m + 100m is 0.7999999999999999 cores in floats: the pod would look already under its
    # 800m min, and lowering 700m to 250m would pass here and be refused by LimitRanger.
    original = pod(container(requests={"cpu": "700m"}), container("sidecar", requests={"cpu": "100m"}))
    items = limits({"type": "Pod", "min": {"cpu": "800m"}})
    mutation = right_size(original, profile(), POLICY, NOW, items)
    assert requests_of(original, mutation)["cpu"] == "700m"
    assert "the pod's total would break the LimitRange team/limits min" in mutation.reason


def test_bounds_are_met_exactly_not_rounded_past() -> None:
    # a float 2.007 x 1000 rounds up to 2008 millicores, above a max of 2007m
    original = pod(container(requests={"cpu": "3"}))
    items = limits({"type": "Container", "min": {"cpu": "2007m"}, "max": {"cpu": "2007m"}})
    assert requests_of(original, right_size(original, profile(), POLICY, NOW, items))["cpu"] == "2007m"
    capped = pod(container(requests={"cpu": "3"}, limits={"cpu": "2011m"}))
    at_min = limits({"type": "Container", "min": {"cpu": "2011m"}})
    assert requests_of(capped, right_size(capped, profile(), POLICY, NOW, at_min))["cpu"] == "2011m"


def test_a_broken_pod_constraint_does_not_hide_one_the_change_would_break() -> None:
    # the pod already breaks the pod max (3 cores requested, max 2); lowering memory is fine,
    # but lowering cpu to 250m would also break the pod's cpu ratio (limit 4 / request <= 4)
    original = pod(container(requests={"cpu": "3", "memory": "1Gi"}, limits={"cpu": "4"}))
    items = limits({"type": "Pod", "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "4"}})
    mutation = right_size(original, profile(), POLICY, NOW, items)
    assert requests_of(original, mutation) == {"cpu": "3", "memory": str(300 * MIB)}
    assert "maxLimitRequestRatio" in mutation.reason


def test_resources_the_pod_sets_for_itself_are_left_alone() -> None:
    original = pod(container(requests={"cpu": "1", "memory": "1Gi"}))
    original["spec"]["resources"] = {"requests": {"cpu": "1"}}  # pod-level resources
    mutation = right_size(original, profile(), POLICY, NOW)
    assert requests_of(original, mutation) == {"cpu": "1", "memory": str(300 * MIB)}
    assert "pod-level cpu" in mutation.reason


def test_a_pod_total_that_cannot_be_summed_keeps_that_resource_as_it_was() -> None:
    original = pod(container(requests={"cpu": "1"}), container("sidecar", requests={"cpu": "lots"}))
    items = limits({"type": "Pod", "min": {"cpu": "1"}})
    mutation = right_size(original, profile(), POLICY, NOW, items)
    assert requests_of(original, mutation) == {"cpu": "1", "memory": str(300 * MIB)}
    assert "cannot be checked" in mutation.reason


def test_pod_totals_add_sidecars_and_take_the_largest_init_container() -> None:
    spec = {
        "initContainers": [
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
            {"name": "migrate", "resources": {"requests": {"cpu": "2"}}},
        ],
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}, {"name": "b"}],
    }
    assert pod_total(spec, "requests", "cpu", {}) == 2100  # millis: migrate + the proxy
    assert pod_total(spec, "requests", "cpu", {0: 3000}) == 3100
    assert pod_total(spec, "requests", "memory", {}) is None


def test_limit_ranges_are_read_for_cpu_and_memory_of_pods_and_containers() -> None:
    items = limits(
        {"type": "Container", "min": {"cpu": "10m", "ephemeral-storage": "1Gi"}, "max": {"memory": "2Gi"}},
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}},
        {"type": "Pod", "maxLimitRequestRatio": {"cpu": "4"}},
    )
    assert items == [
        LimitItem("LimitRange team/limits", "Container", "cpu", min=10),  # millis
        LimitItem("LimitRange team/limits", "Container", "memory", max=2 * 2**30 * 1000),
        LimitItem("LimitRange team/limits", "Pod", "cpu", max_ratio=4000),
    ]
    with pytest.raises(InputError) as bad:
        limits({"type": "Container", "min": {"cpu": "lots"}})
    assert "spec.limits[0].min.cpu" in bad.value.render()


# ---- the AdmissionReview envelope ----------------------------------------------------------


def review(obj: dict[str, Any], operation: str = "CREATE", kind: str = "Pod") -> bytes:
    request = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "team",
        "operation": operation,
        "object": obj,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def test_a_pod_create_is_answered_with_the_same_uid_and_a_base64_jsonpatch() -> None:
    profiles = {("team", "planner"): profile()}
    decision = decide(review(pod(container())), lambda ns, a: profiles.get((ns, a)), POLICY, NOW)
    response = decision.response["response"]
    assert decision.response["apiVersion"] == "admission.k8s.io/v1"
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == decision.mutation.patch
    assert decision.subject == "team/planner-7c9f8d6b5-"


@pytest.mark.parametrize(("operation", "kind"), [("UPDATE", "Pod"), ("CREATE", "Deployment")])
def test_anything_but_a_pod_create_is_allowed_unchanged(operation: str, kind: str) -> None:
    decision = decide(review(pod(container()), operation, kind), lambda ns, a: profile(), POLICY, NOW)
    assert decision.response["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "apiVersion must be"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}', "request.uid"),
    ],
)
def test_a_body_that_is_no_admission_review_is_refused_with_a_message(body: bytes, message: str) -> None:
    with pytest.raises(BadReview, match=message):
        decide(body, lambda ns, a: None, POLICY, NOW)


def quota_items(hard: dict[str, str], **spec: Any) -> list[QuotaItem]:
    obj = {"metadata": {"name": "compute", "namespace": "team"}, "spec": {"hard": hard, **spec}}
    return parse_resource_quota(obj)


def test_requests_a_quota_limits_are_only_lowered_and_other_resources_still_raised() -> None:
    # the ResourceQuota plugin judges the pod after the webhook; a raise spends the namespace's quota
    asked = pod(container(requests={"cpu": "100m", "memory": "1Gi"}))
    both = quota_items({"requests.cpu": "20", "requests.memory": "64Gi", "pods": "10"})
    mutation = right_size(asked, profile(), POLICY, NOW, quota_items=both)
    requests = apply(mutation.patch, asked)["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "100m", "memory": str(300 * MIB)}  # cpu would rise: kept; memory lowered
    assert (
        "cpu: ResourceQuota team/compute limits cpu requests here: the pod's total is not raised"
        in mutation.reason
    )
    memory_only = quota_items({"memory": "64Gi"})  # the short form counts the same
    raised = apply(right_size(asked, profile(), POLICY, NOW, quota_items=memory_only).patch, asked)
    assert raised["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "250m",
        "memory": str(300 * MIB),
    }


def test_under_a_quota_a_containers_cut_is_kept_when_another_would_rise() -> None:
    asked = pod(
        container("agent", requests={"cpu": "100m"}),
        container("sidecar", requests={"cpu": "500m"}),
    )
    cpu_quota = quota_items({"requests.cpu": "4"})

    def cpu_after(recommended: dict[str, float]) -> list[str]:
        rec = profile({name: {"cpuMillicores": m} for name, m in recommended.items()})
        patched = apply(right_size(asked, rec, POLICY, NOW, quota_items=cpu_quota).patch, asked)
        return [c["resources"]["requests"]["cpu"] for c in patched["spec"]["containers"]]

    assert cpu_after({"agent": 400.0, "sidecar": 250.0}) == ["100m", "250m"]  # 600m -> 650m: no rise
    assert cpu_after({"agent": 300.0, "sidecar": 250.0}) == ["300m", "250m"]  # 600m -> 550m: both


def test_a_best_effort_pod_is_left_alone_under_a_quota_for_pods_that_are_not() -> None:
    bare = pod(container())  # no requests or limits: BestEffort; a request would make it Burstable
    for scoped in (
        quota_items({"pods": "10", "limits.cpu": "8"}, scopes=["NotBestEffort"]),
        quota_items(
            {"pods": "10"},
            scopeSelector={"matchExpressions": [{"scopeName": "NotBestEffort", "operator": "Exists"}]},
        ),
    ):
        mutation = right_size(bare, profile(), POLICY, NOW, quota_items=scoped)
        assert mutation.patch == []
        assert (
            mutation.reason
            == "BestEffort pod: a request would bring it under ResourceQuota team/compute (scope NotBestEffort)"
        )
    other_scope = quota_items({"pods": "10"}, scopes=["BestEffort"])
    assert other_scope == []  # leaving a quota's scope can refuse nothing
    assert right_size(bare, profile(), POLICY, NOW, quota_items=other_scope).patch != []
    burstable = pod(container(limits={"memory": "1Gi"}))
    scoped = quota_items({"pods": "10"}, scopes=["NotBestEffort"])
    assert right_size(burstable, profile(), POLICY, NOW, quota_items=scoped).patch != []


def test_the_keys_of_a_quotas_status_count_while_its_spec_is_synced() -> None:
    obj = {
        "metadata": {"name": "compute", "namespace": "team"},
        "spec": {"hard": {"limits.cpu": "4"}},
        "status": {"hard": {"requests.memory": "8Gi", "limits.cpu": "4"}},  # the spec just dropped it
    }
    assert parse_resource_quota(obj) == [QuotaItem("ResourceQuota team/compute", "memory")]


def test_the_pods_limit_range_total_is_judged_on_the_changes_the_quota_leaves() -> None:
    # 100m -> 400m and 500m -> 250m raise the total to 650m, over the pod min of 500m; the quota
    # keeps only the cut, and 100m + 250m would break the min, so the cut goes too
    asked = pod(
        container("agent", requests={"cpu": "100m"}),
        container("sidecar", requests={"cpu": "500m"}),
    )
    rec = profile({"agent": {"cpuMillicores": 400.0}, "sidecar": {"cpuMillicores": 250.0}})
    pod_min = [LimitItem("LimitRange team/limits", "Pod", "cpu", min=500)]
    mutation = right_size(asked, rec, POLICY, NOW, pod_min, quota_items({"requests.cpu": "4"}))
    assert mutation.patch == []
    assert "cpu: the pod's total would break the LimitRange team/limits min" in mutation.reason


def test_best_effort_is_kubernetes_qos_class_zero_requests_and_init_containers_included() -> None:
    scoped = quota_items({"pods": "10"}, scopes=["NotBestEffort"])
    zero = pod(container(requests={"cpu": "0", "memory": "0"}))  # zero counts as none: BestEffort
    assert right_size(zero, profile(), POLICY, NOW, quota_items=scoped).patch == []
    init = pod(container())
    init["spec"]["initContainers"] = [container("setup", requests={"memory": "64Mi"})]  # Burstable
    assert right_size(init, profile(), POLICY, NOW, quota_items=scoped).patch != []


def test_a_change_that_leaves_the_quota_total_as_it_was_goes_ahead() -> None:
    swap = pod(container("agent", requests={"cpu": "100m"}), container("sidecar", requests={"cpu": "500m"}))
    rec = profile({"agent": {"cpuMillicores": 500.0}, "sidecar": {"cpuMillicores": 100.0}})
    cpu_quota = quota_items({"requests.cpu": "4"})
    patched = apply(right_size(swap, rec, POLICY, NOW, quota_items=cpu_quota).patch, swap)
    assert [c["resources"]["requests"]["cpu"] for c in patched["spec"]["containers"]] == ["500m", "100m"]
    # an init container of 2 cpu sets the pod's total, so 100m -> 400m raises nothing
    setup = pod(container("agent", requests={"cpu": "100m"}))
    setup["spec"]["initContainers"] = [container("setup", requests={"cpu": "2"})]
    rec = profile({"agent": {"cpuMillicores": 400.0}})
    patched = apply(right_size(setup, rec, POLICY, NOW, quota_items=cpu_quota).patch, setup)
    assert patched["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "400m"
