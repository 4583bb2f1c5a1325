"""The kustomize base (manifests/) agrees with the code it deploys: the scheduler config, the
Service the config names, the extender's command line, probe paths and metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import typer.main
import yaml
from fastapi.testclient import TestClient

from extender.config import load_config
from extender.metrics import ExtenderMetrics
from extender.state import ClusterState
from kinship.cli import app
from tests.manifests import KUBE_VERSION, MANIFESTS, find, kubectl, rendered
from tests.serving import ROOT

pytestmark = pytest.mark.skipif(kubectl() is None, reason="no kubectl to render manifests/ with")

SCHEDULER_CONFIG = MANIFESTS / "scheduler" / "kinship-scheduler-config.yaml"
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


def container(deployment: str) -> dict[str, Any]:
    (only,) = find("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def mounted_file(deployment: str, path: str) -> str:
    """The content of the ConfigMap key mounted at `path` in the Deployment's only container."""
    pod = find("Deployment", deployment)["spec"]["template"]["spec"]
    for mount in container(deployment)["volumeMounts"]:
        directory = Path(mount["mountPath"])
        if Path(path).parent == directory:
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            configmap = find("ConfigMap", volume["configMap"]["name"])
            assert configmap["metadata"]["name"] == volume["configMap"]["name"]
            return str(configmap["data"][Path(path).name])
    raise AssertionError(f"nothing mounted at {path} in {deployment}")


def test_everything_lands_in_kinship_system_but_the_kube_system_role_binding() -> None:
    where = {
        (d["kind"], d["metadata"]["name"]): d["metadata"].get("namespace")
        for d in rendered()
        if d["kind"] not in CLUSTER_SCOPED
    }
    assert where.pop(("RoleBinding", "kinship-scheduler-authentication-reader")) == "kube-system"
    assert set(where.values()) == {"kinship-system"}
    crds = {d["metadata"]["name"] for d in rendered() if d["kind"] == "CustomResourceDefinition"}
    assert crds == {"agentgraphs.kinship.dev", "agentprofiles.kinship.dev"}


def test_the_scheduler_runs_the_shipped_config_byte_for_byte() -> None:
    args = container("kinship-scheduler")["command"]
    (config_arg,) = [a for a in args if a.startswith("--config=")]
    content = mounted_file("kinship-scheduler", config_arg.partition("=")[2])
    assert content.encode() == SCHEDULER_CONFIG.read_bytes()
    # the release ./local-cluster.sh builds and tests against
    assert container("kinship-scheduler")["image"] == f"registry.k8s.io/kube-scheduler:{KUBE_VERSION}"
    assert f'KUBE_VERSION="{KUBE_VERSION}"' in (ROOT / "local-cluster.sh").read_text()
    assert find("Deployment", "kinship-scheduler")["spec"]["replicas"] == 1
    assert yaml.safe_load(content)["leaderElection"]["leaderElect"] is False


def test_the_extender_service_is_the_url_the_scheduler_config_calls() -> None:
    (extender,) = yaml.safe_load(SCHEDULER_CONFIG.read_text())["extenders"]
    url = urlparse(extender["urlPrefix"])
    service = find("Service", "kinship-extender")
    assert url.hostname == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    (port,) = service["spec"]["ports"]
    assert port["port"] == url.port
    # the Service reaches the extender's pods on the port it listens on
    pod = find("Deployment", "kinship-extender")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (listening,) = container("kinship-extender")["ports"]
    assert port["targetPort"] == listening["name"]
    assert listening["containerPort"] == serve_params()["port"]


def serve_params() -> dict[str, Any]:
    """The extender container's command, parsed by `kinship serve` itself (unknown options and bad
    values raise)."""
    command = container("kinship-extender")["command"]
    assert command[:2] == ["kinship", "serve"]
    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    return dict(serve.make_context("kinship serve", list(command[2:])).params)


def test_the_extender_command_is_kinship_serve_in_cluster_mode_with_the_shipped_config(
    tmp_path: Path,
) -> None:
    params = serve_params()
    assert params["snapshot"] is None and not params["graph"]  # cluster mode: watches, in-cluster config
    assert params["host"] == "0.0.0.0"
    config = tmp_path / "config.yaml"
    config.write_text(mounted_file("kinship-extender", str(params["config"])))
    assert load_config(config) == load_config(None)  # ships the defaults, which live in the code


def test_the_extender_image_is_the_release_pyproject_declares() -> None:
    """The image tag is set by hand in kustomization.yaml; a release that bumps pyproject's
    version and forgets the tag would deploy the previous extender."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert container("kinship-extender")["image"] == f"kinship:{version}"


def test_probe_and_scrape_paths_are_routes_of_the_extender(client: TestClient) -> None:
    extender = container("kinship-extender")
    for probe in ("readinessProbe", "livenessProbe"):
        get = extender[probe]["httpGet"]
        assert get["port"] == extender["ports"][0]["name"]
        assert client.get(get["path"]).status_code == 200, get["path"]
    annotations = find("Deployment", "kinship-extender")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(extender["ports"][0]["containerPort"])
    assert "kinship_extender_cache_synced" in client.get(annotations["prometheus.io/path"]).text


def registered_series() -> set[str]:
    """Every series name the extender exports, as PromQL sees it (counters with _total,
    histograms as _bucket, _sum and _count)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    families = ExtenderMetrics(ClusterState()).registry.collect()
    return {f.name + suffix for f in families for suffix in suffixes[f.type]}


def promql(node: Any) -> Iterator[str]:
    """Every query in a Grafana dashboard: panel targets and template variable definitions."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from promql(value)
    elif isinstance(node, list):
        for item in node:
            yield from promql(item)


def test_every_metric_of_the_dashboard_is_one_the_extender_exports() -> None:
    configmap = find("ConfigMap", "kinship-dashboards")
    # the Grafana sidecar's label; a fixed name so that a re-apply replaces the dashboard
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["name"] == "kinship-dashboards"
    (text,) = configmap["data"].values()
    queries = list(promql(json.loads(text)))
    assert len(queries) > len(json.loads(text)["panels"])  # every panel's, and the variable's
    used = {name for q in queries for name in re.findall(r"\bkinship_\w+", q)}
    assert used, "the dashboard queries no kinship metric"
    assert used <= registered_series(), used - registered_series()


def test_the_extender_role_is_bound_to_the_extenders_account_and_grants_no_writes_but_bindings() -> None:
    account = find("Deployment", "kinship-extender")["spec"]["template"]["spec"]["serviceAccountName"]
    binding = find("ClusterRoleBinding", "kinship-extender")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "kinship-extender",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "kinship-system"}]
    for rule in find("ClusterRole", "kinship-extender")["rules"]:
        assert "*" not in rule["resources"] + rule["verbs"] + rule["apiGroups"]
        assert set(rule["verbs"]) <= {"list", "watch"} or rule["resources"] == ["pods/binding"]


def test_the_scheduler_account_has_the_stock_scheduler_roles() -> None:
    account = find("Deployment", "kinship-scheduler")["spec"]["template"]["spec"]["serviceAccountName"]
    subject = {"kind": "ServiceAccount", "name": account, "namespace": "kinship-system"}
    granted = {
        (d["kind"], d["metadata"].get("namespace"), d["roleRef"]["name"])
        for d in rendered()
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding") and subject in d["subjects"]
    }
    assert granted == {
        ("ClusterRoleBinding", None, "system:kube-scheduler"),
        ("ClusterRoleBinding", None, "system:volume-scheduler"),
        ("RoleBinding", "kube-system", "extension-apiserver-authentication-reader"),
    }
