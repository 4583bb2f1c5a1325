"""Spans in, agent-to-agent calls out: match the two sides of each call across Export requests.

One call between agents shows up as a pair of spans in different processes: a parent in the
caller and a child in the callee (CLIENT -> SERVER, PRODUCER -> CONSUMER, or whatever kinds an
instrumentation chose), linked by the child's parent span id, or for a consumer by its span links.
The two sides are exported by different SDKs, in different requests, in any order. So every span
is kept for a while in a bounded index (span id -> agent), and a child whose remote parent has not
arrived yet waits in a bounded buffer keyed by that parent's id.

Counting rules, each call counted once:
- a pair of spans of different services, matched by parent id or (for CONSUMER spans) by link,
  counts parent's service -> child's service; the caller-side span gives latency and size;
- a CLIENT/PRODUCER span that leaves the index (its match window ran out, or it was evicted)
  without a remote child counts caller -> its `peer.service`, else -> the agent its
  `server.address`/`net.peer.name` names: the server side was not instrumented. Deciding only at
  retirement is what prevents double counting: a matched span is never counted again, and a child
  arriving after its parent retired finds nothing to match.
- self-calls and calls across namespaces are dropped (counted): scope is the namespace.

Both buffers are bounded by span count and by bytes (`record_bytes`, an estimate of what a record
keeps alive): the count alone let long attributes inflate every entry.

No I/O and no clock of its own: the caller passes `now` (monotonic seconds), so tests drive time.
"""

from __future__ import annotations

import ipaddress
import sys
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from profiler.otlp.spans import CALLER_KINDS, KIND_CONSUMER, KIND_SERVER, SpanRecord

_ENTRY_KINDS = frozenset({KIND_SERVER, KIND_CONSUMER})
# What holding a record costs beyond its own objects: the OrderedDict slot and link node, the
# (arrival, record) tuple and its float. Calibrated with tracemalloc (benchmarks/bench_otlp.py).
_ENTRY_OVERHEAD = 200


def record_bytes(record: SpanRecord) -> int:
    """Bytes one indexed record keeps alive, counted high: the service and namespace strings are
    shared by the spans of one resource, but a sender that gives every span its own resource can
    make them unique, so each record is charged for them."""
    size = _ENTRY_OVERHEAD + sys.getsizeof(record) + sys.getsizeof(record.span_id)
    for refs in (record.remote_refs, record.local_refs):
        if refs:
            size += sys.getsizeof(refs) + sum(map(sys.getsizeof, refs))
    for text in (record.service, record.namespace, record.peer_service, record.peer_host):
        if text is not None:
            size += sys.getsizeof(text)
    return size


@dataclass(frozen=True, slots=True)
class Call:
    """One call from one agent to another, as matched from spans."""

    namespace: str
    source: str
    destination: str
    rule: str  # "pair" (both sides seen) or "peer" (caller side and its peer attributes only)
    latency_seconds: float
    size_bytes: int


@dataclass(slots=True)
class MatchCounters:
    """Cumulative counts for metrics; ints only, read at scrape time."""

    duplicate_spans: int = 0  # exporter retries re-send spans already indexed
    evicted_indexed: int = 0  # index full: oldest span dropped before its match window ended
    evicted_pending: int = 0  # pending buffer full: oldest waiting children dropped
    evicted_indexed_bytes: int = 0  # record_bytes of the spans above
    evicted_pending_bytes: int = 0
    orphaned: int = 0  # children whose parent never arrived within the match window
    self_loops: int = 0
    cross_namespace: int = 0
    unresolved_peers: int = 0  # caller-only spans naming a host that is no known agent


class CallMatcher:
    """Bounded state for matching spans into calls; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        match_window_seconds: float,
        max_indexed_spans: int,
        max_pending_spans: int,
        max_known_services: int,
        max_indexed_bytes: int = 64 * 1024 * 1024,
        max_pending_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.match_window_seconds = match_window_seconds
        self.max_indexed_spans = max_indexed_spans
        self.max_pending_spans = max_pending_spans
        self.max_indexed_bytes = max_indexed_bytes
        self.max_pending_bytes = max_pending_bytes
        self._indexed_bytes = 0
        self._pending_bytes = 0
        self.max_known_services = max_known_services
        self.counters = MatchCounters()
        # Insertion order is arrival order, so the oldest entry is always first.
        self._index: OrderedDict[bytes, tuple[float, SpanRecord]] = OrderedDict()
        self._pending: OrderedDict[bytes, tuple[float, list[SpanRecord]]] = OrderedDict()
        self._pending_spans = 0
        # (namespace, lowercased service) -> service as reported: the agents a hostname may name.
        self._known: OrderedDict[tuple[str, str], str] = OrderedDict()

    @property
    def indexed_spans(self) -> int:
        return len(self._index)

    @property
    def pending_spans(self) -> int:
        return self._pending_spans

    @property
    def indexed_bytes(self) -> int:
        return self._indexed_bytes

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def add(self, records: Iterable[SpanRecord], now: float) -> list[Call]:
        """Index one request's spans and return the calls they complete.

        The whole request is indexed before matching, so the order of spans inside a request
        (children usually come first: they end first) does not matter.
        """
        calls = self.expire(now)
        fresh: list[SpanRecord] = []
        last_service: tuple[str, str] | None = None
        for record in records:
            if record.span_id in self._index:
                self.counters.duplicate_spans += 1
                continue
            if (record.namespace, record.service) != last_service:  # a request is mostly one resource
                last_service = (record.namespace, record.service)
                self._remember_service(*last_service)
            self._index[record.span_id] = (now, record)
            self._indexed_bytes += record_bytes(record)
            fresh.append(record)
        for record in fresh:
            waiting = self._pending.pop(record.span_id, None)
            if waiting is not None:
                self._drop_pending(waiting[1])
                for child in waiting[1]:
                    self._pair(record, child, calls)
            for ref in record.local_refs:
                found = self._index.get(ref)
                if found is not None:
                    self._pair(found[1], record, calls)
            for ref in record.remote_refs:
                found = self._index.get(ref)
                if found is not None:
                    self._pair(found[1], record, calls)
                else:
                    self._wait_for(ref, record, now)
        # Evict after matching, so that a span is never retired and then matched in one request.
        while len(self._index) > self.max_indexed_spans or self._indexed_bytes > self.max_indexed_bytes:
            _, (_, old) = self._index.popitem(last=False)
            size = record_bytes(old)
            self._indexed_bytes -= size
            self.counters.evicted_indexed += 1
            self.counters.evicted_indexed_bytes += size
            self._retire(old, calls)
        return calls

    def expire(self, now: float) -> list[Call]:
        """Retire spans and waiting children older than the match window."""
        calls: list[Call] = []
        deadline = now - self.match_window_seconds
        while self._index:
            span_id, (arrived, record) = next(iter(self._index.items()))
            if arrived > deadline:
                break
            del self._index[span_id]
            self._indexed_bytes -= record_bytes(record)
            self._retire(record, calls)
        while self._pending:
            ref, (arrived, children) = next(iter(self._pending.items()))
            if arrived > deadline:
                break
            del self._pending[ref]
            self._drop_pending(children)
            self.counters.orphaned += len(children)
        return calls

    def _wait_for(self, ref: bytes, child: SpanRecord, now: float) -> None:
        entry = self._pending.get(ref)
        if entry is None:
            self._pending[ref] = (now, [child])
        else:
            entry[1].append(child)
        self._pending_spans += 1
        self._pending_bytes += record_bytes(child)
        while self._pending_spans > self.max_pending_spans or self._pending_bytes > self.max_pending_bytes:
            _, (_, dropped) = self._pending.popitem(last=False)
            self.counters.evicted_pending += len(dropped)
            self.counters.evicted_pending_bytes += self._drop_pending(dropped)

    def _drop_pending(self, children: list[SpanRecord]) -> int:
        """Forget children that left the pending buffer; returns the bytes they were charged."""
        size = sum(map(record_bytes, children))
        self._pending_spans -= len(children)
        self._pending_bytes -= size
        return size

    def _pair(self, parent: SpanRecord, child: SpanRecord, calls: list[Call]) -> None:
        if child.service == parent.service:
            # Nested spans of one process are not calls; a SERVER/CONSUMER child is a self-call,
            # and it answers the parent so that the parent's peer attributes do not count it.
            if child.kind in _ENTRY_KINDS:
                parent.answered = True
                self.counters.self_loops += 1
            return
        parent.answered = True
        if child.namespace != parent.namespace:
            self.counters.cross_namespace += 1
            return
        caller_side = parent if parent.kind in CALLER_KINDS else child
        calls.append(
            Call(
                namespace=parent.namespace,
                source=parent.service,
                destination=child.service,
                rule="pair",
                latency_seconds=caller_side.duration_seconds,
                size_bytes=parent.size_bytes or child.size_bytes,
            )
        )

    def _retire(self, record: SpanRecord, calls: list[Call]) -> None:
        """A span leaves the index: a caller span never answered falls back to its peer attributes."""
        if record.answered or record.kind not in CALLER_KINDS:
            return
        if record.peer_service:
            namespace, target = record.namespace, record.peer_service
        elif record.peer_host:
            resolved = self._resolve_host(record.peer_host, record.namespace)
            if resolved is None:
                self.counters.unresolved_peers += 1
                return
            namespace, target = resolved
        else:
            return
        if namespace != record.namespace:
            self.counters.cross_namespace += 1
        elif target == record.service:
            self.counters.self_loops += 1
        else:
            calls.append(
                Call(
                    record.namespace,
                    record.service,
                    target,
                    "peer",
                    record.duration_seconds,
                    record.size_bytes,
                )
            )

    def _remember_service(self, namespace: str, service: str) -> None:
        key = (namespace, service.lower())
        if key in self._known:
            self._known.move_to_end(key)
            return
        self._known[key] = service
        if len(self._known) > self.max_known_services:
            self._known.popitem(last=False)

    def _resolve_host(self, host: str, namespace: str) -> tuple[str, str] | None:
        """(namespace, agent) a Kubernetes Service hostname names, if that agent reports spans.

        Accepted forms: `svc`, `svc.ns`, `svc.ns.svc[.<cluster domain>]`, where `svc` equals the
        agent's service.name. IP addresses and other hostnames (external APIs) name no agent.
        """
        host = host.strip().rstrip(".").lower()
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            return None
        labels = host.split(".")
        if len(labels) > 2 and labels[2] != "svc":
            return None
        target_namespace = labels[1] if len(labels) > 1 else namespace
        service = self._known.get((target_namespace, labels[0]))
        return None if service is None else (target_namespace, service)
