"""Per-series margins: share a violation budget across series so the total slack is least.

A pooled margin gives every series the same factor, so the few series with jumps no model
foresees set the headroom of all the others. Here each series gets its own (floor, factor)
choice, calibrated on its own held-out samples, and the violation budget (target x held-out
samples) goes where it saves the most slack: the Lagrangian choice, which minimises
`unused + lambda x violations` per series, with the one lambda at which the violations over all
series just fit the budget (equal marginal slack per violation everywhere).

Pure numpy on held-out arrays; `MarginRegressor` owns the split and calls these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from predictor.usage import FloatArray

IntArray = npt.NDArray[np.int64]
# Violation counts tried per series and floor: every count up to this, then geometric steps.
_EXACT_COUNTS = 12
_GEOMETRIC_COUNTS = 36
# A hair above a ratio: ratio x prediction can round to just below the sample it was meant to
# cover (4 / 3.7 x 3.7 < 4), and the option would not be the one it claims.
COVER = 1.0 + 4 * np.finfo(np.float64).eps


@dataclass(frozen=True, slots=True)
class Curve:
    """One series' options on its held-out samples: request = max(factor x prediction, floor)."""

    floor: IntArray  # index of the floor candidate
    factor: FloatArray
    violations: FloatArray  # held-out samples above the request
    unused: FloatArray  # sum of max(request - sample, 0) over held-out samples
    requested: FloatArray  # sum of the request over held-out samples


def curve(
    predicted: FloatArray,
    floors: FloatArray,
    samples: FloatArray,
    min_factor: float,
    max_factor: float,
    guard_fraction: float = 0.0,
    ceiling: FloatArray | None = None,
    max_violation_fraction: float = 0.5,
) -> Curve:
    """Every option worth considering for one series.

    `predicted` (n windows), `floors` (floor candidates x n windows), `samples` (n x horizon, NaN
    where not measured). For each floor, the factors tried are those at which one more sample
    would be covered: the k-th largest of sample / prediction among samples above the floor, for
    k = 0, 1, ... up to `max_violation_fraction` of the samples, and the bounds themselves.

    A sample within `guard_fraction` below its request counts as a violation here (not in the
    unused sum): a series' own option must clear what it saw by that much. Otherwise a flat
    series is "covered" by a request exactly at its level, and the next window's prediction,
    a hair lower, puts every sample of the hour above the request.

    `ceiling` (n windows, optional) caps the prediction before the factor applies.
    """
    measured = ~np.isnan(samples)
    total = int(measured.sum())
    safe = np.where(np.abs(predicted) > 1e-12, np.abs(predicted), 1e-12)
    judged = samples / (1.0 - guard_fraction)
    ratio = judged / safe[:, None]
    top = max(1, int(max_violation_fraction * total))
    counts = np.unique(
        np.concatenate(
            [np.arange(min(_EXACT_COUNTS, top + 1)), np.geomspace(1, top, _GEOMETRIC_COUNTS).round()]
        ).astype(np.int64)
    )
    floor_out, factor_out, viol_out, unused_out, req_out = [], [], [], [], []
    for index, floor in enumerate(floors):
        above = measured & (judged > floor[:, None])
        ranked = np.sort(ratio[above])[::-1] * COVER
        factors = ranked[counts[counts < len(ranked)]]
        factors = np.unique(np.clip(np.append(factors, [min_factor, max_factor]), min_factor, max_factor))
        capped = predicted if ceiling is None else np.minimum(predicted, ceiling)
        request = np.maximum(factors[:, None] * capped[None, :], floor[None, :])  # (f, n)
        over = (judged[None, :, :] > request[:, :, None]) & measured[None, :, :]
        gap = np.where(measured[None, :, :], np.maximum(request[:, :, None] - samples[None, :, :], 0.0), 0.0)
        floor_out.append(np.full(len(factors), index, dtype=np.int64))
        factor_out.append(factors)
        viol_out.append(over.sum(axis=(1, 2)).astype(np.float64))
        unused_out.append(gap.sum(axis=(1, 2)))
        req_out.append((request * measured.sum(axis=1)[None, :]).sum(axis=1))
    return Curve(
        np.concatenate(floor_out),
        np.concatenate(factor_out),
        np.concatenate(viol_out),
        np.concatenate(unused_out),
        np.concatenate(req_out),
    )


def allocate(curves: list[Curve], budget: float, scale: float = 1.0) -> list[int]:
    """The option per curve minimising total unused with total violations within `budget`.

    Lagrangian: for a price lambda per violation each curve takes its cheapest
    `unused / scale + lambda x violations`; the smallest lambda whose choices fit the budget wins
    (bisection on log lambda: violations only fall as lambda grows). When even the safest options
    exceed the budget, each curve takes its fewest violations (least unused among those).
    """
    if not curves:
        return []
    scale = scale if scale > 0 else 1.0

    def pick(price: float) -> list[int]:
        return [int(np.argmin(c.unused / scale + price * c.violations)) for c in curves]

    def violations(choice: list[int]) -> float:
        return float(sum(c.violations[i] for c, i in zip(curves, choice, strict=True)))

    price = cheapest_price(lambda p: violations(pick(p)) <= budget)
    if price is None:
        return [int(np.lexsort((c.unused, c.violations))[0]) for c in curves]
    return pick(price)


def cheapest_price(fits: Callable[[float], bool]) -> float | None:
    """The smallest price per violation at which `fits` (0 if it fits for free, None if not even
    at 10^12): bisection on log10 of the price, as violations only fall as the price grows."""
    if fits(0.0):
        return 0.0
    low, high = -12.0, 12.0
    if not fits(10.0**high):
        return None
    for _ in range(60):
        middle = (low + high) / 2
        if fits(10.0**middle):
            high = middle
        else:
            low = middle
    return float(10.0**high)


def group_index(groups: object, n: int) -> tuple[npt.NDArray[np.str_], IntArray]:
    """(distinct group names, each row's index into them) for a groups argument of length n."""
    names = np.asarray(groups).astype(str)
    if names.shape != (n,):
        raise ValueError(f"groups must have one entry per row ({n}), got shape {names.shape}")
    unique, inverse = np.unique(names, return_inverse=True)
    return unique, inverse.astype(np.int64)
