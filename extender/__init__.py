"""The kube-scheduler extender: filter and prioritize verbs over the cluster cache.

Contract: kube-scheduler extender v1 JSON (PascalCase keys) in, ExtenderFilterResult or
HostPriorityList (scores 0..10) out. Requests are answered from memory (`state`), never from
Prometheus or the API server; the cache is filled by watches (cluster mode) or files (offline).
Flow inside: wire (decode) -> placement (gather arrays) -> scoring (pure numpy) -> wire (encode).
"""
