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
  horizon of every series: the least unused request (so, all but exactly, the least slack) any
  per-horizon request can leave at that violation rate, up to the Lagrangian's convex-hull steps.
A model that sees only the past knows less than the first two; where even they leave more slack
than a target allows, the target asks for more than knowing each coming hour's level gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from predictor.allocation import COVER, Curve, IntArray, allocate, cheapest_price
from predictor.usage import FloatArray


def _mean(rows: FloatArray) -> FloatArray:
    return np.asarray(np.nanmean(rows, axis=1), dtype=np.float64)


def _p90(rows: FloatArray) -> FloatArray:
    return np.asarray(np.nanquantile(rows, 0.9, axis=1), dtype=np.float64)


LEVELS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "foresight-mean": _mean,
    "foresight-p90": _p90,
}
BEST = "foresight-best"
METHODS = (*LEVELS, BEST)


def foresight(judged: Mapping[str, FloatArray], violation_rate: float) -> dict[str, dict[str, FloatArray]]:
    """method -> series -> request per decision (NaN where a decision judges no sample).

    `judged[name]` holds, per decision (row), the samples that decision's request is judged on
    (NaN-padded): exactly the samples `evaluate.score` then counts, so the budget,
    `violation_rate` x all of them, holds for the scores too.
    """
    out: dict[str, dict[str, FloatArray]] = {}
    total = sum(int(np.sum(~np.isnan(rows))) for rows in judged.values())
    summed = sum(float(np.nansum(rows)) for rows in judged.values())
    for method, level_of in LEVELS.items():
        levels: dict[str, FloatArray] = {}
        curves: dict[str, Curve] = {}
        budget = violation_rate * total
        for name, rows in judged.items():
            measured = ~np.all(np.isnan(rows), axis=1)
            level = np.full(len(rows), np.nan)
            if measured.any():
                level[measured] = level_of(rows[measured])
            levels[name] = level
            # A zero level (a p90 of 0 under a few bursts) scales to a zero request whatever the
            # factor: its samples above zero are violations no choice avoids, paid up front.
            idle = measured & (level <= 0)
            budget -= float(np.sum(rows[idle] > 0))
            usable = measured & (level > 0)
            if usable.any():
                curves[name] = factor_curve(level[usable], rows[usable])
        picks = allocate(list(curves.values()), max(budget, 0.0), scale=summed / max(total, 1))
        factors = {name: float(c.factor[i]) for (name, c), i in zip(curves.items(), picks, strict=True)}
        out[method] = {name: level * factors.get(name, 0.0) for name, level in levels.items()}
    out[BEST] = best_per_horizon(judged, violation_rate)
    return out


def factor_curve(level: FloatArray, rows: FloatArray) -> Curve:
    """Every option of requests `factor x level` for one series: each factor at which one more
    sample is covered, and no request at all.

    `allocation.curve` tries every violation count only up to a dozen, then geometric steps: a
    model's margin needs no finer choice, but a reference that overstated the slack would make
    a target look further out of reach than it is. Without floors the exact curve is a sort and
    two cumulative sums.
    """
    measured = ~np.isnan(rows)
    per_sample_level = np.broadcast_to(level[:, None], rows.shape)[measured]
    samples = rows[measured]
    ratio = samples / per_sample_level
    order = np.argsort(ratio, kind="stable")
    ratio, per_sample_level, samples = ratio[order], per_sample_level[order], samples[order]
    factors = np.concatenate([[0.0], ratio * COVER])
    # Samples covered by each factor: those whose ratio is at most it (ties covered together).
    covered = np.searchsorted(ratio, factors, side="right")
    covered[0] = int(np.sum(samples <= 0))
    level_sum = np.concatenate([[0.0], np.cumsum(per_sample_level)])
    sample_sum = np.concatenate([[0.0], np.cumsum(samples)])
    unused = factors * level_sum[covered] - sample_sum[covered]
    return Curve(
        floor=np.zeros(len(factors), dtype=np.int64),
        factor=factors,
        violations=(len(samples) - covered).astype(np.float64),
        unused=np.maximum(unused, 0.0),
        requested=factors * float(per_sample_level.sum()),
    )


def best_per_horizon(judged: Mapping[str, FloatArray], violation_rate: float) -> dict[str, FloatArray]:
    """Each decision's request: its own k-th largest judged sample, k chosen for all at once.

    Options per decision are "leave the k largest samples over" (k = 0..n-1); for a price per
    violation every decision takes its cheapest `unused + price x k`, and the smallest price whose
    violations fit `violation_rate` x all samples wins (`allocation.cheapest_price`).
    This minimises the total unused request, which is the least slack up to the few options the
    Lagrangian cannot reach (it only finds points on the convex hull).
    """
    width = max((rows.shape[1] for rows in judged.values()), default=0)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=np.nan) for r in judged.values()]
    rows = np.concatenate(padded) if padded else np.zeros((0, 0))
    measured = ~np.isnan(rows)
    ranked = -np.sort(-np.where(measured, rows, -np.inf), axis=1)  # largest first, NaN last
    requests = np.where(np.isfinite(ranked), ranked, 0.0)  # k violations: the k-th largest
    # Unused for option k: (n - k) x request_k - the sum of the samples from k on.
    n = measured.sum(axis=1)
    below = np.cumsum(requests[:, ::-1], axis=1)[:, ::-1]
    k = np.arange(width)
    unused = np.where(k[None, :] < n[:, None], requests * (n[:, None] - k[None, :]) - below, np.inf)
    total = int(measured.sum())
    scale = float(np.nansum(rows)) / max(total, 1) or 1.0

    def pick(price: float) -> IntArray:
        return np.asarray(np.argmin(unused / scale + price * k[None, :], axis=1), dtype=np.int64)

    budget = violation_rate * total
    price = cheapest_price(lambda p: pick(p)[n > 0].sum() <= budget)
    choice = pick(10.0**12 if price is None else price)
    request = np.where(n > 0, requests[np.arange(len(requests)), choice], np.nan)
    out, start = {}, 0
    for name, r in judged.items():
        out[name] = request[start : start + len(r)]
        start += len(r)
    return out
