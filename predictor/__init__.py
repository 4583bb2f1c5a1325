"""Predictor: usage history in, right-sized requests and predicted peaks per agent out.

Contract: usage is a long table `timestamp,series,cpu_millicores,memory_bytes`; recommenders follow
scikit-learn conventions; the output is AgentProfile `status` (server-side apply) or YAML files that
the extender's offline mode reads (`--profile`).
"""
