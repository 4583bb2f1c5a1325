"""Requests that know the future: references for how far any per-horizon request could go.

A recommendation holds for a whole horizon, so it must sit above most of that horizon's samples;
how far those samples spread around their own level is slack no predictor can remove. To tell a
weak model from a trace that leaves little to win, the replay can add requests made with
foresight, all at the reference method's violation rate:
- `foresight-mean`, `foresight-p90`: the coming horizon's own mean (or 90th percentile) times a
  per-series factor chosen in hindsight, the factors sharing the violation budget the Lagrangian
  way (`allocation`, as the per-series margins do). A model predicts a level and a margin; these
  know the level exactly and pick the margin knowing the whole trace.
- `foresight-best`: each horizon's own best constant request, the budget shared across every
  horizon of every series: the least slack any per-horizon request can leave at that violation
  rate (up to the Lagrangian's convex-hull steps).
A model that sees only the past knows less than the first two; where even they leave more slack
than a target allows, the target asks for more than knowing each coming hour's level gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from predictor.allocation import Curve, IntArray, allocate, curve
from predictor.features import Windows
from predictor.usage import FloatArray


def _mean(horizon: FloatArray) -> FloatArray:
    return np.asarray(np.nanmean(horizon, axis=1), dtype=np.float64)


def _p90(horizon: FloatArray) -> FloatArray:
    return np.asarray(np.nanquantile(horizon, 0.9, axis=1), dtype=np.float64)


LEVELS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "foresight-mean": _mean,
    "foresight-p90": _p90,
}
BEST = "foresight-best"
METHODS = (*LEVELS, BEST)


def foresight(
    decisions: Mapping[str, Windows], violation_rate: float
) -> dict[str, dict[str, FloatArray]]:
    """method -> series -> request per decision (NaN where the horizon measured nothing).

    The budget is `violation_rate` x all measured horizon samples, shared across series so the
    total unused request is least.
    """
    out: dict[str, dict[str, FloatArray]] = {}
    for method, level_of in LEVELS.items():
        levels: dict[str, FloatArray] = {}
        curves: dict[str, Curve] = {}
        total, summed = 0, 0.0
        for name, w in decisions.items():
            measured = ~np.all(np.isnan(w.horizon), axis=1)
            level = np.full(len(w.horizon), np.nan)
            if measured.any():
                level[measured] = level_of(w.horizon[measured])
            levels[name] = level
            total += int(np.sum(~np.isnan(w.horizon)))
            summed += float(np.nansum(w.horizon))
            # A zero level scales to a zero request whatever the factor: nothing to choose there.
            usable = measured & (level > 0)
            if usable.any():
                samples = w.horizon[usable]
                # Bounds: no request, and twice what covers every sample (an option never taken).
                top = 2 * float(np.nanmax(samples / level[usable][:, None]))
                curves[name] = curve(level[usable], np.zeros((1, int(usable.sum()))), samples, 0.0, top)
        picks = allocate(list(curves.values()), violation_rate * total, scale=summed / max(total, 1))
        factors = {name: float(c.factor[i]) for (name, c), i in zip(curves.items(), picks, strict=True)}
        out[method] = {name: level * factors.get(name, 0.0) for name, level in levels.items()}
    out[BEST] = best_per_horizon(decisions, violation_rate)
    return out


def best_per_horizon(decisions: Mapping[str, Windows], violation_rate: float) -> dict[str, FloatArray]:
    """Each horizon's request: its own k-th largest sample, k chosen for all horizons at once.

    Options per horizon are "leave the k largest samples over" (k = 0..all); for a price per
    violation every horizon takes its cheapest `unused + price x k`, and the smallest price whose
    violations fit `violation_rate` x all samples wins (bisection, as in `allocation.allocate`).
    """
    rows = [w.horizon for w in decisions.values()]
    horizon = np.concatenate(rows) if rows else np.zeros((0, 0))
    measured = ~np.isnan(horizon)
    ranked = -np.sort(-np.where(measured, horizon, -np.inf), axis=1)  # largest first, NaN last
    requests = np.where(np.isfinite(ranked), ranked, 0.0)  # k violations: the k-th largest
    # Unused for option k: sum over the row of max(request_k - sample, 0), by cumulative sums.
    n = measured.sum(axis=1)
    below = np.cumsum(requests[:, ::-1], axis=1)[:, ::-1]  # sum of samples from k on
    k = np.arange(horizon.shape[1])
    covered = np.maximum(n[:, None] - k[None, :], 0)
    unused = np.where(k[None, :] < n[:, None], requests * covered - below, np.inf)
    # Option "all over" (request 0) is never cheaper than covering none but the smallest; keep
    # options 0..n-1, whose violations are k.
    total = int(measured.sum())
    scale = float(np.nansum(horizon)) / max(total, 1) or 1.0

    def pick(price: float) -> IntArray:
        return np.asarray(np.argmin(unused / scale + price * k[None, :], axis=1), dtype=np.int64)

    budget = violation_rate * total
    choice = pick(0.0)
    if choice[n > 0].sum() > budget:
        low, high = -12.0, 12.0
        for _ in range(60):
            middle = (low + high) / 2
            if pick(10.0**middle)[n > 0].sum() <= budget:
                high = middle
            else:
                low = middle
        choice = pick(10.0**high)
    request = np.where(n > 0, requests[np.arange(len(requests)), choice], np.nan)
    out, start = {}, 0
    for name, rows_of in zip(decisions, rows, strict=True):
        out[name] = request[start : start + len(rows_of)]
        start += len(rows_of)
    return out
