"""Synthetic clusters for benchmarks: zones, GPU nodes, agent teams with graphs and AgentProfiles
(predicted peaks, correlations with a few teammates), filler pods.

Objects come from tests/objects.py, so they carry the bulk of real API objects.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests import objects as k

ZONES = ("zone-a", "zone-b", "zone-c")


@dataclass
class Cluster:
    snapshot: Path
    graphs: Path
    node_names: list[str]
    probe_pods: list[dict[str, Any]]  # pending pods of graph agents, to post in ExtenderArgs
    profiles: Path | None = None  # one AgentProfile per agent


def build(
    dir: Path, nodes: int, agents: int = 300, team_size: int = 30, filler_per_node: int = 2, seed: int = 7
) -> Cluster:
    rng = random.Random(seed)
    node_objs = [
        k.node(f"node-{i:05d}", ZONES[i % len(ZONES)], gpus=8 if i % 10 == 0 else 0) for i in range(nodes)
    ]
    names = [n["metadata"]["name"] for n in node_objs]
    pods: list[dict[str, Any]] = []
    graphs: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    for t in range(agents // team_size):
        ns = f"team-{t:02d}"
        members = [f"agent-{t:02d}-{a:02d}" for a in range(team_size)]
        edges = []
        for a, agent in enumerate(members[1:], 1):  # a tree rooted at an orchestrator, plus chords
            edges.append({"from": members[rng.randrange(a)], "to": agent, "weight": rng.randint(1, 100)})
            if rng.random() < 0.3:
                edges.append({"from": agent, "to": rng.choice(members), "weight": rng.randint(1, 20)})
        graphs.append(k.graph(ns, ns, edges))
        for agent in members:  # peaks small enough that every node still fits its pods
            peak = {"cpuMillicores": rng.randint(200, 1500), "memoryBytes": rng.randint(1, 8) * 2**29}
            others = rng.sample([m for m in members if m != agent], 3)
            correlations = [{"agent": o, "cpu": round(rng.uniform(-0.2, 0.95), 2)} for o in others]
            profiles.append(
                {
                    "apiVersion": "kinship.dev/v1alpha1",
                    "kind": "AgentProfile",
                    "metadata": {"name": agent, "namespace": ns},
                    "spec": {"agent": agent},
                    "status": {
                        "containers": [{"name": "agent", "predictedPeak": peak}],
                        "correlations": correlations,
                    },
                }
            )
        for agent in members:
            for r in range(rng.randint(1, 3)):
                pods.append(k.pod(f"{agent}-{r}", ns, node_name=rng.choice(names), agent_label=agent))
            probes.append(k.pod(f"{agent}-pending", ns, agent_label=agent))
    for i, name in enumerate(names):
        for f in range(filler_per_node):
            pods.append(
                k.pod(
                    f"filler-{i}-{f}",
                    "default",
                    node_name=name,
                    app_name=f"svc-{i % 50}",
                    scheduler="default-scheduler",
                )
            )
    dir.mkdir(parents=True, exist_ok=True)
    snapshot = dir / f"snapshot-{nodes}.json"
    snapshot.write_text(json.dumps(k.snapshot(node_objs, pods)))
    graph_file = dir / f"graphs-{nodes}.yaml"
    graph_file.write_text(yaml.safe_dump_all(graphs))
    profile_file = dir / f"profiles-{nodes}.yaml"
    profile_file.write_text(yaml.safe_dump_all(profiles))
    return Cluster(snapshot, graph_file, names, probes, profile_file)
