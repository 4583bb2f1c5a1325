"""`kinship predict convert --from prometheus` against the real Prometheus, with the usage recorded
under names other than cAdvisor's (a recording rule or a collector rename does that)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from predictor.usage import read_usage
from tests.prometheus_server import prometheus, wait_for_series
from tests.serving import ROOT
from tests.telemetry_replay import serve

pytestmark = pytest.mark.integration

MIB = 2.0**20
NAMESPACE = "ops"
CPU_METRIC = "agent_cpu_usage_seconds_total"
MEMORY_METRIC = "agent_memory_working_bytes"
RATE_WINDOW_SECONDS = 4
SINCE_SECONDS = 5
# (namespace, pod, container) -> (CPU cores, memory bytes) under the custom names. Two replicas
# of one Deployment: the series keeps the busier one per timestamp. cAdvisor's pause container
# ("POD"), its pod-level sum (container="") and another namespace must not count.
USAGE = {
    (NAMESPACE, "planner-7d9f8b6c4d-abcde", "main"): (0.25, 512 * MIB),
    (NAMESPACE, "planner-7d9f8b6c4d-fghij", "main"): (0.5, 256 * MIB),
    (NAMESPACE, "planner-7d9f8b6c4d-fghij", "POD"): (8.0, 4096 * MIB),
    (NAMESPACE, "planner-7d9f8b6c4d-fghij", ""): (8.0, 4096 * MIB),
    (NAMESPACE, "coder-5f6b7c8d9e-xyz12", "main"): (1.5, 2048 * MIB),
    ("elsewhere", "planner-7d9f8b6c4d-zzzzz", "main"): (8.0, 4096 * MIB),
}
# The default (cAdvisor) names also exist, with other values: a run that ignored the options and
# queried the defaults would read these.
DEFAULT_NAMED = {(NAMESPACE, "planner-7d9f8b6c4d-abcde", "main"): (0.1, 1 * MIB)}


class Usage(Collector):
    """CPU counters growing at fixed rates (cores) and constant working sets (bytes)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        elapsed = time.monotonic() - self.started
        for cpu_name, memory_name, usage in (
            (CPU_METRIC, MEMORY_METRIC, USAGE),
            ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes", DEFAULT_NAMED),
        ):
            labels = ["namespace", "pod", "container"]
            cpu = CounterMetricFamily(cpu_name.removesuffix("_total"), "CPU seconds.", labels=labels)
            memory = GaugeMetricFamily(memory_name, "Working set.", labels=labels)
            for key, (cores, bytes_) in usage.items():
                cpu.add_metric(list(key), cores * elapsed)
                memory.add_metric(list(key), bytes_)
            yield cpu
            yield memory


@pytest.fixture(scope="module")
def prom() -> Iterator[str]:
    """Prometheus whose TSDB holds a full rate window before every step of the queried range: a
    window reaching back before the first scrape extrapolates from too few samples."""
    address, server = serve(Usage())
    try:
        with prometheus([address]) as p:
            wait_for_series(p.url, MEMORY_METRIC, minimum=len(USAGE), timeout_seconds=30)
            time.sleep(SINCE_SECONDS + RATE_WINDOW_SECONDS + 3)
            yield p.url
    finally:
        server.shutdown()
        server.server_close()


def convert(url: str, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    args = [
        "--from",
        "prometheus",
        "--url",
        url,
        "--namespace",
        NAMESPACE,
        "--since",
        f"{SINCE_SECONDS}s",
        "--step",
        "1s",
    ]
    return subprocess.run(
        [sys.executable, "-m", "kinship", "predict", "convert", *args, "--out", str(out), *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_metric_names_and_rate_window_from_the_options_are_the_ones_queried(
    prom: str, tmp_path: Path
) -> None:
    out = tmp_path / "usage.csv"
    options = ["--cpu-metric", CPU_METRIC, "--memory-metric", MEMORY_METRIC]
    run = convert(prom, out, *options, "--rate-window", f"{RATE_WINDOW_SECONDS}s")
    assert run.returncode == 0, run.stderr
    table = read_usage(out)
    assert set(table) == {"planner/main", "coder/main"}
    planner, coder = table["planner/main"], table["coder/main"]
    assert len(planner.timestamps_seconds) >= 4
    # the busier replica per timestamp: 0.5 cores from one, 512 MiB from the other
    assert planner.cpu_millicores.tolist() == pytest.approx([500.0] * len(planner.cpu_millicores), rel=0.05)
    assert set(planner.memory_bytes.tolist()) == {512 * MIB}
    assert coder.cpu_millicores.tolist() == pytest.approx([1500.0] * len(coder.cpu_millicores), rel=0.05)
    assert set(coder.memory_bytes.tolist()) == {2048 * MIB}

    # without the options, cAdvisor's names are queried: the other numbers
    defaults = tmp_path / "defaults.csv"
    run = convert(prom, defaults, "--rate-window", f"{RATE_WINDOW_SECONDS}s")
    assert run.returncode == 0, run.stderr
    table = read_usage(defaults)
    assert set(table) == {"planner/main"}
    assert set(table["planner/main"].memory_bytes.tolist()) == {1 * MIB}
    cpu = table["planner/main"].cpu_millicores.tolist()
    assert cpu == pytest.approx([100.0] * len(cpu), rel=0.05)


def test_a_window_prometheus_would_reject_is_caught_before_the_query(prom: str, tmp_path: Path) -> None:
    run = convert(prom, tmp_path / "u.csv", "--cpu-metric", CPU_METRIC, "--rate-window", "4 s")
    assert run.returncode == 2
    assert "error: --rate-window: not a Prometheus duration above zero" in run.stderr
    assert "Traceback" not in run.stderr
