"""Usage from Prometheus (cAdvisor metrics) into the usage table.

CPU is `rate(<cpu counter>[w])` in cores, times 1000; memory is the working set in bytes (what the
kubelet evicts on). Both are summed per (pod, container), then each pod is mapped to its agent by
the Deployment naming rule: the agent is the pod name minus the ReplicaSet hash and suffix.
Replicas of one agent become one series that keeps, per timestamp, the largest replica: a request
applies to every replica, so the busiest one is the one it must fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from predictor.convert import agent_of_pod
from predictor.usage import Sample

# Prometheus' metric name syntax. Names are pasted into PromQL, so anything else would at best be
# a parse error from the server and at worst a different query.
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# A range selector's duration as Prometheus parses it (units in descending order, e.g. 1h30m).
DURATION = re.compile(r"(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")


@dataclass(frozen=True, slots=True)
class PrometheusSource:
    """Metric names and label filters; the defaults are cAdvisor's as scraped by kube-prometheus.

    Clusters that record usage under other names (a recording rule, an OTel-collector rename)
    pass their own; `problems` says which field does not fit Prometheus' syntax.
    """

    cpu_metric: str = "container_cpu_usage_seconds_total"
    memory_metric: str = "container_memory_working_set_bytes"
    # The rate window must hold at least two scrapes; 5m is the kube-prometheus convention.
    rate_window: str = "5m"
    # cAdvisor also reports the pod's pause container ("POD") and a pod-level sum (container="").
    container_filter: str = 'container!="", container!="POD"'

    def problems(self) -> dict[str, str]:
        """Field -> what is wrong with it, for every field that would not make a valid query."""
        found = {}
        for field in ("cpu_metric", "memory_metric"):
            name = getattr(self, field)
            if not METRIC_NAME.fullmatch(name):
                found[field] = f"not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*): {name!r}"
        if not DURATION.fullmatch(self.rate_window) or not any(c in "123456789" for c in self.rate_window):
            found["rate_window"] = (
                f"not a Prometheus duration above zero (e.g. 5m, 90s, 1h30m): {self.rate_window!r}"
            )
        return found

    def queries(self, namespace: str) -> dict[str, str]:
        selector = f'namespace="{namespace}", {self.container_filter}'
        return {
            "cpu": f"1000 * sum by (namespace, pod, container) "
            f"(rate({self.cpu_metric}{{{selector}}}[{self.rate_window}]))",
            "memory": f"sum by (namespace, pod, container) ({self.memory_metric}{{{selector}}})",
        }


def samples_from_matrices(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Sample]:
    """Parse range-query results (`resultType: matrix` items) per resource into samples.

    Raises ValueError naming the item and field when a result is not a matrix of [time, "value"].
    """
    cells: dict[tuple[float, str], dict[str, float]] = {}
    for resource, items in results.items():
        for i, item in enumerate(items):
            labels = item.get("metric") or {}
            pod, container = labels.get("pod"), labels.get("container")
            if not pod or not container:
                raise ValueError(f"{resource} result [{i}]: metric has no pod/container labels: {labels}")
            series = f"{agent_of_pod(str(pod))}/{container}"
            for t, value in _points(item.get("values"), f"{resource} result [{i}]"):
                cell = cells.setdefault((t, series), {})
                cell[resource] = max(cell.get(resource, value), value)
    return [
        Sample(t, series, cell.get("cpu"), cell.get("memory")) for (t, series), cell in sorted(cells.items())
    ]


def _points(values: Any, where: str) -> Iterable[tuple[float, float]]:
    if not isinstance(values, list):
        raise ValueError(f"{where}: values: expected a list of [time, value] (is this a range query?)")
    for j, point in enumerate(values):
        try:
            t, text = point
            value = float(text)
            t = float(t)
        except (TypeError, ValueError):
            raise ValueError(f'{where}: values[{j}]: expected [time, "number"], got {point!r}') from None
        if math.isfinite(value) and value >= 0:  # NaN/Inf appear when a counter resets mid-window
            yield t, value


def fetch(
    url: str,
    namespace: str,
    start_seconds: float,
    end_seconds: float,
    step_seconds: float,
    source: PrometheusSource,
) -> list[Sample]:
    """Run both range queries against a Prometheus server and parse them."""
    from datetime import UTC, datetime

    from prometheus_api_client import PrometheusConnect

    prom = PrometheusConnect(url=url, disable_ssl=True)
    start = datetime.fromtimestamp(start_seconds, tz=UTC)
    end = datetime.fromtimestamp(end_seconds, tz=UTC)
    results = {
        resource: prom.custom_query_range(query, start_time=start, end_time=end, step=f"{step_seconds:g}s")
        for resource, query in source.queries(namespace).items()
    }
    return samples_from_matrices(results)
