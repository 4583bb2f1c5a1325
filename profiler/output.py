"""Where the observed graph goes: AgentGraph documents (YAML files) and AgentGraph status (the API).

A team is one AgentGraph per namespace. The profiler writes only `status.observedEdges` and
`status.observedAt`, through the status subresource with server-side apply under its own field
manager, so `spec` (the team's GitOps) is never part of a request it sends.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kinship.graph import API_VERSION, KIND
from kinship.kube import apply_status
from profiler.config import OutputConfig
from profiler.graph_model import SmoothedEdge

log = logging.getLogger(__name__)

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "agentgraphs"


@dataclass(frozen=True, slots=True)
class ExistingGraph:
    """What the profiler needs to know of an AgentGraph already in the cluster."""

    namespace: str
    name: str
    spec: dict[str, Any]
    observed_edges: tuple[SmoothedEdge, ...] = ()
    observed_at: float | None = None


def graph_name(namespace: str, cfg: OutputConfig, existing: Iterable[ExistingGraph] = ()) -> str:
    """Which AgentGraph of a namespace carries its observed edges.

    Exactly one per namespace: the extender adds up the observed edges of all graphs in a
    namespace, so writing to two would count the traffic twice. Configured name first; then the
    graph that already has observed edges (the one this profiler wrote before); then the first
    existing one by name; else the namespace's own name.
    """
    if namespace in cfg.graph_names:
        return cfg.graph_names[namespace]
    mine = sorted(g.name for g in existing if g.namespace == namespace)
    observed = sorted(g.name for g in existing if g.namespace == namespace and g.observed_at is not None)
    if observed:
        return observed[0]
    return mine[0] if mine else namespace


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _number(x: float) -> float:
    # Three significant decimals are far below measurement noise and keep diffs and YAML readable.
    return float(f"{x:.6g}")


def observed_edges(edges: Iterable[SmoothedEdge]) -> list[dict[str, Any]]:
    out = []
    for e in edges:
        item: dict[str, Any] = {
            "from": e.source,
            "to": e.destination,
            "requestsPerSecond": _number(e.requests_per_second),
            "bytesPerSecond": _number(e.bytes_per_second),
        }
        if e.p50_latency_ms is not None:
            item["p50LatencyMs"] = _number(e.p50_latency_ms)
        out.append(item)
    return out


def status_body(edges: Iterable[SmoothedEdge], observed_at: float) -> dict[str, Any]:
    return {"observedEdges": observed_edges(edges), "observedAt": rfc3339(observed_at)}


def render_documents(
    teams: Mapping[tuple[str, str], list[SmoothedEdge]],
    observed_at: float,
    specs: Mapping[tuple[str, str], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Whole AgentGraph objects, one per (namespace, name): what `kinship serve --graph` reads.

    A file replaces the graph of the same name in the extender, so the declared spec (when the
    cluster was asked for it) travels along; without it the document has observed edges only.
    """
    docs = []
    for (namespace, name), edges in sorted(teams.items()):
        doc: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace},
        }
        spec = (specs or {}).get((namespace, name))
        if spec:
            doc["spec"] = spec
        doc["status"] = status_body(edges, observed_at)
        docs.append(doc)
    return docs


def _scalar(value: Any) -> str:
    """A YAML 1.1 scalar that PyYAML and Go's yaml read back as the same type."""
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        # YAML 1.1 floats need a dot: "1e-05" would come back as a string.
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def dump_yaml(docs: list[dict[str, Any]]) -> str:
    """Multi-document YAML, one observed edge per line (`- {from: a, to: b, ...}`).

    Emitted by hand for the edges: PyYAML's representer takes seconds for a graph of 10,000 edges,
    this takes milliseconds, and one edge per line reads (and diffs) better anyway.
    """
    parts = []
    for doc in docs:
        head = {k: v for k, v in doc.items() if k != "status"}
        text = yaml.safe_dump(head, sort_keys=False)
        status = doc.get("status")
        if status is not None:
            edges = status.get("observedEdges") or []
            text += "status:\n  observedEdges:" + ("\n" if edges else " []\n")
            for edge in edges:
                text += "  - {" + ", ".join(f"{k}: {_scalar(v)}" for k, v in edge.items()) + "}\n"
            for key, value in status.items():
                if key != "observedEdges":
                    text += f"  {key}: {_scalar(value)}\n"
        parts.append(text)
    return "---\n".join(parts)


def write_yaml(path: Path, docs: list[dict[str, Any]]) -> None:
    """Atomic: a reader (or a crash) never sees half a file."""
    text = dump_yaml(docs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def changed_beyond(old: list[SmoothedEdge], new: list[SmoothedEdge], tolerance_fraction: float) -> bool:
    """True when an edge appeared or vanished, or a rate moved by more than the tolerance."""
    before = {(e.source, e.destination): e for e in old}
    after = {(e.source, e.destination): e for e in new}
    if before.keys() != after.keys():
        return True
    for key, b in after.items():
        a = before[key]
        for x, y in (
            (a.requests_per_second, b.requests_per_second),
            (a.bytes_per_second, b.bytes_per_second),
        ):
            if abs(y - x) > tolerance_fraction * max(abs(x), abs(y), 1e-9):
                return True
    return False


class StatusWriter:
    """Server-side apply of AgentGraph status, throttled per graph."""

    def __init__(self, api_client: Any, cfg: OutputConfig) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(api_client)
        self._cfg = cfg
        self._written: dict[tuple[str, str], tuple[float, list[SmoothedEdge]]] = {}
        self._exists: set[tuple[str, str]] = set()

    def remember(self, graphs: Iterable[ExistingGraph]) -> None:
        """What the cluster holds already: not rewritten until it changes (used after a restart)."""
        for g in graphs:
            self._exists.add((g.namespace, g.name))
            if g.observed_at is not None:
                self._written[(g.namespace, g.name)] = (g.observed_at, list(g.observed_edges))

    def due(self, key: tuple[str, str], edges: list[SmoothedEdge], now: float) -> bool:
        last = self._written.get(key)
        if last is None:
            return True
        at, old = last
        if now - at >= self._cfg.max_write_interval_seconds:
            return True
        return now - at >= self._cfg.min_write_interval_seconds and changed_beyond(
            old, edges, self._cfg.change_tolerance_fraction
        )

    def write(self, key: tuple[str, str], edges: list[SmoothedEdge], now: float) -> str:
        """Apply if due. Returns "applied", "unchanged" or "missing" (no graph, creation off)."""
        if not self.due(key, edges, now):
            return "unchanged"
        from kubernetes.client.exceptions import ApiException

        namespace, name = key
        if key not in self._exists:
            if not self._cfg.create_missing_graphs:
                return "missing"
            self._create(namespace, name)
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace},
            "status": status_body(edges, now),
        }
        try:
            apply_status(self._api, PLURAL, namespace, name, body, self._cfg.field_manager)
        except ApiException as exc:
            if exc.status == 404:
                self._exists.discard(key)  # deleted meanwhile; next round creates it if allowed
                return "missing"
            raise
        self._written[key] = (now, list(edges))
        return "applied"

    def _create(self, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "namespace": namespace}}
        try:
            self._api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, field_manager=self._cfg.field_manager
            )
            log.info("created AgentGraph %s/%s", namespace, name)
        except ApiException as exc:
            if exc.status != 409:  # someone else created it first: fine
                raise
        self._exists.add((namespace, name))


def existing_graphs(api_client: Any) -> list[ExistingGraph]:
    """Every AgentGraph in the cluster, with the observed part parsed back into edges."""
    from kubernetes import client

    api = client.CustomObjectsApi(api_client)
    listing: Any = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    out = []
    for obj in listing.get("items", []):
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        namespace, name = meta.get("namespace", "default"), meta.get("name", "")
        edges = []
        for e in status.get("observedEdges") or []:
            try:
                edges.append(
                    SmoothedEdge(
                        namespace,
                        str(e["from"]),
                        str(e["to"]),
                        float(e.get("requestsPerSecond", 0.0)),
                        float(e.get("bytesPerSecond", 0.0)),
                        None if e.get("p50LatencyMs") is None else float(e["p50LatencyMs"]),
                    )
                )
            except (KeyError, TypeError, ValueError):
                log.warning("AgentGraph %s/%s: skipping malformed observed edge %r", namespace, name, e)
        observed_at = None
        if status.get("observedAt"):
            try:
                observed_at = parse_rfc3339(str(status["observedAt"]))
            except ValueError:
                log.warning("AgentGraph %s/%s: bad observedAt %r", namespace, name, status["observedAt"])
        out.append(ExistingGraph(namespace, name, obj.get("spec") or {}, tuple(edges), observed_at))
    return out
