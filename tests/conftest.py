"""Shared fixtures: a small two-team cluster as API objects, and the extender app over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from extender.app import create_app
from extender.config import ExtenderConfig
from extender.offline import build_state
from tests import objects as k

NODES = [
    k.node("n-a1", "zone-a"),
    k.node("n-a2", "zone-a"),
    k.node("gpu-a1", "zone-a", gpus=8),
    k.node("n-b1", "zone-b"),
    k.node("n-b2", "zone-b"),
    k.node("gpu-b1", "zone-b", gpus=4),
    k.node("n-c1", "zone-c"),
]
PODS = [
    k.pod("orchestrator-5d8f7c9b64-x1", "ops", node_name="n-a1", deployment="orchestrator"),
    k.pod("argocd-agent-5d8f7c9b64-x2", "ops", node_name="n-b1", deployment="argocd-agent"),
    k.pod("ticketing-agent-0", "ops", node_name="n-c1", app_name="ticketing-agent"),
    k.pod("planner-1", "research", node_name="n-b2", agent_label="planner"),
    k.pod("executor-1", "research", node_name="gpu-a1", agent_label="executor", gpus=2),
    k.pod("unrelated-web", "default", node_name="n-a2", scheduler="default-scheduler"),
    k.pod("finished-job", "research", node_name="gpu-b1", agent_label="executor", gpus=4, phase="Succeeded"),
]
GRAPHS = [
    k.graph(
        "ops",
        "ops",
        [
            {"from": "orchestrator", "to": "argocd-agent", "weight": 50},
            {"from": "orchestrator", "to": "docs-agent", "weight": 20},
            {"from": "orchestrator", "to": "ticketing-agent", "weight": 10},
        ],
    ),
    k.graph(
        "research",
        "research",
        [
            {"from": "planner", "to": "researcher", "weight": 30},
            {"from": "researcher", "to": "executor", "weight": 40},
            {"from": "executor", "to": "reviewer", "weight": 20, "colocation": "Required"},
        ],
    ),
]


@pytest.fixture
def cluster_files(tmp_path: Path) -> tuple[Path, Path]:
    snap = tmp_path / "snapshot.json"
    snap.write_text(json.dumps(k.snapshot(NODES, PODS)))
    graphs = tmp_path / "graphs.yaml"
    graphs.write_text(yaml.safe_dump_all(GRAPHS))
    return snap, graphs


@pytest.fixture
def client(cluster_files: tuple[Path, Path]) -> TestClient:
    snap, graphs = cluster_files
    state = build_state(snap, [graphs], observed_fraction=0.5)
    return TestClient(create_app(state, ExtenderConfig()))


def args(pod: dict[str, Any], names: list[str] | None = None, *, full_nodes: bool = False) -> dict[str, Any]:
    """ExtenderArgs as kube-scheduler marshals it (Go: no JSON tags, nil pointers as null)."""
    names = names if names is not None else [n["metadata"]["name"] for n in NODES]
    if full_nodes:
        by_name = {n["metadata"]["name"]: n for n in NODES}
        return {
            "Pod": pod,
            "Nodes": {"metadata": {}, "items": [by_name[n] for n in names]},
            "NodeNames": None,
        }
    return {"Pod": pod, "Nodes": None, "NodeNames": names}
