"""Foresight references: requests that know the coming horizon, factors chosen in hindsight."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.features import Windows
from predictor.foresight import foresight


def _windows(horizon: list[list[float]]) -> Windows:
    h = np.asarray(horizon, dtype=np.float64)
    return Windows(np.zeros((len(h), 1)), np.arange(len(h), dtype=np.float64) * 3600, h)


def test_without_a_budget_each_series_factor_covers_every_sample_of_its_horizons() -> None:
    # Means 2.5 and 2.0; the largest sample / mean is 4 / 2.5, so the factor is 1.6.
    out = foresight({"a": _windows([[1, 2, 3, 4], [2, 2, 2, 2]])}, violation_rate=0.0)
    assert out["foresight-mean"]["a"] == pytest.approx([4.0, 3.2])
    # p90 of [1, 2, 3, 4] is 3.7 (linear), of the flat hour 2: the factor is 4 / 3.7.
    assert out["foresight-p90"]["a"] == pytest.approx([4.0, 2 * 4 / 3.7])


def test_the_budget_goes_to_the_series_where_one_violation_saves_the_most() -> None:
    # One violation allowed in eight samples. Spent on `a` it saves 24 unused (request 9 -> 1),
    # on `b` only 3 (request 5 -> 4).
    decisions = {"a": _windows([[1, 1, 1, 9]]), "b": _windows([[4, 4, 4, 5]])}
    out = foresight(decisions, violation_rate=1 / 8)
    for method in ("foresight-mean", "foresight-best"):
        assert out[method]["a"] == pytest.approx([1.0]), method
        assert out[method]["b"] == pytest.approx([5.0]), method


def test_the_best_per_horizon_request_is_each_horizons_max_without_a_budget() -> None:
    out = foresight({"a": _windows([[1, 2, 3, 4], [2, 2, 2, 2]])}, violation_rate=0.0)
    assert out["foresight-best"]["a"] == pytest.approx([4.0, 2.0])


def test_the_best_per_horizon_spends_violations_where_they_save_the_most() -> None:
    # Two violations in eleven samples. Leaving 9 and 8 over asks 2 in the first hour (unused 0)
    # and 3 in the second (unused 4); one from each hour asks 8 and 2 (unused 24).
    nan = float("nan")
    decisions = {"a": _windows([[9, 8, 2, 2, 2, 2], [3, 2, 2, 2, 2, nan]])}
    best = foresight(decisions, violation_rate=2 / 11)["foresight-best"]["a"]
    assert best == pytest.approx([2.0, 3.0])


def test_unmeasured_horizons_get_no_request_and_idle_ones_a_zero_request() -> None:
    nan = float("nan")
    out = foresight({"a": _windows([[nan, nan], [0, 0], [1, 2]])}, violation_rate=0.0)
    for method in ("foresight-mean", "foresight-best"):
        request = out[method]["a"]
        assert np.isnan(request[0]), method
        assert request[1:] == pytest.approx([0.0, 2.0]), method
