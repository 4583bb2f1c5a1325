"""OTLP trace receiver: OpenTelemetry spans in, agent-to-agent `EdgeSample`s (origin "otlp") out.

Contract: `OtlpReceiver(OtlpReceiverConfig(...))` is an `EdgeSource`; `start()` returns the bound
port, `collect()` returns per-second rates since the previous collect, `stop(grace_seconds)` ends
it. Agents are OTel `service.name`s, scoped by `k8s.namespace.name` (else `service.namespace`).
Inside, data flows spans (protobuf -> records) -> span_edges (records -> calls) -> window (calls
-> rates). For small clusters and tests; fleets use the Collector's servicegraph connector
(docs/profiler-otlp.md).
"""

from profiler.otlp.config import OtlpReceiverConfig
from profiler.otlp.receiver import OtlpReceiver

__all__ = ["OtlpReceiver", "OtlpReceiverConfig"]
