"""./kind-cluster.sh cannot run here (no Docker engine); what can be checked without one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.serving import ROOT

SCRIPT = ROOT / "kind-cluster.sh"


def test_it_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_without_docker_it_says_so_and_fails(tmp_path: Path) -> None:
    # a PATH with only what the script needs before its first check
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found, tool
        (tmp_path / tool).symlink_to(found)
    for command in ("up", "down"):
        run = subprocess.run(
            [str(SCRIPT), command],
            env={**os.environ, "PATH": str(tmp_path)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 1
        assert "docker not found" in run.stderr and "./local-cluster.sh" in run.stderr
