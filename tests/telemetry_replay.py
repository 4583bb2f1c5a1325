"""Fixture exporters: real telemetry replayed as Istio, Linkerd and servicegraph series over HTTP.

`TraceReplay` replays the Online Boutique trace (../shared/data/traces, Nezha dataset): every span
whose parent span ran in another pod is one call, caller = the parent's Deployment, callee = the
child's, latency = the child span's duration. Time is compressed (`cycle_seconds` plays the whole
trace) and the trace loops, so counters grow the way a mesh's do and `rate()` sees traffic whose
per-edge rate is the trace's call count / `cycle_seconds`.

What the trace does not have is stated, not invented quietly: it records no payload sizes, so
every call carries REQUEST_BYTES + RESPONSE_BYTES (bytes/s = that times requests/s, which is what the
tests check). Root spans come from outside the mesh (the load generator), so they are exported as
Istio does for an unknown caller, and as servicegraph's virtual `user` node; both proxies of a
call report it (Istio reporter=source/destination, Linkerd outbound/inbound), as in a real mesh.

`SteadyServiceGraph` exposes fixed per-edge rates as servicegraph counters (the benchmark's large
Alibaba call graph, which has shapes and weights but no timestamps).
"""

from __future__ import annotations

import bisect
import csv
import itertools
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

TRACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces" / "onlineboutique_trace.csv"
if not TRACE.exists():  # a worktree sits beside /work/shared too
    TRACE = Path("/work/shared/data/traces/onlineboutique_trace.csv")

REQUEST_BYTES = 512
RESPONSE_BYTES = 2048
OUTSIDE = ""  # caller of a root span: not in the mesh

# Each format's default latency buckets: Istio and Linkerd in ms, servicegraph in seconds.
ISTIO_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
LINKERD_BUCKETS_MS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000)
SERVICEGRAPH_BUCKETS_S = (0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15)


def deployment_of(pod: str) -> str:
    """`<deployment>-<replicaset hash>-<pod suffix>` -> `<deployment>`."""
    return pod.rsplit("-", 2)[0]


@dataclass(frozen=True, slots=True)
class Call:
    caller: str  # OUTSIDE for a root span
    callee: str
    offset_seconds: float  # since the trace's first span, real time
    duration_ms: float


def load_calls(path: Path = TRACE) -> list[Call]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    pods = {(r["TraceID"], r["SpanID"]): r["PodName"] for r in rows}
    t0 = min(int(r["StartTimeUnixNano"]) for r in rows)
    calls = []
    for r in rows:
        if r["ParentID"] == "root":
            caller = OUTSIDE
        else:
            parent_pod = pods.get((r["TraceID"], r["ParentID"]))
            if parent_pod is None or parent_pod == r["PodName"]:
                continue  # an in-process span, or a parent the trace lost: not a network call
            caller = deployment_of(parent_pod)
        calls.append(
            Call(
                caller,
                deployment_of(r["PodName"]),
                (int(r["StartTimeUnixNano"]) - t0) / 1e9,
                int(r["Duration"]) / 1000.0,  # the trace's Duration is in microseconds
            )
        )
    return calls


def edge_counts(calls: list[Call]) -> dict[tuple[str, str], int]:
    """Calls per (caller, callee) between two Deployments: what a profiler should recover."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for c in calls:
        if c.caller != OUTSIDE:
            counts[(c.caller, c.callee)] += 1
    return dict(counts)


class _Edge:
    """Sorted call offsets of one edge in compressed time, so a counter at time t is one bisect."""

    def __init__(self, offsets: list[float], durations_ms: list[float]) -> None:
        order = sorted(range(len(offsets)), key=offsets.__getitem__)
        self.offsets = [offsets[i] for i in order]
        self.durations_ms = [durations_ms[i] for i in order]
        self.duration_prefix = [0.0, *itertools.accumulate(self.durations_ms)]
        self._bucket_offsets: dict[tuple[tuple[float, ...], float], list[list[float]]] = {}

    def count(self, cycles: int, phase: float) -> int:
        return cycles * len(self.offsets) + bisect.bisect_right(self.offsets, phase)

    def duration_sum_ms(self, cycles: int, phase: float) -> float:
        return (
            cycles * self.duration_prefix[-1] + self.duration_prefix[bisect.bisect_right(self.offsets, phase)]
        )

    def buckets(
        self, bounds: tuple[float, ...], scale: float, cycles: int, phase: float
    ) -> list[tuple[str, float]]:
        """Cumulative bucket counts; `scale` turns a bound into ms (1000 for a seconds histogram)."""
        key = (bounds, scale)
        if key not in self._bucket_offsets:  # per bound, the offsets of calls that fit under it
            self._bucket_offsets[key] = [
                [o for o, d in zip(self.offsets, self.durations_ms, strict=True) if d <= b * scale]
                for b in bounds
            ]
        out = [
            (str(b), float(cycles * len(offs) + bisect.bisect_right(offs, phase)))
            for b, offs in zip(bounds, self._bucket_offsets[key], strict=True)
        ]
        out.append(("+Inf", float(self.count(cycles, phase))))
        return out


class TraceReplay(Collector):
    """The trace as three mesh formats at once; each format reads its own metric names."""

    def __init__(self, calls: list[Call], cycle_seconds: float, namespace: str) -> None:
        span = max(c.offset_seconds for c in calls) or 1.0
        self.cycle_seconds = cycle_seconds
        self.namespace = namespace
        grouped: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        for c in calls:
            offsets, durations = grouped[(c.caller, c.callee)]
            offsets.append(c.offset_seconds / span * cycle_seconds * (1 - 1e-9))
            durations.append(c.duration_ms)
        self.edges = {k: _Edge(*v) for k, v in grouped.items()}
        self.started = time.monotonic()

    def _clock(self) -> tuple[int, float]:
        elapsed = time.monotonic() - self.started
        cycles, phase = divmod(elapsed, self.cycle_seconds)
        return int(cycles), phase

    def collect(self) -> Iterator[Metric]:
        cycles, phase = self._clock()
        yield from self._istio(cycles, phase)
        yield from self._linkerd(cycles, phase)
        yield from self._servicegraph(cycles, phase)

    def _istio(self, cycles: int, phase: float) -> Iterator[Metric]:
        names = ["reporter", "source_workload", "source_workload_namespace", "destination_workload",
                 "destination_workload_namespace", "response_code"]  # fmt: skip
        requests = CounterMetricFamily("istio_requests", "Requests.", labels=names)
        duration = HistogramMetricFamily("istio_request_duration_milliseconds", "Duration.", labels=names)
        req_bytes = HistogramMetricFamily("istio_request_bytes", "Request sizes.", labels=names)
        resp_bytes = HistogramMetricFamily("istio_response_bytes", "Response sizes.", labels=names)
        for (caller, callee), e in self.edges.items():
            n = e.count(cycles, phase)
            for reporter in ("source", "destination"):
                if reporter == "source" and caller == OUTSIDE:
                    continue  # a client without a sidecar reports nothing
                labels = [reporter, caller or "unknown", self.namespace if caller else "unknown", callee,
                          self.namespace, "200"]  # fmt: skip
                requests.add_metric(labels, n)
                duration.add_metric(
                    labels, e.buckets(ISTIO_BUCKETS_MS, 1.0, cycles, phase), e.duration_sum_ms(cycles, phase)
                )
                req_bytes.add_metric(labels, [("+Inf", float(n))], float(n * REQUEST_BYTES))
                resp_bytes.add_metric(labels, [("+Inf", float(n))], float(n * RESPONSE_BYTES))
        yield from (requests, duration, req_bytes, resp_bytes)

    def _linkerd(self, cycles: int, phase: float) -> Iterator[Metric]:
        out_names = ["direction", "deployment", "namespace", "dst_deployment", "dst_namespace", "tls"]
        in_names = ["direction", "deployment", "namespace", "tls"]
        requests = CounterMetricFamily("request", "Requests.", labels=out_names)
        requests_in = CounterMetricFamily("request", "Requests.", labels=in_names)
        latency = HistogramMetricFamily("response_latency_ms", "Latency.", labels=out_names)
        written = CounterMetricFamily("tcp_write_bytes", "Bytes written.", labels=out_names)
        read = CounterMetricFamily("tcp_read_bytes", "Bytes read.", labels=out_names)
        for (caller, callee), e in self.edges.items():
            n = e.count(cycles, phase)
            requests_in.add_metric(["inbound", callee, self.namespace, "true"], n)
            if caller == OUTSIDE:
                continue
            labels = ["outbound", caller, self.namespace, callee, self.namespace, "true"]
            requests.add_metric(labels, n)
            latency.add_metric(
                labels, e.buckets(LINKERD_BUCKETS_MS, 1.0, cycles, phase), e.duration_sum_ms(cycles, phase)
            )
            written.add_metric(labels, n * REQUEST_BYTES)
            read.add_metric(labels, n * RESPONSE_BYTES)
        # Two families of one name would be two HELP lines; merge the inbound samples in.
        requests.samples.extend(requests_in.samples)
        yield from (requests, latency, written, read)

    def _servicegraph(self, cycles: int, phase: float) -> Iterator[Metric]:
        names = ["client", "server", "connection_type"]
        requests = CounterMetricFamily("traces_service_graph_request", "Requests.", labels=names)
        seconds = HistogramMetricFamily(
            "traces_service_graph_request_server_seconds", "Latency.", labels=names
        )
        for (caller, callee), e in self.edges.items():
            labels = [caller or "user", callee, "virtual_node" if caller == OUTSIDE else ""]
            requests.add_metric(labels, e.count(cycles, phase))
            seconds.add_metric(
                labels,
                e.buckets(SERVICEGRAPH_BUCKETS_S, 1000.0, cycles, phase),
                e.duration_sum_ms(cycles, phase) / 1000.0,
            )
        yield from (requests, seconds)


class SteadyServiceGraph(Collector):
    """Servicegraph request counters growing at fixed per-edge rates (requests per second)."""

    def __init__(self, rates: dict[tuple[str, str], float]) -> None:
        self.rates = rates
        self.started = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        elapsed = time.monotonic() - self.started
        requests = CounterMetricFamily(
            "traces_service_graph_request", "Requests.", labels=["client", "server", "connection_type"]
        )
        for (client, server), rate in self.rates.items():
            requests.add_metric([client, server, ""], rate * elapsed)
        yield requests


def serve(collector: Collector) -> tuple[str, WSGIServer]:
    """Expose a collector on a free loopback port; returns (host:port, server to shut down)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    return f"127.0.0.1:{server.server_port}", server
