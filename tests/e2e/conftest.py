"""The real local control plane (./local-cluster.sh), shared by every e2e test in a session.

If a cluster is already up (a developer's `./local-cluster.sh up`), the tests use it and leave
it running; otherwise they bring one up and take it down at the end.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import ROOT, STATE_DIR


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "local-cluster.sh"), *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    started = False
    if _script("status", timeout=60).returncode != 0:
        up = _script("up", timeout=3600)  # a cold build of the control plane is the slow part
        if up.returncode != 0:
            pytest.fail(
                f"./local-cluster.sh up failed ({up.returncode}):\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}"
            )
        started = True
    path = STATE_DIR / "kubeconfig"
    assert path.exists(), f"no kubeconfig at {path}"
    yield path
    if started:
        _script("down", timeout=300)


@pytest.fixture(scope="session")
def api(kubeconfig: Path):  # type: ignore[no-untyped-def]
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture(scope="session", autouse=True)
def clean_cluster(api) -> None:  # type: ignore[no-untyped-def]
    """`make demo` leaves its teams running; they would take capacity and GPUs from the tests."""
    from kubernetes import client

    from kinship.demo import delete_namespace

    for ns in client.CoreV1Api(api).list_namespace().items:
        if ns.metadata.name.startswith("agents-"):
            delete_namespace(api, ns.metadata.name)
