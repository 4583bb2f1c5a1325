"""Which agents' usage moves together: Pearson correlation on a shared time grid.

The extender avoids stacking agents whose spikes coincide, so only notable coefficients are
published (weak ones would be noise in its penalty), and only from enough aligned samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from predictor.usage import FloatArray, Resource, Series


def agent_totals(
    usage: Mapping[str, Series], resource: Resource, step_seconds: float
) -> dict[str, FloatArray]:
    """Per agent, its containers' usage summed per grid cell (NaN where none was measured)."""
    start = min(float(s.timestamps_seconds[0]) for s in usage.values())
    end = max(float(s.timestamps_seconds[-1]) for s in usage.values())
    cells = int((end - start) // step_seconds) + 1
    totals: dict[str, FloatArray] = defaultdict(lambda: np.full(cells, np.nan))
    for series in usage.values():
        values = series.values(resource)
        measured = ~np.isnan(values)
        if not measured.any():
            continue
        index = ((series.timestamps_seconds[measured] - start) // step_seconds).astype(np.int64)
        sums = np.bincount(index, weights=values[measured], minlength=cells)
        counts = np.bincount(index, minlength=cells)
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)  # one value per cell
        total = totals[series.agent]
        totals[series.agent] = np.where(np.isnan(total), mean, total + np.nan_to_num(mean))
    return dict(totals)


def correlations(
    totals: Mapping[str, FloatArray], min_abs: float, min_samples: int, max_per_agent: int
) -> dict[str, dict[str, float]]:
    """agent -> {other agent: r} for |r| >= min_abs, strongest first, at most max_per_agent."""
    names = sorted(totals)
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = totals[a], totals[b]
            both = ~np.isnan(x) & ~np.isnan(y)
            if both.sum() < min_samples:
                continue
            xs, ys = x[both], y[both]
            if np.std(xs) == 0 or np.std(ys) == 0:  # a flat series correlates with nothing
                continue
            r = float(np.corrcoef(xs, ys)[0, 1])
            if abs(r) >= min_abs:
                found[a][b] = found[b][a] = round(r, 4)
    return {
        agent: dict(sorted(others.items(), key=lambda kv: -abs(kv[1]))[:max_per_agent])
        for agent, others in found.items()
    }
