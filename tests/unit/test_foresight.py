"""Foresight references: requests that know the coming horizon, factors chosen in hindsight."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.evaluate import Recommendation, judged_rows, score
from predictor.foresight import factor_curve, foresight
from predictor.usage import Sample, series_from_samples

NAN = float("nan")


def _rows(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


def test_without_a_budget_each_series_factor_covers_every_sample_of_its_horizons() -> None:
    # Means 2.5 and 2.0; the largest sample / mean is 4 / 2.5, so the factor is 1.6.
    out = foresight({"a": _rows([[1, 2, 3, 4], [2, 2, 2, 2]])}, violation_rate=0.0)
    assert out["foresight-mean"]["a"] == pytest.approx([4.0, 3.2])
    # p90 of [1, 2, 3, 4] is 3.7 (linear), of the flat hour 2: the factor is 4 / 3.7.
    assert out["foresight-p90"]["a"] == pytest.approx([4.0, 2 * 4 / 3.7])


def test_the_budget_goes_to_the_series_where_one_violation_saves_the_most() -> None:
    # One violation allowed in eight samples. Spent on `a` it saves 24 unused (request 9 -> 1),
    # on `b` only 3 (request 5 -> 4).
    out = foresight({"a": _rows([[1, 1, 1, 9]]), "b": _rows([[4, 4, 4, 5]])}, violation_rate=1 / 8)
    for method in ("foresight-mean", "foresight-best"):
        assert out[method]["a"] == pytest.approx([1.0]), method
        assert out[method]["b"] == pytest.approx([5.0]), method


def test_the_best_per_horizon_request_is_each_horizons_max_without_a_budget() -> None:
    out = foresight({"a": _rows([[1, 2, 3, 4], [2, 2, 2, 2]])}, violation_rate=0.0)
    assert out["foresight-best"]["a"] == pytest.approx([4.0, 2.0])


def test_the_best_per_horizon_spends_violations_where_they_save_the_most() -> None:
    # Two violations in eleven samples. Leaving 9 and 8 over asks 2 in the first hour (unused 0)
    # and 3 in the second (unused 4); one from each hour asks 8 and 2 (unused 24).
    rows = _rows([[9, 8, 2, 2, 2, 2], [3, 2, 2, 2, 2, NAN]])
    best = foresight({"a": rows}, violation_rate=2 / 11)["foresight-best"]["a"]
    assert best == pytest.approx([2.0, 3.0])


def test_unmeasured_horizons_get_no_request_and_idle_ones_a_zero_request() -> None:
    out = foresight({"a": _rows([[NAN, NAN], [0, 0], [1, 2]])}, violation_rate=0.0)
    for method in ("foresight-mean", "foresight-best"):
        request = out[method]["a"]
        assert np.isnan(request[0]), method
        assert request[1:] == pytest.approx([0.0, 2.0]), method


def test_series_whose_horizons_hold_different_sample_counts_are_pooled() -> None:
    # A 30-second series beside a one-minute one (and one sample alone): rows of 4, 2 and 1.
    judged = {"fast": _rows([[1, 2, 3, 4]]), "slow": _rows([[5, 6]]), "alone": _rows([[7]])}
    out = foresight(judged, violation_rate=0.0)
    best = {name: request.tolist() for name, request in out["foresight-best"].items()}
    assert best == {"fast": [4.0], "slow": [6.0], "alone": [7.0]}


def test_bursts_under_a_zero_p90_are_paid_from_the_budget_first() -> None:
    # Ten samples, one a burst over a p90 of 0: that violation is unavoidable. With a budget of
    # one violation in twenty, nothing is left for the busy series, which must cover its top.
    judged = {"idle": _rows([[0] * 9 + [200]]), "busy": _rows([[1] * 9 + [3]])}
    p90 = foresight(judged, violation_rate=1 / 20)["foresight-p90"]
    assert p90["idle"] == pytest.approx([0.0])
    assert p90["busy"] == pytest.approx([3.0])


def test_the_exact_curve_offers_every_violation_count() -> None:
    # Level 1, samples 1..30: factors 0 and each sample, violations 30, 29, ..., 0.
    c = factor_curve(np.array([1.0]), np.arange(1.0, 31.0)[None, :])
    assert c.violations.tolist() == list(range(30, -1, -1))
    assert c.factor[1:] == pytest.approx(np.arange(1.0, 31.0))
    # At factor 3: (3 - 1) + (3 - 2) + 0 unused, 3 x 30 requested.
    assert (c.unused[3], c.requested[3]) == pytest.approx((3.0, 90.0))


def test_judged_rows_are_the_samples_score_judges_each_decision_on() -> None:
    # Decisions at 0 and 60 s, horizon 60 s. A sample at 59.8 s (a scrape a hair early) belongs
    # to the first decision, one at 130 s to none: both as `score` counts them.
    times = [0.0, 20.0, 40.0, 59.8, 80.0, 100.0, 130.0]
    usage = series_from_samples(Sample(t, "s", 10.0 + i, None) for i, t in enumerate(times))
    at = np.array([0.0, 60.0])
    rows = judged_rows(usage["s"], "cpu", at, 60.0)
    assert rows.shape == (2, 4)
    assert rows[0].tolist() == [10.0, 11.0, 12.0, 13.0]
    assert rows[1][:2].tolist() == [14.0, 15.0] and np.isnan(rows[1][2:]).all()
    # Requests at each row's max violate nothing under `score`.
    recs = [Recommendation(float(t), "s", "m", float(np.nanmax(r))) for t, r in zip(at, rows, strict=True)]
    assert score(usage, "cpu", recs, 60.0)["m"].violation_rate == 0.0
