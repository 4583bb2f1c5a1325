"""The profiler's one config object: every default in one place, validated at the edge.

A config file (`kinship profile --config FILE`) may set any key; command-line flags override the
file. Query sets are plain data (metric names, label names, a selector) so that a mesh configured
differently from its defaults (renamed metrics, extra servicegraph dimensions) needs no code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kinship.documents import read_yaml
from kinship.errors import InputError
from profiler.otlp.config import OtlpReceiverConfig

# Prometheus duration syntax ("30s", "5m", "1h30m"): a typo must fail here, not as a 400 per round.
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class QuerySet(BaseModel):
    """Where one telemetry format keeps an edge's traffic, as PromQL building blocks."""

    model_config = ConfigDict(extra="forbid")

    requests_metric: str
    # Counters (or histogram `_sum`s) of bytes, summed per edge: both directions of a link count.
    bytes_metrics: list[str] = Field(default_factory=list)
    latency_bucket_metric: str | None = None
    # Multiplier from the histogram's unit to milliseconds (1000 for a `_seconds` histogram).
    latency_unit_ms: float = Field(default=1.0, gt=0)
    # Extra label matchers for every query, e.g. `reporter="source"` so a call counts once.
    selector: str = ""
    source_label: str
    destination_label: str
    # Label names that carry each end's namespace; None means "use default_namespace".
    source_namespace_label: str | None = None
    destination_namespace_label: str | None = None
    # Names that are not agents: traffic from outside the mesh, virtual nodes.
    ignored_names: list[str] = Field(default_factory=lambda: ["", "unknown"])

    @field_validator(
        "source_label", "destination_label", "source_namespace_label", "destination_namespace_label"
    )
    @classmethod
    def _label_name(cls, value: str | None) -> str | None:
        if value is not None and not _LABEL.match(value):
            raise ValueError(f"not a Prometheus label name: {value!r}")
        return value

    @field_validator("requests_metric", "bytes_metrics", "latency_bucket_metric")
    @classmethod
    def _metric_names(cls, value: str | list[str] | None) -> str | list[str] | None:
        # Names go into PromQL (and a regex matcher) verbatim: only plain metric names are safe.
        for name in [value] if isinstance(value, str) else value or []:
            if not _METRIC.match(name):
                raise ValueError(f"not a Prometheus metric name: {name!r}")
        return value


def _istio() -> QuerySet:
    return QuerySet(
        requests_metric="istio_requests_total",
        bytes_metrics=[
            "istio_request_bytes_sum",
            "istio_response_bytes_sum",
            "istio_tcp_sent_bytes_total",
            "istio_tcp_received_bytes_total",
        ],
        latency_bucket_metric="istio_request_duration_milliseconds_bucket",
        # Both proxies of a call report it; the client's report alone counts each call once.
        # A caller without a sidecar has no client report, but it is not an agent anyway.
        selector='reporter="source"',
        source_label="source_workload",
        destination_label="destination_workload",
        source_namespace_label="source_workload_namespace",
        destination_namespace_label="destination_workload_namespace",
    )


def _linkerd() -> QuerySet:
    return QuerySet(
        requests_metric="request_total",
        # write = request bytes, read = response bytes, as seen by the client's proxy: the same
        # both-directions total that Istio's request + response sizes give.
        bytes_metrics=["tcp_write_bytes_total", "tcp_read_bytes_total"],
        latency_bucket_metric="response_latency_ms_bucket",
        # Inbound series carry no dst_* labels, and would count each call a second time.
        selector='direction="outbound"',
        source_label="deployment",
        destination_label="dst_deployment",
        source_namespace_label="namespace",
        destination_namespace_label="dst_namespace",
    )


def _servicegraph() -> QuerySet:
    return QuerySet(
        requests_metric="traces_service_graph_request_total",
        latency_bucket_metric="traces_service_graph_request_server_seconds_bucket",
        latency_unit_ms=1000.0,
        # Virtual nodes stand for callers or callees without spans of their own (a root span's
        # "user", an uninstrumented "unknown" peer); messaging_system and database edges stay.
        selector='connection_type!="virtual_node"',
        source_label="client",
        destination_label="server",
        ignored_names=["", "unknown", "user"],
    )


DEFAULT_QUERY_SETS = {"istio": _istio, "linkerd": _linkerd, "servicegraph": _servicegraph}


class PrometheusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:9090"
    # Which query sets to run; a cluster usually has one mesh, but servicegraph beside it is common.
    meshes: list[str] = Field(default_factory=lambda: ["istio"])
    # rate() window: long enough to hold several scrapes (15-30 s apart usually) so one missed
    # scrape does not zero an edge, short enough to follow a team that rewires itself.
    window: str = "5m"
    # Per query; a slow Prometheus must cost one failed round, never a hung profiler.
    query_timeout_seconds: float = Field(default=10.0, gt=0)
    # Evaluate queries this far in the past: a scrape's samples are stamped when it starts but
    # queryable only once ingested, up to a scrape timeout (Prometheus's default: 10 s) later.
    query_delay_seconds: float = Field(default=10.0, ge=0)
    # Overrides of the default query sets, by mesh name (only the keys given change).
    query_sets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Namespace of edges from a format without namespace labels (servicegraph by default).
    default_namespace: str = "default"

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"not a Prometheus duration like 30s, 5m, 1h: {value!r}")
        return value

    @field_validator("meshes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in DEFAULT_QUERY_SETS]
        if unknown:
            raise ValueError(f"unknown mesh {', '.join(unknown)}; known: {', '.join(DEFAULT_QUERY_SETS)}")
        # Empty is allowed: OTLP alone (--mesh "" --otlp-listen); the CLI refuses no source at all.
        return value

    @field_validator("query_sets")
    @classmethod
    def _overrides(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # A field validator (not a model one) so these problems come with the other fields'.
        problems = []
        for mesh, override in value.items():
            if mesh not in DEFAULT_QUERY_SETS:
                problems.append(f"{mesh}: unknown mesh")
                continue
            try:
                QuerySet.model_validate({**DEFAULT_QUERY_SETS[mesh]().model_dump(), **override})
            except ValidationError as exc:
                problems += [f"{mesh}.{p}" for p in _problems(exc)]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def query_set(self, mesh: str) -> QuerySet:
        base = DEFAULT_QUERY_SETS[mesh]()
        override = self.query_sets.get(mesh)
        return QuerySet.model_validate({**base.model_dump(), **override}) if override else base


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Memory of the smoothed rates: one quiet window (an agent between jobs) halves an edge at
    # most once, while a team that rewires itself shows in the graph within the hour.
    half_life_seconds: float = Field(default=600.0, gt=0)
    # Below both of these an edge is gone: a decayed edge should not pull pods together forever.
    min_requests_per_second: float = Field(default=0.01, ge=0)
    min_bytes_per_second: float = Field(default=1.0, ge=0)
    # A source that keeps failing stops vouching for its last answer after this long, so its
    # edges start to decay instead of living on unobserved.
    source_max_age_seconds: float = Field(default=900.0, gt=0)


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # AgentGraph that receives a namespace's observed edges; otherwise the namespace's existing
    # one (the one the profiler wrote before, else the first by name), else the namespace name.
    graph_names: dict[str, str] = Field(default_factory=dict)
    field_manager: str = "kinship-profiler"
    # Creating objects in a team's namespace is a bigger permission than writing status.
    create_missing_graphs: bool = False
    # Status writes wake every extender's watch: only write what changed, and not too often.
    min_write_interval_seconds: float = Field(default=30.0, ge=0)
    change_tolerance_fraction: float = Field(default=0.1, ge=0)
    # ...but refresh observedAt now and then so readers can tell the profiler is alive.
    max_write_interval_seconds: float = Field(default=600.0, gt=0)


class RunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Prometheus rule evaluation and scrapes run every 15-30 s; polling faster learns nothing.
    interval_seconds: float = Field(default=30.0, gt=0)
    # Retries per source and round, with exponential backoff from retry_initial_seconds, capped
    # so a round never outlasts its interval by much.
    attempts: int = Field(default=3, ge=1)
    retry_initial_seconds: float = Field(default=1.0, ge=0)
    retry_max_seconds: float = Field(default=8.0, ge=0)
    # No source answered for this long: the graph is reported stale (metrics, /readyz body, logs).
    stale_after_seconds: float = Field(default=300.0, gt=0)
    listen: str = "127.0.0.1:9464"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value


class ProfilerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    # The OTLP/gRPC trace receiver, off unless configured (`otlp:` here or --otlp-listen): at
    # fleet scale traces go through the Collector's servicegraph connector into Prometheus.
    otlp: OtlpReceiverConfig | None = None
    # Telemetry name -> agent, for workloads whose agent identity is a label, not their name.
    agent_names: dict[str, str] = Field(default_factory=dict)


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or '<document>'}: {e['msg']}" for e in exc.errors()]


def load_config(path: Path | None, overrides: dict[str, dict[str, Any]] | None = None) -> ProfilerConfig:
    """The file's settings with command-line `overrides` ({section: {key: value}}) on top."""
    data: dict[str, Any] = {}
    source = str(path) if path else "command line"
    if path is not None:
        loaded = read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise InputError(source, ["<document>: expected a mapping of sections"])
        data = loaded
    for section, values in (overrides or {}).items():
        current = data.get(section)
        merged: dict[str, Any] = current if isinstance(current, dict) else {}
        data[section] = {**merged, **{k: v for k, v in values.items() if v is not None}}
    try:
        return ProfilerConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, _problems(exc)) from None
