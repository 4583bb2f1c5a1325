"""The in-cluster install (manifests/, a kustomize base) as `kubectl kustomize` renders it.

Tests read the rendered objects rather than the source files, so they check what
`kubectl apply -k manifests/` would send: generated ConfigMap names, namespaces, image tags.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.serving import ROOT, STATE_DIR

MANIFESTS = ROOT / "manifests"
KUBE_VERSION = "v1.36.2"  # hack/build-kube.sh and local-cluster.sh pin the same release


def kubectl() -> str | None:
    """The kubectl ./local-cluster.sh uses (its cluster.env, else the binaries it builds), else
    the one on PATH; None when there is none."""
    candidates = [os.environ.get("KINSHIP_KUBECTL", "")]
    env_file = STATE_DIR / "cluster.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("KINSHIP_KUBECTL="):
                candidates.append(line.partition("=")[2])
    candidates.append(str(Path.home() / ".cache" / "kinship" / KUBE_VERSION / "bin" / "kubectl"))
    candidates.append(shutil.which("kubectl") or "")
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@functools.cache
def rendered() -> tuple[dict[str, Any], ...]:
    """Every object of `kubectl kustomize manifests/`, in its output order."""
    binary = kubectl()
    if binary is None:
        raise RuntimeError("no kubectl found")
    out = subprocess.run(
        [binary, "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def find(kind: str, name: str) -> dict[str, Any]:
    """The rendered object of that kind and name; a generated ConfigMap matches its base name."""
    for doc in rendered():
        meta_name = doc["metadata"]["name"]
        generated = kind == "ConfigMap" and meta_name.rpartition("-")[0] == name
        if doc["kind"] == kind and (meta_name == name or generated):
            return doc
    raise KeyError(f"no {kind} {name} in the rendered manifests")
