"""kube-scheduler extender v1 wire format (k8s.io/kube-scheduler/extender/v1).

Go encodes these structs without JSON tags, so keys are the Go field names (PascalCase). Node items
stay as raw JSON so that a Nodes-mode filter reply hands kube-scheduler back exactly the objects it
sent, without re-encoding them.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from extender.objects import Node, Pod


class WireError(ValueError):
    """The request is not a valid ExtenderArgs; the message names the field."""


class _NodeListIn(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _ExtenderArgs(msgspec.Struct):
    Pod: msgspec.Raw = msgspec.Raw()  # Raw cannot be in a union; empty means absent
    Nodes: _NodeListIn | None = None
    NodeNames: list[str] | None = None


class _NodeListOut(msgspec.Struct):
    items: list[msgspec.Raw]
    apiVersion: str = "v1"
    kind: str = "NodeList"
    metadata: dict[str, str] = {}


class _FilterResult(msgspec.Struct, omit_defaults=False):
    Nodes: _NodeListOut | None
    NodeNames: list[str] | None
    FailedNodes: dict[str, str]
    FailedAndUnresolvableNodes: dict[str, str]
    Error: str = ""


class HostPriority(msgspec.Struct, array_like=False):
    Host: str
    Score: int


@dataclass(frozen=True, slots=True)
class ExtenderArgs:
    pod: Pod
    node_names: list[str] | None  # nodeCacheCapable: true
    node_items: list[msgspec.Raw] | None  # nodeCacheCapable: false (full Node objects)

    @property
    def cache_mode(self) -> bool:
        return self.node_items is None


_args_decoder = msgspec.json.Decoder(_ExtenderArgs)
_pod_decoder = msgspec.json.Decoder(Pod)
_node_decoder = msgspec.json.Decoder(Node)
_encoder = msgspec.json.Encoder()


def decode_args(body: bytes) -> ExtenderArgs:
    try:
        args = _args_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise WireError(f"invalid ExtenderArgs: {exc}") from None
    if not args.Pod or bytes(args.Pod) == b"null":
        raise WireError("invalid ExtenderArgs: missing `Pod`")
    try:
        pod = _pod_decoder.decode(args.Pod)
    except msgspec.DecodeError as exc:
        raise WireError(f"invalid Pod: {_at(exc, '$.Pod')}") from None
    if not pod.metadata.name:
        raise WireError("invalid Pod: missing `metadata.name` - at `$.Pod.metadata.name`")
    if args.NodeNames is not None:
        return ExtenderArgs(pod=pod, node_names=args.NodeNames, node_items=None)
    if args.Nodes is not None:
        return ExtenderArgs(pod=pod, node_names=None, node_items=args.Nodes.items or [])
    raise WireError("invalid ExtenderArgs: neither `Nodes` nor `NodeNames` is set")


def decode_nodes(items: list[msgspec.Raw]) -> list[Node]:
    nodes = []
    for i, raw in enumerate(items):
        try:
            node = _node_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise WireError(f"invalid Node: {_at(exc, f'$.Nodes.items[{i}]')}") from None
        if not node.metadata.name:
            raise WireError(f"invalid Node: missing `metadata.name` - at `$.Nodes.items[{i}]`")
        nodes.append(node)
    return nodes


def _at(exc: msgspec.DecodeError, prefix: str) -> str:
    # msgspec paths start at `$` of the sub-document; re-root them at the request body.
    return str(exc).replace("`$", f"`{prefix}", 1)


def encode_filter(
    args: ExtenderArgs,
    passed: list[int],
    failed: dict[str, str],
    unresolvable: dict[str, str],
) -> bytes:
    """Answer in the request's mode: with nodeCacheCapable=false kube-scheduler reads only
    `Nodes`, and a reply carrying only NodeNames would silently drop every node."""
    if args.node_items is None:
        names = args.node_names or []
        result = _FilterResult(None, [names[i] for i in passed], failed, unresolvable)
    else:
        items = args.node_items
        result = _FilterResult(_NodeListOut([items[i] for i in passed]), None, failed, unresolvable)
    return _encoder.encode(result)


def encode_priorities(names: list[str], scores: list[int]) -> bytes:
    return _encoder.encode(list(map(HostPriority, names, scores)))


def encode_error_result(message: str) -> bytes:
    return _encoder.encode({"error": message})
