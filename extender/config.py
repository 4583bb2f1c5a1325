"""The extender's one config object: every default in one place, validated at the edge."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinship.documents import read_yaml
from kinship.errors import InputError, describe_validation_error
from kinship.profile import ProfilePolicy

__all__ = ["ExtenderConfig", "ProfilePolicy", "Weights", "load_config"]


class Weights(BaseModel):
    """Relative weights of the scoring terms (only their ratios matter)."""

    model_config = ConfigDict(extra="forbid")

    # Communication leads: it is why Kinship exists.
    communication: float = Field(default=2.0, ge=0)
    # Above half of communication so that a second replica prefers another node in its peer's
    # zone over stacking on the peer's node (fault tolerance beats the last 50% of locality).
    spread: float = Field(default=1.5, ge=0)
    # Equal to communication so that a light agent talking to a GPU agent lands beside it in the
    # same zone rather than squatting on the expensive GPU node itself.
    gpu: float = Field(default=2.0, ge=0)
    # For pods that request GPUs: tightest fit, scaled so the best node gets 1. Stranded GPUs
    # are the expensive mistake, so packing outweighs communication: 5 beats a half-better fit
    # (2.5) plus full locality (2) on the bigger node.
    gpu_packing: float = Field(default=5.0, ge=0)
    # Keeps agents whose usage spikes together off one node. Modest (below spread): the fit filter
    # already rejects nodes where the predicted peaks do not fit, so this is a tie-breaker for
    # headroom, and it must not pull an agent away from the peers it talks to.
    spike_correlation: float = Field(default=1.0, ge=0)


class ExtenderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: Weights = Field(default_factory=Weights)
    profiles: ProfilePolicy = Field(default_factory=ProfilePolicy)
    # Proximity of a peer in the same zone relative to one on the same node (1) and one in
    # another zone (0): an intra-zone hop costs a fraction of a cross-zone one in latency and
    # has no egress charge.
    same_zone_fraction: float = Field(default=0.5, ge=0, le=1)
    # Share of the effective edge weight taken from observed traffic when a namespace has both
    # declared and observed edges: measurement and intent count equally by default.
    observed_fraction: float = Field(default=0.5, ge=0, le=1)
    # Correlations (Pearson, -1..1) below this are ignored by the spike_correlation term: weak
    # coefficients are mostly noise from the predictor's short windows, and negatively correlated
    # agents are good neighbours, not bad ones.
    spike_correlation_threshold: float = Field(default=0.3, ge=0, le=1)
    # kube-scheduler binds asynchronously and scores the next pod at once. A pod whose graph
    # peers (or own replicas) were just scored waits up to this long for them to be bound: the
    # bind call when the scheduler config has `bindVerb` (a millisecond or two), else their
    # bindings arriving through the watch (an API round trip), so a team deployed together is
    # placed together; a peer that failed to schedule is forgotten after in_flight_ttl_seconds.
    peer_bind_wait_seconds: float = Field(default=1.0, ge=0, le=4)
    in_flight_ttl_seconds: float = Field(default=3.0, gt=0)
    # A pod bound through the bind verb counts on its node until the watch delivers it bound;
    # if the watch has not after this long (it is down), the pod is dropped and the next relist
    # restores it.
    assumed_ttl_seconds: float = Field(default=30.0, gt=0)
    # Bindings written at once (HTTP/1.1 connections to the API server). kube-scheduler's own
    # binder runs one goroutine per pod over HTTP/2; a binding takes ~100 ms on a busy API server
    # (measured in bench_throughput), so 8 connections capped Kinship at ~80 bindings/s there.
    bind_connections: int = Field(default=32, ge=1, le=256)
    # With N > 0, filter passes only the N fitting nodes Kinship scores best, so that
    # kube-scheduler runs its score plugins and the prioritize call on N nodes instead of every
    # feasible one (each node sent costs kube-scheduler 7-11 us per call, docs/local-cluster.md).
    # The built-in scores (balance, preferred affinities, PreferNoSchedule) then choose among
    # those N only, as they choose within kube-scheduler's own adaptive window, whose minimum is
    # also 100 nodes. 0: every fitting node.
    filter_keep_best: int = Field(default=100, ge=0)
    # Full Node objects of 5,000 nodes are ~50 MiB in nodeCacheCapable=false mode; anything
    # larger is not a request kube-scheduler sends.
    max_request_bytes: int = Field(default=64 * 1024 * 1024, gt=0)


def load_config(path: Path | None) -> ExtenderConfig:
    if path is None:
        return ExtenderConfig()
    data = read_yaml(path) or {}
    try:
        return ExtenderConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(str(path), [describe_validation_error(e) for e in exc.errors()]) from None
