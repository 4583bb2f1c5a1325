"""The optional webhook install (manifests/webhook/) agrees with the code it deploys and with the
promises in its comments: opt-in pods only, CREATE only, never blocking, least privilege."""

from __future__ import annotations

import functools
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from fastapi.testclient import TestClient

from kinship.cli import app
from kinship.profile import ProfilePolicy
from predictor.webhook import LimitRangeCache, ProfileCache, QuotaCache, create_app
from tests.manifests import MANIFESTS, kubectl
from tests.serving import ROOT

pytestmark = pytest.mark.skipif(kubectl() is None, reason="no kubectl to render manifests/ with")
WEBHOOK = MANIFESTS / "webhook"


@functools.cache
def rendered() -> tuple[dict[str, Any], ...]:
    binary = kubectl()
    assert binary is not None
    out = subprocess.run(
        [binary, "kustomize", str(WEBHOOK)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def find(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in rendered() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container() -> dict[str, Any]:
    (only,) = find("Deployment", "kinship-webhook")["spec"]["template"]["spec"]["containers"]
    return only


def webhook_params() -> dict[str, Any]:
    """The container's command, parsed by `kinship predict webhook` itself (unknown options raise)."""
    command = container()["command"]
    assert command[:3] == ["kinship", "predict", "webhook"]
    predict = typer.main.get_command(app).commands["predict"]  # type: ignore[attr-defined]
    webhook = predict.commands["webhook"]
    return dict(webhook.make_context("kinship predict webhook", list(command[3:])).params)


def test_the_command_serves_the_mounted_certificate_on_the_container_port() -> None:
    params = webhook_params()
    assert params["kubeconfig"] is None  # in-cluster config
    (mount,) = [m for m in container()["volumeMounts"] if m["name"] == "tls"]
    assert (
        Path(params["tls_cert_file"]).parent
        == Path(params["tls_key_file"]).parent
        == Path(mount["mountPath"])
    )
    pod = find("Deployment", "kinship-webhook")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == find("Certificate", "kinship-webhook")["spec"]["secretName"]
    (port,) = container()["ports"]
    assert int(params["listen"].rpartition(":")[2]) == port["containerPort"]
    assert container()["image"] == (
        f"kinship:{tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['version']}"
    )


def test_probes_are_routes_of_the_webhook_over_https() -> None:
    cache, ranges, quotas = ProfileCache(), LimitRangeCache(), QuotaCache()
    cache.mark_synced("agentprofiles")
    ranges.mark_synced("limitranges")
    quotas.mark_synced("resourcequotas")
    with TestClient(create_app(cache, ranges, quotas, ProfilePolicy())) as client:
        for probe in ("readinessProbe", "livenessProbe"):
            get = container()[probe]["httpGet"]
            assert get["scheme"] == "HTTPS" and get["port"] == container()["ports"][0]["name"]
            assert client.get(get["path"]).status_code == 200


def test_the_configuration_calls_the_service_and_never_blocks_a_pod() -> None:
    config = find("MutatingWebhookConfiguration", "kinship-webhook")
    (hook,) = config["webhooks"]
    service = find("Service", "kinship-webhook")
    called = hook["clientConfig"]["service"]
    assert (called["name"], called["namespace"]) == (
        service["metadata"]["name"],
        service["metadata"]["namespace"],
    )
    (port,) = service["spec"]["ports"]
    assert called["port"] == port["port"] and port["targetPort"] == container()["ports"][0]["name"]
    assert called["path"] == "/mutate"
    assert hook["failurePolicy"] == "Ignore" and hook["sideEffects"] == "None"
    assert 2 <= hook["timeoutSeconds"] <= 3 and hook["admissionReviewVersions"] == ["v1"]
    assert hook["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert hook["objectSelector"] == {"matchLabels": {"kinship.dev/right-size": "true"}}
    (excluded,) = hook["namespaceSelector"]["matchExpressions"]
    assert excluded["operator"] == "NotIn" and set(excluded["values"]) == {"kube-system", "kinship-system"}
    certificate = find("Certificate", "kinship-webhook")
    injected = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert injected == f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    assert (
        f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
        in certificate["spec"]["dnsNames"]
    )


def test_a_renewed_serving_certificate_keeps_the_ca_the_api_server_trusts() -> None:
    """The serving certificate comes from a CA Issuer, not a self-signed one: the injected
    caBundle (that CA) stays the same across renewals, while the webhook picks up the new pair."""
    serving = find("Certificate", "kinship-webhook")["spec"]
    issuer = find("Issuer", serving["issuerRef"]["name"])["spec"]
    ca = [
        c
        for c in rendered()
        if c["kind"] == "Certificate" and c["spec"]["secretName"] == issuer["ca"]["secretName"]
    ]
    (ca_certificate,) = ca
    assert ca_certificate["spec"]["isCA"] is True
    assert "selfSigned" in find("Issuer", ca_certificate["spec"]["issuerRef"]["name"])["spec"]
    ca_hours, serving_hours = (
        int(c["duration"].removesuffix("h")) for c in (ca_certificate["spec"], serving)
    )
    assert ca_hours > 10 * serving_hours


def test_the_role_lists_and_watches_agentprofiles_limitranges_and_resourcequotas_only() -> None:
    role = find("ClusterRole", "kinship-webhook")
    assert role["rules"] == [
        {"apiGroups": ["kinship.dev"], "resources": ["agentprofiles"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["limitranges", "resourcequotas"], "verbs": ["list", "watch"]},
    ]
    binding = find("ClusterRoleBinding", "kinship-webhook")
    (subject,) = binding["subjects"]
    assert (
        subject["name"]
        == find("Deployment", "kinship-webhook")["spec"]["template"]["spec"]["serviceAccountName"]
    )
    assert subject["namespace"] == "kinship-system"


def test_the_base_install_does_not_need_cert_manager() -> None:
    base = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert not any(r.startswith("webhook") for r in base["resources"])
