from pathlib import Path

import pytest
import yaml

from kinship.errors import InputError
from kinship.profile import ProfileStatus, load_profile_files, profile_document


def _write(tmp_path: Path, docs: list[object], name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return path


def _profile(agent: str, ns: str = "team", **status: object) -> dict[str, object]:
    return {
        "apiVersion": "kinship.dev/v1alpha1",
        "kind": "AgentProfile",
        "metadata": {"name": f"{agent}-profile", "namespace": ns},
        "spec": {"agent": agent},
        "status": status,
    }


def test_profiles_load_from_documents_and_lists_keyed_by_agent(tmp_path: Path) -> None:
    one = _profile(
        "planner",
        model="kinship",
        confidence=0.97,
        horizonSeconds=3600,
        containers=[
            {"name": "main", "predictedPeak": {"cpuMillicores": 800, "memoryBytes": 2e9}},
            {"name": "sidecar", "predictedPeak": {"cpuMillicores": 50}},
        ],
        correlations=[{"agent": "executor", "cpu": 0.8}],
    )
    listing = {"apiVersion": "v1", "kind": "List", "items": [_profile("executor", ns="other")]}
    profiles = load_profile_files([_write(tmp_path, [one, listing])])
    assert [p.key for p in profiles] == [("team", "planner"), ("other", "executor")]
    totals = profiles[0].peak_totals()
    assert (totals.cpuMillicores, totals.memoryBytes) == (850, 2e9)
    assert profiles[0].status.correlations[0].cpu == 0.8
    assert profiles[1].peak_totals().cpuMillicores is None


def test_every_bad_field_is_reported_with_file_and_document(tmp_path: Path) -> None:
    bad = _profile(
        "planner",
        confidence=1.5,
        containers=[{"name": "main", "predictedPeak": {"cpuMilicores": 1}}],
        correlations=[{"agent": "x", "memory": -2}],
    )
    path = _write(tmp_path, [_profile("ok"), bad])
    with pytest.raises(InputError) as exc:
        load_profile_files([path])
    text = exc.value.render()
    assert f"{path}: document 2" in text
    assert "status.confidence" in text
    assert "status.containers[0].predictedPeak.cpuMilicores" in text
    assert "status.correlations[0].memory" in text


def test_empty_and_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(InputError, match="no AgentProfile documents"):
        load_profile_files([empty])
    with pytest.raises(InputError, match="cannot read"):
        load_profile_files([tmp_path / "missing.yaml"])


def test_written_document_round_trips(tmp_path: Path) -> None:
    status = ProfileStatus.model_validate(
        {"model": "vpa", "containers": [{"name": "c", "recommendedRequests": {"memoryBytes": 1024}}]}
    )
    doc = profile_document("ns", "agent-a", status)
    assert "confidence" not in doc["status"]
    (loaded,) = load_profile_files([_write(tmp_path, [doc])])
    assert loaded.key == ("ns", "agent-a")
    assert loaded.status == status
