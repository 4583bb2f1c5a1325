from pathlib import Path

import numpy as np
import pytest

from kinship.errors import InputError
from predictor.usage import Sample, on_grid, read_usage, write_usage


def test_round_trip_keeps_values_series_and_unmeasured_cells(tmp_path: Path) -> None:
    samples = [
        Sample(1_700_000_060.0, "planner/main", 250.0, None),
        Sample(1_700_000_000.0, "planner/main", 120.5, 3e9),
        Sample(1_700_000_000.0, "executor", None, 1.5e9),
    ]
    path = tmp_path / "u.csv"
    assert write_usage(path, samples) == 3
    assert path.read_text().splitlines()[:2] == [
        "timestamp,series,cpu_millicores,memory_bytes",
        "2023-11-14T22:13:20Z,executor,,1500000000",
    ]
    usage = read_usage(path)
    planner = usage["planner/main"]
    assert (planner.agent, planner.container) == ("planner", "main")
    assert planner.timestamps_seconds.tolist() == [1_700_000_000.0, 1_700_000_060.0]
    assert planner.cpu_millicores.tolist() == [120.5, 250.0]
    assert np.isnan(planner.memory_bytes[1]) and planner.memory_bytes[0] == 3e9
    assert np.isnan(usage["executor"].cpu_millicores[0])
    assert usage["executor"].container == "executor"


def test_every_bad_line_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "timestamp,series,cpu_millicores,memory_bytes\n"
        "2026-11-21T10:00:00Z,a,1,2\n"
        "yesterday,a,1,2\n"
        "2026-11-21T10:01:00Z,a,-5,2\n"
        "2026-11-21T10:02:00Z,a,1,lots\n"
        "2026-11-21T10:03:00Z,,1,2\n"
        "2026-11-21T10:04:00Z,a,1\n"
    )
    with pytest.raises(InputError) as exc:
        read_usage(path)
    assert exc.value.source == str(path)
    assert exc.value.problems == [
        "line 3: timestamp: expected RFC 3339 (2026-11-21T10:00:00Z) or unix seconds (got 'yesterday')",
        "line 4: cpu_millicores: must be a finite number >= 0 (got '-5')",
        "line 5: memory_bytes: not a number (got 'lots')",
        "line 6: series: empty",
        "line 7: expected 4 fields, got 3",
    ]


def test_wrong_header_duplicates_and_missing_file(tmp_path: Path) -> None:
    wrong = tmp_path / "wide.csv"
    wrong.write_text("step_5min,vm1\n1,2\n")
    with pytest.raises(InputError, match="line 1: header must be"):
        read_usage(wrong)
    dup = tmp_path / "dup.csv"
    dup.write_text("timestamp,series,cpu_millicores,memory_bytes\n10,a,1,\n10,a,2,\n")
    with pytest.raises(InputError, match="series 'a': 1 duplicate timestamps"):
        read_usage(dup)
    with pytest.raises(InputError, match="cannot read usage"):
        read_usage(tmp_path / "nope.csv")


def test_grid_snaps_jitter_and_keeps_the_larger_of_two_samples_in_a_cell(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    write_usage(
        path,
        [
            Sample(0.0, "a", 1.0, None),
            Sample(60.2, "a", 2.0, None),
            Sample(119.9, "a", 3.0, None),
            Sample(121.0, "a", 7.0, None),  # same cell as 119.9: a peak must survive
            Sample(300.0, "a", 4.0, None),
        ],
    )
    grid = on_grid(read_usage(path)["a"], "cpu", step_seconds=60.0)
    assert grid.step_seconds == 60.0
    assert np.array_equal(grid.values, [1.0, 2.0, 7.0, np.nan, np.nan, 4.0], equal_nan=True)
