"""The profiler against the real Prometheus, scraping a replay of the real Online Boutique trace."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from extender.offline import load_graph_files
from profiler.config import PrometheusConfig
from profiler.edges import EdgeSample, SourceError
from profiler.prometheus_source import PrometheusSource
from tests.prometheus_server import Prometheus, prometheus, wait_for_series
from tests.serving import EXAMPLES, ROOT, free_port, kinship_serve, wait_ready
from tests.telemetry_replay import (
    ISTIO_BUCKETS_MS,
    LINKERD_BUCKETS_MS,
    REQUEST_BYTES,
    RESPONSE_BYTES,
    SERVICEGRAPH_BUCKETS_S,
    Call,
    TraceReplay,
    edge_counts,
    load_calls,
    serve,
)

pytestmark = pytest.mark.integration

CYCLE_SECONDS = 3.0  # the 60 s trace, played 20x faster, looping
WINDOW_SECONDS = 12  # four cycles: the partial cycle at a window's edge moves a rate by a few %
NAMESPACE = "boutique"
QUERY_DELAY_SECONDS = 1  # scrapes take ~0.1 s here; a second is plenty for one to be ingested
BUCKETS_MS = {
    "istio": ISTIO_BUCKETS_MS,
    "linkerd": LINKERD_BUCKETS_MS,
    "servicegraph": tuple(b * 1000 for b in SERVICEGRAPH_BUCKETS_S),
}


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    return load_calls()


@pytest.fixture(scope="module")
def replay(calls: list[Call]) -> Iterator[tuple[str, TraceReplay]]:
    collector = TraceReplay(calls, CYCLE_SECONDS, NAMESPACE)
    address, server = serve(collector)
    yield address, collector
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prom(replay: tuple[str, TraceReplay]) -> Iterator[str]:
    """Prometheus with a full rate window of the replay in its TSDB."""
    address, _ = replay
    with prometheus([address]) as server:
        started = time.monotonic()
        wait_for_series(server.url, "istio_requests_total", minimum=20, timeout_seconds=30)
        time.sleep(max(0.0, WINDOW_SECONDS + QUERY_DELAY_SECONDS + 2 - (time.monotonic() - started)))
        yield server.url


def source_config(url: str, mesh: str) -> PrometheusConfig:
    return PrometheusConfig(
        url=url,
        meshes=[mesh],
        window=f"{WINDOW_SECONDS}s",
        default_namespace=NAMESPACE,
        query_timeout_seconds=5,
        query_delay_seconds=QUERY_DELAY_SECONDS,
    )


def bucket_of(value_ms: float, bounds_ms: tuple[float, ...]) -> tuple[float, float]:
    lower = 0.0
    for upper in bounds_ms:
        if value_ms <= upper:
            return lower, upper
        lower = upper
    return lower, float("inf")


@pytest.mark.parametrize("mesh", ["istio", "linkerd", "servicegraph"])
def test_recovers_the_traces_edges_with_weights_ranked_like_its_call_counts(
    prom: str, calls: list[Call], mesh: str
) -> None:
    expected = edge_counts(calls)
    source = PrometheusSource(mesh, source_config(prom, mesh))
    try:
        samples = source.collect()
    finally:
        source.close()
    got: dict[tuple[str, str], EdgeSample] = {(s.source, s.destination): s for s in samples}

    # exactly the trace's service edges: no outside callers, no double-reported copies
    assert set(got) == set(expected)
    assert {s.namespace for s in samples} == {NAMESPACE}
    # rates follow the call counts: strictly ordered where the counts are, each edge's share of
    # the traffic close to its share of the calls, and the level right (rate() extrapolates at
    # the window's edges, by the same factor for every series of a scrape)
    total_calls = sum(expected.values())
    total_rate = sum(s.requests_per_second for s in samples)
    for a, count_a in expected.items():
        for b, count_b in expected.items():
            if count_a > count_b:
                assert got[a].requests_per_second > got[b].requests_per_second, (a, b)
        assert got[a].requests_per_second / total_rate == pytest.approx(count_a / total_calls, rel=0.1), a
    assert total_rate == pytest.approx(total_calls / CYCLE_SECONDS, rel=0.3)
    for edge, s in got.items():
        if mesh == "servicegraph":
            assert s.bytes_per_second == 0.0
        else:
            per_call = s.bytes_per_second / s.requests_per_second
            assert per_call == pytest.approx(REQUEST_BYTES + RESPONSE_BYTES, rel=1e-6), edge
        # p50 from the histogram lies in the bucket that holds the trace's own median
        median = statistics.median(c.duration_ms for c in calls if (c.caller, c.callee) == edge)
        lower, upper = bucket_of(median, BUCKETS_MS[mesh])
        assert s.p50_latency_ms is not None and lower <= s.p50_latency_ms <= upper, (edge, median)


def profile_env() -> dict[str, str]:
    """No cluster: these runs write files only, whatever the developer's shell has set."""
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return env


def test_once_out_then_serve_graph_round_trip(prom: str, calls: list[Call], tmp_path: Path) -> None:
    config = tmp_path / "profiler.yaml"
    config.write_text(
        yaml.safe_dump(
            {"prometheus": {"default_namespace": NAMESPACE, "query_delay_seconds": QUERY_DELAY_SECONDS}}
        )
    )
    out = tmp_path / "observed.yaml"
    args = (
        f"--mesh istio,linkerd,servicegraph --window {WINDOW_SECONDS}s --once --out {out} --config {config}"
    )
    run = subprocess.run(
        [sys.executable, "-m", "kinship", "profile", "--prometheus-url", prom, *args.split()],
        cwd=ROOT,
        env=profile_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    (graph,) = load_graph_files([out])
    assert graph.key == (NAMESPACE, NAMESPACE)
    observed = {(e.from_, e.to): e.requestsPerSecond for e in graph.status.observedEdges}
    expected = edge_counts(calls)
    assert set(observed) == set(expected)
    # three meshes saw every call, and it still counts once (three times would be 3x the level)
    assert sum(observed.values()) == pytest.approx(sum(expected.values()) / CYCLE_SECONDS, rel=0.3)
    biggest = max(expected, key=lambda e: expected[e])
    assert max(observed, key=lambda e: observed[e]) == biggest

    snapshot = EXAMPLES / "cluster-snapshot.json"
    nodes = [i["metadata"]["name"] for i in json.loads(snapshot.read_text())["items"] if i["kind"] == "Node"]
    pod = {
        "metadata": {
            "name": "cart-1",
            "namespace": NAMESPACE,
            "labels": {"kinship.dev/agent": "cartservice"},
        },
        "spec": {"schedulerName": "kinship", "containers": [{"name": "c", "image": "x"}]},
    }
    with kinship_serve("--snapshot", str(snapshot), "--graph", str(out)) as (url, proc):
        wait_ready(f"{url}/readyz", timeout_seconds=30, proc=proc)
        reply = httpx.post(
            f"{url}/prioritize", json={"Pod": pod, "Nodes": None, "NodeNames": nodes}, timeout=10
        )
        assert reply.status_code == 200, reply.text
        assert sorted(h["Host"] for h in reply.json()) == sorted(nodes)


def metric(text: str, name: str, labels: str = "") -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def poll(check, timeout_seconds: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_seconds
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout_seconds}s; last {last!r}")


def test_prometheus_stopped_retries_keeps_the_last_graph_and_reports_stale(
    replay: tuple[str, TraceReplay], calls: list[Call], tmp_path: Path
) -> None:
    address, _ = replay
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "profiler.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "prometheus": {
                    "default_namespace": NAMESPACE,
                    "query_timeout_seconds": 1,
                    "query_delay_seconds": QUERY_DELAY_SECONDS,
                    "window": "4s",
                },
                "runner": {"attempts": 2, "retry_initial_seconds": 0.2, "stale_after_seconds": 2},
            }
        )
    )
    out = tmp_path / "observed.yaml"
    with prometheus([address]) as server:
        args = (
            f"--mesh istio --interval 0.5 --listen {listen} --out {out} --config {config} --log-format json"
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "kinship", "profile", "--prometheus-url", server.url, *args.split()],
            cwd=ROOT,
            env=profile_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://{listen}"
            expected = set(edge_counts(calls))
            poll(
                lambda: (
                    out.exists()
                    and {(e.from_, e.to) for g in load_graph_files([out]) for e in g.status.observedEdges}
                    == expected
                )
            )
            assert httpx.get(f"{base}/readyz").text == "ok\n"
            stop_prometheus(server)

            def stale() -> str | None:
                text = httpx.get(f"{base}/metrics").text
                return text if metric(text, "kinship_profiler_graph_stale") == 1.0 else None

            text = poll(stale)
            assert (metric(text, "kinship_profiler_source_errors_total", '{source="istio"}') or 0) >= 2
            assert (metric(text, "kinship_profiler_rounds_total", '{result="failed"}') or 0) >= 1
            assert metric(text, "kinship_profiler_edges") == len(expected)
            readyz = httpx.get(f"{base}/readyz")
            assert readyz.status_code == 200 and "stale" in readyz.text
            kept = {(e.from_, e.to) for g in load_graph_files([out]) for e in g.status.observedEdges}
            assert kept == expected
            assert proc.poll() is None  # still running, still retrying
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
            log = proc.stdout.read().decode() if proc.stdout else ""
            if proc.stdout:
                proc.stdout.close()
    assert code == 0, log
    assert "retrying in" in log and "Traceback" not in log


def stop_prometheus(server: Prometheus) -> None:
    server.stop()
    assert server.proc.returncode is not None


class Misbehaving(BaseHTTPRequestHandler):
    """What a broken Prometheus (or a proxy in front of one) answers: slow, garbage, errors."""

    def do_GET(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "slow":
            time.sleep(3)
        body, code = {"html": (b"<html>502 from a proxy</html>", 200), "error": (b"oops", 500)}.get(
            mode, (b'{"status":"success","data":{"resultType":"vector","result":[]}}', 200)
        )
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("mode", "message"),
    [("slow", "did not answer within 0.5s"), ("html", "bad reply to requests query"), ("error", "refused")],
)
def test_a_slow_or_broken_prometheus_is_a_source_error_not_a_hang(mode: str, message: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.mode = mode  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    source = PrometheusSource("istio", PrometheusConfig(url=url, query_timeout_seconds=0.5))
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=message):
            source.collect()
    finally:
        source.close()
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 2.5
