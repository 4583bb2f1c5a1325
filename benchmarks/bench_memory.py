"""Memory of the extender's cache at DESIGN.md's scale target: `python -m benchmarks.bench_memory`.

Target: 5,000 nodes and 150,000 pods in under 1 GiB. Objects are fed through the same upsert
path the watches use; the figure is what the cache retains (tracemalloc), plus the process RSS.
"""

from __future__ import annotations

import argparse
import resource
import tracemalloc

import msgspec

from extender.objects import Node, Pod
from extender.state import ClusterState
from tests import objects as k

_node = msgspec.json.Decoder(Node)
_pod = msgspec.json.Decoder(Pod)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--agents", type=int, default=3000)
    opts = parser.parse_args()

    node_template = msgspec.json.encode(k.node("template", "zone-a", gpus=8))
    pod_template = k.pod("template", "team-00", node_name="x", agent_label="a", gpus=1)
    tracemalloc.start()
    state = ClusterState()
    for i in range(opts.nodes):
        node = _node.decode(node_template)
        node.metadata.name = f"node-{i:05d}"
        node.metadata.labels = {"topology.kubernetes.io/zone": f"zone-{i % 3}"}
        state.upsert_node(node)
    pod_bytes = msgspec.json.encode(pod_template)
    for i in range(opts.pods):
        pod = _pod.decode(pod_bytes)  # a fresh object per pod, as from a watch event
        pod.metadata.name = f"pod-{i}"
        pod.metadata.uid = f"{i:08d}-0000-0000-0000-000000000000"
        pod.metadata.namespace = f"team-{i % 100:02d}"
        pod.metadata.labels = {"kinship.dev/agent": f"agent-{i % opts.agents}"}
        pod.spec.nodeName = f"node-{i % opts.nodes:05d}"
        state.upsert_pod(pod)
    retained, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = state.sizes()
    print(f"cache: {sizes['nodes']} nodes, {sizes['pods']} pods, {sizes['agents']} agents")
    per_pod = retained / max(sizes["pods"], 1)
    print(f"retained by the cache: {retained / 2**20:.0f} MiB ({per_pod:.0f} B per pod)")
    print(f"process max RSS (interpreter, numpy, decoders included): {rss_mib:.0f} MiB (target < 1024 MiB)")


if __name__ == "__main__":
    main()
