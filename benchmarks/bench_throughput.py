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
Five schedulers: the default profile; "profile", the kinship profile without its extender (every
feasible node scored, no default spreading: what the profile alone costs kube-scheduler);
"unbatched", the same with kube-scheduler's OpportunisticBatching off (a profile with extenders
loses it: consecutive pods of one signature no longer reuse the previous pod's node ranking);
"floor" (the profile calling an extender that does no work, benchmarks/floor_app.py: the extender
protocol's own cost here) and the kinship profile.
Per run it also prints each component's CPU milliseconds per pod and their sum (on two cores
they share one budget, so the sum bounds throughput and the parts say where a difference comes
from), the time its threads waited for a CPU, and
kube-scheduler's mean scheduling cycle (filter and score, extender calls included: pods are
scheduled one at a time, so this serial time bounds throughput) beside the extender's own time
in its handlers.
Published extender setups reach about 11% of the vanilla throughput; the target is >= 50%.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from kubernetes import client, config
from numpy.typing import NDArray
from prometheus_client.parser import text_string_to_metric_families

from kinship.demo import TrafficShare, traffic_share
from kinship.documents import read_yaml
from kinship.graph import parse_agent_graph
from tests.serving import ROOT, extra_kube_scheduler, free_port, wait_ready

AGENTS_PER_TEAM = 5
REPLICAS = 2
LATENCY_PODS = 100
LATENCY_GAP_SECONDS = 0.05
QUIET_SECONDS = 2.0
# (label, schedulerName, process): "profile" is the kinship profile without its extender,
# "unbatched" the same without kube-scheduler's batching, "floor" a kube-scheduler calling an
# extender that does nothing (benchmarks/floor_app.py): what the profile, the loss of batching and
# the extender protocol each cost on this machine.
SCHEDULERS = (
    ("default", "default-scheduler", "kube-scheduler"),
    ("profile", "kinship-profile", "profile-scheduler"),
    ("unbatched", "kinship-unbatched", "unbatched-scheduler"),
    ("floor", "kinship-floor", "floor-scheduler"),
    ("kinship", "kinship", "kinship-scheduler"),
)
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kinship-scheduler",
    "kinship-extender",
)
TICKS = os.sysconf("SC_CLK_TCK")


@contextmanager
def floor_scheduler(state: Path, env: dict[str, str]) -> Iterator[dict[str, int]]:
    """The floor extender and a kube-scheduler for it, configured like the kinship profile (the
    cluster's rendered copy of the shipped config) except for its name, its URL and no bindVerb:
    the floor does not bind, so kube-scheduler's own binder does, as for the default profile."""
    port = free_port()
    config = read_yaml(Path(env["KINSHIP_SCHEDULER_CONFIG"]))
    (profile,) = config["profiles"]
    profile["schedulerName"] = "kinship-floor"
    (extender,) = config["extenders"]
    extender["urlPrefix"] = f"http://127.0.0.1:{port}"
    extender.pop("bindVerb", None)
    logs = state / "logs"
    with (logs / "floor-extender.log").open("w") as log:
        uvicorn = [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--port", str(port)]
        quiet = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
        app = subprocess.Popen([*uvicorn, *quiet], cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_ready(f"http://127.0.0.1:{port}/docs", 60, app)
        with extra_kube_scheduler(env, config, "floor-scheduler") as scheduler:
            yield {"floor-extender": app.pid, "floor-scheduler": scheduler.pid}
    finally:
        app.terminate()
        app.wait(timeout=30)


@contextmanager
def profile_scheduler(env: dict[str, str], batching: bool) -> Iterator[dict[str, int]]:
    """A kube-scheduler with the kinship profile (the cluster's rendered copy of the shipped config)
    and no extender: the share of the gap that scoring every feasible node costs by itself, with
    or without the batching an extender turns off."""
    label = "profile" if batching else "unbatched"
    config = read_yaml(Path(env["KINSHIP_SCHEDULER_CONFIG"]))
    (profile,) = config["profiles"]
    profile["schedulerName"] = f"kinship-{label}"
    del config["extenders"]
    flags = () if batching else ("--feature-gates=OpportunisticBatching=false",)
    with extra_kube_scheduler(env, config, f"{label}-scheduler", *flags) as scheduler:
        yield {f"{label}-scheduler": scheduler.pid}


HANDLER_SECONDS = "kinship_extender_request_duration_seconds"


def extender_counters(url: str) -> dict[str, float]:
    """The extender's peer-wait counters (seconds waited, timeouts) and its time in each verb's
    handler (sum and count per verb), from its /metrics."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("kinship_extender_peer_bind_wait") and sample.name.endswith("_total"):
                out[sample.name] = sample.value
            elif sample.name in (f"{HANDLER_SECONDS}_sum", f"{HANDLER_SECONDS}_count"):
                out[f"{sample.name}:{sample.labels['verb']}"] = sample.value
    return out


def scheduling_cycle(pid: int, state: Path) -> tuple[float, float]:
    """(sum of seconds, count) of kube-scheduler's scheduling_algorithm_duration: filter and score
    for one pod, extender calls included. Scheduling is one pod at a time, so this serial time
    bounds throughput; binding runs beside it. Read from the scheduler's secure port with the
    cluster's admin certificate."""
    args = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    port = next(a.split("=", 1)[1] for a in args if a.startswith("--secure-port="))
    context = ssl.create_default_context(cafile=None)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed serving cert
    context.load_cert_chain(state / "pki" / "admin.crt", state / "pki" / "admin.key")
    url = f"https://127.0.0.1:{port}/metrics"
    text = urllib.request.urlopen(url, context=context, timeout=10).read().decode()
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "scheduler_scheduling_algorithm_duration_seconds_sum":
                total += sample.value
            elif sample.name == "scheduler_scheduling_algorithm_duration_seconds_count":
                count += sample.value
    return total, count


def run_queue_wait(pids: dict[str, int]) -> dict[str, float]:
    """Seconds each component's threads spent runnable but waiting for a CPU so far
    (/proc/PID/task/*/schedstat, second field). On two cores this is where a serial chain of
    processes (kube-scheduler -> extender -> kube-scheduler) loses its time."""
    out = {}
    for name, pid in pids.items():
        waited = 0
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                waited += int(Path(path).read_text().split()[1])
            except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
                continue
        out[name] = waited / 1e9
    return out


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds each component has used so far (/proc/PID/stat fields 14, 15).

    On two cores, throughput is a CPU budget shared by every process: where the seconds go says
    whether a scheduler is waiting or computing."""
    out = {}
    for name, pid in pids.items():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[name] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


SETTLED_CPU = 0.15  # all components together, CPU seconds per second: an idle cluster uses ~0.05
SETTLE_SECONDS = 180


def settle(pids: dict[str, int], out: Callable[[str], None]) -> None:
    """Wait until the cluster is idle before a scale's first batch (the default profile's).

    Adding nodes sets off work that outlasts the calls: every scheduler and the extender take
    the new nodes into their caches, and controllers may react (kube-controller-manager's TTL
    controller rewrote every node for minutes until local-cluster.sh turned it off). Whatever is
    still running slows the first scheduler measured and not the others."""
    start = then = time.monotonic()
    before, quiet = sum(cpu_seconds(pids).values()), 0
    while quiet < 2:  # two quiet seconds in a row
        time.sleep(1)
        now, used = time.monotonic(), sum(cpu_seconds(pids).values())
        cpus = (used - before) / (now - then)
        quiet = quiet + 1 if cpus < SETTLED_CPU else 0
        before, then = used, now
        if now - start > SETTLE_SECONDS:
            out(f"  (still busy {SETTLE_SECONDS} s after adding nodes: {cpus:.2f} CPUs; measuring anyway)")
            return
    out(f"  (cluster idle {time.monotonic() - start:.0f} s after adding nodes)")


def node_name(i: int) -> str:
    return f"bench-node-{i:05d}"


def node_zone(i: int) -> str:
    return f"zone-{'abc'[i % 3]}"


def node(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fake node like local-cluster.sh's: 16 CPU, 64 GiB, zones a/b/c; every 10th has 4 GPUs."""
    name = node_name(i)
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": node_zone(i)}
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


def crossing(
    batch: list[tuple[str, dict[str, Any]]], node_of: dict[tuple[str, str], str], nodes: int
) -> TrafficShare:
    """Placement quality of a batch: the share of each team's graph traffic that crosses nodes
    (and zones), measured as the demo measures it, averaged over the teams (all alike)."""
    graph = parse_agent_graph(team_graph("bench"), "the benchmark's team graph")
    zone_of = {node_name(i): node_zone(i) for i in range(nodes)}
    teams: dict[str, dict[str, list[str]]] = {}
    for ns, pod in batch:
        agent = pod["metadata"]["labels"]["kinship.dev/agent"]
        teams.setdefault(ns, {}).setdefault(agent, []).append(node_of[(ns, pod["metadata"]["name"])])
    shares = [traffic_share([graph], placement, zone_of) for placement in teams.values()]
    return TrafficShare(
        float(np.mean([s.cross_node for s in shares])), float(np.mean([s.cross_zone for s in shares]))
    )


class Bindings:
    """Watches pods and stamps when each one's binding arrives (monotonic clock)."""

    def __init__(self, core: Any) -> None:
        self.core, self.lock = core, threading.Lock()
        self.bound: dict[tuple[str, str], float] = {}  # when each pod's binding was seen
        self.node_of: dict[tuple[str, str], str] = {}  # where each pod was bound
        self._response: Any = None
        self._stopping, self.polled = False, 0
        self.error: Exception | None = None
        rv = core.list_pod_for_all_namespaces(limit=1).metadata.resource_version
        self._thread = threading.Thread(target=self._run, args=(rv,), daemon=True)
        self._thread.start()

    def _run(self, rv: str) -> None:
        # Raw watch lines and json.loads: the client's model deserialization takes milliseconds
        # per pod, which fell behind the default scheduler and stamped bindings late.
        # A watch ends whenever the API server closes it; resume from the last event seen.
        try:
            while not self._stopping:
                self._response = self.core.list_pod_for_all_namespaces(
                    watch=True, resource_version=rv, field_selector="spec.nodeName!=", _preload_content=False
                )
                buffer = b""
                for chunk in self._response.stream(65536):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    now = time.monotonic()
                    for line in lines:
                        if not line:
                            continue
                        event = json.loads(line)
                        meta = event["object"]["metadata"]
                        if event["type"] == "ERROR":
                            raise RuntimeError(f"watch error: {event['object']}")
                        rv = meta["resourceVersion"]
                        key = (meta["namespace"], meta["name"])
                        with self.lock:
                            self.bound.setdefault(key, now)
                            self.node_of[key] = event["object"]["spec"]["nodeName"]
        except Exception as exc:  # the stream ends with an error when the cluster goes down first
            if not self._stopping:
                self.error = exc

    def wait(self, keys: list[tuple[str, str]], timeout_seconds: float) -> list[float]:
        deadline = time.monotonic() + timeout_seconds
        progress, quiet_since = -1, time.monotonic()
        while True:
            with self.lock:
                missing = [k for k in keys if k not in self.bound]
            if not missing:
                with self.lock:
                    return [self.bound[k] for k in keys]
            if self.error is not None:
                raise RuntimeError(f"pod watch failed: {self.error}")
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"{len(missing)} of {len(keys)} pods not bound")
            if len(missing) != progress:
                progress, quiet_since = len(missing), now
            elif now - quiet_since > QUIET_SECONDS:
                self._poll(missing)
                quiet_since = time.monotonic()
            time.sleep(0.02)

    def _poll(self, missing: list[tuple[str, str]]) -> None:
        """Once no binding has arrived for QUIET_SECONDS, the missing pods are looked up and the
        bound ones stamped now (late, so it can only lower the figures). Polling only when the
        watch is quiet keeps list calls off the API server while a scheduler is busy; the count
        is printed so that a run shows it happened."""
        for ns in sorted({ns for ns, _ in missing}):
            bound = self.core.list_namespaced_pod(ns, field_selector="spec.nodeName!=").items
            with self.lock:
                for pod in bound:
                    key = (ns, pod.metadata.name)
                    if key in missing and key not in self.bound:
                        self.bound[key] = time.monotonic()
                        self.node_of[key] = pod.spec.node_name
                        self.polled += 1

    def stop(self) -> None:
        self._stopping = True
        if self._response is not None:
            self._response.shutdown()


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
    extender_url: str,
    state: Path,
    nodes: int,
    teams: int,
    namespaces: list[str],
    out: Callable[[str], None],
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for label, scheduler, component in SCHEDULERS:
        batch = list(pods(teams, scheduler, f"{label}-t{nodes}"))  # names unique per scale
        cycle_before = scheduling_cycle(pids[component], state)  # its port does not answer while paused
        with paused(pids[component]):
            create_all(core, batch)
            before, waits = cpu_seconds(pids), extender_counters(extender_url)
            queued_before = run_queue_wait(pids)
            start = time.monotonic()  # resumed right after this block
        done = bindings.wait([(ns, p["metadata"]["name"]) for ns, p in batch], 600)
        elapsed = max(done) - start
        after, queued_after = cpu_seconds(pids), run_queue_wait(pids)
        used = {c: after[c] - before[c] for c in pids}
        queued = {c: queued_after[c] - queued_before[c] for c in pids}
        cycle_after = scheduling_cycle(pids[component], state)
        with bindings.lock:
            share = crossing(batch, bindings.node_of, nodes)
        waited = {k: v - waits.get(k, 0.0) for k, v in extender_counters(extender_url).items()}
        delete_all(core, namespaces)
        ms = latencies_ms(core, bindings, list(pods(teams, scheduler, f"{label}-l{nodes}"))[:LATENCY_PODS])
        delete_all(core, namespaces)
        results[label] = {
            "pods_per_second": len(batch) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "cross_node": share.cross_node,
            "cross_zone": share.cross_zone,
        }
        if bindings.polled:
            out(f"  ({bindings.polled} bindings missed by the watch, stamped late by polling)")
            bindings.polled = 0
        out(
            f"  {label:8} {results[label]['pods_per_second']:7.1f} pods/s   latency p50 "
            f"{results[label]['p50_ms']:6.1f} ms  p99 {results[label]['p99_ms']:6.1f} ms"
        )
        out(f"           graph traffic crossing nodes {share.cross_node:.0%}, zones {share.cross_zone:.0%}")
        print_costs(out, used, queued, len(batch), elapsed)
        cycles = cycle_after[1] - cycle_before[1]
        if cycles:
            cycle_ms = 1000 * (cycle_after[0] - cycle_before[0]) / cycles
            out(f"           scheduling cycle (filter + score, extender calls too): {cycle_ms:.1f} ms/pod")
        if label == "kinship":
            print_extender(out, waited, len(batch))
    return results


def latencies_ms(
    core: Any, bindings: Bindings, batch: list[tuple[str, dict[str, Any]]]
) -> NDArray[np.float64]:
    """Each pod created alone, LATENCY_GAP_SECONDS apart: create call returned -> binding seen."""
    latencies = []
    for ns, p in batch:
        core.create_namespaced_pod(ns, p)
        created = time.monotonic()
        (bound,) = bindings.wait([(ns, p["metadata"]["name"])], 60)
        latencies.append(bound - created)
        time.sleep(LATENCY_GAP_SECONDS)
    return np.array(latencies) * 1000


def print_costs(
    out: Callable[[str], None], used: dict[str, float], queued: dict[str, float], pods: int, elapsed: float
) -> None:
    out(
        "           CPU ms per pod while binding the batch: "
        + ", ".join(f"{c} {1000 * v / pods:.1f}" for c, v in used.items())
    )
    total_ms = 1000 * sum(used.values()) / pods
    cores = len(os.sched_getaffinity(0))
    out(
        f"           all of them: {total_ms:.1f} CPU ms per pod, a ceiling of "
        f"{1000 * cores / total_ms:.0f} pods/s on {cores} CPUs (measured {pods / elapsed:.0f})"
    )
    out(
        "           waiting for a CPU, ms per pod: "
        + ", ".join(f"{c} {1000 * v / pods:.1f}" for c, v in queued.items())
    )


def print_extender(out: Callable[[str], None], waited: dict[str, float], pods: int) -> None:
    handlers = []
    for verb in ("filter", "prioritize"):
        calls = waited.get(f"{HANDLER_SECONDS}_count:{verb}", 0)
        if calls:
            handler_ms = 1000 * waited[f"{HANDLER_SECONDS}_sum:{verb}"] / calls
            handlers.append(f"{verb} {handler_ms:.2f} ms")
    out("           extender handler time per call: " + ", ".join(handlers))
    wait_ms = 1000 * waited.get("kinship_extender_peer_bind_wait_seconds_total", 0) / pods
    timeouts = waited.get("kinship_extender_peer_bind_wait_timeouts_total", 0)
    out(f"           extender peer-bind wait per pod: {wait_ms:.1f} ms, {timeouts:.0f} timeouts")


def create_teams(core: Any, custom: Any, namespaces: list[str]) -> None:
    for ns in namespaces:
        core.create_namespace({"metadata": {"name": ns}})
        custom.create_namespaced_custom_object("kinship.dev", "v1alpha1", ns, "agentgraphs", team_graph(ns))
    while True:  # ServiceAccount admission needs each namespace's `default` account
        if all(core.list_namespaced_service_account(ns).items for ns in namespaces):
            break
        time.sleep(0.5)


def print_table(table: list[tuple[int, dict[str, dict[str, float]]]]) -> None:
    labels = [label for label, _, _ in SCHEDULERS]
    print(
        f"\n| nodes | pods/s {' / '.join(labels)} | "
        + " | ".join(f"{x} vs default" for x in labels[1:])
        + " | kinship vs floor | p50 / p99 ms "
        + " | ".join(labels)
        + f" | traffic crossing nodes {' / '.join(labels)} |"
    )
    print("|---" * (2 * len(labels) + 4) + "|")
    for n, r in table:
        rate = {x: r[x]["pods_per_second"] for x in labels}
        print(
            f"| {n} | {' / '.join(f'{rate[x]:.0f}' for x in labels)} | "
            + " | ".join(f"{rate[x] / rate['default']:.0%}" for x in labels[1:])
            + f" | {rate['kinship'] / rate['floor']:.0%} | "
            + " | ".join(f"{r[x]['p50_ms']:.0f} / {r[x]['p99_ms']:.0f}" for x in labels)
            + " | "
            + " / ".join(f"{r[x]['cross_node']:.0%}" for x in labels)
            + " |"
        )


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
    stack = ExitStack()
    try:
        state = Path(args.state_dir)
        pids = {c: int((state / "pids" / f"{c}.pid").read_text()) for c in COMPONENTS}
        env_lines = (state / "cluster.env").read_text().splitlines()
        port = next(line.split("=", 1)[1] for line in env_lines if line.startswith("KINSHIP_EXTENDER_PORT="))
        extender_url = f"http://127.0.0.1:{port}"
        configuration = client.Configuration()
        config.load_kube_config(str(state / "kubeconfig"), client_configuration=configuration)
        configuration.connection_pool_maxsize = 16
        core = client.CoreV1Api(client.ApiClient(configuration))
        custom = client.CustomObjectsApi(core.api_client)
        namespaces = [f"bench-team-{t:03d}" for t in range(teams)]
        create_teams(core, custom, namespaces)
        bindings = Bindings(core)
        cluster_env = dict(line.split("=", 1) for line in env_lines)
        for batching in (True, False):
            pids.update(stack.enter_context(profile_scheduler(cluster_env, batching)))
        pids.update(stack.enter_context(floor_scheduler(state, cluster_env)))
        print(
            f"{teams * AGENTS_PER_TEAM * REPLICAS} pods per batch ({teams} teams); latency over "
            f"{LATENCY_PODS} pods one at a time"
        )
        table = []
        have = 0
        for n in scales:
            add_nodes(core, have, n)
            have = n
            settle(pids, print)
            print(f"{n} nodes")
            r = run_scale(core, bindings, pids, extender_url, state, n, teams, namespaces, print)
            table.append((n, r))
        bindings.stop()
        print_table(table)
    finally:
        stack.close()
        if not args.keep:
            subprocess.run([script, "down", "--purge"], env=env, check=False, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
