"""The evaluation's figures, per method and per series, on samples small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.evaluate import Recommendation, score, score_by_series
from predictor.usage import Series


def _series(name: str, cpu: list[float]) -> Series:
    t = np.arange(len(cpu), dtype=float) * 60.0
    return Series(name, t, np.array(cpu), np.full(len(cpu), np.nan))


USAGE = {"a": _series("a", [50, 100, 150, 100]), "b": _series("b", [10, 10, 30, 10])}
RECS = [
    Recommendation(0.0, "a", "m", 120.0),  # a: one sample over (150 vs 120, overrun 0.25)
    Recommendation(0.0, "b", "m", 20.0),
    Recommendation(120.0, "b", "m", 40.0),  # from t=120 s on b's request is 40: its 30 fits
]


def test_by_series_figures_by_hand() -> None:
    rows = score_by_series(USAGE, "cpu", RECS, horizon_seconds=3600)
    a, b = rows[("m", "a")], rows[("m", "b")]
    # a: requests 120 x 4 = 480; unused 70 + 20 + 0 + 20 = 110
    assert a.scores.slack == pytest.approx(110 / 480)
    assert (a.scores.violation_rate, a.scores.worst_overrun, a.judged_samples) == (0.25, 0.25, 4)
    # b: requests 20, 20, 40, 40 = 120; unused 10 + 10 + 10 + 30 = 60; no sample over
    assert b.scores.slack == pytest.approx(60 / 120)
    assert (b.scores.violation_rate, b.scores.worst_overrun, b.judged_samples) == (0.0, 0.0, 4)


def test_pooled_figures_weigh_series_by_request_and_samples() -> None:
    (pooled,) = score(USAGE, "cpu", RECS, horizon_seconds=3600).values()
    assert pooled.slack == pytest.approx((110 + 60) / (480 + 120))  # not the mean of 0.229 and 0.5
    assert pooled.violation_rate == pytest.approx(1 / 8)
    assert pooled.worst_overrun == pytest.approx(0.25)


def test_samples_without_a_recent_recommendation_are_not_judged() -> None:
    rows = score_by_series(USAGE, "cpu", RECS, horizon_seconds=90)  # a's request lapses after 90 s
    assert rows[("m", "a")].judged_samples == 2
