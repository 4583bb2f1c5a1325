import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kinship.errors import InputError
from predictor import convert
from predictor.prometheus import PrometheusSource, samples_from_matrices
from tests.unit.predictor_data import AZURE_LLM_CODE, AZURE_MAX, GENAI_MEMORY, need, onlineboutique


def _slice_gz(src: Path, dst: Path, lines: int) -> Path:
    with gzip.open(src, "rt") as fin, gzip.open(dst, "wt") as fout:
        for _ in range(lines):
            fout.write(fin.readline())
    return dst


def test_azure_vm_maps_percent_to_millicores_of_nominal_vcpus(tmp_path: Path) -> None:
    path = _slice_gz(need(AZURE_MAX), tmp_path / "azure.csv.gz", 3)  # header + steps 1 and 2
    samples = convert.azure_vm(path, vcpus=4.0, start_seconds=1_000.0)
    assert len(samples) == 200  # 100 VMs x 2 steps
    first = samples[0]
    # The real file's first cell: VM 1633748 at step 1 peaked at 71.889037 % of its vCPUs.
    assert (first.series, first.timestamp_seconds) == ("vm-1633748", 1_000.0)
    assert first.cpu_millicores == pytest.approx(71.889037 / 100 * 4 * 1000)
    assert first.memory_bytes is None
    assert samples[100].timestamp_seconds == 1_300.0  # step 2 is five minutes later


def test_azure_vm_bad_cell_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_text("step_5min,vm1,vm2\n1,5.0,abc\n")
    with pytest.raises(InputError, match=r"line 2: column vm-vm2: not a number \(got 'abc'\)"):
        convert.azure_vm(path, 1.0, 0.0)


def test_onlineboutique_uses_the_time_column_and_deployment_names() -> None:
    samples = onlineboutique()
    assert {s.series for s in samples} >= {"frontend", "adservice", "productcatalogservice"}
    assert len({s.series for s in samples}) == 10
    ad = min((s for s in samples if s.series == "adservice"), key=lambda s: s.timestamp_seconds)
    # adservice's first row: Time 2022-08-22 03:51:19.607158889 UTC, 1.76 m CPU, 201.23828125 MiB.
    expected = datetime(2022, 8, 22, 3, 51, 19, 607159, tzinfo=UTC).timestamp()
    assert ad.timestamp_seconds == pytest.approx(expected, abs=1e-3)
    assert ad.cpu_millicores == pytest.approx(1.7624831358803779)
    assert ad.memory_bytes == 201.23828125 * 1024**2


def test_alibaba_genai_fraction_times_capacity_and_noise_clipped(tmp_path: Path) -> None:
    lines = need(GENAI_MEMORY).read_text().splitlines()[:50]
    path = tmp_path / "genai.csv"
    path.write_text("\n".join([*lines, "-0.00001,1662858780.0,abc", ""]))
    samples = convert.alibaba_genai(path, capacity_bytes=1e9)
    assert samples[0].series == "genai-25da09a77268"
    assert samples[0].memory_bytes == pytest.approx(0.6623353560765585e9)
    assert samples[-1].memory_bytes == 0.0
    path.write_text("value,timestamp_anon,container_ip\n-0.5,1.0,abc\n")
    with pytest.raises(InputError, match="line 2: value: utilisation must be >= 0"):
        convert.alibaba_genai(path, 1e9)


def test_azure_llm_buckets_kv_cache_demand_per_minute() -> None:
    samples = convert.azure_llm(need(AZURE_LLM_CODE), bytes_per_token=1.0)
    assert {s.series for s in samples} == {"azure-llm-code"}
    times = [s.timestamp_seconds for s in samples]
    assert times == sorted(times) and all(t % 60 == 0 for t in times)
    assert all(s.cpu_millicores is None and (s.memory_bytes or 0) > 0 for s in samples)
    total_tokens = 0
    for line in AZURE_LLM_CODE.read_text().splitlines()[1:]:
        _, context, generated = line.split(",")
        total_tokens += int(context) + int(generated)
    assert sum(s.memory_bytes or 0 for s in samples) == total_tokens


def test_prometheus_matrix_becomes_agent_container_series_with_the_busiest_replica() -> None:
    cpu = [
        {
            "metric": {"namespace": "ops", "pod": "planner-7d9f8b6c4d-abcde", "container": "main"},
            "values": [[1700000000, "120.5"], [1700000060, "130"]],
        },
        {
            "metric": {"namespace": "ops", "pod": "planner-7d9f8b6c4d-fghij", "container": "main"},
            "values": [[1700000000, "300"], [1700000060, "NaN"]],
        },
    ]
    memory = [
        {
            "metric": {"namespace": "ops", "pod": "planner-7d9f8b6c4d-abcde", "container": "main"},
            "values": [[1700000000, "1048576"]],
        },
    ]
    samples = samples_from_matrices({"cpu": cpu, "memory": memory})
    assert [(s.timestamp_seconds, s.series, s.cpu_millicores, s.memory_bytes) for s in samples] == [
        (1700000000.0, "planner/main", 300.0, 1048576.0),
        (1700000060.0, "planner/main", 130.0, None),
    ]
    with pytest.raises(ValueError, match=r"cpu result \[0\]: values: expected a list"):
        samples_from_matrices({"cpu": [{"metric": {"pod": "p", "container": "c"}, "value": [1, "2"]}]})


def test_prometheus_queries_name_the_configured_metrics() -> None:
    queries = PrometheusSource(cpu_metric="cpu_total", rate_window="2m").queries("ops")
    assert queries["cpu"] == (
        '1000 * sum by (namespace, pod, container) (rate(cpu_total{namespace="ops", container!="", '
        'container!="POD"}[2m]))'
    )
    assert queries["memory"].startswith(
        "sum by (namespace, pod, container) (container_memory_working_set_bytes{"
    )


def test_prometheus_source_problems_name_each_field_outside_prometheus_syntax() -> None:
    assert PrometheusSource().problems() == {}
    assert PrometheusSource(cpu_metric="ns:cpu_usage:rate5m", rate_window="1h30m").problems() == {}
    bad = PrometheusSource(cpu_metric="", memory_metric="bytes or vector(1)", rate_window="-5m").problems()
    assert set(bad) == {"cpu_metric", "memory_metric", "rate_window"}
    assert (
        bad["memory_metric"]
        == "not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*): 'bytes or vector(1)'"
    )
