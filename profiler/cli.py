"""`kinship profile`: learn the agents' communication graph from mesh telemetry in Prometheus.

Registered in kinship/cli.py; everything heavy is imported inside the command so that other
commands (`kinship serve`) start as fast as before.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kinship.errors import InputError

log = logging.getLogger("kinship.profiler")


def profile(
    prometheus_url: Annotated[
        str | None, typer.Option("--prometheus-url", help="Prometheus (or Thanos/Mimir) base URL.")
    ] = None,
    mesh: Annotated[
        str | None, typer.Option(help="Comma-separated query sets: istio, linkerd, servicegraph.")
    ] = None,
    window: Annotated[str | None, typer.Option(help="rate() window, a Prometheus duration (5m).")] = None,
    once: Annotated[bool, typer.Option("--once", help="One round, write the result, exit.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write AgentGraph YAML here (serve --graph).")
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            envvar="KUBECONFIG",
            help="Write AgentGraph status in this cluster (in-cluster config first when in a pod).",
        ),
    ] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between rounds.")] = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT for /metrics and /readyz.")] = None,
    otlp_listen: Annotated[
        str | None,
        typer.Option(help="Also receive OTLP/gRPC traces on HOST:PORT (e.g. 0.0.0.0:4317)."),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Profiler config YAML.")] = None,
    log_level: Annotated[str, typer.Option(help="debug shows skipped series.")] = "info",
    log_format: Annotated[str, typer.Option(help="auto | text | json")] = "auto",
) -> None:
    """Read mesh telemetry from Prometheus and keep each namespace's AgentGraph status up to date."""
    from kinship.logs import configure_cli

    configure_cli(log_level, log_format)

    from profiler.config import load_config

    try:
        otlp: dict[str, Any] = {}
        if otlp_listen is not None:
            host, _, port = otlp_listen.rpartition(":")
            if not host or not port.isdigit():
                raise InputError("--otlp-listen", [f"expected HOST:PORT, got {otlp_listen!r}"])
            otlp = {"otlp": {"host": host, "port": int(port)}}
        cfg = load_config(
            config,
            {
                **otlp,
                "prometheus": {
                    "url": prometheus_url,
                    "meshes": [m.strip() for m in mesh.split(",") if m.strip()] if mesh is not None else None,
                    "window": window,
                },
                "runner": {"interval_seconds": interval, "listen": listen},
            },
        )
        api_client = _api_client(kubeconfig)
        if api_client is None and out is None and not once:
            raise InputError(
                "command line", ["nothing to write: give --out FILE or a cluster (--kubeconfig)"]
            )
        code = _run(cfg, api_client, out, once)
    except InputError as exc:
        typer.echo(f"error: {exc.render()}", err=True)
        raise typer.Exit(code=2) from None
    raise typer.Exit(code=code)


def _api_client(kubeconfig: Path | None) -> Any:
    """A kube ApiClient when a cluster is configured (flag, $KUBECONFIG, in a pod), else None."""
    from kinship.kube import api_client, in_pod

    return api_client(kubeconfig) if kubeconfig is not None or in_pod() else None


def _run(cfg: Any, api_client: Any, out: Path | None, once: bool) -> int:
    from profiler.graph_model import GraphModel
    from profiler.output import StatusWriter, dump_yaml, existing_graphs, render_documents
    from profiler.runner import Runner, serve_http

    sources = _sources(cfg, once)
    model = GraphModel(cfg.model)
    writer = None
    existing = []
    if api_client is not None:
        existing = _read_cluster(api_client, existing_graphs)
        writer = StatusWriter(api_client, cfg.output)
    runner = Runner(cfg, sources, model, writer, out, existing)
    if api_client is not None:
        runner.seed()
        log.info("seeded from %d AgentGraphs (%d edges)", len(existing), model.edge_count())

    if once:
        result = runner.run_round()
        if result.answered and out is None and writer is None:
            docs = render_documents(runner.teams(), runner.last_answer_at or 0.0)
            sys.stdout.write(dump_yaml(docs))
        if result.answered and not runner.teams():
            log.warning("no traffic between agents in the window; nothing written")
        for err in result.failed.values():
            typer.echo(f"error: {err}", err=True)
        log.info("one round: %s; %d edges", result.result, model.edge_count())
        return 0 if result.answered else 1

    try:
        server = serve_http(runner, cfg.runner.listen)
    except OSError as exc:
        raise InputError(
            "--listen", [f"cannot listen on {cfg.runner.listen}: {exc.strerror or exc}"]
        ) from None
    log.info(
        "profiling %s from %s every %.0fs; /metrics and /readyz on %s",
        ",".join(s.name for s in sources),
        cfg.prometheus.url,
        cfg.runner.interval_seconds,
        cfg.runner.listen,
    )
    signal.signal(signal.SIGTERM, lambda *_: runner.stop.set())
    signal.signal(signal.SIGINT, lambda *_: runner.stop.set())
    try:
        runner.run()
    finally:
        server.shutdown()
        for s in sources:
            s.stop() if hasattr(s, "stop") else s.close()
    log.info("stopped")
    return 0


def _sources(cfg: Any, once: bool) -> list[Any]:
    from profiler.prometheus_source import PrometheusSource

    sources: list[Any] = [PrometheusSource(m, cfg.prometheus, cfg.agent_names) for m in cfg.prometheus.meshes]
    if cfg.otlp is not None:
        if once:
            raise InputError("--once", ["the OTLP receiver needs time to see spans; run without --once"])
        from profiler.otlp import OtlpReceiver

        receiver = OtlpReceiver(cfg.otlp)
        try:
            port = receiver.start()
        except OSError as exc:
            raise InputError("otlp", [f"cannot listen on {cfg.otlp.host}:{cfg.otlp.port}: {exc}"]) from None
        log.info("receiving OTLP/gRPC traces on %s:%d", cfg.otlp.host, port)
        sources.append(receiver)
    if not sources:
        raise InputError("--mesh", ["no telemetry source: give a mesh or --otlp-listen"])
    return sources


def _read_cluster(api_client: Any, existing_graphs: Any) -> list[Any]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        graphs: list[Any] = existing_graphs(api_client)
    except ApiException as exc:
        raise InputError("cluster", [f"cannot list AgentGraphs: {exc.status} {exc.reason}"]) from None
    except (HTTPError, OSError) as exc:
        raise InputError("cluster", [f"cannot reach the API server: {exc}"]) from None
    return graphs
