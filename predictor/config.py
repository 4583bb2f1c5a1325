"""All of the predictor's knobs, with their defaults and why, in one typed object.

The CLI overrides a few of them per run (`--horizon`, `--target-violation`); everything else is
here so that a reviewer reading one file knows every number the predictor chose.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from kinship.errors import InputError


@dataclass(frozen=True, slots=True)
class PredictorConfig:
    # How long one recommendation holds: one hour is a typical VPA updater cadence and long enough
    # that a restart to apply new requests is rare.
    horizon_seconds: float = 3600.0
    # How much recent history the features look at: two horizons see the current level and its
    # trend without forgetting a spike from the previous hour.
    window_seconds: float = 7200.0
    # Training windows are cut every this many seconds (overlapping): more rows for the pooled model
    # from short traces, at a cost that stays linear in the trace length.
    train_stride_seconds: float = 300.0
    # Share of samples allowed above the recommendation; the margin wrapper is calibrated to it on
    # held-out windows. 2% is below what VPA's p90 + 15% typically gives on spiky series.
    target_violation_fraction: float = 0.02
    # The base model predicts this quantile of the next horizon's samples (relative to the window's
    # scale); the margin then moves it to the exact target. High enough that the model itself learns
    # which series need headroom (a global margin cannot tell a flat series from a spiky one).
    base_quantile: float = 0.98
    # Horizon samples drawn per training window for the base model: more rows, not more windows.
    samples_per_window: int = 8
    # Share of held-out windows whose peak the published predicted peak must cover (the
    # AgentProfile's confidence); the extender's spike-aware fit relies on it.
    peak_coverage_fraction: float = 0.9
    # Share of the past windows (the most recent ones) held out to calibrate the margin.
    calibration_fraction: float = 0.3
    # The margin never shrinks a recommendation below this share of the base prediction, nor grows
    # it beyond the upper factor: guards against a calibration set that is small or odd.
    # Candidate floors (a feature, relative to the window scale, times a fraction): the margin keeps
    # whichever leaves the least held-out slack at the target. Memory rarely falls back below the
    # day's peak, CPU often does; calibration finds that out per resource instead of us hard-coding
    # it. ("window_scale", 0) is "no floor".
    floor_candidates: tuple[tuple[str, float], ...] = (
        ("window_scale", 0.0),
        ("window_scale", 1.0),
        ("window_scale", 1.1),
        ("max_fraction", 1.0),
        ("long_max_fraction", 1.0),
        ("long_max_fraction", 1.05),
    )
    # Each series gets its own margin (floor and factor) from its own held-out samples, and the
    # violation budget goes where it saves the most slack; a pooled margin lets the few series with
    # unforeseeable jumps set the headroom of all (docs/predictor.md). False: one pooled margin.
    margin_per_series: bool = True
    # A series with fewer held-out windows than this keeps the pooled margin. Windows overlap
    # (one every `train_stride_seconds`), so 24 is two horizons of its own history at the default
    # stride: less says nothing about its own tail.
    min_series_held_out_windows: int = 24
    # A series' first this-many seconds are calibrated in one group shared by all young series,
    # not in the series' own: a pod's start (a model loading: GenAI pods ramp 2.8e8 -> 1.4e10 bytes
    # in their first hour) does not repeat, and its headroom would otherwise stay. One window: after
    # it, the features no longer see the start.
    young_series_seconds: float = 7200.0
    # A series' own margin must clear every held-out sample it covers by this share: a request
    # exactly at a flat series' level covers it on paper, and a prediction a hair lower in the next
    # hour misses every sample (seen on the GenAI trace: 315 violations on one flat pod).
    series_margin_guard_fraction: float = 0.01
    min_margin_factor: float = 0.1
    max_margin_factor: float = 5.0
    # Gradient boosting size: small, because features are few and training must take minutes on
    # two shared cores for hundreds of series.
    max_iter: int = 150
    learning_rate: float = 0.08
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    random_state: int = 0
    # OpenMP threads for the booster. One: the machine is shared, and OpenMP workers spinning on a
    # loaded box made a 20 s replay take 5 minutes.
    max_threads: int = 1
    # Training keeps the most recent windows up to this many: enough for a 15-feature booster, and
    # it bounds a refit at a few seconds however long the history grows.
    max_train_windows: int = 40_000
    # Fewer windows than this cannot train and calibrate anything meaningful (a first refit on ~100
    # rows chose a 5x margin on Online Boutique): evaluation starts once this many have elapsed.
    min_train_windows: int = 300
    # The features' long look-back: a day sees the daily peak.
    long_window_seconds: float = 24 * 3600.0
    # Walk-forward evaluation refits the model this often, training only on the past.
    refit_every_seconds: float = 6 * 3600.0
    # The first decision is made after this much history (features need a full window, training
    # needs a few windows per series).
    warmup_seconds: float = 4 * 3600.0
    # Clamp bounds for recommendations, in the resource's unit (millicores or bytes): 1 millicore and
    # 1 MiB avoid a zero request that Kubernetes would treat as best effort.
    min_cpu_millicores: float = 1.0
    max_cpu_millicores: float = 256_000.0
    min_memory_bytes: float = 1024.0**2
    max_memory_bytes: float = 2.0 * 1024.0**4
    # VPA recommender defaults (kubernetes/autoscaler vertical-pod-autoscaler, recommender flags).
    vpa_half_life_seconds: float = 24 * 3600.0
    vpa_target_percentile: float = 0.9
    vpa_safety_margin_fraction: float = 0.15
    vpa_memory_aggregation_seconds: float = 24 * 3600.0
    vpa_bucket_growth_fraction: float = 0.05
    # Correlations weaker than this (in absolute value) are not published: they would only add
    # noise to the extender's stacking penalty.
    min_notable_correlation: float = 0.5
    # Fewer aligned samples than this make a Pearson coefficient too noisy to publish.
    min_correlation_samples: int = 30
    # A profile lists at most this many correlated agents (strongest first): the extender only needs
    # the worst offenders, and a 200-agent namespace would otherwise bloat every object.
    max_correlations_per_agent: int = 10

    def with_overrides(self, source: str, **overrides: Any) -> PredictorConfig:
        """A copy with the given (non-None) fields replaced, validated; every error reported at once."""
        known = {f.name for f in fields(self)}
        unknown = [f"{k}: unknown setting" for k in overrides if k not in known]
        if unknown:
            raise InputError(source, unknown)
        cfg = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        cfg.validate(source)
        return cfg

    def validate(self, source: str) -> None:
        problems: list[str] = []
        for name in (
            "horizon_seconds",
            "window_seconds",
            "train_stride_seconds",
            "refit_every_seconds",
            "vpa_half_life_seconds",
            "vpa_memory_aggregation_seconds",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0 (got {getattr(self, name)})")
        if not 0 <= self.series_margin_guard_fraction < 1:
            problems.append(
                f"series_margin_guard_fraction: must be in [0, 1) (got {self.series_margin_guard_fraction})"
            )
        for name in (
            "target_violation_fraction",
            "base_quantile",
            "peak_coverage_fraction",
            "calibration_fraction",
            "vpa_target_percentile",
        ):
            if not 0 < getattr(self, name) < 1:
                problems.append(f"{name}: must be between 0 and 1 exclusive (got {getattr(self, name)})")
        if not 0 < self.min_margin_factor <= self.max_margin_factor:
            problems.append("min_margin_factor/max_margin_factor: need 0 < min <= max")
        if self.min_cpu_millicores > self.max_cpu_millicores:
            problems.append("min_cpu_millicores: above max_cpu_millicores")
        if self.min_memory_bytes > self.max_memory_bytes:
            problems.append("min_memory_bytes: above max_memory_bytes")
        if problems:
            raise InputError(source, problems)

    def clamp_bounds(self, resource: str) -> tuple[float, float]:
        if resource == "cpu":
            return self.min_cpu_millicores, self.max_cpu_millicores
        return self.min_memory_bytes, self.max_memory_bytes
