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
from tests.manifests import MANIFESTS
from tests.serving import ROOT, eventually, free_port, stop

pytestmark = pytest.mark.e2e
MIB = 2**20
OPT_IN = {"kinship.dev/right-size": "true"}
# The dry-run probe's container: a memory limit, as a maxLimitRequestRatio LimitRange requires.
PROBE_RESOURCES = {"limits": {"memory": "150Mi"}}


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


def create_profile(
    custom: client.CustomObjectsApi,
    namespace: str,
    cpu_millicores: float = 122.4,
    memory_bytes: float = 200.0 * MIB,
) -> None:
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
            {
                "name": "agent",
                "recommendedRequests": {"cpuMillicores": cpu_millicores, "memoryBytes": memory_bytes},
            }
        ],
    }
    custom.replace_namespaced_custom_object_status(
        "kinship.dev", "v1alpha1", namespace, "agentprofiles", "planner", created
    )


def deployment(name: str, replicas: int, sidecar: bool = True) -> dict[str, Any]:
    labels = {"app": name, **OPT_IN}
    containers: list[dict[str, Any]] = [
        {
            "name": "agent",
            "image": "agent:1",
            "resources": {"requests": {"cpu": "1", "memory": "100Mi"}, "limits": {"memory": "150Mi"}},
        }
    ]
    if sidecar:
        containers.append({"name": "sidecar", "image": "proxy:1", "resources": {"requests": {"cpu": "50m"}}})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},  # no agent label: the agent is the Deployment's name
                "spec": {"containers": containers},
            },
        },
    }


@contextlib.contextmanager
def webhook_in(api: client.ApiClient, kubeconfig: Path, directory: Path, namespace: str) -> Iterator[None]:
    """The webhook process serving `namespace` through the shipped configuration, once the API
    server calls it; the configuration is deleted on exit."""
    core, admission = client.CoreV1Api(api), client.AdmissionregistrationV1Api(api)
    config_name = f"kinship-e2e-{namespace}"
    ca, cert, key = make_certificates(directory)
    port = free_port()
    admission.create_mutating_webhook_configuration(webhook_configuration(config_name, namespace, port, ca))
    try:
        with webhook_process(kubeconfig, cert, key, ca, port):
            # The API server picks the configuration up through its own watch: probe with
            # server-side dry runs (sideEffects None allows them) until the webhook is called.
            probe = {
                "metadata": {"generateName": "probe-", "labels": {"kinship.dev/agent": "planner", **OPT_IN}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1", "resources": PROBE_RESOURCES}]},
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
            yield
    finally:
        with contextlib.suppress(client.ApiException):
            admission.delete_mutating_webhook_configuration(config_name)


def pods_of(core: client.CoreV1Api, namespace: str, name: str, count: int) -> list[Any]:
    def found() -> list[Any] | None:
        pods = [
            p for p in core.list_namespaced_pod(namespace).items if p.metadata.name.startswith(f"{name}-")
        ]
        return pods if len(pods) == count else None

    return eventually(found, timeout=30)


def test_requests_stay_within_the_namespaces_limit_range_so_pods_are_still_created(
    api: client.ApiClient, kubeconfig: Path, tmp_path: Path
) -> None:
    """LimitRanger validates after the webhook: a request below the namespace's Container min, or
    below limit / maxLimitRequestRatio, would get every pod of the Deployment refused."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    custom = client.CustomObjectsApi(api)
    namespace = f"e2e-limits-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        limits = {"type": "Container", "min": {"cpu": "200m"}, "maxLimitRequestRatio": {"memory": "1200m"}}
        core.create_namespaced_limit_range(
            namespace, {"metadata": {"name": "limits"}, "spec": {"limits": [limits]}}
        )
        create_profile(custom, namespace, cpu_millicores=50.0, memory_bytes=20.0 * MIB)
        with webhook_in(api, kubeconfig, tmp_path, namespace):
            # one container: a sidecar would need its own memory limit under this LimitRange
            apps.create_namespaced_deployment(namespace, deployment("planner", 2, sidecar=False))
            for pod in pods_of(core, namespace, "planner", 2):
                (agent,) = pod.spec.containers
                assert quantity(agent.resources.requests["cpu"]) == 0.2  # 50 m recommended
                # 20 MiB recommended; the 150 Mi limit at most 1.2x the request needs 125 MiB
                assert quantity(agent.resources.requests["memory"]) == 125 * MIB
                assert ANNOTATION in pod.metadata.annotations
    finally:
        core.delete_namespace(namespace)


def test_requests_a_resource_quota_limits_are_not_raised_so_pods_are_still_created(
    api: client.ApiClient, kubeconfig: Path, tmp_path: Path
) -> None:
    """The ResourceQuota plugin judges the pod after the webhook. The webhook never raises a request
    a quota limits; here raising 1 cpu to the 2 the profile recommends would also take the quota
    past its 2 cpu (another pod holds 500m), and the Deployment would get no pod at all, though
    the pod as written fits."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    custom = client.CustomObjectsApi(api)
    namespace = f"e2e-quota-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        create_profile(custom, namespace, cpu_millicores=2000.0, memory_bytes=50.0 * MIB)
        with webhook_in(api, kubeconfig, tmp_path, namespace):
            # after the webhook's dry-run probe, which requests no cpu (a cpu quota refuses that)
            quota = {"metadata": {"name": "compute"}, "spec": {"hard": {"requests.cpu": "2"}}}
            core.create_namespaced_resource_quota(namespace, quota)
            filler = {
                "metadata": {"name": "filler"},
                "spec": {
                    "containers": [{"name": "c", "image": "c:1", "resources": {"requests": {"cpu": "500m"}}}]
                },
            }

            def create_filler() -> Any:
                try:
                    return core.create_namespaced_pod(namespace, filler)
                except client.ApiException as exc:  # 403 until admission has the quota's status
                    if exc.status != 403:
                        raise
                    return None

            def cpu_used() -> float | None:
                used = core.read_namespaced_resource_quota("compute", namespace).status.used
                return None if used is None else quantity(used.get("requests.cpu", "0"))

            # A pod created before the quota controller's first count is not charged to it
            eventually(lambda: cpu_used() is not None, timeout=30)
            eventually(create_filler, timeout=30)
            eventually(lambda: cpu_used() == 0.5, timeout=30)
            apps.create_namespaced_deployment(namespace, deployment("planner", 1, sidecar=False))
            (pod,) = pods_of(core, namespace, "planner", 1)
            (agent,) = pod.spec.containers
            assert quantity(agent.resources.requests["cpu"]) == 1  # the user's: the quota limits cpu
            assert quantity(agent.resources.requests["memory"]) == 50 * MIB  # lowered: always fits
            assert json.loads(pod.metadata.annotations[ANNOTATION])["original"] == {
                "agent": {"memory": "100Mi"}
            }
    finally:
        core.delete_namespace(namespace)


def test_new_pods_of_a_profiled_agent_get_its_requests_and_pods_are_created_without_the_webhook(
    api: client.ApiClient, kubeconfig: Path, tmp_path: Path
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    custom = client.CustomObjectsApi(api)
    namespace = f"e2e-webhook-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        create_profile(custom, namespace)
        with webhook_in(api, kubeconfig, tmp_path, namespace):
            apps.create_namespaced_deployment(namespace, deployment("planner", 2))
            for pod in pods_of(core, namespace, "planner", 2):
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
        core.delete_namespace(namespace)
