"""The profiler's loop: collect every source, fold into the model, write the graphs; survive failures.

Failure behaviour, in one place:
- a source that fails is retried with exponential backoff within the round; if it still fails,
  the model keeps using its last answer (see graph_model) and the round counts as partial;
- when no source answers, the model is left as it was (no decay from silence: silence is not
  evidence that traffic stopped), and after `stale_after_seconds` the graph is reported stale in
  the metrics, the `/readyz` body and the log;
- a failing status write is logged and retried next round; nothing here raises out of the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from profiler.config import ProfilerConfig
from profiler.edges import EdgeSample, EdgeSource, SourceError
from profiler.graph_model import GraphModel, SmoothedEdge
from profiler.output import ExistingGraph, StatusWriter, graph_name, render_documents, write_yaml

log = logging.getLogger(__name__)


class ProfilerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rounds = Counter(
            "kinship_profiler_rounds",
            "Collection rounds by result (ok, partial, failed).",
            ["result"],
            registry=self.registry,
        )
        self.source_errors = Counter(
            "kinship_profiler_source_errors",
            "Failed attempts to query a source.",
            ["source"],
            registry=self.registry,
        )
        self.round_seconds = Histogram(
            "kinship_profiler_round_duration_seconds",
            "Time of one round, retries included.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.staleness = Gauge(
            "kinship_profiler_graph_staleness_seconds",
            "Seconds since a source last answered.",
            registry=self.registry,
        )
        self.stale = Gauge(
            "kinship_profiler_graph_stale",
            "1 when no source answered for longer than the allowed age.",
            registry=self.registry,
        )
        self.edges = Gauge("kinship_profiler_edges", "Edges in the observed graph.", registry=self.registry)
        self.teams = Gauge(
            "kinship_profiler_teams", "Namespaces with observed edges.", registry=self.registry
        )
        self.writes = Counter(
            "kinship_profiler_status_writes",
            "AgentGraph status writes by result.",
            ["result"],
            registry=self.registry,
        )


@dataclass
class RoundResult:
    answered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def result(self) -> str:
        if not self.failed:
            return "ok"
        return "partial" if self.answered else "failed"


class Runner:
    """Owns the model; `run_round` is one iteration, `run` the loop until `stop` is set."""

    def __init__(
        self,
        cfg: ProfilerConfig,
        sources: Sequence[EdgeSource],
        model: GraphModel,
        writer: StatusWriter | None = None,
        out: Path | None = None,
        existing: Sequence[ExistingGraph] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.sources = list(sources)
        self.model = model
        self.writer = writer
        self.out = out
        self.existing = list(existing)
        self.clock = clock
        self.metrics = ProfilerMetrics()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.last_answer_at: float | None = None
        self.started_at = clock()

    def seed(self) -> None:
        """A restart loses nothing: start the model from the statuses the last run published."""
        for g in self.existing:
            if g.observed_at is not None:
                self.model.seed(g.namespace, g.observed_edges, g.observed_at)
        if self.writer is not None:
            self.writer.remember(self.existing)

    # ---- one round -----------------------------------------------------------------------------
    def _collect(self, source: EdgeSource) -> list[EdgeSample]:
        rc = self.cfg.runner
        delay = rc.retry_initial_seconds
        for attempt in range(1, rc.attempts + 1):
            try:
                return source.collect()
            except SourceError as exc:
                self.metrics.source_errors.labels(source.name).inc()
                if attempt == rc.attempts:
                    raise
                log.warning("%s (attempt %d of %d; retrying in %.1fs)", exc, attempt, rc.attempts, delay)
                if self.stop.wait(delay):
                    raise
                delay = min(delay * 2, rc.retry_max_seconds)
        raise AssertionError("unreachable")

    def run_round(self) -> RoundResult:
        started = time.perf_counter()
        result = RoundResult()
        fresh: dict[str, list[EdgeSample]] = {}
        for source in self.sources:
            try:
                fresh[source.name] = self._collect(source)
                result.answered.append(source.name)
            except SourceError as exc:
                result.failed[source.name] = str(exc)
                log.error("source %s failed this round, keeping its last answer: %s", source.name, exc)
        now = self.clock()
        if fresh:
            self.model.update(now, fresh)
            self.last_answer_at = now
            self.publish(now)
            self.ready.set()
        self.metrics.rounds.labels(result.result).inc()
        self.metrics.round_seconds.observe(time.perf_counter() - started)
        self.refresh_gauges(now)
        if self.is_stale(now):
            log.warning("graph is stale: no source answered for %.0fs", self.staleness_seconds(now))
        return result

    def teams(self) -> dict[tuple[str, str], list[SmoothedEdge]]:
        teams = {
            (ns, graph_name(ns, self.cfg.output, self.existing)): self.model.edges(ns)
            for ns in self.model.namespaces()
        }
        # Graphs whose edges all decayed: write them empty, or their last edges would live on.
        for g in self.existing:
            if g.observed_edges and (g.namespace, g.name) not in teams:
                teams[(g.namespace, g.name)] = []
        return teams

    def publish(self, now: float) -> None:
        teams = self.teams()
        if self.out is not None and teams:
            # Not with no teams at all: `kinship serve --graph` refuses a file without documents.
            specs = {(g.namespace, g.name): g.spec for g in self.existing}
            write_yaml(self.out, render_documents(teams, now, specs))
        if self.writer is None:
            return
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        for key, edges in teams.items():
            try:
                outcome = self.writer.write(key, edges, now)
            except (ApiException, HTTPError, OSError) as exc:
                outcome = "failed"
                log.error("status write of AgentGraph %s/%s failed: %s", *key, str(exc)[:300])
            self.metrics.writes.labels(outcome).inc()
            if outcome == "missing":
                log.info("no AgentGraph %s/%s; set output.create_missing_graphs to create it", *key)

    # ---- staleness -----------------------------------------------------------------------------
    def staleness_seconds(self, now: float) -> float:
        since = self.last_answer_at if self.last_answer_at is not None else self.started_at
        return max(0.0, now - since)

    def is_stale(self, now: float) -> bool:
        return self.staleness_seconds(now) > self.cfg.runner.stale_after_seconds

    def refresh_gauges(self, now: float) -> None:
        self.metrics.staleness.set(self.staleness_seconds(now))
        self.metrics.stale.set(1.0 if self.is_stale(now) else 0.0)
        self.metrics.edges.set(self.model.edge_count())
        self.metrics.teams.set(len(self.model.namespaces()))

    # ---- loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.run_round()
            remaining = self.cfg.runner.interval_seconds - (time.monotonic() - started)
            self.stop.wait(max(0.0, remaining))


def serve_http(runner: Runner, listen: str) -> ThreadingHTTPServer:
    """`/metrics`, `/readyz` (first successful round done), `/livez`, on a daemon thread."""
    host, _, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            now = runner.clock()
            if path == "/metrics":
                runner.refresh_gauges(now)
                self._send(200, generate_latest(runner.metrics.registry), CONTENT_TYPE_LATEST)
            elif path in ("/readyz", "/healthz"):
                if not runner.ready.is_set():
                    self._send(503, b"waiting for the first successful round\n")
                elif runner.is_stale(now):
                    age = runner.staleness_seconds(now)
                    self._send(200, f"ok (stale: no source answered for {age:.0f}s)\n".encode())
                else:
                    self._send(200, b"ok\n")
            elif path == "/livez":
                self._send(200, b"ok\n")
            else:
                self._send(404, b"not found\n")

        def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="profiler-http", daemon=True).start()
    return server
