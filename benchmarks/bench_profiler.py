"""Time to rebuild a large graph from Prometheus: `python -m benchmarks.bench_profiler`.

The graph is real: the union of every call-graph shape of the largest service in Alibaba's 2022
microservice trace (../shared/data/callgraphs, DGG artifact): ~2,450 microservices and ~11,700
edges. An edge's rate is its calls per trace times the traces with that shape (`weight * num`,
summed over shapes) per minute; relative weights are the trace's, the absolute level is a choice.
It is exposed as servicegraph counters by a fixture exporter, scraped by the real Prometheus,
and the profiler's own code does each phase:

  query   - the servicegraph query set's instant queries over HTTP (Prometheus evaluation included)
  map     - replies to EdgeSamples (labels to agents, skips, the join per edge)
  model   - GraphModel.update, first round (edges created) and a later round (EWMA of every edge)
  render  - AgentGraph documents and their YAML text (what --out writes)
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

from profiler.config import ModelConfig, PrometheusConfig
from profiler.graph_model import GraphModel
from profiler.output import dump_yaml, render_documents
from profiler.prometheus_source import PrometheusSource
from tests.prometheus_server import prometheus, wait_for_series
from tests.telemetry_replay import SteadyServiceGraph, serve

CALL_GRAPHS = Path("/work/shared/data/callgraphs/alibaba2022_call_graphs.jsonl.gz")
NAMESPACE = "alibaba"


def largest_service(path: Path) -> tuple[str, dict[tuple[str, str], float]]:
    """The service with the most microservices over all its shapes, and its calls per edge."""
    nodes: dict[str, set[str]] = defaultdict(set)
    calls: dict[str, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    with gzip.open(path, "rt") as f:
        for line in f:
            shape = json.loads(line)
            service = shape["service"]
            nodes[service].update(n["node"] for n in shape["nodes"])
            for e in shape["edges"]:
                calls[service][(e["source"], e["target"])] += float(e["weight"]) * float(shape["num"])
    service = max(nodes, key=lambda s: len(nodes[s]))
    return service, dict(calls[service])


def _export(rates: dict[tuple[str, str], float], queue: multiprocessing.Queue[str]) -> None:
    address, _server = serve(SteadyServiceGraph(rates))
    queue.put(address)
    threading.Event().wait()  # serve()'s thread answers scrapes until the parent terminates us


def measure(
    source: PrometheusSource, rounds: int
) -> tuple[GraphModel, dict[str, list[float]], list[int], str]:
    """Each phase of `rounds` rounds, timed apart."""
    model = GraphModel(ModelConfig())
    phases: dict[str, list[float]] = defaultdict(list)
    edges: list[int] = []
    text = ""
    for round_ in range(rounds):
        t0 = time.perf_counter()
        replies = source.fetch()
        t1 = time.perf_counter()
        samples = source.samples(replies)
        t2 = time.perf_counter()
        model.update(time.time(), {"servicegraph": samples})
        t3 = time.perf_counter()
        docs = render_documents({(NAMESPACE, NAMESPACE): model.edges(NAMESPACE)}, time.time())
        t4 = time.perf_counter()
        text = dump_yaml(docs)
        t5 = time.perf_counter()
        phases["query"].append(t1 - t0)
        phases["map"].append(t2 - t1)
        phases["model (first round)" if round_ == 0 else "model (later rounds)"].append(t3 - t2)
        phases["render (documents)"].append(t4 - t3)
        phases["render (YAML text)"].append(t5 - t4)
        phases["total"].append(t5 - t0)
        edges.append(len(samples))
    source.close()
    return model, phases, edges, text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window-seconds", type=int, default=10)
    args = parser.parse_args()

    service, calls = largest_service(CALL_GRAPHS)
    rates = {edge: count / 60.0 for edge, count in calls.items()}
    services = {n for edge in rates for n in edge}
    expected = {e for e in rates if e[0] != e[1]}
    print(f"call graph: {service}, {len(services)} services, {len(rates)} edges", end=" ")
    print(f"({len(expected)} without self-loops)")

    # The exporter gets its own process: its scrapes (11,700 series) must not share our GIL.
    queue: multiprocessing.Queue[str] = multiprocessing.Queue()
    exporter = multiprocessing.Process(target=_export, args=(rates, queue), daemon=True)
    exporter.start()
    address = queue.get(timeout=60)
    try:
        with prometheus([address], scrape_interval="2s") as server:
            started = time.monotonic()
            wait_for_series(server.url, "traces_service_graph_request_total", len(rates), timeout_seconds=120)
            time.sleep(max(0.0, args.window_seconds + 3 - (time.monotonic() - started)))
            cfg = PrometheusConfig(
                url=server.url,
                meshes=["servicegraph"],
                window=f"{args.window_seconds}s",
                default_namespace=NAMESPACE,
                query_timeout_seconds=60,
                query_delay_seconds=2,
            )
            model, phases, edges, text = measure(PrometheusSource("servicegraph", cfg), args.rounds)
    finally:
        exporter.terminate()
        exporter.join(timeout=10)

    found = {(e.source, e.destination) for e in model.edges(NAMESPACE)}
    print(f"edges per round {min(edges)}..{max(edges)}", end="; ")
    print(f"final graph equals the call graph: {found == expected}; YAML {len(text) / 1024:.0f} KiB")
    print(f"{'phase':22} {'median s':>9} {'min s':>9} {'max s':>9}   ({args.rounds} rounds)")
    for name, values in phases.items():
        print(f"{name:22} {statistics.median(values):9.3f} {min(values):9.3f} {max(values):9.3f}")


if __name__ == "__main__":
    main()
