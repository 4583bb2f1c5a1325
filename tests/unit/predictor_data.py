"""Where the real traces live (../shared/data beside the repository), and small slices of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from predictor import convert
from predictor.usage import Sample

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
OB_METRICS = DATA / "usage" / "onlineboutique_pod_metrics.tar.gz"
AZURE_MAX = DATA / "usage" / "azure_vm_cpu_max_100.csv.gz"
GENAI_MEMORY = DATA / "llm" / "alibaba_genai_pod_memory_util.csv"
AZURE_LLM_CODE = DATA / "llm" / "AzureLLMInferenceTrace_code.csv"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real trace {path} not present (see ../shared/data/README.md)")
    return path


def onlineboutique(services: tuple[str, ...] | None = None) -> list[Sample]:
    samples = convert.onlineboutique(need(OB_METRICS))
    return [s for s in samples if services is None or s.series in services]
