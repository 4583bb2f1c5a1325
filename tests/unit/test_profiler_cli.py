"""`kinship profile` rejects bad input with exit 2 and the field named, before touching the network."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kinship.cli import app


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["profile", "--log-format", "text", *args])
    return result.exit_code, result.output


def test_bad_flags_are_all_reported_with_exit_2() -> None:
    code, out = run("--mesh", "istio,consul", "--window", "5min", "--once")
    assert code == 2
    assert "prometheus.meshes: Value error, unknown mesh consul" in out
    assert "prometheus.window: Value error, not a Prometheus duration" in out
    assert "Traceback" not in out


def test_a_loop_without_anywhere_to_write_is_refused() -> None:
    code, out = run("--prometheus-url", "http://127.0.0.1:9")
    assert code == 2 and "nothing to write" in out


def test_a_bad_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "p.yaml"
    config.write_text("runner: {attempts: 0}\nsurprise: 1\n")
    code, out = run("--config", str(config), "--once")
    assert code == 2
    assert f"{config}: 2 problems" in out and "runner.attempts" in out and "surprise" in out


def test_an_unreadable_kubeconfig_is_named(tmp_path: Path) -> None:
    code, out = run("--once", "--kubeconfig", str(tmp_path / "missing"))
    assert code == 2 and "cannot load Kubernetes config" in out
