"""Walk-forward replay: every method recommends from the past only, then the future scores it.

Decisions happen every horizon, for every series, at the same times for every method; a
recommendation holds from its decision until the next one (at most one horizon). The kinship model
is refitted every `refit_every_seconds` on windows whose horizon had fully elapsed by then; the VPA
baseline sees the raw samples strictly before each decision, as a running recommender would.

Scores pool all series' raw samples covered by a recommendation:
- slack: sum of max(recommendation - usage, 0) over sum of recommendations (share left unused);
- violation rate: share of samples above their recommendation;
- worst overrun: max of (usage - recommendation) / recommendation.
`recommendations_csv` + the usage file are enough to recompute all three (see `score`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from predictor.allocation import IntArray
from predictor.config import PredictorConfig
from predictor.dataset import SeriesWindows, cut_all, row_groups, stack
from predictor.features import Windows
from predictor.foresight import foresight
from predictor.model import fit_recommender, recalibrate
from predictor.usage import FloatArray, Resource, Series
from predictor.vpa import StaticRecommender, VpaRecommender

Progress = Callable[[Iterable[int], int], Iterable[int]]


@dataclass(frozen=True, slots=True)
class Scores:
    slack: float
    violation_rate: float
    worst_overrun: float


@dataclass(frozen=True, slots=True)
class Recommendation:
    decision_seconds: float
    series: str
    method: str
    value: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    resource: Resource
    scores: dict[str, Scores]
    recommendations: list[Recommendation]
    refits: int


def _no_progress(items: Iterable[int], total: int) -> Iterable[int]:
    return items


def evaluate(
    usage: Mapping[str, Series],
    resource: Resource,
    cfg: PredictorConfig,
    declared: Mapping[str, float] | None = None,
    progress: Progress = _no_progress,
    sweep: Sequence[float] = (),
    foresight_at: str | None = None,
) -> Evaluation:
    """Replay; with `sweep`, also methods `kinship@<target>`: the same refits (one booster fit
    each), margins calibrated to each swept violation target (see `matched`). With
    `foresight_at` (a method, e.g. "vpa"), also the foresight references (`predictor.foresight`)
    at that method's violation rate."""
    train, decisions = cut_all(usage, resource, cfg)
    if not decisions:
        raise ValueError(
            f"no series has {resource} samples after the {cfg.warmup_seconds:.0f} s warm-up: "
            "the trace is too short for this warm-up and horizon"
        )
    first = _first_trainable(train, decisions, cfg)
    decisions = _from(decisions, first)
    last = max(float(w.windows.decision_seconds[-1]) for w in decisions.values())
    refit_times = np.arange(first, last + 1.0, cfg.refit_every_seconds)
    kinship_methods = ["kinship", *(sweep_method(t) for t in sweep)]
    predictions: dict[str, dict[str, FloatArray]] = {
        method: {name: np.full(len(w.windows.decision_seconds), np.nan) for name, w in decisions.items()}
        for method in kinship_methods
    }
    for j in progress(range(len(refit_times)), len(refit_times)):
        start = refit_times[j]
        end = refit_times[j + 1] if j + 1 < len(refit_times) else np.inf
        rows = stack(
            train,
            until_seconds=start,
            horizon_seconds=cfg.horizon_seconds,
            max_rows=cfg.max_train_windows,
            young_seconds=cfg.young_series_seconds,
        )
        with threadpool_limits(limits=cfg.max_threads):
            model = fit_recommender(cfg, resource, rows)
            models = {"kinship": model}
            for target in sweep:
                models[sweep_method(target)] = recalibrate(model, target, cfg, rows)
        for name, w in decisions.items():
            due = (w.windows.decision_seconds >= start) & (w.windows.decision_seconds < end)
            if due.any():
                with threadpool_limits(limits=cfg.max_threads):
                    groups = row_groups(w, w.windows.decision_seconds[due], cfg.young_series_seconds)
                    for method, fitted in models.items():
                        predictions[method][name][due] = fitted.predict(
                            w.windows.features[due], groups=groups
                        )

    recommendations: list[Recommendation] = []
    for name, w in decisions.items():
        series = usage[name]
        at = w.windows.decision_seconds
        methods: dict[str, FloatArray] = {method: predictions[method][name] for method in kinship_methods}
        vpa = VpaRecommender(
            resource=resource,
            half_life_seconds=cfg.vpa_half_life_seconds,
            target_percentile=cfg.vpa_target_percentile,
            safety_margin_fraction=cfg.vpa_safety_margin_fraction,
            memory_aggregation_seconds=cfg.vpa_memory_aggregation_seconds,
            bucket_growth_fraction=cfg.vpa_bucket_growth_fraction,
        )
        methods["vpa"] = vpa.fit(series.timestamps_seconds, series.values(resource)).predict(at)
        if declared is not None and series.agent in declared:
            methods["static"] = StaticRecommender(declared[series.agent]).fit(at, at).predict(at)
        for method, values in methods.items():
            recommendations.extend(
                Recommendation(float(t), name, method, float(v)) for t, v in zip(at, values, strict=True)
            )
    scores = score(usage, resource, recommendations, cfg.horizon_seconds)
    if foresight_at is not None:
        rate = scores[foresight_at].violation_rate
        judged = {
            name: judged_rows(usage[name], resource, w.windows.decision_seconds, cfg.horizon_seconds)
            for name, w in decisions.items()
        }
        known = foresight(judged, rate)
        extra = [
            Recommendation(float(t), name, method, float(v))
            for method, by_series in known.items()
            for name, values in by_series.items()
            for t, v in zip(decisions[name].windows.decision_seconds, values, strict=True)
            if not np.isnan(v)
        ]
        recommendations.extend(extra)
        scores.update(score(usage, resource, extra, cfg.horizon_seconds))
    return Evaluation(resource, scores, recommendations, len(refit_times))


def sweep_method(target: float) -> str:
    return f"kinship@{target:g}"


@dataclass(frozen=True, slots=True)
class Matched:
    """Kinship's swept curve read at the reference method's violation rate."""

    reference: str
    reference_slack: float
    reference_violation_rate: float
    # The swept point with the least slack among those violating no more often than the reference
    # (None if every swept point violates more): an operating point that was actually replayed.
    best_method: str | None
    best_slack: float | None
    best_violation_rate: float | None
    # Slack linearly interpolated on the curve at exactly the reference's violation rate (None if
    # the swept rates do not bracket it).
    interpolated_slack: float | None


def matched(scores: Mapping[str, Scores], reference: str = "vpa") -> Matched | None:
    """Compare the swept kinship curve with `reference` at an equal or lower violation rate.

    The targets were fixed before the replay; the curve is read on the judged samples, so this
    says how the two trade slack for violations, not which target one should have deployed.
    """
    points = sorted((s.violation_rate, s.slack, m) for m, s in scores.items() if m.startswith("kinship@"))
    if reference not in scores or not points:
        return None
    ref = scores[reference]
    within = [p for p in points if p[0] <= ref.violation_rate]
    best = min(within, key=lambda p: p[1]) if within else None
    interpolated = None
    # The curve is the lower envelope: a point is on it if no point violating as rarely or more
    # rarely leaves less slack (targets can tie on the judged rate and differ in slack).
    frontier = [p for i, p in enumerate(points) if all(q[1] > p[1] for q in points[:i])]
    below = [p for p in frontier if p[0] <= ref.violation_rate]
    above = [p for p in frontier if p[0] >= ref.violation_rate]
    if below and above:
        (v0, s0, _), (v1, s1, _) = below[-1], above[0]
        interpolated = s0 if v1 == v0 else s0 + (s1 - s0) * (ref.violation_rate - v0) / (v1 - v0)
    return Matched(
        reference,
        ref.slack,
        ref.violation_rate,
        best[2] if best else None,
        best[1] if best else None,
        best[0] if best else None,
        interpolated,
    )


def _first_trainable(
    train: Mapping[str, SeriesWindows], decisions: Mapping[str, SeriesWindows], cfg: PredictorConfig
) -> float:
    """The first scheduled decision with `min_train_windows` elapsed windows behind it."""
    times = np.unique(np.concatenate([w.windows.decision_seconds for w in decisions.values()]))
    elapsed = np.sort(np.concatenate([w.windows.decision_seconds for w in train.values()]))
    ready = np.searchsorted(elapsed + cfg.horizon_seconds, times, side="right") >= cfg.min_train_windows
    if not ready.any():
        raise ValueError(
            f"the trace never has {cfg.min_train_windows} elapsed training windows before a decision: "
            "too short for this window and horizon"
        )
    return float(times[np.argmax(ready)])


def _from(decisions: Mapping[str, SeriesWindows], first: float) -> dict[str, SeriesWindows]:
    kept = {}
    for name, sw in decisions.items():
        keep = sw.windows.decision_seconds >= first - 1.0  # grid jitter of a series vs the schedule
        if keep.any():
            w = sw.windows
            kept[name] = SeriesWindows(
                name, sw.grid, Windows(w.features[keep], w.decision_seconds[keep], w.horizon[keep])
            )
    return kept


@dataclass(frozen=True, slots=True)
class SeriesScores:
    """One method's figures on one series, with the sample count that weighs it in the pool."""

    scores: Scores
    judged_samples: int


@dataclass(frozen=True, slots=True)
class _Totals:
    """Sums over judged samples; adding two pools them (worst overrun: the larger)."""

    unused: float = 0.0
    requested: float = 0.0
    over: float = 0.0
    judged: float = 0.0
    worst_overrun: float = 0.0

    def __add__(self, other: _Totals) -> _Totals:
        return _Totals(
            self.unused + other.unused,
            self.requested + other.requested,
            self.over + other.over,
            self.judged + other.judged,
            max(self.worst_overrun, other.worst_overrun),
        )

    def scores(self) -> Scores:
        return Scores(
            slack=self.unused / self.requested if self.requested > 0 else 0.0,
            violation_rate=self.over / self.judged if self.judged > 0 else 0.0,
            worst_overrun=self.worst_overrun,
        )


def _totals(
    usage: Mapping[str, Series],
    resource: Resource,
    recommendations: Iterable[Recommendation],
    horizon_seconds: float,
) -> dict[tuple[str, str], _Totals]:
    """Per (method, series).

    A sample at time t is judged against the latest recommendation of its series and method made
    at or before t, if that one is less than a horizon old; samples with none are not judged.
    """
    by_key: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for rec in recommendations:
        by_key.setdefault((rec.method, rec.series), []).append((rec.decision_seconds, rec.value))
    totals: dict[tuple[str, str], _Totals] = {}
    for (method, name), points in sorted(by_key.items()):
        points.sort()
        at = np.array([p[0] for p in points])
        value = np.array([p[1] for p in points])
        t, u = _measured(usage[name], resource)
        index, covered = _judging(at, t, horizon_seconds)
        r = value[index[covered]]
        u = u[covered]
        over = u > r
        worst = float(np.max((u[over] - r[over]) / np.maximum(r[over], 1e-12))) if over.any() else 0.0
        totals[(method, name)] = _Totals(
            unused=float(np.sum(np.maximum(r - u, 0.0))),
            requested=float(np.sum(r)),
            over=float(np.sum(over)),
            judged=float(len(u)),
            worst_overrun=worst,
        )
    return totals


def _measured(series: Series, resource: Resource) -> tuple[FloatArray, FloatArray]:
    values = series.values(resource)
    measured = ~np.isnan(values)
    return series.timestamps_seconds[measured], values[measured]


def _judging(at: FloatArray, t: FloatArray, horizon_seconds: float) -> tuple[IntArray, np.ndarray]:
    """(index of the recommendation judging each sample, whether one does): the latest made at
    or before the sample, if less than a horizon old."""
    index = np.searchsorted(at, t, side="right") - 1
    covered = (index >= 0) & (t < at[np.maximum(index, 0)] + horizon_seconds)
    return index, covered


def judged_rows(series: Series, resource: Resource, at: FloatArray, horizon_seconds: float) -> FloatArray:
    """Per decision (sorted times `at`), the samples its recommendation is judged on, NaN-padded:
    the raw samples as `score` assigns them, not the regular grid the model sees."""
    t, u = _measured(series, resource)
    index, covered = _judging(at, t, horizon_seconds)
    index, u = index[covered], u[covered]
    counts = np.bincount(index, minlength=len(at))
    rows = np.full((len(at), int(counts.max(initial=0))), np.nan)
    # Samples are in time order, so each decision's come together: position within its run.
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows[index, np.arange(len(index)) - starts[index]] = u
    return rows


def score(
    usage: Mapping[str, Series],
    resource: Resource,
    recommendations: Iterable[Recommendation],
    horizon_seconds: float,
) -> dict[str, Scores]:
    """Slack, violation rate and worst overrun per method, pooled over every judged sample."""
    pooled: dict[str, _Totals] = {}
    for (method, _), totals in _totals(usage, resource, recommendations, horizon_seconds).items():
        pooled[method] = pooled.get(method, _Totals()) + totals
    return {method: totals.scores() for method, totals in pooled.items()}


def score_by_series(
    usage: Mapping[str, Series],
    resource: Resource,
    recommendations: Iterable[Recommendation],
    horizon_seconds: float,
) -> dict[tuple[str, str], SeriesScores]:
    """The same figures per (method, series): which series a method wins or loses on. Pooling
    them weighs each series by its requested total (slack) and judged samples (violations), so a
    plain mean of these rows is not the pooled figure."""
    return {
        key: SeriesScores(totals.scores(), int(totals.judged))
        for key, totals in _totals(usage, resource, recommendations, horizon_seconds).items()
    }


__all__ = [
    "Evaluation",
    "Matched",
    "Recommendation",
    "Scores",
    "SeriesScores",
    "SeriesWindows",
    "evaluate",
    "matched",
    "score",
    "score_by_series",
]
