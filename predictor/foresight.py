"""Requests that know the future: a reference for how far any per-horizon request could go.

A recommendation holds for a whole horizon, so it must sit above most of that horizon's samples;
how far those samples spread around their own level is slack no predictor can remove. To tell a
weak model from a trace that leaves little to win, the replay can add requests made with
foresight: each decision's request is the coming horizon's own level (its mean, or its 90th
percentile) times a per-series factor chosen in hindsight, the factors sharing the same violation
budget as the reference method (the Lagrangian of `allocation`, as the per-series margins do).

These are not a proof that no model can do better (they use one factor per series, not the best
request per hour), but a model that sees only the past knows less than they do: if even they leave
more slack than a target asks for, the target is out of reach for a per-horizon request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from predictor.allocation import Curve, allocate, curve
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
    return out
