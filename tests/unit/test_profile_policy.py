"""Which AgentProfiles spike-aware placement trusts: confidence and age, judged when read."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from typer.testing import CliRunner

from extender.config import ExtenderConfig, ProfilePolicy, load_config
from extender.objects import Node, Pod
from extender.state import ClusterState, SpikeProfile, pod_peak
from kinship.cli import app
from kinship.errors import InputError
from kinship.profile import AgentProfile
from tests import objects as k

GIB = 2**30
DAY = 86400.0
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
POLICY = ProfilePolicy()  # min_confidence 0.5, max_age_seconds 7 days


def profile(
    agent: str = "a",
    *,
    confidence: float | None = None,
    trained: str | None = None,
    cpu: float = 2000.0,
    memory: float = 8 * GIB,
) -> AgentProfile:
    status: dict[str, Any] = {
        "containers": [{"name": "agent", "predictedPeak": {"cpuMillicores": cpu, "memoryBytes": memory}}],
        "correlations": [{"agent": "b", "cpu": 0.8}],
    }
    if confidence is not None:
        status["confidence"] = confidence
    if trained is not None:
        status["lastTrained"] = trained
    return AgentProfile.model_validate(
        {
            "apiVersion": "kinship.dev/v1alpha1",
            "kind": "AgentProfile",
            "metadata": {"name": agent, "namespace": "ns"},
            "spec": {"agent": agent},
            "status": status,
        }
    )


def days_before_now(days: float) -> str:
    return datetime.fromtimestamp(NOW - days * DAY, tz=UTC).isoformat().replace("+00:00", "Z")


# ---- the verdict (pure) --------------------------------------------------------------------


def test_a_confident_recent_profile_is_used() -> None:
    read = SpikeProfile.of(profile(confidence=0.9, trained=days_before_now(1)), POLICY, NOW)
    assert read == SpikeProfile(2000.0, 8 * GIB, (("b", 0.8),))
    assert pod_peak(read, 250.0, 0.5 * GIB) == (2000.0, 8 * GIB)


def test_low_confidence_falls_back_to_requests_and_keeps_correlations() -> None:
    read = SpikeProfile.of(profile(confidence=0.3, trained=days_before_now(1)), POLICY, NOW)
    assert (read.cpu_millicores, read.memory_bytes) == (None, None)
    assert read.ignored == "confidence 0.30 below profiles.min_confidence 0.5"
    assert read.correlations == (("b", 0.8),)  # confidence grades the peaks, not the coefficients
    assert pod_peak(read, 250.0, 0.5 * GIB) == (250.0, 0.5 * GIB)  # as with no profile at all


def test_a_profile_older_than_the_limit_is_ignored_with_its_correlations() -> None:
    trained = days_before_now(30)
    read = SpikeProfile.of(profile(confidence=0.95, trained=trained), POLICY, NOW)
    assert (read.cpu_millicores, read.memory_bytes, read.correlations) == (None, None, ())
    assert read.ignored == (
        f"lastTrained {trained} is more than profiles.max_age_seconds (7 days) before it was read"
    )


@pytest.mark.parametrize(
    ("confidence", "trained", "used"),
    [
        (0.5, days_before_now(7), True),  # both limits are inclusive
        (0.49, days_before_now(1), False),
        (0.9, days_before_now(7.01), False),
        (None, None, True),  # hand-written profiles: unknown is no evidence against them
        (0.9, days_before_now(-1), True),  # a predictor clock ahead of ours: not old
        (0.9, "2026-11-10T10:00:00", False),  # no zone: UTC, so 11 days
        (0.9, "2026-11-20T10:00:00+02:00", True),
    ],
)
def test_limits_and_missing_fields(confidence: float | None, trained: str | None, used: bool) -> None:
    read = SpikeProfile.of(profile(confidence=confidence, trained=trained), POLICY, NOW)
    assert (read.ignored is None) is used
    assert (read.memory_bytes == 8 * GIB) is used


def test_an_unreadable_last_trained_is_ignored_naming_the_value() -> None:
    read = SpikeProfile.of(profile(confidence=0.9, trained="last tuesday"), POLICY, NOW)
    assert read.ignored == "lastTrained 'last tuesday' is not an RFC 3339 time"


def test_the_policy_is_configurable() -> None:
    lax = ProfilePolicy(min_confidence=0.2, max_age_seconds=60 * DAY)
    read = SpikeProfile.of(profile(confidence=0.3, trained=days_before_now(30)), lax, NOW)
    assert read.ignored is None and read.memory_bytes == 8 * GIB


# ---- the cache: judged at ingest (upsert) and at relist (replace) --------------------------


def sums(state: ClusterState, node: str) -> tuple[float, float]:
    slot = int(state.slots_of([node])[0])
    return float(state.cpu_peak[slot]), float(state.mem_peak[slot])


def test_ignored_profiles_leave_requests_in_the_node_sums_until_a_good_one_arrives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = ClusterState()
    state.upsert_node(msgspec.convert(k.node("n1"), Node))
    state.upsert_pod(msgspec.convert(k.pod("a-1", "ns", node_name="n1", agent_label="a"), Pod))  # 250m, 512Mi
    with caplog.at_level(logging.INFO, logger="kinship.extender.state"):
        state.upsert_profile(profile(confidence=0.2, trained=days_before_now(1)), now=NOW)
    assert sums(state, "n1") == (250.0, 0.5 * GIB)
    assert "AgentProfile ns/a ignored: confidence 0.20 below profiles.min_confidence 0.5" in caplog.text
    state.upsert_profile(profile(confidence=0.9, trained=days_before_now(1)), now=NOW)
    assert sums(state, "n1") == (2000.0, 8 * GIB)
    # the same object read again at a relist three weeks later has aged out
    state.replace_profiles([profile(confidence=0.9, trained=days_before_now(1))], now=NOW + 21 * DAY)
    assert sums(state, "n1") == (250.0, 0.5 * GIB)
    assert state.correlated("ns", "a") == {}
    profile_read = state.profile("ns", "a")
    assert profile_read is not None and (profile_read.ignored or "").startswith("lastTrained 2026-11-20T")
    # read again at the next relist: the same verdict, so nothing changes and nothing is logged
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kinship.extender.state"):
        state.replace_profiles([profile(confidence=0.9, trained=days_before_now(1))], now=NOW + 22 * DAY)
    assert state.profile("ns", "a") == profile_read and "ignored" not in caplog.text


def test_the_cache_applies_the_policy_it_was_given() -> None:
    state = ClusterState(profile_policy=ProfilePolicy(min_confidence=0.1))
    state.upsert_profile(profile(confidence=0.2, trained=days_before_now(1)), now=NOW)
    read = state.profile("ns", "a")
    assert read is not None and read.ignored is None


# ---- config --------------------------------------------------------------------------------


def test_config_defaults_and_validation(tmp_path: Path) -> None:
    assert ExtenderConfig().profiles == ProfilePolicy(min_confidence=0.5, max_age_seconds=7 * DAY)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"profiles": {"min_confidence": 0.8, "max_age_seconds": 3600}}))
    assert load_config(good).profiles == ProfilePolicy(min_confidence=0.8, max_age_seconds=3600)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"profiles": {"min_confidence": 1.5, "max_age_seconds": 0, "max_age": 1}}))
    with pytest.raises(InputError) as err:
        load_config(bad)
    text = err.value.render()
    assert "3 problems" in text
    # the offending value is shown, as for AgentGraph and AgentProfile errors
    assert "profiles.min_confidence: Input should be less than or equal to 1 (got 1.5)" in text
    assert "profiles.max_age_seconds: Input should be greater than 0 (got 0)" in text
    assert "profiles.max_age: Extra inputs are not permitted" in text


# ---- kinship explain -----------------------------------------------------------------------


def test_explain_says_why_a_profile_was_ignored(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(msgspec.json.encode(k.snapshot([k.node("n1")], [])).decode())
    pod = tmp_path / "pod.yaml"
    pod.write_text(yaml.safe_dump(k.pod("a-1", "ns", agent_label="a")))
    profiles = tmp_path / "profiles.yaml"
    trained = datetime.now(UTC).isoformat()  # explain judges profiles as of the wall clock
    doc = profile(confidence=0.3, trained=trained).model_dump(mode="json", exclude_none=True)
    profiles.write_text(yaml.safe_dump(doc))
    base = ["explain", "--snapshot", str(snapshot), "--pod", str(pod), "--profile", str(profiles)]

    result = CliRunner().invoke(app, base)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # rich wraps long lines
    assert "predicted peak: cpu 0.25 cores (from requests), memory 0.50 GiB (from requests)" in out
    assert (
        "AgentProfile ignored (peaks from the pod's requests): "
        "confidence 0.30 below profiles.min_confidence 0.5" in out
    )

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"profiles": {"min_confidence": 0.25}}))
    result = CliRunner().invoke(app, [*base, "--config", str(config)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "cpu 2 cores (from AgentProfile)" in out and "ignored" not in out
