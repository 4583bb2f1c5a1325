"""The webhook's HTTP surface and profile cache in-process: /mutate, /readyz, watch events, the CLI."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient
from kubernetes import client
from typer.testing import CliRunner

from kinship.cli import app
from kinship.profile import ProfilePolicy
from predictor.webhook import (
    LimitRangeCache,
    ProfileCache,
    QuotaCache,
    create_app,
    limit_ranges_resource,
    profiles_resource,
    resource_quotas_resource,
)


def profile_doc(name: str, agent: str, cpu: float = 300.0) -> dict[str, Any]:
    return {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentProfile",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"agent": agent},
        "status": {"containers": [{"name": "agent", "recommendedRequests": {"cpuMillicores": cpu}}]},
    }


def raw(doc: dict[str, Any]) -> msgspec.Raw:
    return msgspec.Raw(json.dumps(doc).encode())


def review(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "abc",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "team",
            "operation": "CREATE",
            "object": pod,
        },
    }


POD = {
    "metadata": {"generateName": "planner-", "labels": {"kinship.dev/agent": "planner"}},
    "spec": {"containers": [{"name": "agent", "image": "a"}]},
}


def synced(cache: Any, resource_of: Any, *docs: dict[str, Any]) -> Any:
    """`cache` after its reflector's first list returned `docs`."""
    resource = resource_of(cache, client.ApiClient())
    resource.replace([raw(doc) for doc in docs])
    cache.mark_synced(resource.name)
    return cache


def synced_limit_ranges(*docs: dict[str, Any]) -> LimitRangeCache:
    return synced(LimitRangeCache(), limit_ranges_resource, *docs)


def limit_range(name: str, namespace: str = "team", **container: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"limits": [{"type": "Container", **container}]},
    }


@pytest.fixture
def cache() -> ProfileCache:
    cache = ProfileCache()
    resource = profiles_resource(cache, client.ApiClient())
    resource.replace([raw(profile_doc("planner-profile", "planner"))])
    cache.mark_synced(resource.name)
    return cache


def test_mutate_answers_from_the_cache(cache: ProfileCache) -> None:
    with TestClient(create_app(cache, synced_limit_ranges(), QuotaCache(), ProfilePolicy())) as http:
        reply = http.post("/mutate", json=review(POD))
    assert reply.status_code == 200
    response = reply.json()["response"]
    assert response["uid"] == "abc" and response["allowed"] is True
    patch = json.loads(base64.b64decode(response["patch"]))
    assert patch[0]["value"] == {"requests": {"cpu": "300m"}}


def test_mutate_keeps_requests_within_the_namespaces_limit_ranges(cache: ProfileCache) -> None:
    ranges = synced_limit_ranges(
        limit_range("floor", min={"cpu": "400m"}),
        limit_range("elsewhere", namespace="other", min={"cpu": "2"}),
    )
    with TestClient(create_app(cache, ranges, QuotaCache(), ProfilePolicy())) as http:
        patch = json.loads(
            base64.b64decode(http.post("/mutate", json=review(POD)).json()["response"]["patch"])
        )
    assert patch[0]["value"] == {"requests": {"cpu": "400m"}}  # 300m recommended, team's min 400m


def synced_quotas(*docs: dict[str, Any]) -> QuotaCache:
    return synced(QuotaCache(), resource_quotas_resource, *docs)


def quota(name: str, hard: dict[str, str], namespace: str = "team") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"hard": hard}}


def test_mutate_only_lowers_requests_the_namespaces_quotas_limit(cache: ProfileCache) -> None:
    def patch(quotas: QuotaCache) -> Any:
        with TestClient(create_app(cache, synced_limit_ranges(), quotas, ProfilePolicy())) as http:
            response = http.post("/mutate", json=review(POD)).json()["response"]
        return json.loads(base64.b64decode(response["patch"])) if "patch" in response else None

    # 300m recommended for a container with no request: a raise
    assert patch(synced_quotas(quota("compute", {"requests.cpu": "100"}))) is None
    elsewhere = synced_quotas(quota("compute", {"cpu": "100"}, namespace="other"))
    assert patch(elsewhere)[0]["value"] == {"requests": {"cpu": "300m"}}


def test_quota_events_follow_each_object() -> None:
    quotas = synced_quotas(quota("a", {"requests.cpu": "2"}))
    resource = resource_quotas_resource(quotas, client.ApiClient())
    resource.apply("ADDED", raw(quota("b", {"memory": "1Gi", "pods": "3"})))
    assert [(i.source, i.resource) for i in quotas.items("team")] == [
        ("ResourceQuota team/a", "cpu"),
        ("ResourceQuota team/b", "memory"),
    ]
    resource.apply("ADDED", raw(quota("0-first", {"requests.memory": "1Gi"})))  # name order, not arrival
    assert quotas.items("team")[0].source == "ResourceQuota team/0-first"
    resource.apply("DELETED", raw({"metadata": {"name": "0-first", "namespace": "team"}}))
    resource.apply("MODIFIED", raw(quota("a", {"pods": "3"})))
    assert [i.source for i in quotas.items("team")] == ["ResourceQuota team/b"]
    resource.apply("DELETED", raw({"metadata": {"name": "b", "namespace": "team"}}))
    assert quotas.items("team") == ()


def test_limit_range_events_follow_each_object() -> None:
    ranges = synced_limit_ranges(limit_range("a", min={"cpu": "100m"}))
    resource = limit_ranges_resource(ranges, client.ApiClient())
    resource.apply("ADDED", raw(limit_range("b", max={"memory": "1Gi"})))
    assert sorted((i.source, i.resource) for i in ranges.items("team")) == [
        ("LimitRange team/a", "cpu"),
        ("LimitRange team/b", "memory"),
    ]
    resource.apply("MODIFIED", raw(limit_range("a", min={"cpu": "lots"})))  # unreadable: no bounds
    resource.apply("DELETED", raw({"metadata": {"name": "b", "namespace": "team"}}))
    assert ranges.items("team") == ()


@pytest.mark.parametrize(
    "body", [b"{", b'"pod"', json.dumps({"apiVersion": "v1", "kind": "Pod"}).encode(), b""]
)
def test_mutate_refuses_what_is_no_admission_review_with_400_and_a_message(
    cache: ProfileCache, body: bytes
) -> None:
    app = create_app(cache, synced_limit_ranges(), QuotaCache(), ProfilePolicy())
    with TestClient(app, raise_server_exceptions=False) as http:
        reply = http.post("/mutate", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.text.startswith("bad AdmissionReview: ")
    assert "Traceback" not in reply.text


def test_readyz_waits_for_the_first_list_of_profiles_limit_ranges_and_quotas() -> None:
    cache, ranges, quotas = ProfileCache(), LimitRangeCache(), QuotaCache()
    with TestClient(create_app(cache, ranges, quotas, ProfilePolicy())) as http:
        assert http.get("/readyz").status_code == 503
        assert http.get("/livez").status_code == 200
        cache.mark_synced("agentprofiles")
        reply = http.get("/readyz")
        assert reply.status_code == 503 and reply.text == "LimitRanges and ResourceQuotas not listed yet\n"
        ranges.mark_synced("limitranges")
        reply = http.get("/readyz")
        assert reply.status_code == 503 and reply.text == "ResourceQuotas not listed yet\n"
        quotas.mark_synced("resourcequotas")
        assert http.get("/readyz").status_code == 200


def test_watch_events_follow_profiles_by_object_name(cache: ProfileCache) -> None:
    resource = profiles_resource(cache, client.ApiClient())
    resource.apply("MODIFIED", raw(profile_doc("planner-profile", "brain")))  # spec.agent changed
    assert cache.get("team", "planner") is None and cache.get("team", "brain") is not None
    broken = profile_doc("planner-profile", "brain")
    broken["status"]["confidence"] = 7  # invalid: the profile stops right-sizing
    resource.apply("MODIFIED", raw(broken))
    assert cache.get("team", "brain") is None
    resource.apply("ADDED", raw(profile_doc("p2", "coder")))
    resource.apply("DELETED", raw({"metadata": {"name": "p2", "namespace": "team"}}))
    assert len(cache) == 0


def test_the_cli_reports_every_bad_flag_at_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "webhook",
            "--tls-cert-file",
            str(tmp_path / "no.crt"),
            "--tls-key-file",
            str(tmp_path / "no.key"),
            "--listen",
            "8443",
        ],
    )
    assert result.exit_code == 2
    for expected in ("--listen: expected HOST:PORT", "--tls-cert-file: no such file", "--tls-key-file"):
        assert expected in result.output


def test_the_cli_refuses_a_key_that_does_not_match_the_cert(tmp_path: Path) -> None:
    for name in ("a", "b"):
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=x",
                "-keyout",
                str(tmp_path / f"{name}.key"),
                "-out",
                str(tmp_path / f"{name}.crt"),
            ],
            check=True,
            capture_output=True,
        )
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "webhook",
            "--tls-cert-file",
            str(tmp_path / "a.crt"),
            "--tls-key-file",
            str(tmp_path / "b.key"),
        ],
    )
    assert result.exit_code == 2
    assert "cannot load the key pair" in result.output


def test_the_trust_policy_flags_default_to_the_extenders_and_are_range_checked() -> None:
    from extender.config import ExtenderConfig
    from predictor.cli import _profile_policy

    assert _profile_policy(None, None) == ExtenderConfig().profiles
    assert _profile_policy(0.8, None).min_confidence == 0.8
    assert _profile_policy(None, 3600).max_age_seconds == 3600
    for flag, value in (("--min-confidence", "1.5"), ("--max-profile-age", "0")):
        result = CliRunner().invoke(
            app, ["predict", "webhook", "--tls-cert-file", "c", "--tls-key-file", "k", flag, value]
        )
        assert result.exit_code == 2
        assert flag in result.output
