"""Profiler: mesh telemetry in, the observed part of each AgentGraph out.

Contract: sources (Prometheus query sets, the OTLP trace receiver) each yield `EdgeSample`s, rates
between two agents of one namespace over their own window; the graph model smooths and merges them;
the output writes `status.observedEdges` of AgentGraph objects (server-side apply) or YAML files
that the extender's offline mode reads. The profiler never touches `spec`.
"""
