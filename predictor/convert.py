"""Converters from the real public traces in `../shared/data/` to the usage table.

Each trace measures something slightly different from a Kubernetes request, so each converter
states its mapping (and the nominal capacity it needs) in its docstring; `docs/predictor.md` repeats
them next to the figures they produce.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import tarfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kinship.errors import InputError
from predictor.usage import Sample, parse_timestamp

MIB_BYTES = 1024.0**2
# Alibaba's anonymisation adds noise around zero (values down to about -1e-5); anything more
# negative than this is a broken file rather than noise.
_NOISE_FLOOR_FRACTION = -1e-3


def azure_vm(path: Path, vcpus: float, start_seconds: float, step_seconds: float = 300.0) -> list[Sample]:
    """Azure Public Dataset V1, wide: `step_5min,<vm>...`, CPU % of the VM per 5-minute step.

    The dataset publishes utilisation, not cores, and the VM table with core counts is not part of
    the slice, so a nominal `vcpus` maps 100 % to `vcpus * 1000` millicores. The same factor
    multiplies usage and every recommendation, so slack and violation rates do not depend on it.
    Timestamps are relative in the dataset; `start_seconds` anchors step 1.
    """
    source = str(path)
    samples: list[Sample] = []
    problems: list[str] = []
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0] != "step_5min":
            raise InputError(source, ["line 1: expected a wide Azure VM file starting with step_5min"])
        vms = [f"vm-{name}" for name in header[1:]]
        for line_no, row in enumerate(reader, 2):
            if len(problems) >= 20:
                break
            try:
                step = int(row[0])
            except (ValueError, IndexError):
                problems.append(f"line {line_no}: step_5min: not an integer")
                continue
            t = start_seconds + (step - 1) * step_seconds
            for vm, cell in zip(vms, row[1:], strict=False):
                if cell == "":
                    continue
                try:
                    percent = float(cell)
                except ValueError:
                    problems.append(f"line {line_no}: column {vm}: not a number (got {cell!r})")
                    continue
                if not math.isfinite(percent) or percent < 0:
                    problems.append(f"line {line_no}: column {vm}: CPU % must be >= 0 (got {cell!r})")
                    continue
                samples.append(Sample(t, vm, percent / 100.0 * vcpus * 1000.0, None))
    if problems:
        raise InputError(source, problems)
    return samples


# Pod names are <deployment>-<replicaset hash>-<pod suffix>; the agent is the Deployment.
_POD_NAME = re.compile(r"^(?P<deployment>.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$")


def agent_of_pod(pod: str) -> str:
    """The Deployment a pod belongs to by name (the API's labels are not in a metrics trace)."""
    match = _POD_NAME.match(pod)
    return match["deployment"] if match else pod


def onlineboutique(path: Path) -> list[Sample]:
    """Nezha Online Boutique pod metrics: per pod `*_metric.csv` with CPU (m) and memory (MiB).

    Uses the `Time` column (wall clock, UTC); the pod files' `TimeStamp` is offset by 2e8 s.
    Series are Deployment names (the pod name minus its ReplicaSet hash and suffix), so they match
    the agent identity the extender derives for the same pods.
    """
    source = str(path)
    samples: list[Sample] = []
    problems: list[str] = []
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the `with` below
    except (OSError, tarfile.TarError) as exc:
        raise InputError(source, [f"not a readable tar archive: {exc}"]) from None
    with archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith("_metric.csv")]
        if not members:
            raise InputError(source, ["no */metric/*_metric.csv pod files in the archive"])
        for member in members:
            handle = archive.extractfile(member)
            if handle is None:
                continue
            where = f"{source}:{member.name}"
            reader = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8"))
            for line_no, row in enumerate(reader, 2):
                try:
                    samples.append(
                        Sample(
                            _nezha_time(row["Time"]),
                            agent_of_pod(row["PodName"]),
                            float(row["CpuUsage(m)"]),
                            float(row["MemoryUsage(Mi)"]) * MIB_BYTES,
                        )
                    )
                except (KeyError, ValueError, TypeError) as exc:
                    problems.append(f"{where}: line {line_no}: {exc}")
                if len(problems) >= 20:
                    raise InputError(source, problems)
    if problems:
        raise InputError(source, problems)
    return samples


def _nezha_time(text: str) -> float:
    """'2022-08-22 03:51:19.607158889 +0000 UTC m=+0.11' -> unix seconds (nanoseconds dropped)."""
    date, clock = text.split()[:2]
    whole, _, fraction = clock.partition(".")
    parsed = datetime.fromisoformat(f"{date}T{whole}").replace(tzinfo=UTC)
    return parsed.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def alibaba_genai(path: Path, capacity_bytes: float) -> list[Sample]:
    """Alibaba GenAI pod memory: `value,timestamp_anon,container_ip`, utilisation per minute.

    The values are fractions in [0, 1] (the dataset README says "percentage", the data says
    fraction) and the container's memory limit is not published, so a nominal `capacity_bytes`
    turns them into bytes. Slack and violation rates do not depend on that factor. Noise just below
    zero from the anonymisation is clipped to 0; rows without a container are dropped; a repeated
    (container, timestamp) keeps the larger value.
    """
    source = str(path)
    peaks: dict[tuple[float, str], float] = {}
    problems: list[str] = []
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"value", "timestamp_anon", "container_ip"} <= set(
            reader.fieldnames
        ):
            raise InputError(source, ["line 1: expected columns value,timestamp_anon,container_ip"])
        for line_no, row in enumerate(reader, 2):
            try:
                fraction = float(row["value"])
                t = float(row["timestamp_anon"])
            except ValueError as exc:
                problems.append(f"line {line_no}: {exc}")
                continue
            if not math.isfinite(fraction) or fraction < _NOISE_FLOOR_FRACTION:
                problems.append(f"line {line_no}: value: utilisation must be >= 0 (got {row['value']!r})")
                continue
            if not row["container_ip"]:
                continue  # 49 rows of the real file name no container: nothing to attribute them to
            series = f"genai-{row['container_ip'][:12]}"
            memory_bytes = max(fraction, 0.0) * capacity_bytes
            # The real file repeats a few (container, timestamp) pairs; the larger value is the peak.
            key = (t, series)
            peaks[key] = max(peaks.get(key, 0.0), memory_bytes)
            if len(problems) >= 20:
                break
    if problems:
        raise InputError(source, problems)
    return [Sample(t, series, None, value) for (t, series), value in peaks.items()]


def azure_llm(path: Path, bytes_per_token: float, bucket_seconds: float = 60.0) -> list[Sample]:
    """Azure LLM inference trace: one row per request (`TIMESTAMP,ContextTokens,GeneratedTokens`).

    The trace has no resource usage and no request durations, so tokens in flight cannot be known.
    What it does give is the KV-cache demand arriving per minute: (context + generated tokens) of
    the requests that started in the bucket times a nominal `bytes_per_token` (the KV cache of one
    token: about 0.5 MiB for a 7B model in fp16). One series per file (`azure-llm-<stem>`), memory
    only. One hour of data is too short for walk-forward evaluation; it is for training demos.
    """
    source = str(path)
    buckets: dict[float, float] = defaultdict(float)
    problems: list[str] = []
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        for line_no, row in enumerate(reader, 2):
            try:
                t = parse_timestamp(row["TIMESTAMP"].strip()[:26])
                tokens = float(row["ContextTokens"]) + float(row["GeneratedTokens"])
            except (KeyError, ValueError, AttributeError) as exc:
                problems.append(f"line {line_no}: {exc}")
                if len(problems) >= 20:
                    break
                continue
            buckets[math.floor(t / bucket_seconds) * bucket_seconds] += tokens
    if problems:
        raise InputError(source, problems)
    name = f"azure-llm-{path.stem.removeprefix('AzureLLMInferenceTrace_')}"
    return [Sample(t, name, None, tokens * bytes_per_token) for t, tokens in sorted(buckets.items())]


@contextmanager
def _open_text(path: Path) -> Iterator[TextIO]:
    """Plain or gzip text, chosen by suffix; OSError becomes an InputError naming the file."""
    try:
        handle: TextIO = (
            io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")  # noqa: SIM115
            if path.suffix == ".gz"
            else path.open(newline="", encoding="utf-8")
        )
    except OSError as exc:
        raise InputError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    with handle:
        yield handle
