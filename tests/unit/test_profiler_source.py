"""Query sets, label mapping and reply parsing of the Prometheus source (no network: pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinship.errors import InputError
from profiler.config import PrometheusConfig, load_config
from profiler.edges import SourceError
from profiler.prometheus_source import EdgeMapper, build_queries, samples_from_replies


def series(value: float | str, **labels: str) -> dict:
    return {"metric": labels, "value": [1700000000.0, str(value)]}


def istio(src: str, dst: str, src_ns: str = "shop", dst_ns: str = "shop") -> dict[str, str]:
    return {
        "source_workload": src,
        "destination_workload": dst,
        "source_workload_namespace": src_ns,
        "destination_workload_namespace": dst_ns,
    }


def test_istio_queries_count_each_call_once_and_aggregate_per_edge() -> None:
    q = build_queries(PrometheusConfig().query_set("istio"), "2m")
    by = "source_workload, destination_workload, source_workload_namespace, destination_workload_namespace"
    assert q["requests"] == f'sum by ({by}) (rate(istio_requests_total{{reporter="source"}}[2m]))'
    assert q["bytes:istio_tcp_sent_bytes_total"] == (
        f'sum by ({by}) (rate(istio_tcp_sent_bytes_total{{reporter="source"}}[2m]))'
    )
    assert [k for k in q if k.startswith("bytes:")] == [
        "bytes:istio_request_bytes_sum",
        "bytes:istio_response_bytes_sum",
        "bytes:istio_tcp_sent_bytes_total",
        "bytes:istio_tcp_received_bytes_total",
    ]
    assert q["latency"].startswith("histogram_quantile(0.5, sum by (le, source_workload")
    assert 'istio_request_duration_milliseconds_bucket{reporter="source"}[2m]' in q["latency"]


def test_servicegraph_has_no_namespace_labels_unless_configured() -> None:
    cfg = PrometheusConfig(meshes=["servicegraph"], default_namespace="agents")
    q = build_queries(cfg.query_set("servicegraph"), "5m")
    assert q["requests"] == (
        'sum by (client, server) (rate(traces_service_graph_request_total{connection_type!="virtual_node"}[5m]))'
    )
    assert set(q) == {"requests", "latency"}
    mapper = EdgeMapper(cfg.query_set("servicegraph"), cfg.default_namespace)
    assert mapper.edge({"client": "planner", "server": "researcher"}) == ("agents", "planner", "researcher")
    dims = PrometheusConfig(
        query_sets={
            "servicegraph": {
                "source_namespace_label": "client_k8s_namespace_name",
                "destination_namespace_label": "server_k8s_namespace_name",
            }
        }
    )
    mapper = EdgeMapper(dims.query_set("servicegraph"), "default")
    labels = {
        "client": "a",
        "server": "b",
        "client_k8s_namespace_name": "x",
        "server_k8s_namespace_name": "x",
    }
    assert mapper.edge(labels) == ("x", "a", "b")


def test_mapping_skips_outsiders_self_loops_and_cross_namespace_edges() -> None:
    mapper = EdgeMapper(PrometheusConfig().query_set("istio"), "default", {"planner-v2": "planner"})
    assert mapper.edge(istio("unknown", "frontend")) is None
    assert mapper.edge(istio("", "frontend")) is None
    assert mapper.edge(istio("frontend", "frontend")) is None
    assert mapper.edge(istio("planner", "planner-v2")) is None  # a self-loop once renamed
    assert mapper.edge(istio("frontend", "cart", "shop", "payments")) is None
    assert mapper.edge(istio("planner-v2", "executor")) == ("shop", "planner", "executor")
    assert dict(mapper.skipped) == {"not an agent": 2, "self-loop": 2, "cross-namespace": 1}


def test_replies_join_into_one_sample_per_edge() -> None:
    qs = PrometheusConfig().query_set("servicegraph")
    replies = {
        "requests": [series(4.5, client="a", server="b"), series(0, client="a", server="c")],
        "latency": [
            series(0.012, client="a", server="b"),
            series("NaN", client="a", server="c"),
            series("+Inf", client="x", server="y"),
        ],
    }
    (edge,) = samples_from_replies(EdgeMapper(qs, "ns"), replies, "servicegraph", qs.latency_unit_ms)
    assert (edge.namespace, edge.source, edge.destination) == ("ns", "a", "b")
    assert edge.requests_per_second == 4.5 and edge.bytes_per_second == 0.0
    assert edge.p50_latency_ms == pytest.approx(12.0)  # seconds histogram, reported in ms
    assert edge.origin == "servicegraph"


@pytest.mark.parametrize(
    "reply",
    [
        {"resultType": "matrix"},
        [{"metric": {}}],
        [{"metric": "x", "value": [0, "1"]}],
        [{"metric": {}, "value": [0, "x"]}],
    ],
)
def test_a_malformed_reply_is_a_source_error(reply: object) -> None:
    mapper = EdgeMapper(PrometheusConfig().query_set("istio"), "default")
    with pytest.raises(SourceError, match="requests"):
        samples_from_replies(mapper, {"requests": reply}, "istio")


def test_bad_config_is_reported_all_at_once_naming_each_key(tmp_path: Path) -> None:
    path = tmp_path / "profiler.yaml"
    path.write_text(
        "prometheus:\n  window: 5 minutes\n  meshes: [istio, consul]\n"
        "  query_sets: {istio: {source_label: 'bad-label'}}\n"
        "model: {half_life_seconds: -1}\nrunner: {listen: nowhere}\n"
    )
    with pytest.raises(InputError) as err:
        load_config(path)
    text = err.value.render()
    assert text.startswith(f"{path}: 5 problems:")
    for expected in (
        "prometheus.window",
        "prometheus.meshes: Value error, unknown mesh consul",
        "prometheus.query_sets: Value error, istio.source_label",
        "model.half_life_seconds",
        "runner.listen",
    ):
        assert expected in text


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "profiler.yaml"
    path.write_text("prometheus: {url: 'http://prom:9090', window: 1m}\nrunner: {interval_seconds: 60}\n")
    cfg = load_config(path, {"prometheus": {"window": "30s", "url": None}, "runner": {"interval_seconds": 5}})
    assert (cfg.prometheus.url, cfg.prometheus.window, cfg.runner.interval_seconds) == (
        "http://prom:9090",
        "30s",
        5,
    )
