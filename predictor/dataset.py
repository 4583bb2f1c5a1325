"""From the usage table to training rows and decision rows for one resource, over all series.

Training rows are overlapping windows cut every `train_stride_seconds`; decision rows are cut every
horizon after the warm-up, on one schedule shared by all series so that every method is judged on
the same intervals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from predictor.config import PredictorConfig
from predictor.features import Windows, cut_windows, steps
from predictor.usage import FloatArray, Grid, Resource, Series, on_grid

# The margin group of rows cut in a series' first hours (see `row_groups`).
YOUNG_GROUP = "(young)"


@dataclass(frozen=True, slots=True)
class SeriesWindows:
    name: str
    grid: Grid
    windows: Windows


def cut_all(
    usage: Mapping[str, Series], resource: Resource, cfg: PredictorConfig
) -> tuple[dict[str, SeriesWindows], dict[str, SeriesWindows]]:
    """(training windows, decision windows) per series that measured `resource` at all."""
    grids = {name: on_grid(s, resource) for name, s in usage.items() if np.any(~np.isnan(s.values(resource)))}
    train: dict[str, SeriesWindows] = {}
    decisions: dict[str, SeriesWindows] = {}
    if not grids:
        return train, decisions
    start = min(g.start_seconds for g in grids.values())
    for name, grid in grids.items():
        step = grid.step_seconds
        w, h, long = (
            steps(cfg.window_seconds, step),
            steps(cfg.horizon_seconds, step),
            steps(cfg.long_window_seconds, step),
        )
        n = len(grid.values)
        train_at = np.arange(1, n, steps(cfg.train_stride_seconds, step))
        train[name] = SeriesWindows(name, grid, cut_windows(grid, train_at, w, h, long))
        schedule = np.arange(start + cfg.warmup_seconds, grid.time_of(n - 1) + 1e-6, cfg.horizon_seconds)
        at = np.unique(np.rint((schedule - grid.start_seconds) / step).astype(np.int64))
        at = at[(at >= 1) & (at < n)]
        if len(at):
            windows = cut_windows(grid, at, w, h, long)
            if len(windows.decision_seconds):
                decisions[name] = SeriesWindows(name, grid, windows)
    return train, decisions


@dataclass(frozen=True, slots=True)
class Rows:
    """Training rows over all series, oldest first: what `fit(X, y, horizon=, groups=)` takes."""

    X: FloatArray  # features
    y: FloatArray  # the horizon's peak
    horizon: FloatArray  # the horizon's samples, NaN-padded for series on coarser grids
    groups: npt.NDArray[np.str_]  # the series each row was cut from


def row_groups(sw: SeriesWindows, decision_seconds: FloatArray, young_seconds: float) -> npt.NDArray[np.str_]:
    """The margin group of each decision: the series, or YOUNG_GROUP in its first `young_seconds`.

    A series' first hours (a pod starting, a model loading) ramp in a way its later hours do not
    repeat; calibrating its own margin on them would keep a ramp's headroom for good. Known at
    decision time: it only needs the series' first measured sample.
    """
    measured = np.flatnonzero(~np.isnan(sw.grid.values))
    first = sw.grid.time_of(int(measured[0])) if len(measured) else np.inf
    young = np.asarray(decision_seconds) < first + young_seconds
    return np.where(young, YOUNG_GROUP, sw.name)


def stack(
    train: Mapping[str, SeriesWindows],
    until_seconds: float,
    horizon_seconds: float,
    max_rows: int,
    young_seconds: float = 0.0,
) -> Rows:
    """Rows whose horizon had fully elapsed by `until_seconds`, oldest first, the newest `max_rows`."""
    parts = []
    for sw in train.values():
        wins = sw.windows
        peak = wins.peak
        done = (wins.decision_seconds + horizon_seconds <= until_seconds) & ~np.isnan(peak)
        if done.any():
            at = wins.decision_seconds[done]
            parts.append(
                (at, wins.features[done], peak[done], wins.horizon[done], row_groups(sw, at, young_seconds))
            )
    if not parts:
        return Rows(np.zeros((0, 0)), np.zeros(0), np.zeros((0, 1)), np.zeros(0, dtype=str))
    width = max(p[3].shape[1] for p in parts)
    times = np.concatenate([p[0] for p in parts])
    X = np.concatenate([p[1] for p in parts])
    y = np.concatenate([p[2] for p in parts])
    horizon = np.concatenate(
        [np.pad(p[3], ((0, 0), (0, width - p[3].shape[1])), constant_values=np.nan) for p in parts]
    )
    groups = np.concatenate([p[4] for p in parts])
    order = np.argsort(times, kind="stable")[-max_rows:]
    return Rows(X[order], y[order], horizon[order], groups[order])
