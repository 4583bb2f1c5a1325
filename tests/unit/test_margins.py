"""Per-series margins: the budget allocation by hand, the wrapper's choices, no look at the future."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.dummy import DummyRegressor
from threadpoolctl import threadpool_limits

from predictor.allocation import allocate, curve
from predictor.config import PredictorConfig
from predictor.dataset import YOUNG_GROUP, cut_all, row_groups, stack
from predictor.evaluate import Scores, evaluate, matched, sweep_method
from predictor.model import MarginRegressor, fit_recommender, recalibrate
from predictor.usage import Sample, series_from_samples


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(limits=1):
        yield


def _curve(samples: list[list[float]]):
    s = np.array(samples, dtype=np.float64)
    return curve(np.ones(len(s)), np.zeros((1, len(s))), s, min_factor=0.1, max_factor=5.0)


def test_curve_lists_each_factor_that_covers_one_more_sample() -> None:
    # Prediction 1 for both windows; samples 1, 3, 1, 1 -> factors 0.1 (bound), 1, 3, 5 (bound).
    c = _curve([[1.0, 3.0], [1.0, 1.0]])
    assert c.factor.tolist() == pytest.approx([0.1, 1.0, 3.0, 5.0])
    assert c.violations.tolist() == [4, 1, 0, 0]
    # Unused at 3: (3-1) + 0 + (3-1) + (3-1) = 6; at 5: 4 + 2 + 4 + 4 = 14.
    assert c.unused.tolist() == pytest.approx([0.0, 0.0, 6.0, 14.0])
    assert c.requested.tolist() == pytest.approx([0.4, 4.0, 12.0, 20.0])


def test_the_factor_meant_to_cover_a_sample_covers_it_despite_rounding() -> None:
    # 4 / 3.7 x 3.7 rounds to just below 4: that factor alone would leave the sample over.
    c = curve(np.array([3.7]), np.zeros((1, 1)), np.array([[4.0]]), min_factor=0.1, max_factor=5.0)
    covering = c.factor[(c.violations == 0) & (c.factor < 5.0)]
    assert covering == pytest.approx([4.0 / 3.7])
    assert c.unused[c.factor == covering[0]] == pytest.approx([0.0], abs=1e-12)


def test_allocation_spends_the_budget_where_a_violation_saves_the_most() -> None:
    flat = _curve([[1.0, 1.0], [1.0, 1.0]])
    spiky = _curve([[1.0, 3.0], [1.0, 1.0]])
    # One violation allowed: the spike goes uncovered (saves 6), the flat series needs no margin.
    one = allocate([flat, spiky], budget=1.0)
    assert (flat.factor[one[0]], spiky.factor[one[1]]) == pytest.approx((1.0, 1.0))
    # None allowed: the spiky series pays for its spike, the flat one still does not.
    none = allocate([flat, spiky], budget=0.0)
    assert (flat.factor[none[0]], spiky.factor[none[1]]) == pytest.approx((1.0, 3.0))
    # Unreachable budgets: each takes its fewest violations.
    assert allocate([flat, spiky], budget=-1.0) == none


def _two_series(n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows alternate series 'flat' (always 1) and 'bursty' (1.5 on every fifth of its rows)."""
    groups = np.where(np.arange(n) % 2 == 0, "flat", "bursty")
    y = np.ones(n)
    bursty_rows = np.flatnonzero(groups == "bursty")
    y[bursty_rows[::5]] = 1.5
    X = np.arange(n, dtype=np.float64)[:, None]
    return X, y, groups


def _margin(
    min_group_windows: int = 10, guard: float = 0.0, young_column: int | None = None
) -> MarginRegressor:
    return MarginRegressor(
        DummyRegressor(strategy="constant", constant=1.0),
        target_violation_fraction=0.02,
        calibration_fraction=0.5,
        min_group_windows=min_group_windows,
        group_guard_fraction=guard,
    )


def test_each_series_gets_its_own_factor_and_the_pooled_one_covers_the_bursts() -> None:
    X, y, groups = _two_series()
    margin = _margin().fit(X, y, groups=groups)
    # Pooled: 20 % of bursty held-out rows (10 % of all) are at 1.5, above the 2 % target.
    assert margin.factor_ == pytest.approx(1.5, rel=1e-6)
    by_group = dict(zip(margin.group_names_.tolist(), margin.group_factor_.tolist(), strict=True))
    # Budget 2 of 100 held-out samples cannot leave 10 bursts uncovered: bursty keeps 1.5;
    # the flat series needs exactly its level.
    assert by_group == pytest.approx({"bursty": 1.5, "flat": 1.0})
    assert margin.budget_correction_ == 1.0
    flat_rows = X[groups == "flat"][:3]
    assert margin.predict(flat_rows, groups=["flat"] * 3).tolist() == pytest.approx([1.0] * 3)
    # Unknown series and calls without groups get the pooled margin.
    assert margin.predict(flat_rows, groups=["new"] * 3).tolist() == pytest.approx([1.5] * 3)
    assert margin.predict(flat_rows).tolist() == pytest.approx([1.5] * 3)
    with pytest.raises(ValueError, match="one entry per row"):
        margin.predict(flat_rows, groups=["flat"])


def test_a_series_own_margin_clears_what_it_saw_by_the_guard() -> None:
    X, y, groups = _two_series()
    margin = _margin(guard=0.01).fit(X, y, groups=groups)
    by_group = dict(zip(margin.group_names_.tolist(), margin.group_factor_.tolist(), strict=True))
    assert by_group == pytest.approx({"bursty": 1.5 / 0.99, "flat": 1.0 / 0.99})
    assert margin.factor_ == pytest.approx(1.5, rel=1e-6)  # the pooled margin has no guard


def test_a_series_first_hours_are_grouped_apart_from_its_own() -> None:
    # Series 'late' starts at hour 3 on a one-minute grid; windows are cut every 5 minutes.
    t0 = 1_700_000_000.0
    samples = [Sample(t0 + 60.0 * i, "early", 1.0, None) for i in range(600)]
    samples += [Sample(t0 + 60.0 * i, "late", 2.0, None) for i in range(180, 600)]
    cfg = PredictorConfig().with_overrides("test", window_seconds=1800.0, horizon_seconds=600.0)
    train, _ = cut_all(series_from_samples(samples), "cpu", cfg)
    rows = stack(train, np.inf, cfg.horizon_seconds, 10**6, young_seconds=3600.0)
    late = train["late"].windows.decision_seconds
    first = t0 + 180 * 60.0
    groups = row_groups(train["late"], late, 3600.0)
    assert set(groups[late < first + 3600.0]) == {YOUNG_GROUP}
    assert set(groups[late >= first + 3600.0]) == {"late"}
    assert set(rows.groups) == {"early", "late", YOUNG_GROUP}
    # 'early' is young too in its own first hour, and nothing else decides it.
    early = train["early"].windows.decision_seconds
    assert set(row_groups(train["early"], early, 3600.0)[early >= t0 + 3600.0]) == {"early"}
    assert set(stack(train, np.inf, cfg.horizon_seconds, 10**6).groups) == {"early", "late"}


class _Column(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Predicts its input's second column: a base whose outliers a test can place."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Column:
        self.fitted_ = True
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)[:, 1]


def test_a_series_own_factor_applies_only_up_to_the_base_predictions_it_was_calibrated_on() -> None:
    n = 100
    # Window scale 10; the base predicts 10, and 11 on one held-out row: the largest it gave.
    X = np.column_stack([np.full(n, 10.0), np.full(n, 10.0)])
    X[-5, 1] = 11.0
    y = np.full(n, 10.0)
    groups = np.full(n, "flat")
    margin = MarginRegressor(
        _Column(),
        target_violation_fraction=0.02,
        calibration_fraction=0.5,
        min_group_windows=10,
        group_guard_fraction=0.01,
        floor_scale_column=0,
    ).fit(X, y, groups=groups)
    assert margin.group_ceiling_.tolist() == pytest.approx([1.1])
    (factor,) = margin.group_factor_
    assert factor == pytest.approx(1.0 / 0.99)
    # The base says 240 for a window at scale 10: the series' own factor applies to 11 at most;
    # without a group (the pooled margin) nothing caps the outlier.
    outlier = np.array([[10.0, 240.0]])
    assert margin.predict(outlier, groups=["flat"]).tolist() == pytest.approx([11.0 * factor])
    assert margin.predict(outlier)[0] > 200.0
    # Predictions within what it was calibrated on are not touched.
    assert margin.predict(X[:1], groups=["flat"]).tolist() == pytest.approx([10.0 * factor])


def test_a_series_with_too_little_held_out_history_keeps_the_pooled_margin() -> None:
    X, y, groups = _two_series()
    margin = _margin(min_group_windows=51).fit(X, y, groups=groups)  # 50 held-out rows each
    assert len(margin.group_names_) == 0
    assert margin.predict(X[:2], groups=["flat", "bursty"]).tolist() == pytest.approx([1.5, 1.5])


def test_a_margin_thinner_than_its_newer_held_out_rows_allow_shrinks_the_budget() -> None:
    X, y, groups = _two_series()
    # The bursty series is calm in the older half of the held-out rows and bursts in the newer
    # half: an allocation made on the older half would give it no margin, and the newer half shows
    # that thin margins violate far more than the target there.
    bursty_rows = np.flatnonzero(groups == "bursty")
    y[bursty_rows] = 1.0
    y[bursty_rows[75::2]] = 1.5
    margin = _margin().fit(X, y, groups=groups)
    assert margin.budget_correction_ < 1.0
    by_group = dict(zip(margin.group_names_.tolist(), margin.group_factor_.tolist(), strict=True))
    assert by_group["bursty"] == pytest.approx(1.5)


def _synthetic(hours: float = 14.0, spike_from_hours: float | None = None) -> list[Sample]:
    """Six series on a one-minute grid: levels, daily-ish waves and bursts, all deterministic."""
    rng = np.random.default_rng(7)
    minutes = int(hours * 60)
    t0 = 1_700_000_000.0
    samples = []
    for k in range(6):
        level = 10.0 * (k + 1)
        wave = 1 + 0.2 * np.sin(np.arange(minutes) * 2 * np.pi / (180 + 40 * k))
        noise = rng.gamma(4.0 + k, 1 / (4.0 + k), minutes)
        values = level * wave * noise
        if spike_from_hours is not None:
            late = np.arange(minutes) >= spike_from_hours * 60
            values = np.where(late, values * 7.0, values)
        for i in range(minutes):
            samples.append(Sample(t0 + 60.0 * i, f"s{k}", float(values[i]), float(values[i]) * 1e6))
    return samples


def _cfg() -> PredictorConfig:
    return PredictorConfig().with_overrides(
        "test", refit_every_seconds=2 * 3600.0, max_iter=15, min_series_held_out_windows=6
    )


def test_replay_decisions_never_depend_on_samples_after_them() -> None:
    """Change everything from hour 10 on; every recommendation made before it must not move."""
    cfg = _cfg()
    sweep = (0.01, 0.05)
    calm = evaluate(series_from_samples(_synthetic()), "cpu", cfg, sweep=sweep)
    late = evaluate(series_from_samples(_synthetic(spike_from_hours=10.0)), "cpu", cfg, sweep=sweep)
    t0 = 1_700_000_000.0
    cut = t0 + 10 * 3600.0
    before = {(r.decision_seconds, r.series, r.method): r.value for r in calm.recommendations}
    after = {(r.decision_seconds, r.series, r.method): r.value for r in late.recommendations}
    assert before.keys() == after.keys()
    early = [k for k in before if k[0] <= cut]
    assert {k[2] for k in early} == {"kinship", "vpa", sweep_method(0.01), sweep_method(0.05)}
    assert len({k[0] for k in early if k[2] == "kinship"}) >= 3  # several refits judged
    for key in early:
        assert after[key] == before[key], key
    # ...and the test can see a change: recommendations after the jump do move.
    assert any(after[k] != before[k] for k in before if k[0] > cut + cfg.horizon_seconds)


def test_recalibrating_to_another_target_equals_fitting_at_it() -> None:
    cfg = _cfg()
    train, _ = cut_all(series_from_samples(_synthetic()), "cpu", cfg)
    rows = stack(train, np.inf, cfg.horizon_seconds, cfg.max_train_windows)
    fitted = fit_recommender(cfg, "cpu", rows)
    again = recalibrate(fitted, 0.1, cfg, rows)
    direct = fit_recommender(cfg.with_overrides("test", target_violation_fraction=0.1), "cpu", rows)
    X, groups = rows.X[-50:], rows.groups[-50:]
    assert again.predict(X, groups=groups) == pytest.approx(direct.predict(X, groups=groups))
    assert not np.allclose(again.predict(X, groups=groups), fitted.predict(X, groups=groups))
    assert fitted.estimator_.target_violation_fraction == cfg.target_violation_fraction  # untouched


def test_matched_reads_the_swept_curve_at_the_reference_violation_rate() -> None:
    scores = {
        "vpa": Scores(slack=0.5, violation_rate=0.02, worst_overrun=1.0),
        "kinship": Scores(slack=0.3, violation_rate=0.03, worst_overrun=1.0),
        "kinship@0.005": Scores(slack=0.4, violation_rate=0.01, worst_overrun=1.0),
        "kinship@0.01": Scores(slack=0.32, violation_rate=0.015, worst_overrun=1.0),
        "kinship@0.02": Scores(slack=0.2, violation_rate=0.035, worst_overrun=1.0),
    }
    m = matched(scores)
    assert m is not None
    assert (m.best_method, m.best_slack, m.best_violation_rate) == ("kinship@0.01", 0.32, 0.015)
    # Between (0.015, 0.32) and (0.035, 0.2): at 0.02, 0.32 - 0.12 * 0.25 = 0.29.
    assert m.interpolated_slack == pytest.approx(0.29)
    # Ties on the judged rate: the curve runs through the least slack among them.
    tied = dict(scores, **{"kinship@0.001": Scores(slack=0.45, violation_rate=0.015, worst_overrun=1.0)})
    m = matched(tied)
    assert m is not None and m.best_slack == 0.32 and m.interpolated_slack == pytest.approx(0.29)
    assert matched({"vpa": scores["vpa"], "kinship": scores["kinship"]}) is None
    worse = {"vpa": scores["vpa"], "kinship@0.02": scores["kinship@0.02"]}
    m = matched(worse)
    assert m is not None and m.best_method is None and m.interpolated_slack is None
