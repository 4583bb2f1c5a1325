"""Scheduling throughput, default profile vs kinship profile, on one real local control plane:
`python -m benchmarks.bench_throughput [--nodes 500,1000,5000] [--pods 1000]`.

Per node count, for each scheduler in turn:
- throughput: the scheduler is paused (SIGSTOP), the batch of pods is created, the scheduler
  resumes, and the clock runs until every pod is bound. The queue is full from the first moment,
  so pod creation speed (the API server on the same 2 cores) does not cap the figure.
- latency: pods are created one at a time, 50 ms apart (an unsaturated scheduler), and each
  pod's latency is from its create call returning to its binding arriving over a watch.
The pods are agent teams (5 agents x 2 replicas per namespace, a chain AgentGraph), created team
by team as Deployments roll out, so the extender scores real graph terms and its peer-binding
wait (see docs/extender.md) is part of what is measured.
Published extender setups reach about 11% of the vanilla throughput; the target is >= 50%.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from kubernetes import client, config, watch

from tests.serving import ROOT

AGENTS_PER_TEAM = 5
REPLICAS = 2
LATENCY_PODS = 100
LATENCY_GAP_SECONDS = 0.05
SCHEDULERS = (("default", "default-scheduler", "kube-scheduler"), ("kinship", "kinship", "kinship-scheduler"))


def node(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fake node like local-cluster.sh's: 16 CPU, 64 GiB, zones a/b/c; every 10th has 4 GPUs."""
    name = f"bench-node-{i:05d}"
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{'abc'[i % 3]}"}
    res = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    if i % 10 == 9:
        res["nvidia.com/gpu"] = "4"
        labels["nvidia.com/gpu.present"] = "true"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "capacity": res,
        "allocatable": res,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Bench",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ],
    }
    return {"metadata": {"name": name, "labels": labels}}, {"status": status}


def add_nodes(core: Any, start: int, stop: int) -> None:
    def one(i: int) -> None:
        obj, status = node(i)
        core.create_node(obj)
        core.patch_node_status(obj["metadata"]["name"], status)
        core.patch_node(
            obj["metadata"]["name"], {"spec": {"taints": None}}
        )  # NodeTaint admission's not-ready

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(start, stop)))


def team_graph(ns: str) -> dict[str, Any]:
    edges = [
        {"from": f"agent-{a}", "to": f"agent-{a + 1}", "weight": 10 * (a + 1)}
        for a in range(AGENTS_PER_TEAM - 1)
    ]
    return {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentGraph",
        "metadata": {"name": "team", "namespace": ns},
        "spec": {"edges": edges},
    }


def pods(teams: int, scheduler: str, tag: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for t in range(teams):
        for a in range(AGENTS_PER_TEAM):
            for r in range(REPLICAS):
                yield (
                    f"bench-team-{t:03d}",
                    {
                        "metadata": {
                            "name": f"{tag}-agent-{a}-{r}",
                            "labels": {"kinship.dev/agent": f"agent-{a}"},
                        },
                        "spec": {
                            "schedulerName": scheduler,
                            "containers": [
                                {
                                    "name": "agent",
                                    "image": "agent",
                                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                }
                            ],
                        },
                    },
                )


class Bindings:
    """Watches pods and stamps when each one's binding arrives (monotonic clock)."""

    def __init__(self, core: Any) -> None:
        self.core, self.bound, self.lock = core, {}, threading.Lock()
        self._watch = watch.Watch()
        self._stopping, self.error = False, None
        rv = core.list_pod_for_all_namespaces(limit=1).metadata.resource_version
        self._thread = threading.Thread(target=self._run, args=(rv,), daemon=True)
        self._thread.start()

    def _run(self, rv: str) -> None:
        try:
            for event in self._watch.stream(
                self.core.list_pod_for_all_namespaces,
                resource_version=rv,
                field_selector="spec.nodeName!=",
                timeout_seconds=3600,
            ):
                pod = event["object"]
                with self.lock:
                    self.bound.setdefault((pod.metadata.namespace, pod.metadata.name), time.monotonic())
        except Exception as exc:  # the stream ends with an error when the cluster goes down first
            if not self._stopping:
                self.error = exc

    def wait(self, keys: list[tuple[str, str]], timeout_seconds: float) -> list[float]:
        deadline = time.monotonic() + timeout_seconds
        while True:
            with self.lock:
                got = [self.bound.get(k) for k in keys]
            if all(t is not None for t in got):
                return [t for t in got if t is not None]
            if self.error is not None:
                raise RuntimeError(f"pod watch failed: {self.error}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(t is None for t in got)} of {len(keys)} pods not bound")
            time.sleep(0.02)

    def stop(self) -> None:
        self._stopping = True
        self._watch.stop()


@contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def create_all(core: Any, batch: list[tuple[str, dict[str, Any]]]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda nb: core.create_namespaced_pod(nb[0], nb[1]), batch))


def delete_all(core: Any, namespaces: list[str]) -> None:
    for ns in namespaces:
        core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
    while any(core.list_namespaced_pod(ns, limit=1).items for ns in namespaces):
        time.sleep(0.2)


def run_scale(
    core: Any,
    bindings: Bindings,
    pids: dict[str, int],
    teams: int,
    namespaces: list[str],
    out: Callable[[str], None],
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for label, scheduler, component in SCHEDULERS:
        batch = list(pods(teams, scheduler, f"{label}-t"))
        with paused(pids[component]):
            create_all(core, batch)
            start = time.monotonic()  # resumed right after this block
        done = bindings.wait([(ns, p["metadata"]["name"]) for ns, p in batch], 600)
        elapsed = max(done) - start
        delete_all(core, namespaces)
        latencies = []
        for ns, p in list(pods(teams, scheduler, f"{label}-l"))[:LATENCY_PODS]:
            core.create_namespaced_pod(ns, p)
            created = time.monotonic()
            (bound,) = bindings.wait([(ns, p["metadata"]["name"])], 60)
            latencies.append(bound - created)
            time.sleep(LATENCY_GAP_SECONDS)
        delete_all(core, namespaces)
        ms = np.array(latencies) * 1000
        results[label] = {
            "pods_per_second": len(batch) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
        }
        out(
            f"  {label:8} {results[label]['pods_per_second']:7.1f} pods/s   latency p50 "
            f"{results[label]['p50_ms']:6.1f} ms  p99 {results[label]['p99_ms']:6.1f} ms"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="500,1000,5000", help="node counts, ascending")
    parser.add_argument("--pods", type=int, default=1000, help="pods per batch")
    parser.add_argument("--state-dir", default="/tmp/kinship-bench-cluster")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up")
    args = parser.parse_args()
    scales = [int(n) for n in args.nodes.split(",")]
    teams = max(1, args.pods // (AGENTS_PER_TEAM * REPLICAS))
    env = {**os.environ, "KINSHIP_STATE_DIR": args.state_dir}
    script = str(ROOT / "local-cluster.sh")
    subprocess.run([script, "up", "--nodes", "0"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        state = Path(args.state_dir)
        pids = {c: int((state / "pids" / f"{c}.pid").read_text()) for _, _, c in SCHEDULERS}
        configuration = client.Configuration()
        config.load_kube_config(str(state / "kubeconfig"), client_configuration=configuration)
        configuration.connection_pool_maxsize = 16
        core = client.CoreV1Api(client.ApiClient(configuration))
        custom = client.CustomObjectsApi(core.api_client)
        namespaces = [f"bench-team-{t:03d}" for t in range(teams)]
        for ns in namespaces:
            core.create_namespace({"metadata": {"name": ns}})
            custom.create_namespaced_custom_object(
                "kinship.dev", "v1alpha1", ns, "agentgraphs", team_graph(ns)
            )
        while True:  # ServiceAccount admission needs each namespace's `default` account
            if all(core.list_namespaced_service_account(ns).items for ns in namespaces):
                break
            time.sleep(0.5)
        bindings = Bindings(core)
        print(
            f"{teams * AGENTS_PER_TEAM * REPLICAS} pods per batch ({teams} teams); latency over "
            f"{LATENCY_PODS} pods one at a time"
        )
        table = []
        have = 0
        for n in scales:
            add_nodes(core, have, n)
            have = n
            time.sleep(3)  # let both schedulers' and the extender's caches take the new nodes
            print(f"{n} nodes")
            r = run_scale(core, bindings, pids, teams, namespaces, print)
            table.append((n, r))
        bindings.stop()
        print(
            "\n| nodes | default pods/s | kinship pods/s | ratio "
            "| default p50 / p99 ms | kinship p50 / p99 ms |"
        )
        print("|---|---|---|---|---|---|")
        for n, r in table:
            d, k = r["default"], r["kinship"]
            print(
                f"| {n} | {d['pods_per_second']:.0f} | {k['pods_per_second']:.0f} | "
                f"{k['pods_per_second'] / d['pods_per_second']:.0%} | "
                f"{d['p50_ms']:.0f} / {d['p99_ms']:.0f} | {k['p50_ms']:.0f} / {k['p99_ms']:.0f} |"
            )
    finally:
        if not args.keep:
            subprocess.run([script, "down", "--purge"], env=env, check=False, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
