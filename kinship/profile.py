"""The AgentProfile contract (kinship.dev/v1alpha1): what the predictor learned about one agent.

The predictor is the only writer of `status`; the extender only reads it (watches, or `--profile`
files in offline mode). Units are in the field names (millicores, bytes), never Kubernetes
quantities, so the extender reads numbers without parsing. `spec.agent` names the agent; the object
name is a fallback, as in the extender's watch.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinship.documents import object_documents
from kinship.errors import InputError, describe_validation_error
from kinship.graph import Metadata

API_VERSION = "kinship.dev/v1alpha1"
KIND = "AgentProfile"


class Resources(BaseModel):
    """CPU and memory of one container; either may be unknown when it was never measured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpuMillicores: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    memoryBytes: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class ContainerProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    predictedPeak: Resources = Field(default_factory=Resources)
    recommendedRequests: Resources = Field(default_factory=Resources)


class Correlation(BaseModel):
    """Pearson correlation of this agent's usage with another agent's, on aligned samples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = Field(min_length=1)
    cpu: float | None = Field(default=None, ge=-1, le=1, allow_inf_nan=False)
    memory: float | None = Field(default=None, ge=-1, le=1, allow_inf_nan=False)


class ProfileSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")
    agent: str = Field(min_length=1)


class ProfileStatus(BaseModel):
    # The predictor writes status; a newer predictor may add fields an older extender ignores.
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    lastTrained: str | None = None
    horizonSeconds: int | None = Field(default=None, ge=1)
    containers: list[ContainerProfile] = Field(default_factory=list)
    correlations: list[Correlation] = Field(default_factory=list)


class AgentProfile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    apiVersion: Literal["kinship.dev/v1alpha1"]
    kind: Literal["AgentProfile"]
    metadata: Metadata
    spec: ProfileSpec | None = None
    status: ProfileStatus = Field(default_factory=ProfileStatus)

    @property
    def agent(self) -> str:
        return self.spec.agent if self.spec is not None else self.metadata.name

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, agent): the extender indexes profiles by agent identity, not object name."""
        return (self.metadata.namespace, self.agent)

    def peak_totals(self) -> Resources:
        """Sum of the containers' predicted peaks: what the pod as a whole may need at once."""
        cpu = [c.predictedPeak.cpuMillicores for c in self.status.containers]
        mem = [c.predictedPeak.memoryBytes for c in self.status.containers]
        return Resources(
            cpuMillicores=sum(v for v in cpu if v is not None) if any(v is not None for v in cpu) else None,
            memoryBytes=sum(v for v in mem if v is not None) if any(v is not None for v in mem) else None,
        )


class ProfilePolicy(BaseModel):
    """Which AgentProfiles Kinship trusts. An ignored profile counts as none: the extender takes
    the pod's declared requests for its predicted peak, and the admission webhook leaves the
    pod's requests as declared. One policy for both, so that a profile the extender ignores never
    right-sizes a pod either."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The predictor aims its peak at 90 % of held-out windows (peak_coverage_fraction) and
    # publishes the share it reached as `confidence`. Below one half the peak was exceeded more
    # often than not, so trusting it would shrink pods below what they use; between one half and
    # the target a drifting series still beats its declared requests, which are usually far off.
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    # Usage drifts (new models, prompts, traffic), and a predictor that stopped running would
    # otherwise leave its last peaks in force for good. A week spans a weekly cycle and lets a
    # daily retraining miss several runs before its pods fall back to requests. Not
    # `horizonSeconds` (1 h): one late predictor run must not flip every pod to its requests.
    max_age_seconds: float = Field(default=7 * 86400.0, gt=0)


def stale_reason(last_trained: str | None, max_age_seconds: float, now: float) -> str | None:
    """Why a profile trained at `last_trained` is too old to trust at `now` (unix seconds), or None.

    Without lastTrained (hand-written profiles, other producers) the age is unknown, and an
    unknown age is no evidence of staleness: such a profile is taken as it is.
    """
    if last_trained is None:
        return None
    try:
        trained = datetime.fromisoformat(last_trained)
    except ValueError:
        return f"lastTrained {last_trained!r} is not an RFC 3339 time"
    if trained.tzinfo is None:
        trained = trained.replace(tzinfo=UTC)
    if now - trained.timestamp() <= max_age_seconds:
        return None
    # No age in the text: the same profile read again at a relist must compare equal, or every
    # relist would recompute its nodes' sums and log it again.
    return (
        f"lastTrained {last_trained} is more than profiles.max_age_seconds "
        f"({max_age_seconds / 86400:g} days) before it was read"
    )


def unconfident_reason(confidence: float | None, min_confidence: float) -> str | None:
    """Why a profile's confidence is too low to trust, or None (no confidence: taken as it is)."""
    if confidence is None or confidence >= min_confidence:
        return None
    return f"confidence {confidence:.2f} below profiles.min_confidence {min_confidence:g}"


def ignored_reason(profile: AgentProfile, policy: ProfilePolicy, now: float) -> str | None:
    """Why `policy` ignores this profile's peaks and requests at `now`, or None when it trusts them."""
    status = profile.status
    return stale_reason(status.lastTrained, policy.max_age_seconds, now) or unconfident_reason(
        status.confidence, policy.min_confidence
    )


def parse_agent_profile(obj: Any, source: str) -> AgentProfile:
    """Validate one AgentProfile object, reporting every bad field at once."""
    try:
        return AgentProfile.model_validate(obj)
    except ValidationError as exc:
        raise InputError(source, [describe_validation_error(err) for err in exc.errors()]) from None


def load_profile_files(paths: Iterable[Path]) -> list[AgentProfile]:
    """AgentProfiles from YAML files (multi-document, or a List as `kubectl get -o yaml` prints).

    Every problem in every file is collected first, so one run reports them all.
    """
    profiles: list[AgentProfile] = []
    problems: list[InputError] = []
    for path in paths:
        try:
            for where, doc in object_documents(path, "AgentProfile"):
                try:
                    profiles.append(parse_agent_profile(doc, where))
                except InputError as exc:
                    problems.append(exc)
        except InputError as exc:
            problems.append(exc)
    if problems:
        raise InputError("profile files", [p.render() for p in problems])
    return profiles


def profile_document(namespace: str, agent: str, status: ProfileStatus) -> dict[str, Any]:
    """The full object as the predictor writes it to a file (status without nulls)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": agent, "namespace": namespace},
        "spec": {"agent": agent},
        "status": status.model_dump(mode="json", exclude_none=True),
    }
