"""The profiler's output against a real kube-apiserver: status by server-side apply, spec untouched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from profiler.config import ProfilerConfig
from profiler.edges import EdgeSample
from profiler.graph_model import GraphModel
from profiler.output import GROUP, PLURAL, VERSION, StatusWriter, existing_graphs
from profiler.runner import Runner

pytestmark = pytest.mark.e2e

SPEC = {"edges": [{"from": "planner", "to": "researcher", "weight": 30, "colocation": "Required"}]}


class FixedSource:
    """An EdgeSource that answers the same samples every round (the telemetry is not under test)."""

    def __init__(self, samples: list[EdgeSample]) -> None:
        self.name = "fixed"
        self.samples = samples

    def collect(self) -> list[EdgeSample]:
        return list(self.samples)


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"e2e-prof-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def config(**output: Any) -> ProfilerConfig:
    return ProfilerConfig.model_validate(
        {"output": {"min_write_interval_seconds": 0, **output}, "model": {"half_life_seconds": 60}}
    )


def runner_for(api: client.ApiClient, cfg: ProfilerConfig, samples: list[EdgeSample], now: float) -> Runner:
    """As `kinship profile` starts: list what the cluster holds, seed from it, then run."""
    runner = Runner(
        cfg,
        [FixedSource(samples)],
        GraphModel(cfg.model),
        StatusWriter(api, cfg.output),
        existing=existing_graphs(api),
        clock=lambda: now,
    )
    runner.seed()
    return runner


def get(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def test_status_is_applied_with_its_own_field_manager_and_spec_is_untouched(
    api: client.ApiClient, namespace: str
) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "AgentGraph",
            "metadata": {"name": "team"},
            "spec": SPEC,
        },
        field_manager="gitops",
    )
    before = get(api, namespace, "team")
    samples = [
        EdgeSample(namespace, "planner", "researcher", 48.0, 2.1e6, 3.2),
        EdgeSample(namespace, "researcher", "executor", 5.0, 100.0, None),
    ]
    runner = runner_for(api, config(), samples, now=1_800_000_000.0)
    assert runner.run_round().result == "ok"

    after = get(api, namespace, "team")
    assert after["spec"] == before["spec"] == SPEC
    assert after["status"]["observedAt"] == "2027-01-15T08:00:00Z"
    assert after["status"]["observedEdges"] == [
        {
            "from": "planner",
            "to": "researcher",
            "requestsPerSecond": 48.0,
            "bytesPerSecond": 2.1e6,
            "p50LatencyMs": 3.2,
        },
        {"from": "researcher", "to": "executor", "requestsPerSecond": 5.0, "bytesPerSecond": 100.0},
    ]
    managers = {(m["manager"], m.get("subresource", "")): m for m in after["metadata"]["managedFields"]}
    ours = managers[("kinship-profiler", "status")]
    assert ours["operation"] == "Apply"
    assert set(ours["fieldsV1"]) == {"f:status"}  # nothing of spec or metadata
    assert ("gitops", "") in managers  # the team still owns its spec

    # nothing changed: no write, so no new resourceVersion for every extender to process
    assert runner.run_round().result == "ok"
    assert get(api, namespace, "team")["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
    assert runner.metrics.registry.get_sample_value(
        "kinship_profiler_status_writes_total", {"result": "unchanged"}
    )

    # a restart: the new process starts from the published status, not from zero
    restarted = runner_for(api, config(), [], now=1_800_000_060.0)
    seeded = {(e.source, e.destination): e.requests_per_second for e in restarted.model.edges(namespace)}
    assert seeded == {("planner", "researcher"): 48.0, ("researcher", "executor"): 5.0}
    restarted.run_round()  # traffic stopped one half-life ago: edges halve, and that is a change
    status = get(api, namespace, "team")["status"]
    assert [e["requestsPerSecond"] for e in status["observedEdges"]] == [24.0, 2.5]
    assert get(api, namespace, "team")["spec"] == SPEC


def test_a_namespace_without_an_agentgraph_gets_one_only_when_configured(
    api: client.ApiClient, namespace: str
) -> None:
    samples = [EdgeSample(namespace, "orchestrator", "docs-agent", 7.0)]
    runner_for(api, config(), samples, now=1_800_000_000.0).run_round()
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert listed["items"] == []

    runner_for(api, config(create_missing_graphs=True), samples, now=1_800_000_000.0).run_round()
    created = get(api, namespace, namespace)
    assert created["status"]["observedEdges"][0]["requestsPerSecond"] == 7.0
    assert created.get("spec") in (None, {})
