"""`kinship predict` end to end on a slice of the real Online Boutique trace."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kinship.cli import app
from kinship.profile import load_profile_files
from predictor.usage import write_usage
from tests.unit.predictor_data import DATA, need, onlineboutique

runner = CliRunner()
SERVICES = ("frontend", "cartservice", "currencyservice", "adservice")
FAST = ["--horizon", "1h", "--window", "1h", "--refit-every", "8h", "--warmup", "6h"]


@pytest.fixture(scope="module")
def usage_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("usage") / "ob.csv"
    write_usage(path, onlineboutique(SERVICES))
    return path


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _recompute(
    usage: Path, recommendations: Path, column: str, horizon_seconds: float
) -> dict[str, dict[str, float]]:
    """Slack, violation rate, worst overrun from the two CSV files alone (an independent reading)."""
    recs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    with recommendations.open() as handle:
        for row in csv.DictReader(handle):
            recs[(row["method"], row["series"])].append((_seconds(row["timestamp"]), float(row["value"])))
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with usage.open() as handle:
        for row in csv.DictReader(handle):
            if row[column]:
                samples[row["series"]].append((_seconds(row["timestamp"]), float(row[column])))
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0, 0.0])
    for (method, series), points in recs.items():
        points.sort()
        for t, used in samples[series]:
            valid = [(at, value) for at, value in points if at <= t]
            if not valid or t >= valid[-1][0] + horizon_seconds:
                continue
            request = valid[-1][1]
            acc = sums[method]
            acc[0] += max(request - used, 0.0)
            acc[1] += request
            acc[2] += used > request
            acc[3] += 1
            if used > request:
                acc[4] = max(acc[4], (used - request) / request)
    return {
        m: {"slack": a[0] / a[1], "violation_rate": a[2] / a[3], "worst_overrun": a[4]}
        for m, a in sums.items()
    }


def _assert_recomputes(methods: dict[str, dict[str, float]], usage: Path, recs: Path, column: str) -> None:
    """Every printed figure equals the one recomputed from the usage and recommendation files."""
    recomputed = _recompute(usage, recs, column, 3600.0)
    for method, figures in methods.items():
        assert set(figures) == {"slack", "violation_rate", "worst_overrun"}
        for key, value in figures.items():
            assert recomputed[method][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (method, key)


@pytest.mark.parametrize("resource,column", [("memory", "memory_bytes"), ("cpu", "cpu_millicores")])
def test_evaluate_json_matches_a_recomputation_from_the_recommendations_file(
    usage_csv: Path, tmp_path: Path, resource: str, column: str
) -> None:
    recs = tmp_path / "recs.csv"
    plot = tmp_path / "replay.png"
    per_series = tmp_path / "by-series.csv"
    manifest = need(DATA / "manifests" / "online-boutique.yaml")
    result = runner.invoke(
        app,
        [
            "predict",
            "evaluate",
            "--usage",
            str(usage_csv),
            "--resource",
            resource,
            *FAST,
            "--json",
            "--recommendations",
            str(recs),
            "--plot",
            str(plot),
            "--declared",
            str(manifest),
            "--by-series",
            str(per_series),
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["resource"] == resource
    # per series, pooled again by judged samples, the printed violation rate and worst overrun
    with per_series.open() as handle:
        series_rows = list(csv.DictReader(handle))
    assert {(r["method"], r["series"]) for r in series_rows} == {
        (m, s) for m in ("kinship", "vpa", "static") for s in SERVICES
    }
    for method, figures in printed["methods"].items():
        mine = [r for r in series_rows if r["method"] == method]
        judged = sum(int(r["judged_samples"]) for r in mine)
        over = sum(float(r["violation_rate"]) * int(r["judged_samples"]) for r in mine)
        assert over / judged == pytest.approx(figures["violation_rate"], rel=1e-9, abs=1e-12)
        assert max(float(r["worst_overrun"]) for r in mine) == pytest.approx(figures["worst_overrun"])
        assert all(0 <= float(r["slack"]) <= 1 for r in mine)
    assert set(printed["methods"]) == {"kinship", "vpa", "static"}
    _assert_recomputes(printed["methods"], usage_csv, recs, column)
    assert 0 < printed["methods"]["kinship"]["slack"] < 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with recs.open() as handle:
        rows = list(csv.DictReader(handle))
    # Online Boutique's manifest asks frontend for 100m CPU and 64Mi memory: the static baseline.
    static = {r["value"] for r in rows if r["method"] == "static" and r["series"] == "frontend"}
    assert static == ({"100.0"} if resource == "cpu" else {str(64.0 * 1024**2)})


def test_evaluate_table_output_and_bad_usage_exit_2(usage_csv: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["predict", "evaluate", "--usage", str(usage_csv), "--resource", "memory", *FAST]
    )
    assert result.exit_code == 0, result.output
    assert "kinship" in result.stdout and "vpa" in result.stdout and "violation rate" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,series,cpu_millicores,memory_bytes\n2026-11-21T10:00:00Z,a,x,1\n")
    result = runner.invoke(app, ["predict", "evaluate", "--usage", str(bad), "--resource", "cpu"])
    assert result.exit_code == 2
    assert f"{bad}: line 2: cpu_millicores: not a number (got 'x')" in result.stderr
    result = runner.invoke(
        app, ["predict", "evaluate", "--usage", str(usage_csv), "--resource", "cpu", "--horizon", "soon"]
    )
    assert result.exit_code == 2 and "--horizon: not a duration" in result.stderr


def test_convert_writes_the_usage_table_and_names_a_missing_input(tmp_path: Path) -> None:
    out = tmp_path / "ob.csv"
    result = runner.invoke(
        app,
        [
            "predict",
            "convert",
            "--from",
            "onlineboutique",
            "--input",
            str(need(DATA / "usage" / "onlineboutique_pod_metrics.tar.gz")),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 12090 samples of 10 series" in result.stdout
    assert out.read_text().startswith("timestamp,series,cpu_millicores,memory_bytes\n")
    result = runner.invoke(app, ["predict", "convert", "--from", "azure-vm", "--out", str(out)])
    assert result.exit_code == 2 and "--input: --from azure-vm needs the trace file" in result.stderr


def convert_prometheus(tmp_path: Path, *options: str):
    # nothing listens on port 9 (discard): a query sent before the options were checked would
    # fail with a connection error, not exit 2 naming the option
    return runner.invoke(
        app,
        [
            "predict",
            "convert",
            "--from",
            "prometheus",
            "--url",
            "http://127.0.0.1:9",
            "--out",
            str(tmp_path / "u.csv"),
            *options,
        ],
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--cpu-metric", "cpu-seconds"],
            "--cpu-metric: not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*): 'cpu-seconds'",
        ),
        (["--memory-metric", 'mem{job="x"}'], "--memory-metric: not a Prometheus metric name"),
        (["--memory-metric", "9lives"], "--memory-metric: not a Prometheus metric name"),
        (
            ["--rate-window", "5 minutes"],
            "--rate-window: not a Prometheus duration above zero (e.g. 5m, 90s, 1h30m): '5 minutes'",
        ),
        (["--rate-window", "0m"], "--rate-window: not a Prometheus duration above zero"),
        (["--rate-window", "30m1h"], "--rate-window: not a Prometheus duration above zero"),
    ],
)
def test_convert_from_prometheus_rejects_a_bad_option_naming_it_before_any_query(
    tmp_path: Path, options: list[str], expected: str
) -> None:
    result = convert_prometheus(tmp_path, *options)
    assert result.exit_code == 2, result.output
    assert f"error: {expected}" in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert not (tmp_path / "u.csv").exists()


def test_convert_from_prometheus_reports_every_bad_option_at_once(tmp_path: Path) -> None:
    result = convert_prometheus(
        tmp_path, "--cpu-metric", "a.b", "--memory-metric", "ok_name", "--rate-window", "5"
    )
    assert result.exit_code == 2, result.output
    assert "error: options: 2 problems:" in result.stderr
    assert "  - --cpu-metric: not a Prometheus metric name" in result.stderr
    assert "  - --rate-window: not a Prometheus duration" in result.stderr
    assert "--memory-metric" not in result.stderr


def test_train_writes_loadable_profiles_and_reuses_its_saved_model(usage_csv: Path, tmp_path: Path) -> None:
    out, model = tmp_path / "profiles.yaml", tmp_path / "model.pkl"
    args = [
        "predict",
        "train",
        "--usage",
        str(usage_csv),
        "--namespace",
        "boutique",
        "--out",
        str(out),
        "--model",
        str(model),
        "--window",
        "1h",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "no saved model" in first.stderr and model.exists()
    profiles = {p.agent: p for p in load_profile_files([out])}
    assert set(profiles) == set(SERVICES)
    frontend = profiles["frontend"]
    assert frontend.key == ("boutique", "frontend")
    assert frontend.status.model == "kinship" and frontend.status.horizonSeconds == 3600
    assert frontend.status.confidence is not None and 0 < frontend.status.confidence <= 1
    (container,) = frontend.status.containers
    assert container.name == "frontend"
    peak, request = container.predictedPeak, container.recommendedRequests
    assert peak.cpuMillicores and request.cpuMillicores and peak.memoryBytes and request.memoryBytes
    # frontend's working set sits near 22 MiB: the request is in that range, not a default.
    assert 15 * 1024**2 < request.memoryBytes < 120 * 1024**2
    for p in profiles.values():
        for c in p.status.correlations:
            assert c.agent in SERVICES and c.agent != p.agent
            assert any(abs(v) >= 0.5 for v in (c.cpu, c.memory) if v is not None)
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "reusing saved model" in second.stderr
    changed = runner.invoke(app, [*args, "--target-violation", "0.01"])
    assert changed.exit_code == 0 and "different config; retraining" in changed.stderr
    model.write_bytes(b"not a pickle")
    broken = runner.invoke(app, args)
    assert broken.exit_code == 2 and f"{model}: not a kinship model file" in broken.stderr


@pytest.mark.parametrize("resource,column", [("memory", "memory_bytes"), ("cpu", "cpu_millicores")])
def test_evaluate_foresight_references_stay_within_vpas_violation_rate_and_recompute(
    usage_csv: Path, tmp_path: Path, resource: str, column: str
) -> None:
    recs = tmp_path / "recs.csv"
    args = ["--usage", str(usage_csv), "--resource", resource, "--foresight", "--recommendations", str(recs)]
    result = runner.invoke(app, ["predict", "evaluate", *args, *FAST, "--json"])
    assert result.exit_code == 0, result.output
    methods = json.loads(result.stdout)["methods"]
    assert set(methods) == {"kinship", "vpa", "foresight-mean", "foresight-p90", "foresight-best"}
    _assert_recomputes(methods, usage_csv, recs, column)
    vpa = methods["vpa"]
    for method in ("foresight-mean", "foresight-p90", "foresight-best"):
        assert methods[method]["violation_rate"] <= vpa["violation_rate"]
        # Knowing each coming hour beats a recommender that only sees the past, on this trace.
        assert methods[method]["slack"] < vpa["slack"]
    # No per-hour request can do better than each hour's own best.
    assert methods["foresight-best"]["slack"] <= min(methods[m]["slack"] for m in methods)


def test_evaluate_sweep_reads_the_curve_at_vpa_and_every_point_recomputes(
    usage_csv: Path, tmp_path: Path
) -> None:
    recs = tmp_path / "recs.csv"
    curve = tmp_path / "curve.png"
    result = runner.invoke(
        app,
        [
            "predict",
            "evaluate",
            "--usage",
            str(usage_csv),
            "--resource",
            "memory",
            *FAST,
            "--json",
            "--sweep",
            "0.05,0.001,0.01",
            "--curve",
            str(curve),
            "--recommendations",
            str(recs),
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed["methods"]) == {"kinship", "vpa", "kinship@0.001", "kinship@0.01", "kinship@0.05"}
    # The default target (0.02) is fitted separately from the swept ones but from the same base.
    _assert_recomputes(printed["methods"], usage_csv, recs, "memory_bytes")
    matched = printed["matched"]
    vpa = printed["methods"]["vpa"]
    assert (matched["reference"], matched["reference_slack"]) == ("vpa", vpa["slack"])
    within = {
        m: f
        for m, f in printed["methods"].items()
        if "@" in m and f["violation_rate"] <= vpa["violation_rate"]
    }
    if within:
        best = min(within, key=lambda m: within[m]["slack"])
        assert (matched["best_method"], matched["best_slack"]) == (best, within[best]["slack"])
    else:
        assert matched["best_method"] is None
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = runner.invoke(
        app,
        [
            "predict",
            "evaluate",
            "--usage",
            str(usage_csv),
            "--resource",
            "memory",
            *FAST,
            "--sweep",
            "0.01,0.05",
            "--margin",
            "pooled",
        ],
    )
    assert table.exit_code == 0, table.output
    assert "kinship@0.05" in table.stdout and "at vpa's violation rate" in table.stdout
    bad = runner.invoke(
        app, ["predict", "evaluate", "--usage", str(usage_csv), "--resource", "memory", "--sweep", "0.01,2,x"]
    )
    assert bad.exit_code == 2
    assert "--sweep: 2 problems" in bad.stderr
    assert "must be between 0 and 1 exclusive: 2.0" in bad.stderr and "not a number: 'x'" in bad.stderr
    no_sweep = runner.invoke(
        app, ["predict", "evaluate", "--usage", str(usage_csv), "--resource", "memory", "--curve", str(curve)]
    )
    assert no_sweep.exit_code == 2 and "--curve: needs --sweep" in no_sweep.stderr


def test_train_margin_mode_is_honoured_and_part_of_the_saved_models_config(
    usage_csv: Path, tmp_path: Path
) -> None:
    """`train --margin pooled` fits one margin for all series, as `evaluate --margin pooled`
    replays it; a saved model of the other mode is not reused."""
    import pickle

    model = tmp_path / "model.pkl"
    base = ["predict", "train", "--usage", str(usage_csv), "--out", str(tmp_path / "p.yaml")]
    base += ["--model", str(model), "--window", "1h"]

    def series_margins() -> dict[str, int]:
        models = pickle.loads(model.read_bytes())["models"]
        return {res: len(getattr(m.estimator_, "group_names_", ())) for res, m in models.items()}

    pooled = runner.invoke(app, [*base, "--margin", "pooled"])
    assert pooled.exit_code == 0, pooled.output
    assert set(series_margins().values()) == {0}
    per_series = runner.invoke(app, [*base, "--margin", "series"])
    assert per_series.exit_code == 0 and "different config; retraining" in per_series.stderr
    assert set(series_margins().values()) == {len(SERVICES)}
    wrong = runner.invoke(app, [*base, "--margin", "per-agent"])
    assert wrong.exit_code == 2 and "--margin" in wrong.output
