"""The usage table: `timestamp,series,cpu_millicores,memory_bytes`, one row per sample.

Every source (converters, Prometheus) produces this table and every consumer (training, evaluation)
reads it, so the predictor never depends on where the numbers came from. `series` names an agent or
`agent/container`; an empty cell means "not measured", which is different from zero. Timestamps are
RFC 3339 (written as UTC with `Z`) or unix seconds.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from kinship.errors import InputError

Resource = Literal["cpu", "memory"]
HEADER = ("timestamp", "series", "cpu_millicores", "memory_bytes")
FloatArray = npt.NDArray[np.float64]
# Reading stops collecting after this many problems: a wrong file would otherwise print a million.
_MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Sample:
    timestamp_seconds: float
    series: str
    cpu_millicores: float | None
    memory_bytes: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """One series' samples in time order; NaN where a resource was not measured."""

    name: str
    timestamps_seconds: FloatArray
    cpu_millicores: FloatArray
    memory_bytes: FloatArray

    @property
    def agent(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def container(self) -> str:
        return self.name.split("/", 1)[1] if "/" in self.name else self.agent

    def values(self, resource: Resource) -> FloatArray:
        return self.cpu_millicores if resource == "cpu" else self.memory_bytes


def parse_timestamp(text: str) -> float:
    """Unix seconds from RFC 3339 or a number; ValueError says what was expected."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected RFC 3339 (2026-11-21T10:00:00Z) or unix seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_timestamp(seconds: float) -> str:
    text = datetime.fromtimestamp(seconds, tz=UTC).isoformat()
    return text.replace("+00:00", "Z")


def _number(text: str, field: str) -> float | None:
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{field}: not a number (got {text!r})") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field}: must be a finite number >= 0 (got {text!r})")
    return value


def read_usage(path: Path) -> dict[str, Series]:
    """Read and validate a usage CSV; every bad line is reported with its line number and field."""
    source = str(path)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    problems: list[str] = []
    try:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HEADER:
                raise InputError(source, [f"line 1: header must be {','.join(HEADER)} (got {header})"])
            for line_no, row in enumerate(reader, 2):
                if len(problems) >= _MAX_PROBLEMS:
                    problems.append("... more problems not shown")
                    break
                if not row:
                    continue
                if len(row) != len(HEADER):
                    problems.append(f"line {line_no}: expected {len(HEADER)} fields, got {len(row)}")
                    continue
                try:
                    sample = _sample(row)
                except ValueError as exc:
                    problems.append(f"line {line_no}: {exc}")
                    continue
                rows.setdefault(sample.series, []).append(
                    (
                        sample.timestamp_seconds,
                        math.nan if sample.cpu_millicores is None else sample.cpu_millicores,
                        math.nan if sample.memory_bytes is None else sample.memory_bytes,
                    )
                )
    except OSError as exc:
        raise InputError(source, [f"cannot read usage: {exc.strerror or exc}"]) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(source, [f"not a text CSV file: {exc}"]) from None
    if problems:
        raise InputError(source, problems)
    if not rows:
        raise InputError(source, ["no samples after the header"])
    series = {name: _series(name, values) for name, values in sorted(rows.items())}
    duplicates = [
        f"series {s.name!r}: {int(np.sum(np.diff(s.timestamps_seconds) == 0))} duplicate timestamps"
        for s in series.values()
        if np.any(np.diff(s.timestamps_seconds) == 0)
    ]
    if duplicates:
        raise InputError(source, duplicates)
    return series


def _sample(row: list[str]) -> Sample:
    timestamp, name, cpu, memory = row
    try:
        seconds = parse_timestamp(timestamp.strip())
    except ValueError as exc:
        raise ValueError(f"timestamp: {exc} (got {timestamp!r})") from None
    if not name.strip():
        raise ValueError("series: empty")
    return Sample(seconds, name.strip(), _number(cpu, "cpu_millicores"), _number(memory, "memory_bytes"))


def series_from_samples(samples: Iterable[Sample]) -> dict[str, Series]:
    """The same per-series arrays `read_usage` builds, from samples already in memory."""
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for s in samples:
        rows.setdefault(s.series, []).append(
            (
                s.timestamp_seconds,
                math.nan if s.cpu_millicores is None else s.cpu_millicores,
                math.nan if s.memory_bytes is None else s.memory_bytes,
            )
        )
    return {name: _series(name, values) for name, values in sorted(rows.items())}


def _series(name: str, values: list[tuple[float, float, float]]) -> Series:
    table = np.asarray(values, dtype=np.float64)
    table = table[np.argsort(table[:, 0], kind="stable")]
    return Series(name, table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy())


def write_usage(path: Path, samples: Iterable[Sample]) -> int:
    """Write samples in time order (then by series); returns how many rows were written."""
    ordered = sorted(samples, key=lambda s: (s.timestamp_seconds, s.series))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for s in ordered:
            writer.writerow(
                (
                    format_timestamp(s.timestamp_seconds),
                    s.series,
                    "" if s.cpu_millicores is None else f"{s.cpu_millicores:.6g}",
                    "" if s.memory_bytes is None else f"{s.memory_bytes:.10g}",
                )
            )
    return len(ordered)


@dataclass(frozen=True, slots=True)
class Grid:
    """One resource of one series on a regular time grid (NaN where no sample fell)."""

    start_seconds: float
    step_seconds: float
    values: FloatArray

    def time_of(self, index: int) -> float:
        return self.start_seconds + index * self.step_seconds


def on_grid(series: Series, resource: Resource, step_seconds: float | None = None) -> Grid:
    """Samples snapped to a regular grid: the model reasons in steps, traces jitter by milliseconds.

    The step is the median spacing unless given; two samples in one cell keep the larger (a peak
    must not be averaged away).
    """
    t = series.timestamps_seconds
    v = series.values(resource)
    if step_seconds is None:
        step_seconds = float(np.median(np.diff(t))) if len(t) > 1 else 60.0
    index = np.rint((t - t[0]) / step_seconds).astype(np.int64)
    values = np.full(int(index[-1]) + 1, np.nan)
    measured = ~np.isnan(v)
    np.fmax.at(values, index[measured], v[measured])
    return Grid(float(t[0]), step_seconds, values)
