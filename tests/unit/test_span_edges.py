"""Edge derivation from OTLP protobufs built here: matching rules, arrival order, bounds."""

from __future__ import annotations

import pytest

from profiler.otlp.span_edges import Call, CallMatcher
from profiler.otlp.spans import SpanCounters, SpanLimits, span_records
from profiler.otlp.window import EdgeWindow
from tests.otlp_spans import CLIENT, CONSUMER, INTERNAL, PRODUCER, SERVER, resource_spans, span

WINDOW = 60.0


def matcher(**overrides: int | float) -> CallMatcher:
    bounds = {"max_indexed_spans": 1000, "max_pending_spans": 1000, "max_known_services": 100}
    return CallMatcher(match_window_seconds=overrides.pop("window", WINDOW), **{**bounds, **overrides})  # type: ignore[arg-type]


def add(m: CallMatcher, *groups, now: float = 0.0) -> list[Call]:  # type: ignore[no-untyped-def]
    return m.add(span_records(groups, SpanLimits(), SpanCounters()), now)


def edges(calls: list[Call]) -> list[tuple[str, str, str, str]]:
    return sorted((c.namespace, c.source, c.destination, c.rule) for c in calls)


def test_parent_and_child_in_two_services_make_one_call_with_the_caller_side_figures() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("orchestrator", [span(1, CLIENT, duration_ms=40, http__request__body__size=300)]),
        resource_spans("planner", [span(2, SERVER, parent=1, duration_ms=25, http__response__body__size=9)]),
    )
    assert edges(calls) == [("team", "orchestrator", "planner", "pair")]
    assert calls[0].latency_seconds == pytest.approx(0.040)
    assert calls[0].size_bytes == 300  # the caller's sizes; the server's would count the same bytes again


def test_server_side_figures_when_the_parent_is_not_a_client_span() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("orchestrator", [span(1, INTERNAL, duration_ms=500)]),
        resource_spans("planner", [span(2, SERVER, parent=1, duration_ms=25, http__response__body__size=9)]),
    )
    assert [(c.latency_seconds, c.size_bytes) for c in calls] == [(pytest.approx(0.025), 9)]


def test_child_arriving_before_its_parent_waits_and_is_matched_later() -> None:
    m = matcher()
    assert add(m, resource_spans("planner", [span(2, SERVER, parent=1)]), now=0.0) == []
    assert m.pending_spans == 1
    calls = add(m, resource_spans("orchestrator", [span(1, CLIENT)]), now=5.0)
    assert edges(calls) == [("team", "orchestrator", "planner", "pair")]
    assert m.pending_spans == 0


def test_order_inside_one_request_does_not_matter() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans(
            "planner", [span(2, SERVER, parent=1), span(3, INTERNAL, parent=2, remote_parent=False)]
        ),
        resource_spans("orchestrator", [span(1, CLIENT)]),
    )
    assert edges(calls) == [("team", "orchestrator", "planner", "pair")]
    assert m.pending_spans == 0


def test_in_process_children_never_wait_for_a_parent() -> None:
    m = matcher()
    add(m, resource_spans("planner", [span(i, INTERNAL, parent=100, remote_parent=False) for i in range(5)]))
    assert m.pending_spans == 0
    assert m.indexed_spans == 5


def test_parent_waiting_too_long_leaves_an_orphan() -> None:
    m = matcher()
    add(m, resource_spans("planner", [span(2, SERVER, parent=1)]), now=0.0)
    assert add(m, resource_spans("orchestrator", [span(1, CLIENT)]), now=WINDOW + 1) == []
    assert m.counters.orphaned == 1


def test_client_span_without_a_server_side_counts_through_peer_service_when_it_retires() -> None:
    m = matcher()
    assert add(m, resource_spans("orchestrator", [span(1, CLIENT, peer__service="planner")]), now=0.0) == []
    assert m.expire(WINDOW - 1) == []  # still waiting for a server span
    assert edges(m.expire(WINDOW)) == [("team", "orchestrator", "planner", "peer")]


def test_client_span_with_its_server_span_seen_is_not_counted_again_by_peer_attributes() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("orchestrator", [span(1, CLIENT, peer__service="planner")]),
        resource_spans("planner", [span(2, SERVER, parent=1)]),
    )
    calls += m.expire(WINDOW * 2)
    assert edges(calls) == [("team", "orchestrator", "planner", "pair")]


def test_server_span_arriving_after_the_client_retired_is_not_counted_twice() -> None:
    m = matcher()
    add(m, resource_spans("orchestrator", [span(1, CLIENT, peer__service="planner")]), now=0.0)
    retired = m.expire(WINDOW)
    late = add(m, resource_spans("planner", [span(2, SERVER, parent=1)]), now=WINDOW + 1)
    assert edges(retired + late) == [("team", "orchestrator", "planner", "peer")]


def test_client_span_with_only_an_in_process_child_still_falls_back_to_peer_attributes() -> None:
    m = matcher()
    add(
        m,
        resource_spans(
            "orchestrator",
            [span(1, CLIENT, peer__service="planner"), span(2, INTERNAL, parent=1, remote_parent=False)],
        ),
    )
    assert edges(m.expire(WINDOW)) == [("team", "orchestrator", "planner", "peer")]


@pytest.mark.parametrize(
    ("attribute", "host", "expected"),
    [
        ("server__address", "planner", [("team", "orchestrator", "planner", "peer")]),
        ("server__address", "planner.team.svc.cluster.local", [("team", "orchestrator", "planner", "peer")]),
        ("net__peer__name", "Planner.team", [("team", "orchestrator", "planner", "peer")]),
        ("server__address", "api.openai.com", []),
        ("server__address", "10.0.0.7", []),
        ("server__address", "reviewer.team.svc", []),  # no such agent has sent spans
    ],
)
def test_peer_hostnames_map_to_agents_that_report_spans(
    attribute: str, host: str, expected: list[tuple[str, str, str, str]]
) -> None:
    m = matcher()
    add(
        m,
        resource_spans("planner", [span(9, SERVER)]),
        resource_spans("orchestrator", [span(1, CLIENT, **{attribute: host})]),
    )
    calls = m.expire(WINDOW)
    assert edges(calls) == expected
    assert m.counters.unresolved_peers == (0 if expected else 1)


def test_peer_service_wins_over_the_hostname() -> None:
    m = matcher()
    add(m, resource_spans("orchestrator", [span(1, CLIENT, peer__service="planner", server__address="gw")]))
    assert edges(m.expire(WINDOW)) == [("team", "orchestrator", "planner", "peer")]


def test_peer_attributes_on_server_spans_are_ignored() -> None:
    m = matcher()
    add(m, resource_spans("planner", [span(1, SERVER, peer__service="orchestrator")]))
    assert m.expire(WINDOW) == []


def test_queue_hop_through_the_consumer_parent() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("executor", [span(1, PRODUCER, messaging__message__body__size=2048)]),
        resource_spans("reviewer", [span(2, CONSUMER, parent=1)]),
    )
    assert edges(calls) == [("team", "executor", "reviewer", "pair")]
    assert calls[0].size_bytes == 2048


def test_queue_hop_through_links_of_a_batch_consumer_counts_each_message() -> None:
    m = matcher()
    early = add(m, resource_spans("reviewer", [span(10, CONSUMER, links=[1, 2, 3])]), now=0.0)
    assert m.pending_spans == 3
    calls = add(
        m,
        resource_spans("executor", [span(1, PRODUCER), span(2, PRODUCER)]),
        resource_spans("researcher", [span(3, PRODUCER)]),
        now=1.0,
    )
    assert early == []
    assert edges(calls) == [
        ("team", "executor", "reviewer", "pair"),
        ("team", "executor", "reviewer", "pair"),
        ("team", "researcher", "reviewer", "pair"),
    ]


def test_links_on_other_kinds_are_not_calls() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("executor", [span(1, PRODUCER)]),
        resource_spans("reviewer", [span(2, SERVER, links=[1]), span(3, INTERNAL, links=[1])]),
    )
    assert calls == []


def test_fan_out_from_one_producer_to_two_consumers() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("executor", [span(1, PRODUCER)]),
        resource_spans("reviewer", [span(2, CONSUMER, parent=1)]),
        resource_spans("archivist", [span(3, CONSUMER, parent=1)]),
    )
    assert edges(calls) == [
        ("team", "executor", "archivist", "pair"),
        ("team", "executor", "reviewer", "pair"),
    ]


def test_self_calls_are_dropped_and_answer_the_client_span() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("planner", [span(1, CLIENT, peer__service="planner"), span(2, SERVER, parent=1)]),
    )
    calls += m.expire(WINDOW)
    assert calls == []
    assert m.counters.self_loops == 1


def test_namespace_comes_from_k8s_then_service_namespace_then_the_default() -> None:
    groups = [
        resource_spans("a", [span(1)], namespace="k8s-ns", **{"service.namespace": "svc-ns"}),
        resource_spans("b", [span(2)], namespace=None, **{"service.namespace": "svc-ns"}),
        resource_spans("c", [span(3)], namespace=None),
    ]
    assert [r.namespace for r in span_records(groups, SpanLimits(default_namespace="fallback"), SpanCounters())] == ["k8s-ns", "svc-ns", "fallback"]


def test_calls_across_namespaces_are_dropped_and_counted() -> None:
    m = matcher()
    calls = add(
        m,
        resource_spans("orchestrator", [span(1, CLIENT, peer__service="planner")], namespace="ops"),
        resource_spans("planner", [span(2, SERVER, parent=1)], namespace="research"),
    )
    calls += m.expire(WINDOW)  # answered by the server span: no peer fallback either
    assert calls == []
    assert m.counters.cross_namespace == 1


def test_peer_hostname_in_another_namespace_is_dropped() -> None:
    m = matcher()
    add(
        m,
        resource_spans("planner", [span(9, SERVER)], namespace="research"),
        resource_spans(
            "orchestrator", [span(1, CLIENT, server__address="planner.research.svc")], namespace="ops"
        ),
    )
    assert m.expire(WINDOW) == []
    assert m.counters.cross_namespace == 1


def test_spans_without_a_service_name_are_skipped() -> None:
    assert list(span_records([resource_spans(None, [span(1)])], SpanLimits(), SpanCounters())) == []


def test_exporter_retries_do_not_count_a_call_twice() -> None:
    m = matcher()
    groups = (
        resource_spans("orchestrator", [span(1, CLIENT)]),
        resource_spans("planner", [span(2, SERVER, parent=1)]),
    )
    first = add(m, *groups)
    again = add(m, *groups, now=1.0)
    assert len(first) == 1
    assert again == []
    assert m.counters.duplicate_spans == 2


def test_full_index_evicts_the_oldest_and_retires_it_through_peer_attributes() -> None:
    m = matcher(max_indexed_spans=10)
    add(m, resource_spans("orchestrator", [span(1, CLIENT, peer__service="planner")]), now=0.0)
    calls = add(m, resource_spans("orchestrator", [span(100 + i) for i in range(100)]), now=1.0)
    assert m.indexed_spans == 10
    assert m.counters.evicted_indexed == 91
    assert edges(calls) == [("team", "orchestrator", "planner", "peer")]


def test_full_pending_buffer_evicts_the_oldest_children() -> None:
    m = matcher(max_pending_spans=5)
    for i in range(100):
        add(m, resource_spans("planner", [span(1000 + i, SERVER, parent=i)]), now=float(i) / 100)
    assert m.pending_spans == 5
    assert m.counters.evicted_pending == 95
    # The survivors are the newest: their parents still match.
    assert edges(add(m, resource_spans("orchestrator", [span(99, CLIENT)]), now=2.0)) == [
        ("team", "orchestrator", "planner", "pair")
    ]
    assert edges(add(m, resource_spans("orchestrator", [span(0, CLIENT)]), now=2.0)) == []


def test_known_services_are_bounded() -> None:
    m = matcher(max_known_services=2)
    add(
        m,
        resource_spans("planner", [span(1)]),
        resource_spans("a", [span(2)]),
        resource_spans("b", [span(3)]),
    )
    add(m, resource_spans("orchestrator", [span(4, CLIENT, server__address="planner")]))
    assert m.expire(WINDOW) == []  # planner was forgotten first
    assert m.counters.unresolved_peers == 1


def call(source: str, destination: str, latency_ms: float, size_bytes: int = 0) -> Call:
    return Call("team", source, destination, "pair", latency_ms / 1000, size_bytes)


def test_window_turns_calls_into_rates_busiest_first() -> None:
    w = EdgeWindow(max_edges=10, latency_samples_per_edge=16)
    for latency in (10, 20, 30):
        w.add(call("orchestrator", "researcher", latency, 100))
    w.add(call("orchestrator", "planner", 5, 50))
    samples = w.drain(elapsed_seconds=2.0)
    assert [(s.source, s.destination) for s in samples] == [
        ("orchestrator", "researcher"),
        ("orchestrator", "planner"),
    ]
    assert samples[0].requests_per_second == pytest.approx(1.5)
    assert samples[0].bytes_per_second == pytest.approx(150)
    assert samples[0].p50_latency_ms == pytest.approx(20)
    assert {s.origin for s in samples} == {"otlp"}
    assert w.drain(1.0) == []  # drained


def test_window_bounds_edges_and_latency_samples() -> None:
    w = EdgeWindow(max_edges=2, latency_samples_per_edge=8)
    for i in range(1000):
        w.add(call("a", "b", latency_ms=i % 10))
    w.add(call("a", "c", 1))
    w.add(call("a", "d", 1))
    assert w.dropped_calls == 1
    assert all(len(t.latency_samples_seconds) <= 8 for t in w._tallies.values())
    samples = w.drain(1.0)
    assert [(s.destination, s.requests_per_second) for s in samples] == [("b", 1000.0), ("c", 1.0)]
    assert samples[0].p50_latency_ms is not None
    assert 0 <= samples[0].p50_latency_ms <= 9
