"""`kinship predict train --kubeconfig` against the real API server: status by SSA, spec untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kinship.cli import app
from predictor.usage import write_usage
from tests.unit.predictor_data import onlineboutique

pytestmark = pytest.mark.e2e
GROUP, VERSION, PLURAL = "kinship.dev", "v1alpha1", "agentprofiles"
NAMESPACE = "default"


def _profile(name: str, agent: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentProfile",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"agent": agent},
    }


def test_train_applies_status_with_its_field_manager_and_never_spec(
    api, kubeconfig: Path, tmp_path: Path
) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    for name in ("frontend", "cartservice"):
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        except client.exceptions.ApiException as exc:
            assert exc.status == 404
    # The team owns frontend's profile (spec); cartservice has none yet.
    custom.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, _profile("frontend", "frontend"), field_manager="team-gitops"
    )
    usage = tmp_path / "usage.csv"
    write_usage(usage, onlineboutique(("frontend", "cartservice")))

    train = ["predict", "train", "--usage", str(usage), "--namespace", NAMESPACE, "--window", "1h"]
    train += ["--kubeconfig", str(kubeconfig)]
    result = CliRunner().invoke(app, train)
    assert result.exit_code == 0, result.output
    assert "applied 1, created 0, missing 1 (use --create-missing): default/cartservice" in result.stderr

    got = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "frontend")
    assert got["spec"] == {"agent": "frontend"}
    status = got["status"]
    assert status["model"] == "kinship" and status["horizonSeconds"] == 3600
    (container,) = status["containers"]
    assert container["name"] == "frontend" and container["recommendedRequests"]["memoryBytes"] > 0
    managers = {
        (m["manager"], m.get("subresource", ""), m["operation"]) for m in got["metadata"]["managedFields"]
    }
    assert ("kinship-predictor", "status", "Apply") in managers
    spec_owners = [
        m["manager"] for m in got["metadata"]["managedFields"] if "f:spec" in m.get("fieldsV1", {})
    ]
    assert spec_owners == ["team-gitops"]

    created = CliRunner().invoke(app, [*train, "--create-missing"])
    assert created.exit_code == 0, created.output
    assert "applied 1, created 1, missing 0" in created.stderr
    cart = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "cartservice")
    assert (
        cart["spec"] == {"agent": "cartservice"} and cart["status"]["containers"][0]["name"] == "cartservice"
    )
