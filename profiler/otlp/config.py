"""The OTLP receiver's one config object: every default in one place, each bound a number you can read."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class OtlpReceiverConfig(BaseModel):
    """Where to listen, how much to accept, and how long to wait for the other side of a call.

    Every buffer is bounded by a count, so the receiver's memory has a ceiling no matter how much
    traffic arrives: roughly max_indexed_spans x ~530 B (tracemalloc, the benchmark's spans) plus
    max_concurrent_requests x max_request_bytes of request buffers; waiting children are mostly
    index entries already.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Loopback by default: the receiver has no authentication, so exposing it is a deliberate act.
    host: str = "127.0.0.1"
    # 4317 is the OTLP/gRPC port every SDK exporter sends to by default; 0 picks a free port (tests).
    port: int = Field(default=4317, ge=0, le=65535)
    # Same as the Collector's OTLP receiver default (max_recv_msg_size_mib: 4): an SDK's batch of
    # 512 spans is ~100-300 KiB, so only a misconfigured or hostile client comes near it.
    max_request_bytes: int = Field(default=4 * MIB, gt=0)
    # Decoding and matching hold the GIL, so more threads than cores only add contention.
    worker_threads: int = Field(default=2, ge=1)
    # RPCs admitted at once (running + queued for a worker); beyond it gRPC answers
    # RESOURCE_EXHAUSTED and OTLP exporters retry with backoff. Bounds request buffers in memory.
    max_concurrent_requests: int = Field(default=16, ge=1)
    # How long a span waits for the other side of its call: a parent for a child that arrived
    # first, a remote child for a CLIENT span before falling back to its peer attributes. SDKs
    # export every 5 s and agent calls (LLM round trips) last tens of seconds, so one minute
    # matches nearly all calls while keeping peer-only edges at most a minute late.
    match_window_seconds: float = Field(default=60.0, gt=0)
    # Recent spans kept as possible parents (~530 B each: ~50 MiB). At 1,000 spans/s this holds
    # 100 s, more than the match window; above that rate the oldest go first (counted).
    max_indexed_spans: int = Field(default=100_000, ge=1)
    # Children whose remote parent has not arrived yet. Only spans whose parent may live in another
    # process wait here (SERVER/CONSUMER entry spans, in practice), a small share of all spans.
    max_pending_spans: int = Field(default=20_000, ge=1)
    # service.name values seen per namespace, used to map server.address to an agent.
    max_known_services: int = Field(default=10_000, ge=1)
    # Distinct (namespace, from, to) edges per collect window; more would be a label explosion in
    # the AgentGraph too. Calls on further new edges are dropped and counted.
    max_edges: int = Field(default=10_000, ge=1)
    # Latency reservoir per edge: the median of 128 uniform samples is within ~±9% (rank) of the
    # true median, plenty for a placement hint, at 1 KiB per edge.
    latency_samples_per_edge: int = Field(default=128, ge=1)
    # Namespace of spans whose resource has neither k8s.namespace.name nor service.namespace.
    default_namespace: str = Field(default="default", min_length=1)
