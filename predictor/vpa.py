"""Baselines with the recommender interface of the evaluation: the VPA recommender and a static request.

`fit(timestamps_seconds, values)` stores one series' samples; `predict(at_seconds)` answers, for
each time, what the recommender would say from the samples strictly before it. That is how the
VPA recommender runs in a cluster (continuously, on the history it has), and lets the walk-forward
replay ask it at every decision without refitting.

The VPA part follows kubernetes/autoscaler's vertical-pod-autoscaler recommender defaults:
exponential histograms (5 % bucket growth; first bucket 0.01 core for CPU, 1e7 bytes for memory),
sample weights decaying with a 24 h half-life, target = 90th percentile + 15 % safety margin. CPU
adds every sample; memory adds one peak per 24 h aggregation window (replacing the window's
previous peak, weighted at the window's end). VPA weights CPU samples by the container's request;
the traces have none, so the weight is a constant, which is what VPA does for a constant request.
Its minimum-recommendation floors (25 millicores, 250 MiB) are left out: they would flatter the
model on small series. OOM bumps are not modelled (the traces carry no OOM events).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from predictor.usage import FloatArray


@dataclass(frozen=True, slots=True)
class ExponentialBuckets:
    """VPA's exponential histogram layout: bucket i starts at first * (growth^i - 1) / (growth - 1)."""

    first_bucket_size: float
    max_value: float
    growth_fraction: float

    @property
    def ratio(self) -> float:
        return 1.0 + self.growth_fraction

    @property
    def count(self) -> int:
        return (
            math.ceil(
                math.log(self.max_value * self.growth_fraction / self.first_bucket_size + 1)
                / math.log(self.ratio)
            )
            + 1
        )

    def start(self, bucket: FloatArray | np.ndarray) -> FloatArray:
        b = np.asarray(bucket, dtype=np.float64)
        start = self.first_bucket_size * (self.ratio**b - 1) / self.growth_fraction
        return np.asarray(start, dtype=np.float64)

    def find(self, values: FloatArray) -> np.ndarray:
        raw = np.log(np.maximum(values, 0.0) * self.growth_fraction / self.first_bucket_size + 1)
        bucket = np.floor(raw / math.log(self.ratio) + 1e-9).astype(np.int64)
        return np.clip(bucket, 0, self.count - 1)

    def percentile(self, weights: FloatArray, fraction: float) -> FloatArray:
        """Per row of bucket weights: the end of the first bucket where the running sum reaches
        `fraction` of the total (VPA returns the bucket's end, erring high). 0 for an empty row."""
        running = np.cumsum(weights, axis=-1)
        total = running[..., -1:]
        bucket = np.argmax(running >= fraction * total, axis=-1)
        end = np.where(bucket < self.count - 1, bucket + 1, bucket)
        return np.where(total[..., 0] > 0, self.start(end), 0.0)


CPU_BUCKETS_MILLICORES = ExponentialBuckets(10.0, 1_000_000.0, 0.05)
MEMORY_BUCKETS_BYTES = ExponentialBuckets(1e7, 1e12, 0.05)


class VpaRecommender:
    """The VPA recommender's target for one container (see module docstring)."""

    def __init__(
        self,
        resource: Literal["cpu", "memory"] = "cpu",
        half_life_seconds: float = 24 * 3600.0,
        target_percentile: float = 0.9,
        safety_margin_fraction: float = 0.15,
        memory_aggregation_seconds: float = 24 * 3600.0,
        bucket_growth_fraction: float = 0.05,
    ) -> None:
        self.resource = resource
        self.half_life_seconds = half_life_seconds
        self.target_percentile = target_percentile
        self.safety_margin_fraction = safety_margin_fraction
        self.memory_aggregation_seconds = memory_aggregation_seconds
        self.bucket_growth_fraction = bucket_growth_fraction

    def fit(self, timestamps_seconds: FloatArray, values: FloatArray) -> VpaRecommender:
        measured = ~np.isnan(values)
        order = np.argsort(timestamps_seconds[measured], kind="stable")
        self.timestamps_ = np.asarray(timestamps_seconds[measured][order], dtype=np.float64)
        self.values_ = np.asarray(values[measured][order], dtype=np.float64)
        base = CPU_BUCKETS_MILLICORES if self.resource == "cpu" else MEMORY_BUCKETS_BYTES
        self.buckets_ = ExponentialBuckets(
            base.first_bucket_size, base.max_value, self.bucket_growth_fraction
        )
        self.reference_seconds_ = float(self.timestamps_[0]) if len(self.timestamps_) else 0.0
        return self

    def predict(self, at_seconds: FloatArray) -> FloatArray:
        at = np.asarray(at_seconds, dtype=np.float64)
        seen = np.searchsorted(self.timestamps_, at, side="left")  # samples strictly before each time
        if self.resource == "cpu":
            weights = self._cpu_histograms(seen)
        else:
            weights = (
                np.stack([self._memory_histogram(int(k)) for k in seen])
                if len(seen)
                else np.zeros((0, self.buckets_.count))
            )
        target = self.buckets_.percentile(weights, self.target_percentile)
        return np.asarray(target * (1.0 + self.safety_margin_fraction), dtype=np.float64)

    def _decay_weight(self, t: FloatArray) -> FloatArray:
        # Growing weights for newer samples are the same as decaying older ones: percentiles only
        # look at ratios. Relative to the first sample, 2^(age/half-life) stays finite for years.
        return np.asarray(np.exp2((t - self.reference_seconds_) / self.half_life_seconds), dtype=np.float64)

    def _cpu_histograms(self, seen: np.ndarray) -> FloatArray:
        one_hot = np.zeros((len(self.values_) + 1, self.buckets_.count))
        rows = np.arange(1, len(self.values_) + 1)
        one_hot[rows, self.buckets_.find(self.values_)] = self._decay_weight(self.timestamps_)
        cumulative = np.cumsum(one_hot, axis=0)  # row k: the histogram of the first k samples
        return np.asarray(cumulative[seen], dtype=np.float64)

    def _memory_histogram(self, k: int) -> FloatArray:
        weights = np.zeros(self.buckets_.count)
        if k == 0:
            return weights
        t, v = self.timestamps_[:k], self.values_[:k]
        window = np.floor((t - self.reference_seconds_) / self.memory_aggregation_seconds).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, np.diff(window) != 0])
        peaks = np.maximum.reduceat(v, starts)
        ends = self.reference_seconds_ + (window[starts] + 1) * self.memory_aggregation_seconds
        np.add.at(weights, self.buckets_.find(peaks), self._decay_weight(np.asarray(ends, dtype=np.float64)))
        return weights


class StaticRecommender:
    """The declared request: what the team wrote in the manifest, whatever happens."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def fit(self, timestamps_seconds: FloatArray, values: FloatArray) -> StaticRecommender:
        self.fitted_ = True
        return self

    def predict(self, at_seconds: FloatArray) -> FloatArray:
        return np.full(len(np.asarray(at_seconds)), float(self.value))
