"""The admission webhook against the real kube-apiserver: `kinship predict webhook` on loopback
with a certificate made here, called by the API server through the shipped
MutatingWebhookConfiguration (its clientConfig pointed at the process), for a real Deployment's
pods created by the real controller-manager."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from kubernetes import client

from kinship.quantity import quantity
from predictor.rightsize import ANNOTATION
from tests.e2e.test_cluster_mode import eventually
from tests.manifests import MANIFESTS
from tests.serving import ROOT, free_port, stop

pytestmark = pytest.mark.e2e
MIB = 2**20
OPT_IN = {"kinship.dev/right-size": "true"}


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for IP:127.0.0.1 signed by it (as local-cluster.sh's gen_cert)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kinship-e2e-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n"
    )
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kinship-webhook",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-sha256", "-extfile", "server.ext", "-out", "server.crt")  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@contextlib.contextmanager
def webhook_process(
    kubeconfig: Path, cert: Path, key: Path, ca: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "kinship", "predict", "webhook", "--tls-cert-file", str(cert),
               "--tls-key-file", str(key), "--listen", f"127.0.0.1:{port}", "--kubeconfig", str(kubeconfig),
               "--log-format", "json", "--log-level", "debug"]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ)
    )
    trust = ssl.create_default_context(cafile=str(ca))
    try:

        def ready() -> bool:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            with contextlib.suppress(httpx.TransportError):
                return (
                    httpx.get(f"https://127.0.0.1:{port}/readyz", verify=trust, timeout=2).status_code == 200
                )
            return False

        eventually(ready, timeout=60)
        yield proc
    finally:
        stop(proc)


def webhook_configuration(name: str, namespace: str, port: int, ca: Path) -> dict[str, Any]:
    """The shipped configuration with its clientConfig pointed at the loopback process and, so that
    no other test's pods wait on it, its namespaceSelector narrowed to the test namespace."""
    config = yaml.safe_load((MANIFESTS / "webhook" / "mutatingwebhook.yaml").read_text())
    config["metadata"] = {"name": name}
    (hook,) = config["webhooks"]
    hook["clientConfig"] = {
        "url": f"https://127.0.0.1:{port}/mutate",
        "caBundle": base64.b64encode(ca.read_bytes()).decode(),
    }
    hook["namespaceSelector"]["matchLabels"] = {"kubernetes.io/metadata.name": namespace}
    return config


def create_profile(custom: client.CustomObjectsApi, namespace: str) -> None:
    """A profile as the predictor publishes it: the object, then its status subresource."""
    body = {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentProfile",
        "metadata": {"name": "planner", "namespace": namespace},
        "spec": {"agent": "planner"},
    }
    created = custom.create_namespaced_custom_object(
        "kinship.dev", "v1alpha1", namespace, "agentprofiles", body
    )
    created["status"] = {
        "model": "kinship",
        "confidence": 0.9,
        "lastTrained": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "containers": [
            {"name": "agent", "recommendedRequests": {"cpuMillicores": 122.4, "memoryBytes": 200.0 * MIB}}
        ],
    }
    custom.replace_namespaced_custom_object_status(
        "kinship.dev", "v1alpha1", namespace, "agentprofiles", "planner", created
    )


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name, **OPT_IN}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},  # no agent label: the agent is the Deployment's name
                "spec": {
                    "containers": [
                        {
                            "name": "agent",
                            "image": "agent:1",
                            "resources": {
                                "requests": {"cpu": "1", "memory": "100Mi"},
                                "limits": {"memory": "150Mi"},
                            },
                        },
                        {"name": "sidecar", "image": "proxy:1", "resources": {"requests": {"cpu": "50m"}}},
                    ]
                },
            },
        },
    }


def test_new_pods_of_a_profiled_agent_get_its_requests_and_pods_are_created_without_the_webhook(
    api: client.ApiClient, kubeconfig: Path, tmp_path: Path
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    custom, admission = client.CustomObjectsApi(api), client.AdmissionregistrationV1Api(api)
    namespace = f"e2e-webhook-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    config_name = f"kinship-e2e-{namespace}"
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    try:
        create_profile(custom, namespace)
        admission.create_mutating_webhook_configuration(
            webhook_configuration(config_name, namespace, port, ca)
        )
        with webhook_process(kubeconfig, cert, key, ca, port):
            # The API server picks the configuration up through its own watch: probe with
            # server-side dry runs (sideEffects None allows them) until the webhook is called.
            probe = {
                "metadata": {"generateName": "probe-", "labels": {"kinship.dev/agent": "planner", **OPT_IN}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
            }
            eventually(
                timeout=30,
                check=lambda: (
                    ANNOTATION
                    in (
                        core.create_namespaced_pod(namespace, probe, dry_run="All").metadata.annotations or {}
                    )
                ),
            )
            apps.create_namespaced_deployment(namespace, deployment("planner", 2))

            def planner_pods() -> list[Any] | None:
                found = [
                    p
                    for p in core.list_namespaced_pod(namespace).items
                    if p.metadata.name.startswith("planner-")
                ]
                return found if len(found) == 2 else None

            pods = eventually(planner_pods, timeout=30)
            for pod in pods:
                agent, sidecar = pod.spec.containers
                # 122.4 m rounded up; 200 MiB above the 150 Mi limit, capped at it
                assert quantity(agent.resources.requests["cpu"]) == 0.123
                assert quantity(agent.resources.requests["memory"]) == 150 * MIB
                assert agent.resources.limits == {"memory": "150Mi"}  # limits untouched
                assert sidecar.resources.requests == {"cpu": "50m"} and not sidecar.resources.limits
                record = json.loads(pod.metadata.annotations[ANNOTATION])
                assert record == {
                    "profile": "planner",
                    "original": {"agent": {"cpu": "1", "memory": "100Mi"}},
                }

        # The webhook is gone: failurePolicy Ignore creates pods with their declared requests.
        started = time.monotonic()
        bare = {
            "metadata": {"name": "after-webhook", "labels": {"kinship.dev/agent": "planner", **OPT_IN}},
            "spec": {
                "containers": [{"name": "agent", "image": "agent:1", "resources": {"requests": {"cpu": "1"}}}]
            },
        }
        created = core.create_namespaced_pod(namespace, bare)
        assert time.monotonic() - started < 5
        assert created.spec.containers[0].resources.requests == {"cpu": "1"}
        assert ANNOTATION not in (created.metadata.annotations or {})
    finally:
        with contextlib.suppress(client.ApiException):
            admission.delete_mutating_webhook_configuration(config_name)
        core.delete_namespace(namespace)
