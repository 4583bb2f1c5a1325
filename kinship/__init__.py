"""Kinship: relation-aware placement for fleets of AI agents on Kubernetes.

This package holds the contracts shared by every component (agent identity, the AgentGraph model)
and the `kinship` command line. Components live beside it: `extender` scores nodes; later issues
add `profiler` (telemetry -> graph) and `predictor` (usage -> right-sized requests).
"""

__version__ = "0.1.0"
