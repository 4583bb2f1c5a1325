"""The runner's failure handling, with a scripted EdgeSource and an explicit clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from extender.offline import load_graph_files
from profiler.config import ProfilerConfig
from profiler.edges import EdgeSample, SourceError
from profiler.graph_model import GraphModel
from profiler.runner import Runner


class ScriptedSource:
    """An EdgeSource whose answers are given in advance: a list, or an error message per call."""

    def __init__(self, name: str, script: list[list[EdgeSample] | str]) -> None:
        self.name = name
        self._script: Iterator[list[EdgeSample] | str] = iter(script)
        self.calls = 0

    def collect(self) -> list[EdgeSample]:
        self.calls += 1
        step = next(self._script)
        if isinstance(step, str):
            raise SourceError(step)
        return step


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config() -> ProfilerConfig:
    return ProfilerConfig.model_validate(
        {
            "runner": {"attempts": 3, "retry_initial_seconds": 0, "stale_after_seconds": 60},
            "model": {"half_life_seconds": 100},
        }
    )


EDGE = EdgeSample("shop", "frontend", "cart", 10.0, 100.0, 2.0)


def test_retries_then_keeps_the_last_graph_and_reports_stale(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    source = ScriptedSource("istio", [[EDGE], "down", "down", "down", "down", "down", "down", [EDGE]])
    clock = Clock()
    runner = Runner(config(), [source], GraphModel(config().model), out=out, clock=clock)

    assert runner.run_round().result == "ok" and runner.ready.is_set()
    (graph,) = load_graph_files([out])
    assert graph.key == ("shop", "shop") and graph.status.observedEdges[0].requestsPerSecond == 10.0

    clock.now += 30
    result = runner.run_round()
    assert result.result == "failed" and source.calls == 4  # 3 attempts
    assert runner.model.edges("shop")[0].requests_per_second == 10.0  # silence is not decay
    assert not runner.is_stale(clock.now)
    clock.now += 31
    runner.run_round()
    assert runner.is_stale(clock.now)
    metrics = runner.metrics.registry
    assert metrics.get_sample_value("kinship_profiler_graph_stale") == 1.0
    assert metrics.get_sample_value("kinship_profiler_source_errors_total", {"source": "istio"}) == 6.0
    assert metrics.get_sample_value("kinship_profiler_rounds_total", {"result": "failed"}) == 2.0
    assert load_graph_files([out])[0].status.observedEdges[0].requestsPerSecond == 10.0  # file kept

    clock.now += 1
    assert runner.run_round().result == "ok"
    assert not runner.is_stale(clock.now)
    assert metrics.get_sample_value("kinship_profiler_graph_stale") == 0.0
    assert metrics.get_sample_value("kinship_profiler_edges") == 1.0


def test_one_failing_source_of_two_is_a_partial_round() -> None:
    other = EdgeSample("shop", "checkout", "payment", 3.0)
    good = ScriptedSource("istio", [[EDGE], [EDGE]])
    bad = ScriptedSource("servicegraph", [[other], "timeout", "timeout", "timeout"])
    runner = Runner(config(), [good, bad], GraphModel(config().model), clock=Clock())
    runner.run_round()
    assert runner.run_round().result == "partial"
    assert {(e.source, e.destination) for e in runner.model.edges("shop")} == {
        ("frontend", "cart"),
        ("checkout", "payment"),
    }


def test_not_ready_before_a_source_has_answered() -> None:
    runner = Runner(
        config(), [ScriptedSource("istio", ["down"] * 3)], GraphModel(config().model), clock=Clock()
    )
    assert runner.run_round().result == "failed"
    assert not runner.ready.is_set()
