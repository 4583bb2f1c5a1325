"""Regenerate examples/cluster-snapshot.json: `python -m hack.example_snapshot` from the repo root.

A 3-zone cluster with two GPU nodes where part of each example team already runs, so that
`kinship explain` has neighbours to place the rest next to.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests import objects as k

NODES = [
    k.node("node-a1", "zone-a"),
    k.node("node-a2", "zone-a"),
    k.node("gpu-a1", "zone-a", gpus=8, cpu="96", memory="1024Gi"),
    k.node("node-b1", "zone-b"),
    k.node("node-b2", "zone-b"),
    k.node("gpu-b1", "zone-b", gpus=4, cpu="48", memory="192Gi", gpu_product="NVIDIA-L4"),
    k.node("node-c1", "zone-c"),
    k.node("node-c2", "zone-c"),
]
OPS, RESEARCH = "agents-ops", "agents-research"
PODS = [
    k.pod(
        "orchestrator-7c9d5b8f4d-2xk8p",
        OPS,
        node_name="node-a1",
        agent_label="orchestrator",
        deployment="orchestrator",
    ),
    k.pod(
        "orchestrator-7c9d5b8f4d-9wq4z",
        OPS,
        node_name="node-b1",
        agent_label="orchestrator",
        deployment="orchestrator",
    ),
    k.pod(
        "argocd-agent-5f6b7c8d9e-h7m2n",
        OPS,
        node_name="node-a1",
        agent_label="argocd-agent",
        deployment="argocd-agent",
    ),
    k.pod(
        "argocd-mcp-6d7e8f9a0b-p3r5t",
        OPS,
        node_name="node-a1",
        agent_label="argocd-mcp",
        deployment="argocd-mcp",
    ),
    k.pod(
        "ticketing-agent-8a9b0c1d2e-k4l6m",
        OPS,
        node_name="node-c1",
        agent_label="ticketing-agent",
        deployment="ticketing-agent",
    ),
    k.pod(
        "planner-4b5c6d7e8f-s8t9u", RESEARCH, node_name="node-b2", agent_label="planner", deployment="planner"
    ),
    k.pod(
        "researcher-9c0d1e2f3a-v1w2x",
        RESEARCH,
        node_name="node-b2",
        agent_label="researcher",
        deployment="researcher",
    ),
    k.pod(
        "executor-3e4f5a6b7c-y3z4a",
        RESEARCH,
        node_name="gpu-b1",
        agent_label="executor",
        deployment="executor",
        gpus=1,
    ),
    k.pod(
        "web-frontend-1a2b3c4d5e-b5c6d",
        "default",
        node_name="node-a2",
        app_name="web-frontend",
        deployment="web-frontend",
        scheduler="default-scheduler",
    ),
    k.pod(
        "batch-train-0",
        "ml",
        node_name="gpu-a1",
        app_name="batch-train",
        gpus=6,
        scheduler="default-scheduler",
    ),
]

# What kube-scheduler posts for the docs-agent's pending pod (nodeCacheCapable: true).
DOCS_POD = k.pod("docs-agent-6c7d8e9f0a-m2n3p", OPS, agent_label="docs-agent", deployment="docs-agent")

if __name__ == "__main__":
    examples = Path(__file__).resolve().parent.parent / "examples"
    (examples / "cluster-snapshot.json").write_text(json.dumps(k.snapshot(NODES, PODS), indent=1) + "\n")
    request = {"Pod": DOCS_POD, "Nodes": None, "NodeNames": [n["metadata"]["name"] for n in NODES]}
    (examples / "prioritize-request.json").write_text(json.dumps(request, indent=1) + "\n")
    print(f"wrote {examples}/cluster-snapshot.json and prioritize-request.json")
