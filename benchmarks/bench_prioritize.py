"""/prioritize latency over HTTP vs an empty handler: `python -m benchmarks.bench_prioritize`.

kube-scheduler calls the extender once per pod, one call at a time, so this measures sequential
calls on one keep-alive connection (stdlib http.client: the lightest client, so the figures are
the server's). NodeNames mode (nodeCacheCapable: true), a graph of 300 agents.
Target (issue 2, 2 cores): p99 <= 5 ms at 5,000 nodes and <= 3x the empty handler.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import synthetic
from tests.serving import ROOT, free_port, kinship_serve, wait_ready


def measure(port: int, bodies: list[bytes], requests: int, warmup: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    out = []
    for i in range(warmup + requests):
        body = bodies[i % len(bodies)]
        start = time.perf_counter()
        conn.request("POST", "/prioritize", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")
        if i >= warmup:
            out.append(elapsed)
    conn.close()
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    opts = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in opts.nodes:
            cluster = synthetic.build(Path(tmp), n)
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
                base = measure(empty_port, bodies, opts.requests, opts.warmup)
            finally:
                empty.terminate()
                empty.wait()
            with kinship_serve(
                "--snapshot", str(cluster.snapshot), "--graph", str(cluster.graphs), "--log-level", "warning"
            ) as (url, proc):
                startup = wait_ready(f"{url}/readyz", 300, proc)
                port = int(url.rsplit(":", 1)[1])
                real = measure(port, bodies, opts.requests, opts.warmup)
            rows.append(
                (n, len(bodies[0]), startup, pct(base, 50), pct(base, 99), pct(real, 50), pct(real, 99))
            )
            print(f"measured {n} nodes", file=sys.stderr, flush=True)

    print(
        f"\n/prioritize, NodeNames mode, 300 agents, {opts.requests} sequential calls "
        f"after {opts.warmup} warm-up"
    )
    print(
        f"{'nodes':>6} {'body KiB':>9} {'ready s':>8} {'empty p50':>10} {'empty p99':>10} "
        f"{'kinship p50':>12} {'kinship p99':>12} {'p50 ratio':>10} {'p99 ratio':>10}"
    )
    for n, size, startup, b50, b99, r50, r99 in rows:
        print(
            f"{n:>6} {size / 1024:>9.0f} {startup:>8.2f} {b50:>8.2f}ms {b99:>8.2f}ms "
            f"{r50:>10.2f}ms {r99:>10.2f}ms {r50 / b50:>9.2f}x {r99 / b99:>9.2f}x"
        )


if __name__ == "__main__":
    main()
