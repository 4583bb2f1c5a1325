"""The kinship recommender: a quantile peak model plus two small wrappers (margin, clamp).

scikit-learn conventions throughout (`__init__` stores parameters, `fit` returns self, learned
attributes end in `_`), so the parts compose, clone and pickle like any estimator and
`check_estimator` can hold them to the contract.

- `HorizonQuantileRegressor` predicts a quantile of the next horizon's samples, relative to a scale
  column (a high quantile of the recent window): one pooled model learns shapes across series of
  any size, and which shapes need headroom.
- `MarginRegressor` calibrates it (split conformal: the base sees the older windows, the factors
  are chosen on the newest ones): the request factor keeps the share of held-out *samples* above
  the request at the target; the peak factor makes the predicted peak cover a share of held-out
  windows' peaks.
- `ClampRegressor` keeps requests inside configured bounds (no zero request, no absurd one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from predictor.allocation import IntArray, allocate, curve, group_index
from predictor.config import PredictorConfig
from predictor.dataset import Rows
from predictor.features import FEATURE_NAMES, SCALE_COLUMN
from predictor.usage import FloatArray

# A scale this close to zero carries no size information; ratios are taken against 1 instead.
_TINY_SCALE = 1e-9


class HorizonQuantileRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Quantile gradient boosting of usage / |X[:, scale_column]| (of usage when scale_column is None).

    `fit(X, y)` learns the `quantile` of y. `fit(X, y, horizon=H)` learns the quantile of the
    samples in each row's horizon instead (`samples_per_window` of them, drawn at random): the
    request a window needs is a quantile of its samples, and a window's peak would ask for more
    than that on a spiky series and less on a flat one.
    """

    def __init__(
        self,
        quantile: float = 0.9,
        scale_column: int | None = 0,
        samples_per_window: int = 8,
        max_iter: int = 150,
        learning_rate: float = 0.08,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        random_state: int | None = 0,
    ) -> None:
        self.quantile = quantile
        self.scale_column = scale_column
        self.samples_per_window = samples_per_window
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, X: Any, y: Any, horizon: Any = None) -> HorizonQuantileRegressor:
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")
        if horizon is not None:
            samples = np.asarray(horizon, dtype=np.float64)
            X, y = _expand(X, samples, self.samples_per_window, self.random_state)
        self.booster_ = HistGradientBoostingRegressor(
            loss="quantile",
            quantile=self.quantile,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            # Small training sets (the first hours of a trace) still get a tree of some depth.
            min_samples_leaf=max(1, min(self.min_samples_leaf, len(y) // 10)),
            early_stopping=False,
            random_state=self.random_state,
        ).fit(X, y / self._scale(X))
        self.n_iter_ = self.booster_.n_iter_
        return self

    def predict(self, X: Any) -> FloatArray:
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        prediction: FloatArray = self.booster_.predict(X) * self._scale(X)
        return prediction

    def _scale(self, X: FloatArray) -> FloatArray:
        if self.scale_column is None:
            return np.ones(len(X))
        scale = np.abs(X[:, self.scale_column])
        return np.where(scale > _TINY_SCALE, scale, 1.0)


def _expand(X: FloatArray, horizon: FloatArray, k: int, seed: int | None) -> tuple[FloatArray, FloatArray]:
    """One row per drawn measured horizon sample, carrying its window's features."""
    rng = np.random.default_rng(seed)
    # Random keys, NaN last: the first k columns of the argsort are k random measured samples.
    keys = np.where(np.isnan(horizon), np.inf, rng.random(horizon.shape))
    pick = np.argsort(keys, axis=1)[:, :k]
    values = np.take_along_axis(horizon, pick, axis=1)
    measured = ~np.isnan(values)
    rows = np.broadcast_to(np.arange(len(X))[:, None], values.shape)[measured]
    return X[rows], values[measured]


class MarginRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Scale a base estimator's prediction so held-out violations meet `target_violation_fraction`.

    Rows must be in time order: the last `calibration_fraction` of them are held out. With
    `horizon` (one row of future samples per window) a violation is one sample above the request;
    without it, one window whose y is above. The factor is the (1 - target) quantile of
    sample / prediction on the held-out rows, so it is exact rather than searched.
    """

    def __init__(
        self,
        estimator: Any = None,
        target_violation_fraction: float = 0.02,
        peak_coverage_fraction: float = 0.9,
        calibration_fraction: float = 0.3,
        min_factor: float = 0.1,
        max_factor: float = 5.0,
        floor_scale_column: int | None = None,
        floor_candidates: tuple[tuple[int | None, float], ...] = ((None, 0.0),),
        min_group_windows: int = 24,
        group_guard_fraction: float = 0.01,
    ) -> None:
        self.estimator = estimator
        self.target_violation_fraction = target_violation_fraction
        self.peak_coverage_fraction = peak_coverage_fraction
        self.calibration_fraction = calibration_fraction
        self.min_factor = min_factor
        self.max_factor = max_factor
        self.floor_scale_column = floor_scale_column
        self.floor_candidates = floor_candidates
        self.min_group_windows = min_group_windows
        self.group_guard_fraction = group_guard_fraction

    def fit(self, X: Any, y: Any, horizon: Any = None, groups: Any = None) -> MarginRegressor:
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        if groups is not None:
            group_names, group_of_row = group_index(groups, len(y))
        n_calibration = max(1, round(len(y) * self.calibration_fraction)) if len(y) > 1 else 0
        split = len(y) - n_calibration
        base = clone(self.estimator if self.estimator is not None else _default_base())
        if n_calibration == 0:  # one row: nothing to hold out, the base's own fit is all we have
            self.estimator_ = base.fit(X, y)
            self.factor_ = self.peak_factor_ = 1.0
            self.floor_: tuple[int | None, float] = (None, 0.0)
            self.peak_coverage_fraction_ = 1.0
            if groups is not None:
                self._set_groups(group_names[:0], np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))
            return self
        self.estimator_ = (
            base.fit(X[:split], y[:split])
            if horizon is None
            else base.fit(X[:split], y[:split], horizon=np.asarray(horizon, dtype=np.float64)[:split])
        )
        held_out = np.asarray(self.estimator_.predict(X[split:]), dtype=np.float64)
        safe = np.where(np.abs(held_out) > _TINY_SCALE, np.abs(held_out), _TINY_SCALE)
        samples = np.asarray(horizon, dtype=np.float64)[split:] if horizon is not None else y[split:, None]
        choices = [
            self._calibrate(held_out, self._floor(X[split:], c), samples) for c in self.floor_candidates
        ]
        best = min(range(len(choices)), key=lambda i: choices[i][1:])
        self.factor_ = choices[best][0]
        self.floor_ = self.floor_candidates[best]
        if groups is not None:
            self._fit_groups(held_out, X[split:], samples, group_names, group_of_row[split:], best)
        peak_factor = float(np.quantile(y[split:] / safe, self.peak_coverage_fraction, method="higher"))
        self.peak_factor_ = float(np.clip(peak_factor, self.min_factor, self.max_factor))
        # What the AgentProfile calls confidence: how often the predicted peak held on held-out
        # windows (at least the target, unless the clip bounds got in the way).
        self.peak_coverage_fraction_ = float(np.mean(y[split:] <= self.predict_peak(X[split:])))
        return self

    def predict(self, X: Any, groups: Any = None) -> FloatArray:
        """max(factor x base, floor): the pooled choice, or each known group's own."""
        check_is_fitted(self, "factor_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        base = np.asarray(self.estimator_.predict(X), dtype=np.float64)
        pooled = np.maximum(base * self.factor_, self._floor(X, self.floor_))
        if groups is None or not hasattr(self, "group_names_") or len(self.group_names_) == 0:
            return pooled
        names = np.asarray(groups).astype(str)
        if names.shape != (len(X),):
            raise ValueError(f"groups must have one entry per row ({len(X)}), got shape {names.shape}")
        at = np.minimum(np.searchsorted(self.group_names_, names), len(self.group_names_) - 1)
        known = self.group_names_[at] == names
        out = pooled.copy()
        capped = np.minimum(base, self.group_ceiling_[at] * self._scale(X))
        for index, candidate in enumerate(self.floor_candidates):
            rows = known & (self.group_floor_[at] == index)
            if rows.any():
                own = capped[rows] * self.group_factor_[at[rows]]
                out[rows] = np.maximum(own, self._floor(X[rows], candidate))
        return out

    def _fit_groups(
        self,
        predicted: FloatArray,
        X: FloatArray,
        samples: FloatArray,
        names: np.ndarray,
        group_of_row: IntArray,
        pooled_floor: int,
    ) -> None:
        """Per-group (floor, factor) on the held-out rows, sharing the violation budget.

        A group's own factor applies to base predictions no larger, relative to the window
        scale, than the largest the base gave that group on these rows: its calibration says
        nothing about predictions beyond them. On these rows the cap changes nothing; it keeps an
        outlier of the pooled base model (a 24x ratio for one flat GenAI pod at one time of day)
        from becoming a request no history of the series asked for.

        Choosing per group on the same samples that then judge the choice is optimistic (a group
        whose held-out hours happened to be calm gets a thin margin). So the allocation is first
        made on the older half of the held-out rows and checked on the newer half; if the newer
        half violates more than the target, the budget of the final allocation (on all held-out
        rows) shrinks by target / realised. Only held-out rows, all older than any decision.
        """
        floors = np.stack([self._floor(X, c) for c in self.floor_candidates])
        pooled_request = np.maximum(predicted * self.factor_, floors[pooled_floor])
        target = self.target_violation_fraction
        half = len(predicted) // 2
        older = slice(0, half)
        newer = slice(half, len(predicted))
        check = self._allocate(
            predicted[older],
            floors[:, older],
            samples[older],
            group_of_row[older],
            pooled_request[older],
            target,
            max(1, self.min_group_windows // 2),
            scale=self._scale(X[older]),
        )
        request = self._requests(
            predicted[newer],
            floors[:, newer],
            self._scale(X[newer]),
            group_of_row[newer],
            check,
            pooled_request[newer],
        )
        measured = ~np.isnan(samples[newer])
        realised = float(np.sum((samples[newer] > request[:, None]) & measured)) / max(int(measured.sum()), 1)
        self.budget_correction_ = min(1.0, target / realised) if realised > 0 else 1.0
        chosen = self._allocate(
            predicted,
            floors,
            samples,
            group_of_row,
            pooled_request,
            target * self.budget_correction_,
            self.min_group_windows,
            scale=self._scale(X),
        )
        self._set_groups(names[chosen[0]], *chosen[1:])

    def _allocate(
        self,
        predicted: FloatArray,
        floors: FloatArray,
        samples: FloatArray,
        group_of_row: IntArray,
        pooled_request: FloatArray,
        target: float,
        min_windows: int,
        scale: FloatArray,
    ) -> tuple[IntArray, FloatArray, IntArray, FloatArray]:
        """(groups, factor, floor index, ceiling ratio) for groups with at least `min_windows` rows.

        Groups with fewer keep the pooled choice; their violations under it come off the budget.
        """
        measured = ~np.isnan(samples)
        budget = target * max(int(measured.sum()), 1)
        own, curves, ceilings = [], [], []
        for g in np.unique(group_of_row):
            rows = group_of_row == g
            if rows.sum() < min_windows:
                budget -= float(np.sum((samples[rows] > pooled_request[rows, None]) & measured[rows]))
                continue
            own.append(g)
            ceilings.append(self._ceiling_ratio(predicted[rows], scale[rows]))
            curves.append(
                curve(
                    predicted[rows],
                    floors[:, rows],
                    samples[rows],
                    self.min_factor,
                    self.max_factor,
                    guard_fraction=self.group_guard_fraction,
                    ceiling=ceilings[-1] * scale[rows],  # of the base prediction
                )
            )
        level = float(np.nansum(samples)) / max(int(measured.sum()), 1)
        picks = allocate(curves, max(budget, 0.0), scale=level)
        return (
            np.asarray(own, dtype=np.int64),
            np.array([c.factor[i] for c, i in zip(curves, picks, strict=True)], dtype=np.float64),
            np.array([c.floor[i] for c, i in zip(curves, picks, strict=True)], dtype=np.int64),
            np.asarray(ceilings, dtype=np.float64),
        )

    def _ceiling_ratio(self, predicted: FloatArray, scale: FloatArray) -> float:
        """The largest base prediction / window scale of these rows; inf without a scale."""
        if self.floor_scale_column is None or len(predicted) == 0:
            return float(np.inf)
        return float(np.max(predicted / scale))

    @staticmethod
    def _requests(
        predicted: FloatArray,
        floors: FloatArray,
        scale: FloatArray,
        group_of_row: IntArray,
        choice: tuple[IntArray, FloatArray, IntArray, FloatArray],
        pooled_request: FloatArray,
    ) -> FloatArray:
        """Requests of rows under a per-group choice (pooled for groups without one)."""
        request = pooled_request.copy()
        for g, factor, floor, ceiling in zip(*choice, strict=True):
            rows = group_of_row == g
            own = np.minimum(predicted[rows], ceiling * scale[rows]) * factor
            request[rows] = np.maximum(own, floors[floor, rows])
        return request

    def _scale(self, X: FloatArray) -> FloatArray:
        """|window scale| per row (1 without a scale column): what floors and ceilings multiply."""
        if self.floor_scale_column is None:
            return np.ones(len(X))
        scale = np.abs(X[:, self.floor_scale_column])
        return np.where(scale > _TINY_SCALE, scale, _TINY_SCALE)

    def _set_groups(
        self, names: np.ndarray, factors: FloatArray, floors: IntArray, ceilings: FloatArray
    ) -> None:
        self.group_names_ = np.asarray(names).astype(str)  # sorted: np.unique made them
        self.group_factor_ = factors
        self.group_floor_ = floors
        self.group_ceiling_ = ceilings

    def _floor(self, X: FloatArray, candidate: tuple[int | None, float]) -> FloatArray:
        """fraction x |scale| x (the candidate's relative column, or 1): e.g. the day's max."""
        column, fraction = candidate
        if self.floor_scale_column is None or fraction == 0.0:
            return np.zeros(len(X))
        level = np.abs(X[:, self.floor_scale_column])
        relative = 1.0 if column is None else np.abs(X[:, column])
        return np.asarray(fraction * level * relative, dtype=np.float64)

    def _calibrate(
        self, predicted: FloatArray, floor: FloatArray, samples: FloatArray
    ) -> tuple[float, float, float]:
        """(factor, violation above target, held-out slack) for requests max(factor*pred, floor).

        Violations only fall as the factor grows, so bisection finds the smallest factor meeting
        the target; among floors, the one leaving the least slack wins (ties: fewer violations).
        """
        measured = ~np.isnan(samples)
        total = max(int(measured.sum()), 1)

        def violation(factor: float) -> float:
            request = np.maximum(factor * predicted, floor)[:, None]
            return float(np.sum((samples > request) & measured)) / total

        low, high = self.min_factor, self.max_factor
        if violation(low) > self.target_violation_fraction:
            for _ in range(40):
                middle = (low + high) / 2
                if violation(middle) <= self.target_violation_fraction:
                    high = middle
                else:
                    low = middle
            low = high
        request = np.maximum(low * predicted, floor)[:, None]
        unused = np.where(measured, np.maximum(request - samples, 0.0), 0.0).sum()
        requested = np.where(measured, np.broadcast_to(request, samples.shape), 0.0).sum()
        excess = max(violation(low) - self.target_violation_fraction, 0.0)
        return low, excess, float(unused / requested) if requested > 0 else 0.0

    def predict_peak(self, X: Any, groups: Any = None) -> FloatArray:
        """The peak the extender fits against: the base scaled to cover `peak_coverage_fraction`
        of held-out windows' peaks (a request only needs to cover most samples, a peak more)."""
        check_is_fitted(self, "factor_")
        peak = np.asarray(self.estimator_.predict(X), dtype=np.float64) * self.peak_factor_
        # Never below the request: a peak the request exceeds would tell the extender too little.
        return np.maximum(peak, self.predict(X, groups=groups))


class ClampRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Keep a regressor's predictions within [min_value, max_value]."""

    def __init__(self, estimator: Any = None, min_value: float = 0.0, max_value: float = np.inf) -> None:
        self.estimator = estimator
        self.min_value = min_value
        self.max_value = max_value

    def fit(self, X: Any, y: Any, **fit_params: Any) -> ClampRegressor:
        if self.min_value > self.max_value:
            raise ValueError(f"min_value {self.min_value} is above max_value {self.max_value}")
        base = clone(self.estimator if self.estimator is not None else _default_base())
        self.estimator_ = base.fit(X, y, **fit_params)
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X: Any, groups: Any = None) -> FloatArray:
        check_is_fitted(self, "estimator_")
        inner = self.estimator_
        raw = inner.predict(X) if groups is None else inner.predict(X, groups=groups)
        return np.clip(np.asarray(raw, dtype=np.float64), self.min_value, self.max_value)

    def predict_peak(self, X: Any, groups: Any = None) -> FloatArray:
        check_is_fitted(self, "estimator_")
        inner = self.estimator_
        if not hasattr(inner, "predict_peak"):
            return self.predict(X, groups=groups)
        raw = inner.predict_peak(X) if groups is None else inner.predict_peak(X, groups=groups)
        return np.clip(np.asarray(raw, dtype=np.float64), self.min_value, self.max_value)


def _default_base() -> HorizonQuantileRegressor:
    return HorizonQuantileRegressor(scale_column=None)


def build_recommender(cfg: PredictorConfig, resource: str) -> ClampRegressor:
    """The kinship recommender for one resource, from the predictor config."""
    low, high = cfg.clamp_bounds(resource)
    base = HorizonQuantileRegressor(
        quantile=cfg.base_quantile,
        samples_per_window=cfg.samples_per_window,
        scale_column=0,
        max_iter=cfg.max_iter,
        learning_rate=cfg.learning_rate,
        max_leaf_nodes=cfg.max_leaf_nodes,
        min_samples_leaf=cfg.min_samples_leaf,
        random_state=cfg.random_state,
    )
    margin = MarginRegressor(
        base,
        target_violation_fraction=cfg.target_violation_fraction,
        peak_coverage_fraction=cfg.peak_coverage_fraction,
        calibration_fraction=cfg.calibration_fraction,
        min_factor=cfg.min_margin_factor,
        max_factor=cfg.max_margin_factor,
        floor_scale_column=SCALE_COLUMN,
        floor_candidates=tuple(
            (None if name == "window_scale" else FEATURE_NAMES.index(name), fraction)
            for name, fraction in cfg.floor_candidates
        ),
        min_group_windows=cfg.min_series_held_out_windows,
        group_guard_fraction=cfg.series_margin_guard_fraction,
    )
    return ClampRegressor(margin, min_value=low, max_value=high)


def fit_recommender(cfg: PredictorConfig, resource: str, rows: Rows) -> ClampRegressor:
    """Build and fit on stacked rows: per-series margins unless the config asks for one pooled."""
    groups = rows.groups if cfg.margin_per_series else None
    return build_recommender(cfg, resource).fit(rows.X, rows.y, horizon=rows.horizon, groups=groups)


def recalibrate(
    fitted: ClampRegressor, target_violation_fraction: float, cfg: PredictorConfig, rows: Rows
) -> ClampRegressor:
    """`fitted` with its margin calibrated to another target on the same rows, base not refitted.

    The base only ever sees the older rows and does not depend on the target, so a sweep of
    targets costs one booster fit per refit; the margin's split and held-out rows are the same.
    """
    base = FrozenEstimator(fitted.estimator_.estimator_)
    model = clone(fitted).set_params(
        estimator__estimator=base, estimator__target_violation_fraction=target_violation_fraction
    )
    groups = rows.groups if cfg.margin_per_series else None
    fitted_again: ClampRegressor = model.fit(rows.X, rows.y, horizon=rows.horizon, groups=groups)
    return fitted_again
