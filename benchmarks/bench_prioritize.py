"""/prioritize latency over HTTP vs an empty handler: `python -m benchmarks.bench_prioritize`.

kube-scheduler calls the extender once per pod, one call at a time, so this measures sequential
calls on one keep-alive connection per server (stdlib http.client, the lightest client). Both
servers run at once and calls alternate between them in small blocks, so that both see the same
machine noise: on a shared 2-core VM the tail moves by milliseconds from one minute to the next.
The in-process column is the handler alone (decode, score, encode), no HTTP.
NodeNames mode (nodeCacheCapable: true), a graph of 300 agents, each with an AgentProfile
(predicted peak, correlations with 3 teammates) unless --no-profiles.
Target (issue 2, 2 cores): p99 <= 5 ms at 5,000 nodes and <= 3x the empty handler.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import synthetic
from tests.serving import ROOT, free_port, kinship_serve, wait_ready

BLOCK = 50


def call(conn: http.client.HTTPConnection, body: bytes) -> float:
    start = time.perf_counter()
    conn.request("POST", "/prioritize", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")
    return elapsed


def alternate(ports: tuple[int, int], bodies: list[bytes], requests: int, warmup: int) -> list[list[float]]:
    conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports]
    times: list[list[float]] = [[], []]
    for i in range(warmup):
        for conn in conns:
            call(conn, bodies[i % len(bodies)])
    for block in range(requests // BLOCK):
        for which in (block % 2, 1 - block % 2):  # alternate which server goes first
            for j in range(BLOCK):
                times[which].append(call(conns[which], bodies[(block * BLOCK + j) % len(bodies)]))
    for conn in conns:
        conn.close()
    return times


def in_process(
    cluster: synthetic.Cluster, bodies: list[bytes], requests: int, profiles: list[Path]
) -> tuple[list[float], list[float]]:
    """The handler alone: prioritize with the same node list every call (what the HTTP columns
    send), and filter with a new order of the nodes every call. kube-scheduler's parallel filter
    workers append feasible nodes as they finish, so in a cluster consecutive pods often bring
    a new order: the filter call decodes and looks up every name, and prioritize, which gets the
    list filter just passed, finds it resolved."""
    from extender import wire
    from extender.app import Extender
    from extender.config import ExtenderConfig
    from extender.metrics import ExtenderMetrics
    from extender.offline import build_state

    state = build_state(cluster.snapshot, [cluster.graphs], 0.5, profiles)
    extender = Extender(state, ExtenderConfig(), ExtenderMetrics(state), binder=None)
    rng = random.Random(11)
    orders = []
    for pod in cluster.probe_pods[:50]:
        names = list(cluster.node_names)
        rng.shuffle(names)
        orders.append(json.dumps({"Pod": pod, "Nodes": None, "NodeNames": names}).encode())
    # one loop after the other: the extender remembers the last list, which is the point of each
    timed: list[list[float]] = []
    for verb, calls in ((extender.prioritize, bodies), (extender.filter, orders)):
        out = []
        for i in range(requests + 200):
            start = time.perf_counter()
            verb(wire.decode_args(calls[i % len(calls)]))
            if i >= 200:
                out.append(time.perf_counter() - start)
        timed.append(out)
    return timed[0], timed[1]


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--requests", type=int, default=2000, help="per server")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--no-profiles", action="store_true", help="no AgentProfiles (the workload before issue 5)"
    )
    opts = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in opts.nodes:
            cluster = synthetic.build(Path(tmp), n)
            profiles = [] if opts.no_profiles or cluster.profiles is None else [cluster.profiles]
            bodies = [
                json.dumps({"Pod": p, "Nodes": None, "NodeNames": cluster.node_names}).encode()
                for p in cluster.probe_pods
            ]
            empty_port = free_port()
            empty = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "benchmarks.empty_app:app",
                    "--port",
                    str(empty_port),
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
            )
            try:
                wait_ready(f"http://127.0.0.1:{empty_port}/docs", 60, empty)
                args = (
                    "--snapshot",
                    str(cluster.snapshot),
                    "--graph",
                    str(cluster.graphs),
                    "--log-level",
                    "warning",
                    *(arg for path in profiles for arg in ("--profile", str(path))),
                )
                with kinship_serve(*args) as (url, proc):
                    startup = wait_ready(f"{url}/readyz", 300, proc)
                    port = int(url.rsplit(":", 1)[1])
                    base, real = alternate((empty_port, port), bodies, opts.requests, opts.warmup)
            finally:
                empty.terminate()
                empty.wait()
            local, fresh = in_process(cluster, bodies, opts.requests, profiles)
            rows.append((n, len(bodies[0]), startup, base, real, local, fresh))
            print(f"measured {n} nodes", file=sys.stderr, flush=True)

    print(
        f"\n/prioritize, NodeNames mode, 300 agents ({'no ' if opts.no_profiles else ''}AgentProfiles), "
        f"{opts.requests} sequential calls per server, alternating in blocks of {BLOCK}"
    )
    print(
        f"{'nodes':>6} {'body KiB':>8} {'ready s':>7} {'empty p50/p99 ms':>17} {'kinship p50/p99 ms':>19} "
        f"{'ratio p50/p99':>14} {'in-process p50/p99 ms':>22} {'filter, new order p50/p99 ms':>29}"
    )
    for n, size, startup, base, real, local, fresh in rows:
        print(
            f"{n:>6} {size / 1024:>8.0f} {startup:>7.2f} {ms(base, 50):>8.2f} /{ms(base, 99):>6.2f} "
            f"{ms(real, 50):>10.2f} /{ms(real, 99):>6.2f} {ms(real, 50) / ms(base, 50):>7.2f}x/"
            f"{ms(real, 99) / ms(base, 99):>4.2f}x {ms(local, 50):>13.2f} /{ms(local, 99):>6.2f}"
            f" {ms(fresh, 50):>20.2f} /{ms(fresh, 99):>6.2f}"
        )


if __name__ == "__main__":
    main()
