"""The `kinship` command line. Bad input exits 2 with the file and field named, no traceback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kinship.errors import InputError
from kinship.kube import api_client
from predictor.cli import predict_app  # light: the group's own imports load inside commands
from profiler.cli import profile  # light: typer only; the profiler's modules load inside the command

if TYPE_CHECKING:  # pydantic and the extender load only when a command runs
    from extender.config import ExtenderConfig

app = typer.Typer(
    name="kinship",
    help="Relation-aware placement for fleets of AI agents on Kubernetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
log = logging.getLogger("kinship")

SnapshotOpt = Annotated[
    Path | None,
    typer.Option("--snapshot", help="`kubectl get nodes,pods -A -o json` output (offline mode)."),
]
GraphOpt = Annotated[
    list[Path] | None,
    typer.Option("--graph", help="AgentGraph YAML file; repeat for several (offline mode)."),
]
ProfileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--profile", help="AgentProfile YAML file (predicted peaks, correlations); repeat for several."
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Extender config YAML (weights...).")]


def _fail(exc: InputError) -> typer.Exit:
    typer.echo(f"error: {exc.render()}", err=True)
    return typer.Exit(code=2)


@app.command()
def serve(
    snapshot: SnapshotOpt = None,
    graph: GraphOpt = None,
    profile: ProfileOpt = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            envvar="KUBECONFIG", help="Cluster mode: kubeconfig (in-cluster config first when in a pod)."
        ),
    ] = None,
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (the verbs).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on (the verbs).")] = 8888,
    ops_host: Annotated[
        str, typer.Option(help="Address of the ops listener (/livez, /readyz, /metrics); with --ops-port.")
    ] = "0.0.0.0",
    ops_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve /livez, /readyz and /metrics on this port only, and only the verbs on --port.",
        ),
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option(help="HTTPS for the verbs: serving certificate (PEM); needs --client-ca-file."),
    ] = None,
    tls_key_file: Annotated[
        Path | None, typer.Option(help="HTTPS for the verbs: its private key (PEM).")
    ] = None,
    client_ca_file: Annotated[
        Path | None,
        typer.Option(help="HTTPS for the verbs: answer only clients with a certificate this CA signed."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug logs every score breakdown.")] = "info",
    log_format: Annotated[str, typer.Option(help="auto | text | json")] = "auto",
) -> None:
    """Serve the extender API: offline from files (--snapshot) or from the cluster (watches)."""
    from kinship.logs import configure_cli

    configure_cli(log_level, log_format)

    from extender import serving
    from extender.config import load_config

    try:
        tls = serving.check_tls(tls_cert_file, tls_key_file, client_ca_file)
        cfg = load_config(config)
        if snapshot is not None:
            from extender.offline import build_state

            state = build_state(snapshot, graph or [], cfg.observed_fraction, profile or [], cfg.profiles)
            binder = None  # a snapshot has no API server to write bindings to
            log.info("offline mode: %s", state.sizes())
        else:
            if graph:
                raise InputError("--graph", ["graph files are for offline mode; add --snapshot"])
            if profile:
                problem = "profile files are for offline mode (cluster mode watches them); add --snapshot"
                raise InputError("--profile", [problem])
            state, binder = _cluster_state(kubeconfig, cfg)
        reloader = None
        if tls is not None:
            import dataclasses

            from predictor.tls import CertificateReloader  # cert-manager renews the pair in place

            reloader = CertificateReloader(tls.cert_file, tls.key_file)
            tls = dataclasses.replace(tls, context_factory=reloader.ssl_context_factory)
        ops = serving.Listener(ops_host, ops_port) if ops_port is not None else None
        listening = serving.servers(state, cfg, binder, serving.Listener(host, port), ops, tls)
    except InputError as exc:
        raise _fail(exc) from None
    if reloader is not None:
        reloader.start()
    try:
        serving.run(listening)
    finally:
        if reloader is not None:
            reloader.stop()


def _cluster_state(kubeconfig: Path | None, cfg: ExtenderConfig) -> tuple[Any, Any]:
    """The watched cache and the binder (the bind verb) of cluster mode, on one configuration."""
    from extender import kube_sync
    from extender.binder import Binder
    from extender.state import ClusterState

    api = api_client(kubeconfig)
    try:
        binder = Binder(api.configuration, cfg.bind_connections)
    except ValueError as exc:
        raise InputError(str(kubeconfig or "kubeconfig"), [str(exc)]) from None
    state = ClusterState(observed_fraction=cfg.observed_fraction, profile_policy=cfg.profiles)
    kube_sync.start(state, api)
    log.info("cluster mode: watching nodes, pods, workloads, agentgraphs, agentprofiles")
    return state, binder


@app.command()
def explain(
    pod: Annotated[Path, typer.Option("--pod", help="Pod (or Deployment/StatefulSet/Job) YAML to place.")],
    snapshot: Annotated[Path, typer.Option("--snapshot", help="`kubectl get nodes,pods -A -o json` output.")],
    graph: GraphOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="Which object of a multi-document --pod file.")] = None,
) -> None:
    """Show how each candidate node scores for a pod, term by term, and why nodes are filtered."""
    from rich.console import Console

    from extender.config import load_config
    from extender.explain import render
    from extender.offline import build_state

    try:
        cfg = load_config(config)
        state = build_state(snapshot, graph or [], cfg.observed_fraction, profile or [], cfg.profiles)
        render(Console(), state, cfg, pod, name)
    except InputError as exc:
        raise _fail(exc) from None


@app.command()
def demo(
    kubeconfig: Annotated[
        Path | None, typer.Option(envvar="KUBECONFIG", help="Cluster to deploy the example teams to.")
    ] = None,
    examples: Annotated[Path, typer.Option(help="Directory with the example teams.")] = Path("examples"),
    extender_url: Annotated[
        str | None,
        typer.Option(envvar="KINSHIP_EXTENDER_URL", help="Extender whose graph cache to wait for."),
    ] = None,
) -> None:
    """Deploy the example teams under kinship and the default scheduler; show placements and traffic."""
    from rich.console import Console

    from kinship.demo import run_demo

    def graphs_cached(count: int) -> None:
        if extender_url:
            _wait_graphs_cached(extender_url, count)

    try:
        run_demo(api_client(kubeconfig), examples, Console(), graphs_cached)
    except InputError as exc:
        raise _fail(exc) from None
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _wait_graphs_cached(extender_url: str, count: int, timeout_seconds: float = 30) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_seconds
    prefix = 'kinship_extender_cache_objects{kind="agentgraphs"}'
    while True:
        try:
            with urllib.request.urlopen(f"{extender_url}/metrics", timeout=5) as reply:
                text = reply.read().decode()
            cached = sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(prefix))
            if cached >= count:
                return
        except OSError as exc:
            log.debug("extender metrics: %s", exc)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the extender at {extender_url} did not cache {count} AgentGraphs in {timeout_seconds:.0f} s"
            )
        time.sleep(0.2)


app.command("profile")(profile)
app.add_typer(predict_app, name="predict")


def main() -> None:  # pragma: no cover - console entry for `python -m kinship`
    app(prog_name="kinship")


if __name__ == "__main__":  # pragma: no cover
    main()
