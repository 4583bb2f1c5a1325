"""`kinship predict ...`: convert traces, evaluate recommenders by replay, train and publish profiles.

Heavy modules (scikit-learn, matplotlib, the kubernetes client) load inside the commands, so
registering this group costs `kinship serve` nothing at start-up. Bad input exits 2 naming the
file and field.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kinship.errors import InputError

if TYPE_CHECKING:  # numpy and friends load only when a command runs
    from kinship.profile import ProfilePolicy
    from predictor.usage import Resource

predict_app = typer.Typer(
    help="Right-size agent requests from observed usage (predicted peaks, AgentProfile status).",
    no_args_is_help=True,
)


class Source(StrEnum):
    AZURE_VM = "azure-vm"
    ONLINEBOUTIQUE = "onlineboutique"
    ALIBABA_GENAI = "alibaba-genai"
    AZURE_LLM = "azure-llm"
    PROMETHEUS = "prometheus"


class ResourceName(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"


class MarginMode(StrEnum):
    SERIES = "series"
    POOLED = "pooled"


def _targets(text: str | None) -> tuple[float, ...]:
    """'0.001,0.01' -> (0.001, 0.01); each strictly between 0 and 1."""
    if text is None or not text.strip():
        return ()
    values, problems = [], []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            problems.append(f"not a number: {part.strip()!r}")
            continue
        if not 0 < value < 1:
            problems.append(f"must be between 0 and 1 exclusive: {value}")
        values.append(value)
    if problems:
        raise InputError("--sweep", problems)
    return tuple(sorted(set(values)))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _seconds(text: str | None, flag: str) -> float | None:
    """'90', '90s', '15m', '1h', '2d' -> seconds."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if not match:
        raise InputError(flag, [f"not a duration (e.g. 3600, 30m, 1h): {text!r}"])
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def _fail(exc: InputError) -> typer.Exit:
    typer.echo(f"error: {exc.render()}", err=True)
    return typer.Exit(code=2)


def _config(
    horizon: str | None, window: str | None, target: float | None, refit: str | None, warmup: str | None
) -> Any:
    from predictor.config import PredictorConfig

    return PredictorConfig().with_overrides(
        "options",
        horizon_seconds=_seconds(horizon, "--horizon"),
        window_seconds=_seconds(window, "--window"),
        target_violation_fraction=target,
        refit_every_seconds=_seconds(refit, "--refit-every"),
        warmup_seconds=_seconds(warmup, "--warmup"),
    )


HorizonOpt = Annotated[str | None, typer.Option(help="How long a recommendation holds (3600, 30m, 1h).")]
WindowOpt = Annotated[str | None, typer.Option(help="Recent history the features see (default 2h).")]
TargetOpt = Annotated[
    float | None,
    typer.Option("--target-violation", help="Share of samples allowed above the request (default 0.02)."),
]
MarginOpt = Annotated[
    MarginMode,
    typer.Option(help="Margins per series (sharing the violation budget) or one pooled."),
]


@predict_app.command()
def convert(
    source: Annotated[Source, typer.Option("--from", help="Which trace format to read.")],
    out: Annotated[Path, typer.Option(help="Usage CSV to write.")],
    input_path: Annotated[
        Path | None, typer.Option("--input", help="The trace file (not for prometheus).")
    ] = None,
    vcpus: Annotated[
        float, typer.Option(help="azure-vm: nominal vCPUs, 100 % = vcpus*1000 millicores.")
    ] = 1.0,
    start: Annotated[str, typer.Option(help="azure-vm: RFC 3339 time of step 1 (the trace is relative).")] = (
        "2017-01-01T00:00:00Z"
    ),
    capacity_bytes: Annotated[
        float, typer.Option(help="alibaba-genai: nominal memory limit that utilisation is a share of.")
    ] = 16 * 1024.0**3,
    bytes_per_token: Annotated[
        float, typer.Option(help="azure-llm: KV-cache bytes per token (0.5 MiB ~ a 7B fp16 model).")
    ] = 0.5 * 1024.0**2,
    url: Annotated[str, typer.Option(help="prometheus: server URL.")] = "http://127.0.0.1:9090",
    namespace: Annotated[str, typer.Option(help="prometheus: namespace of the agents.")] = "default",
    since: Annotated[str, typer.Option(help="prometheus: how far back to read.")] = "24h",
    step: Annotated[str, typer.Option(help="prometheus: query resolution.")] = "60s",
    cpu_metric: Annotated[
        str | None,
        typer.Option(help="prometheus: CPU seconds counter (default container_cpu_usage_seconds_total)."),
    ] = None,
    memory_metric: Annotated[
        str | None,
        typer.Option(help="prometheus: memory gauge in bytes (default container_memory_working_set_bytes)."),
    ] = None,
    rate_window: Annotated[
        str | None, typer.Option(help="prometheus: rate() window, at least two scrapes (default 5m).")
    ] = None,
) -> None:
    """Convert a real trace (or a Prometheus range) into the usage table."""
    from predictor import convert as conv
    from predictor.usage import parse_timestamp, write_usage

    try:
        if source is Source.PROMETHEUS:
            from predictor.prometheus import fetch

            prometheus = _prometheus_source(cpu_metric, memory_metric, rate_window)
            now = time.time()
            samples = fetch(
                url,
                namespace,
                now - (_seconds(since, "--since") or 0),
                now,
                _seconds(step, "--step") or 60.0,
                prometheus,
            )
        else:
            if input_path is None:
                raise InputError("--input", [f"--from {source.value} needs the trace file"])
            if source is Source.AZURE_VM:
                try:
                    start_seconds = parse_timestamp(start)
                except ValueError as exc:
                    raise InputError("--start", [str(exc)]) from None
                samples = conv.azure_vm(input_path, vcpus, start_seconds)
            elif source is Source.ONLINEBOUTIQUE:
                samples = conv.onlineboutique(input_path)
            elif source is Source.ALIBABA_GENAI:
                samples = conv.alibaba_genai(input_path, capacity_bytes)
            else:
                samples = conv.azure_llm(input_path, bytes_per_token)
        rows = write_usage(out, samples)
    except InputError as exc:
        raise _fail(exc) from None
    except ValueError as exc:  # a Prometheus answer that is not a range matrix
        raise _fail(InputError(url, [str(exc)])) from None
    typer.echo(f"wrote {rows} samples of {len({s.series for s in samples})} series to {out}")


def _prometheus_source(cpu_metric: str | None, memory_metric: str | None, rate_window: str | None) -> Any:
    """The query settings from the options (unset: PrometheusSource's defaults), checked before any
    query is sent: a name outside Prometheus' syntax would be pasted into PromQL."""
    from dataclasses import replace

    from predictor.prometheus import PrometheusSource

    flags = {"cpu_metric": "--cpu-metric", "memory_metric": "--memory-metric", "rate_window": "--rate-window"}
    given = {"cpu_metric": cpu_metric, "memory_metric": memory_metric, "rate_window": rate_window}
    source = replace(PrometheusSource(), **{k: v for k, v in given.items() if v is not None})
    problems = source.problems()
    if len(problems) == 1:
        ((field, problem),) = problems.items()
        raise InputError(flags[field], [problem])
    if problems:
        raise InputError("options", [f"{flags[field]}: {problem}" for field, problem in problems.items()])
    return source


@predict_app.command()
def evaluate(
    usage: Annotated[Path, typer.Option(help="Usage CSV (see `kinship predict convert`).")],
    resource: Annotated[ResourceName, typer.Option(help="Which resource to replay.")],
    horizon: HorizonOpt = None,
    window: WindowOpt = None,
    target_violation: TargetOpt = None,
    refit_every: Annotated[str | None, typer.Option(help="Refit the model this often (default 6h).")] = None,
    warmup: Annotated[
        str | None, typer.Option(help="History before the first decision (default 4h).")
    ] = None,
    declared: Annotated[
        Path | None, typer.Option(help="Manifest YAML whose requests are the `static` baseline.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON only.")] = False,
    recommendations: Annotated[
        Path | None, typer.Option(help="Write every recommendation (timestamp,series,method,value).")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="PNG of usage vs recommendations for a few series.")
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            help="Also replay kinship at these violation targets (comma-separated, e.g. "
            "0.001,0.005,0.02) and read the curve at VPA's violation rate."
        ),
    ] = None,
    curve: Annotated[
        Path | None, typer.Option(help="PNG of slack vs violation rate (needs --sweep).")
    ] = None,
    margin: MarginOpt = MarginMode.SERIES,
    by_series: Annotated[
        Path | None,
        typer.Option(
            help="Write each method's figures per series (method,series,slack,violation_rate,"
            "worst_overrun,judged_samples): where a method wins or loses."
        ),
    ] = None,
    foresight: Annotated[
        bool,
        typer.Option(
            "--foresight",
            help="Also score requests that know each coming horizon, at VPA's violation rate: its "
            "mean or p90 times a per-series factor chosen in hindsight, and its own best request. "
            "What this trace leaves for any per-horizon request to win.",
        ),
    ] = False,
) -> None:
    """Replay the trace in time order; print slack, violation rate and worst overrun per method."""
    from predictor.evaluate import evaluate as run
    from predictor.evaluate import matched
    from predictor.usage import read_usage

    res: Resource = "cpu" if resource is ResourceName.CPU else "memory"

    try:
        targets = _targets(sweep)
        if curve is not None and not targets:
            raise InputError("--curve", ["needs --sweep (the targets to draw the curve through)"])
        cfg = _config(horizon, window, target_violation, refit_every, warmup).with_overrides(
            "--margin", margin_per_series=margin is MarginMode.SERIES
        )
        table = read_usage(usage)
        static = None
        if declared is not None:
            from predictor.declared import declared_requests

            static = declared_requests(declared, res)
        try:
            result = run(
                table,
                res,
                cfg,
                static,
                progress=_progress(as_json),
                sweep=targets,
                foresight_at="vpa" if foresight else None,
            )
        except ValueError as exc:
            raise InputError(str(usage), [str(exc)]) from None
    except InputError as exc:
        raise _fail(exc) from None
    if recommendations is not None:
        _write_recommendations(recommendations, result.recommendations)
    if by_series is not None:
        _write_by_series(by_series, table, res, result.recommendations, cfg.horizon_seconds)
    if plot is not None:
        from predictor.plot import plot_replay

        plot_replay(plot, table, res, result.recommendations, cfg.horizon_seconds)
    if curve is not None:
        from predictor.plot import plot_curve

        plot_curve(curve, result.scores, f"{usage.name}: {resource.value}")
    figures = {
        name: {"slack": s.slack, "violation_rate": s.violation_rate, "worst_overrun": s.worst_overrun}
        for name, s in result.scores.items()
    }
    at_reference = matched(result.scores)
    if as_json:
        out: dict[str, Any] = {"resource": resource.value, "methods": figures}
        if at_reference is not None:
            out["matched"] = dataclasses.asdict(at_reference)
        typer.echo(json.dumps(out))
        return
    from rich.console import Console
    from rich.table import Table

    table_out = Table(
        title=f"{usage.name}: {resource.value}, horizon {cfg.horizon_seconds:g} s, {result.refits} refits"
    )
    for column in ("method", "slack", "violation rate", "worst overrun"):
        table_out.add_column(column, justify="left" if column == "method" else "right")
    for name, f in figures.items():
        table_out.add_row(
            name, f"{f['slack']:.3f}", f"{f['violation_rate']:.4f}", f"{f['worst_overrun']:.2f}"
        )
    Console().print(table_out)
    if at_reference is not None:
        m = at_reference
        best = (
            f"{m.best_method}: slack {m.best_slack:.3f} at {m.best_violation_rate:.4f}"
            if m.best_method is not None
            else "no swept target violates as rarely"
        )
        interpolated = f"{m.interpolated_slack:.3f}" if m.interpolated_slack is not None else "not bracketed"
        typer.echo(
            f"at {m.reference}'s violation rate {m.reference_violation_rate:.4f} (slack "
            f"{m.reference_slack:.3f}): best swept kinship {best}; curve interpolated {interpolated}"
        )


def _progress(quiet: bool) -> Any:
    def track(items: Any, total: int) -> Any:
        if quiet:
            return items
        from rich.progress import track as rich_track

        return rich_track(items, total=total, description="walk-forward refits", transient=True)

    return track


def _write_by_series(path: Path, table: Any, res: Resource, recommendations: Any, horizon: float) -> None:
    import csv

    from predictor.evaluate import score_by_series

    rows = score_by_series(table, res, recommendations, horizon)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("method", "series", "slack", "violation_rate", "worst_overrun", "judged_samples"))
        for (method, series), figures in sorted(rows.items()):
            s = figures.scores
            writer.writerow(
                (
                    method,
                    series,
                    repr(s.slack),
                    repr(s.violation_rate),
                    repr(s.worst_overrun),
                    figures.judged_samples,
                )
            )


def _write_recommendations(path: Path, recommendations: Any) -> None:
    import csv

    from predictor.usage import format_timestamp

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("timestamp", "series", "method", "value"))
        for r in sorted(recommendations, key=lambda r: (r.decision_seconds, r.series, r.method)):
            writer.writerow((format_timestamp(r.decision_seconds), r.series, r.method, repr(r.value)))


@predict_app.command()
def train(
    usage: Annotated[Path, typer.Option(help="Usage CSV (see `kinship predict convert`).")],
    out: Annotated[Path | None, typer.Option(help="Write the AgentProfiles as multi-document YAML.")] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the agents (one shard).")] = "default",
    model: Annotated[
        Path | None, typer.Option(help="Model file: reused when it matches, written after a fit.")
    ] = None,
    retrain: Annotated[bool, typer.Option(help="Fit even when --model holds a matching model.")] = False,
    horizon: HorizonOpt = None,
    window: WindowOpt = None,
    target_violation: TargetOpt = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Server-side apply the status to this cluster (implies --apply).")
    ] = None,
    apply: Annotated[
        bool, typer.Option(help="Apply to the cluster: in-cluster config in a pod, else $KUBECONFIG.")
    ] = False,
    create_missing: Annotated[
        bool, typer.Option(help="Create AgentProfiles that do not exist yet (spec.agent only).")
    ] = False,
    margin: MarginOpt = MarginMode.SERIES,
) -> None:
    """Fit on the whole history and publish predicted peaks and recommended requests per agent."""
    import yaml

    from predictor.persist import load_models, save_models
    from predictor.profiles import fit_models, profile_documents
    from predictor.usage import read_usage

    try:
        cfg = _config(horizon, window, target_violation, None, None).with_overrides(
            "--margin", margin_per_series=margin is MarginMode.SERIES
        )
        table = read_usage(usage)
        models: dict[Resource, Any] | None = None
        if model is not None and not retrain:
            models, why = load_models(model, cfg)
            typer.echo(f"{model}: {why}", err=True)
        if models is None:
            models = fit_models(table, cfg, announce=lambda m: typer.echo(m, err=True))
            if not models:
                raise InputError(str(usage), ["not enough history to train any resource"])
            if model is not None:
                save_models(model, models, cfg)
        docs = profile_documents(table, models, cfg, namespace, time.time())
    except InputError as exc:
        raise _fail(exc) from None
    if out is not None:
        out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        typer.echo(f"wrote {len(docs)} AgentProfiles to {out}", err=True)
    if apply or kubeconfig is not None:
        from kinship.kube import api_client
        from predictor.apply import apply_profiles

        try:
            result = apply_profiles(api_client(kubeconfig), docs, create_missing)
        except InputError as exc:
            raise _fail(exc) from None
        typer.echo(
            f"applied {len(result.applied)}, created {len(result.created)}, missing "
            f"{len(result.missing)}{' (use --create-missing): ' if result.missing else ''}"
            f"{' '.join(result.missing)}",
            err=True,
        )
    if out is None and not apply and kubeconfig is None:
        typer.echo(yaml.safe_dump_all(docs, sort_keys=False))


@predict_app.command()
def webhook(
    tls_cert_file: Annotated[
        Path,
        typer.Option(
            help="Serving certificate (PEM; its SANs must name the webhook's address). Reloaded, "
            "without a restart, when it or --tls-key-file changes (a renewed Secret)."
        ),
    ],
    tls_key_file: Annotated[Path, typer.Option(help="Private key of --tls-cert-file (PEM).")],
    listen: Annotated[str, typer.Option(help="HOST:PORT to serve /mutate, /readyz, /livez on.")] = (
        "0.0.0.0:8443"
    ),
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            envvar="KUBECONFIG", help="Cluster to watch AgentProfiles in (in-cluster config first in a pod)."
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Ignore AgentProfiles whose confidence is lower [default: 0.5, as the extender]. "
            "Keep it equal to the extender's profiles.min_confidence, so that the pods it sizes "
            "are the ones the extender packs by their peaks.",
        ),
    ] = None,
    max_profile_age: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="Ignore AgentProfiles trained longer ago than this many seconds [default: 604800, "
            "7 days, as the extender's profiles.max_age_seconds].",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug logs every pod left unchanged, and why.")] = "info",
    log_format: Annotated[str, typer.Option(help="auto | text | json")] = "auto",
) -> None:
    """Mutating admission webhook: set new pods' requests from their AgentProfile (HTTPS)."""
    from kinship.logs import configure_cli

    configure_cli(log_level, log_format)
    try:
        host, port = _webhook_listen(listen, tls_cert_file, tls_key_file)
        from kinship.kube import api_client

        api = api_client(kubeconfig)
    except InputError as exc:
        raise _fail(exc) from None

    from predictor.tls import CertificateReloader

    reloader = CertificateReloader(tls_cert_file, tls_key_file)  # cert-manager renews the pair in place

    import uvicorn

    from kinship.watch import Reflector
    from predictor.webhook import (
        LimitRangeCache,
        ProfileCache,
        QuotaCache,
        create_app,
        limit_ranges_resource,
        profiles_resource,
        resource_quotas_resource,
        server_config,
    )

    cache, limit_ranges, quotas = ProfileCache(), LimitRangeCache(), QuotaCache()
    reflectors = [
        Reflector(profiles_resource(cache, api), cache),
        Reflector(limit_ranges_resource(limit_ranges, api), limit_ranges),
        Reflector(resource_quotas_resource(quotas, api), quotas),
    ]
    for reflector in reflectors:
        reflector.start()
    app = create_app(cache, limit_ranges, quotas, _profile_policy(min_confidence, max_profile_age))
    server = uvicorn.Server(server_config(app, host, port, reloader))
    reloader.start()
    try:
        server.run()
    finally:
        reloader.stop()
        for reflector in reflectors:
            reflector.stop()


def _profile_policy(min_confidence: float | None, max_age_seconds: float | None) -> ProfilePolicy:
    """The trust policy from the flags given; the others keep the extender's defaults."""
    from kinship.profile import ProfilePolicy

    given = {"min_confidence": min_confidence, "max_age_seconds": max_age_seconds}
    return ProfilePolicy(**{k: v for k, v in given.items() if v is not None})


def _webhook_listen(listen: str, cert: Path, key: Path) -> tuple[str, int]:
    """(host, port) of --listen, after checking every flag; all problems reported at once. The key
    pair is loaded here so that a bad one is a usage error, not a traceback from uvicorn."""
    import ssl

    problems: dict[str, str] = {}
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        problems["--listen"] = f"expected HOST:PORT, got {listen!r}"
    for flag, path in (("--tls-cert-file", cert), ("--tls-key-file", key)):
        if not path.is_file():
            problems[flag] = f"no such file: {path}"
    if not problems:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            problems["--tls-cert-file"] = f"cannot load the key pair {cert}, {key}: {exc}"
    if len(problems) == 1:
        ((flag, problem),) = problems.items()
        raise InputError(flag, [problem])
    if problems:
        raise InputError("options", [f"{flag}: {problem}" for flag, problem in problems.items()])
    return host.strip("[]"), int(port)
