"""OTLP spans ingested per second per core: `python -m benchmarks.bench_otlp`.

Traffic looks like a team's SDKs: each Export request carries one agent's spans (an SDK exports its
own process only), 512 spans per request as the BatchSpanProcessor sends them, ~10 attributes per
span, and every call split into a CLIENT span in the caller's requests and a SERVER span in the
callee's, so matching works across requests the way it does in production.

Two figures:
- in-process: protobuf decode + span records + matching + rate window, one thread, no gRPC;
- over gRPC: the receiver in a subprocess, fed pre-serialized requests by a few client threads on
  one loopback channel; its CPU seconds come from /proc (Linux), so spans per CPU-second is the
  per-core figure even when the client shares the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from profiler.otlp import OtlpReceiver, OtlpReceiverConfig
from tests.otlp_spans import CLIENT, INTERNAL, SERVER, request, resource_spans, span
from tests.serving import ROOT

AGENTS = ("orchestrator", "planner", "researcher", "executor", "reviewer", "critic", "coder", "tester")
SPANS_PER_REQUEST = 512
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _http(route: str, status: int = 200) -> dict[str, str | int]:
    return {
        "http__request__method": "POST",
        "url__path": route,
        "http__response__status_code": status,
        "network__protocol__version": "1.1",
        "user_agent__original": "python-httpx/0.28",
    }


def build_requests(calls: int, seed: int = 7) -> tuple[list[bytes], int]:
    """Serialized requests for `calls` agent-to-agent calls (5 spans each); returns (requests, calls)."""
    rng = random.Random(seed)
    per_agent: dict[str, list[Span]] = {a: [] for a in AGENTS}
    next_id = 1
    for c in range(calls):
        caller, callee = rng.sample(AGENTS, 2)
        root, client, server, work, tool = range(next_id, next_id + 5)
        next_id += 5
        route = f"/{callee}/run"
        per_agent[caller] += [
            span(root, INTERNAL, trace=c, duration_ms=900, gen_ai__operation__name="chat"),
            span(
                client,
                CLIENT,
                parent=root,
                remote_parent=False,
                trace=c,
                duration_ms=rng.uniform(5, 400),
                peer__service=callee,
                server__address=f"{callee}.team.svc.cluster.local",
                server__port=8080,
                http__request__body__size=rng.randrange(200, 20_000),
                **_http(route),
            ),
        ]
        per_agent[callee] += [
            span(
                server,
                SERVER,
                parent=client,
                trace=c,
                duration_ms=rng.uniform(4, 390),
                http__response__body__size=rng.randrange(200, 50_000),
                http__route=route,
                **_http(route),
            ),
            span(
                work,
                INTERNAL,
                parent=server,
                remote_parent=False,
                trace=c,
                gen_ai__request__model="llama-3-8b",
            ),
            span(tool, INTERNAL, parent=work, remote_parent=False, trace=c, tool__name="search"),
        ]
    # Agents export side by side as time passes: round-robin over their batches, shuffled within
    # small groups, so the two sides of a call arrive a few requests apart, as from real SDKs.
    chunks = {
        agent: [spans[i : i + SPANS_PER_REQUEST] for i in range(0, len(spans), SPANS_PER_REQUEST)]
        for agent, spans in per_agent.items()
    }
    batches = []
    for i in range(max(map(len, chunks.values()))):
        group = [
            request(resource_spans(agent, c[i], **{"telemetry.sdk.language": "python"}))
            for agent, c in chunks.items()
            if i < len(c)
        ]
        rng.shuffle(group)
        batches += group
    return [b.SerializeToString() for b in batches], calls


def span_count(payloads: list[bytes]) -> int:
    return sum(
        len(ss.spans)
        for p in payloads
        for rs in ExportTraceServiceRequest.FromString(p).resource_spans
        for ss in rs.scope_spans
    )


def in_process(payloads: list[bytes]) -> tuple[float, int]:
    """CPU seconds to decode and match every request in this thread; and the calls matched."""
    rx = OtlpReceiver(OtlpReceiverConfig(port=0))
    start = time.process_time()
    for payload in payloads:
        rx.ingest(ExportTraceServiceRequest.FromString(payload))
    cpu = time.process_time() - start
    return cpu, rx.stats().calls_pair


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def serve() -> None:
    """Subprocess side: a receiver on a free port; 'stats' on stdin prints counters, EOF stops."""
    rx = OtlpReceiver(OtlpReceiverConfig(port=0, max_concurrent_requests=64))
    print(rx.start(), flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            s = rx.stats()
            print(
                json.dumps({"spans": s.spans_received, "calls": s.calls_pair, "indexed": s.indexed_spans}),
                flush=True,
            )
    rx.stop(grace_seconds=1.0)


def over_grpc(
    payloads: list[bytes], clients: int
) -> tuple[float, float, tuple[float, float], dict[str, int]]:
    """(wall seconds, receiver CPU seconds, receiver peak RSS MiB idle and loaded, receiver stats)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_otlp", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert proc.stdin and proc.stdout
    try:
        port = int(proc.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        export = channel.unary_unary(EXPORT)  # raw bytes: the client's encoding stays out of the figure
        export(payloads[0], timeout=30, wait_for_ready=True)  # warm up; duplicates are ignored later
        idle_rss = proc_peak_rss_mib(proc.pid)
        cpu_before = proc_cpu_seconds(proc.pid)
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda p: export(p, timeout=60), payloads))
        wall = time.perf_counter() - start
        cpu = proc_cpu_seconds(proc.pid) - cpu_before
        proc.stdin.write("stats\n")
        proc.stdin.flush()
        stats = json.loads(proc.stdout.readline())
        rss = proc_peak_rss_mib(proc.pid)
        channel.close()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    return wall, cpu, (idle_rss, rss), stats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=40_000, help="agent-to-agent calls (5 spans each)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent Export calls over gRPC")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.serve:
        serve()
        return

    payloads, calls = build_requests(opts.calls)
    spans = span_count(payloads)
    size_kib = sum(map(len, payloads)) / len(payloads) / 1024
    print(
        f"{len(payloads)} requests, {spans} spans ({SPANS_PER_REQUEST}/request, {size_kib:.0f} KiB each), "
        f"{calls} calls"
    )

    cpu, matched = in_process(payloads)
    print(
        f"in-process, decode + match + window: {spans / cpu:>9,.0f} spans per CPU-s, {matched} calls matched"
    )

    wall, server_cpu, rss, stats = over_grpc(payloads, opts.clients)
    print(
        f"over gRPC, {opts.clients} client threads:    {spans / server_cpu:>9,.0f} spans per receiver CPU-s, "
        f"{spans / wall:,.0f} spans/s wall, {stats['calls']} calls matched"
    )
    print(f"receiver peak RSS {rss[1]:.0f} MiB (idle {rss[0]:.0f} MiB) with {stats['indexed']} spans indexed")
    if matched != calls or stats["calls"] != calls:
        raise SystemExit(
            f"expected {calls} calls matched, got {matched} in-process and {stats['calls']} over gRPC"
        )


if __name__ == "__main__":
    main()
