"""Recent-window features and next-horizon targets, cut from one series on its time grid.

Series differ by orders of magnitude (a 2-millicore ad service beside a 16-core VM), so every
level feature is relative to the window's maximum (`scale`); one pooled model then learns shapes
(how spiky, how trending, what time of day) instead of sizes. Only the past feeds a feature: the
window ends just before the decision step, and the horizon starts at it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from predictor.usage import FloatArray, Grid

FEATURE_NAMES = (
    "window_scale",  # the scale (window p90, absolute): the model divides by it (column 0)
    "max_fraction",
    "p50_fraction",
    "p90_fraction",
    "mean_fraction",
    "std_fraction",
    "min_fraction",
    "last_fraction",
    "trend_fraction",  # fitted change over the window, relative to the scale
    "spike_share",  # share of samples above 1.2 x the window median: how often it bursts
    "long_max_fraction",  # max over the long window (a day) relative to the recent scale
    "long_p90_fraction",
    "tod_sin",
    "tod_cos",
    "measured_share",
)
SCALE_COLUMN = 0
# The scale is a high quantile rather than the max: one spike in the window would otherwise
# set the scale of every ratio, and the model would have to learn to undo it.
SCALE_QUANTILE = 0.9
_DAY_SECONDS = 86_400.0
# A window of zeros has no shape; treat its scale as this tiny level so ratios stay finite.
_TINY = 1e-9


@dataclass(frozen=True, slots=True)
class Windows:
    """Rows of one series: features, the decision times, and what happened in the next horizon."""

    features: FloatArray  # (n, len(FEATURE_NAMES))
    decision_seconds: FloatArray  # (n,) grid time of the first horizon step
    horizon: FloatArray  # (n, horizon_steps), NaN where not measured

    @property
    def peak(self) -> FloatArray:
        """The next horizon's peak (NaN when nothing was measured in it)."""
        out = np.full(len(self.horizon), np.nan)
        measured = ~np.all(np.isnan(self.horizon), axis=1)
        out[measured] = np.nanmax(self.horizon[measured], axis=1)
        return out


def cut_windows(
    grid: Grid, decisions: np.ndarray, window_steps: int, horizon_steps: int, long_steps: int
) -> Windows:
    """Features for each decision index (window = the `window_steps` before it).

    Decisions whose window holds no measurement are dropped: nothing can be said about them. The
    horizon may run past the end of the grid (NaN there), which evaluation needs for its last step.
    """
    values = grid.values
    pad = max(window_steps, long_steps)
    padded = np.concatenate([np.full(pad, np.nan), values, np.full(horizon_steps, np.nan)])
    d = np.asarray(decisions, dtype=np.int64) + pad
    recent = sliding_window_view(padded, window_steps)[d - window_steps]
    keep = ~np.all(np.isnan(recent), axis=1)
    d, recent = d[keep], recent[keep]
    if len(d) == 0:
        return Windows(np.zeros((0, len(FEATURE_NAMES))), np.zeros(0), np.zeros((0, horizon_steps)))
    long = sliding_window_view(padded, long_steps)[d - long_steps]
    horizon = sliding_window_view(padded, horizon_steps)[d]
    decision_seconds = grid.start_seconds + (d - pad) * grid.step_seconds
    return Windows(_features(recent, long, decision_seconds), decision_seconds, horizon.copy())


def _features(recent: FloatArray, long: FloatArray, decision_seconds: FloatArray) -> FloatArray:
    n, w = recent.shape
    window_scale = np.nanquantile(recent, SCALE_QUANTILE, axis=1)
    scale = np.maximum(window_scale, _TINY)[:, None]
    rel = recent / scale
    p50, p90 = np.nanquantile(rel, [0.5, 0.9], axis=1)
    measured = ~np.isnan(rel)
    last = _last_measured(rel, measured)
    # Least-squares slope over the measured samples, times the window length: relative change.
    x = np.broadcast_to(np.arange(w, dtype=np.float64), rel.shape)
    xm = np.where(measured, x, np.nan)
    x_centered = xm - np.nanmean(xm, axis=1, keepdims=True)
    y_centered = rel - np.nanmean(rel, axis=1, keepdims=True)
    denominator = np.nansum(x_centered**2, axis=1)
    covariance = np.nansum(x_centered * y_centered, axis=1)
    slope = np.where(denominator > 0, covariance / np.maximum(denominator, 1e-12), 0.0)
    spike_share = np.sum(rel > 1.2 * p50[:, None], axis=1) / np.maximum(measured.sum(axis=1), 1)
    long_rel = long / scale
    long_any = ~np.all(np.isnan(long_rel), axis=1)
    long_max = np.ones(n)
    long_p90 = np.ones(n)
    long_max[long_any] = np.nanmax(long_rel[long_any], axis=1)
    long_p90[long_any] = np.nanquantile(long_rel[long_any], 0.9, axis=1)
    phase = 2 * np.pi * (decision_seconds % _DAY_SECONDS) / _DAY_SECONDS
    return np.column_stack(
        [
            window_scale,
            np.nanmax(rel, axis=1),
            p50,
            p90,
            np.nanmean(rel, axis=1),
            np.nanstd(rel, axis=1),
            np.nanmin(rel, axis=1),
            last,
            slope * w,
            spike_share,
            long_max,
            long_p90,
            np.sin(phase),
            np.cos(phase),
            measured.mean(axis=1),
        ]
    )


def _last_measured(rel: FloatArray, measured: np.ndarray) -> FloatArray:
    idx = np.where(measured, np.arange(rel.shape[1]), -1).max(axis=1)
    return np.asarray(rel[np.arange(len(rel)), idx], dtype=np.float64)


def steps(seconds: float, step_seconds: float) -> int:
    """A duration in grid steps, at least one."""
    return max(1, round(seconds / step_seconds))
