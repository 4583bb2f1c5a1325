"""Edges from mesh telemetry in Prometheus: one `EdgeSource` per query set (Istio, Linkerd, servicegraph).

Each round runs three instant queries per mesh (requests/s, bytes/s, p50 latency), each aggregated
by the edge's labels inside Prometheus, so the reply has one series per edge whatever the number
of pods. Telemetry names become agents as DESIGN.md's identity contract says: the workload name
(Istio `*_workload`, Linkerd `deployment`, servicegraph `service.name`) is the agent, unless
`agent_names` maps it to another name.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from profiler.config import PrometheusConfig, QuerySet
from profiler.edges import EdgeSample, SourceError

log = logging.getLogger(__name__)

EdgeKey = tuple[str, str, str]  # (namespace, source agent, destination agent)


def _by(qs: QuerySet) -> str:
    labels = [qs.source_label, qs.destination_label]
    labels += [n for n in (qs.source_namespace_label, qs.destination_namespace_label) if n]
    return ", ".join(dict.fromkeys(labels))


def _matchers(qs: QuerySet) -> str:
    return "{" + qs.selector.strip() + "}"


def build_queries(qs: QuerySet, window: str) -> dict[str, str]:
    """PromQL per quantity. Aggregation happens server-side: the reply is one series per edge."""
    by = _by(qs)
    queries = {
        "requests": f"sum by ({by}) (rate({qs.requests_metric}{_matchers(qs)}[{window}]))",
    }
    # One query per bytes metric: rate() drops the metric name, so a single regex selector over
    # several names fails in Prometheus ("vector cannot contain metrics with the same labelset").
    for name in qs.bytes_metrics:
        queries[f"bytes:{name}"] = f"sum by ({by}) (rate({name}{_matchers(qs)}[{window}]))"
    if qs.latency_bucket_metric:
        queries["latency"] = (
            f"histogram_quantile(0.5, sum by (le, {by}) "
            f"(rate({qs.latency_bucket_metric}{_matchers(qs)}[{window}])))"
        )
    return queries


@dataclass
class EdgeMapper:
    """Turns one series' labels into an edge between two agents of one namespace, or None.

    Skipped, and why:
    - an empty or ignored name ("unknown", servicegraph's virtual "user"): the caller or callee is
      outside the mesh (an ingress, a load generator, an uninstrumented peer), not an agent that
      Kinship could place;
    - a self-loop: replicas of one agent calling each other are the spread term's business, and
      placement drops such edges anyway;
    - a cross-namespace edge: an AgentGraph and agent identity are scoped to one namespace, so the
      edge would name an agent that the other team's graph resolves to nothing, or to another pod.
    """

    qs: QuerySet
    default_namespace: str
    agent_names: Mapping[str, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)

    def edge(self, labels: Mapping[str, str]) -> EdgeKey | None:
        qs = self.qs
        src = labels.get(qs.source_label, "")
        dst = labels.get(qs.destination_label, "")
        if src in qs.ignored_names or dst in qs.ignored_names:
            self.skipped["not an agent"] += 1
            return None
        src = self.agent_names.get(src, src)
        dst = self.agent_names.get(dst, dst)
        src_ns = labels.get(qs.source_namespace_label or "", "")
        dst_ns = labels.get(qs.destination_namespace_label or "", "")
        src_ns = src_ns or dst_ns or self.default_namespace
        dst_ns = dst_ns or src_ns
        if src_ns != dst_ns:
            self.skipped["cross-namespace"] += 1
            return None
        if src == dst:
            self.skipped["self-loop"] += 1
            return None
        return (src_ns, src, dst)


def _series(reply: Any, what: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) pairs of an instant-query vector; anything else is a bad reply."""
    if not isinstance(reply, list):
        raise SourceError(f"{what}: expected a vector, got {type(reply).__name__}")
    out = []
    for item in reply:
        try:
            labels = item["metric"]
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SourceError(f"{what}: malformed series {item!r:.200}: {exc}") from None
        if not isinstance(labels, dict):
            raise SourceError(f"{what}: malformed labels {labels!r:.200}")
        out.append((labels, value))
    return out


def samples_from_replies(
    mapper: EdgeMapper, replies: Mapping[str, Any], origin: str, latency_unit_ms: float = 1.0
) -> list[EdgeSample]:
    """Join the per-quantity replies into one sample per edge.

    Several series can land on one edge (two workloads mapped to one agent): their rates add up,
    and the edge keeps the highest p50 (the slower path is the one placement can help).
    """
    requests: dict[EdgeKey, float] = {}
    bytes_: dict[EdgeKey, float] = {}
    latency: dict[EdgeKey, float] = {}
    for quantity, reply in replies.items():
        if quantity == "latency":
            continue
        target = requests if quantity == "requests" else bytes_
        for labels, value in _series(reply, quantity):
            key = mapper.edge(labels)
            if key is not None and math.isfinite(value) and value > 0:
                target[key] = target.get(key, 0.0) + value
    for labels, value in _series(replies.get("latency", []), "latency"):
        key = mapper.edge(labels)
        # NaN: no calls in the window; +Inf: the median is past the last bucket, unknown.
        if key is not None and math.isfinite(value) and value >= 0:
            latency[key] = max(latency.get(key, 0.0), value * latency_unit_ms)
    samples = []
    for key in sorted(requests.keys() | bytes_.keys()):
        ns, src, dst = key
        samples.append(
            EdgeSample(
                namespace=ns,
                source=src,
                destination=dst,
                requests_per_second=requests.get(key, 0.0),
                bytes_per_second=bytes_.get(key, 0.0),
                p50_latency_ms=latency.get(key),
                origin=origin,
            )
        )
    return samples


class PrometheusSource:
    """One mesh's query set against one Prometheus (or Thanos / Mimir: the same HTTP API)."""

    def __init__(
        self, mesh: str, cfg: PrometheusConfig, agent_names: Mapping[str, str] | None = None
    ) -> None:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.name = mesh
        self._qs = cfg.query_set(mesh)
        self._queries = build_queries(self._qs, cfg.window)
        self._timeout_seconds = cfg.query_timeout_seconds
        self._url = cfg.url.rstrip("/")
        self._delay_seconds = cfg.query_delay_seconds
        self._default_namespace = cfg.default_namespace
        self._agent_names = dict(agent_names or {})
        # No retries inside the client: the runner retries with its own backoff and budget.
        self._client = PrometheusConnect(
            url=cfg.url.rstrip("/"), retry=Retry(total=0), timeout=cfg.query_timeout_seconds
        )

    @property
    def queries(self) -> dict[str, str]:
        return dict(self._queries)

    def fetch(self) -> dict[str, Any]:
        """Raw replies of this round's queries, by quantity. Raises SourceError."""
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException
        from urllib3.exceptions import ReadTimeoutError

        replies: dict[str, Any] = {}
        params = {
            # One evaluation time for every query of the round, a little in the past: requests,
            # bytes and latency then describe the same samples (a scrape that is still being
            # ingested would otherwise land between two queries), and their ratios are exact.
            "time": f"{time.time() - self._delay_seconds:.3f}",
            # Also bounds the evaluation inside Prometheus, not only our socket.
            "timeout": f"{max(1, round(self._timeout_seconds * 1000))}ms",
        }
        for quantity, query in self._queries.items():
            try:
                replies[quantity] = self._client.custom_query(query, params=params)
            except requests.exceptions.InvalidJSONError as exc:  # a proxy's error page, say
                raise SourceError(f"{self.name}: bad reply to {quantity} query: {_short(exc)}") from None
            except requests.RequestException as exc:
                # With retries off urllib3 wraps the cause (refused, timed out) in a message that
                # repeats the whole query; the cause is what an operator needs.
                reason = getattr(exc.args[0], "reason", exc) if exc.args else exc
                if isinstance(exc, requests.Timeout) or isinstance(reason, ReadTimeoutError):
                    raise SourceError(
                        f"{self.name}: Prometheus did not answer within {self._timeout_seconds}s"
                    ) from None
                raise SourceError(
                    f"{self.name}: cannot reach Prometheus at {self._url}: {_short(reason)}"
                ) from None
            except PrometheusApiClientException as exc:
                raise SourceError(
                    f"{self.name}: Prometheus refused {quantity} query: {_short(exc)}"
                ) from None
            except (ValueError, KeyError, TypeError) as exc:  # not JSON, or JSON without data.result
                raise SourceError(f"{self.name}: bad reply to {quantity} query: {_short(exc)}") from None
        return replies

    def samples(self, replies: Mapping[str, Any]) -> list[EdgeSample]:
        mapper = EdgeMapper(self._qs, self._default_namespace, self._agent_names)
        samples = samples_from_replies(mapper, replies, self.name, self._qs.latency_unit_ms)
        if mapper.skipped:
            log.debug("%s: skipped series %s", self.name, dict(mapper.skipped))
        return samples

    def collect(self) -> list[EdgeSample]:
        return self.samples(self.fetch())

    def close(self) -> None:
        self._client.close()


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "..."
