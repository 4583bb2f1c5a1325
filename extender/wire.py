"""kube-scheduler extender v1 wire format (k8s.io/kube-scheduler/extender/v1).

Go encodes these structs without JSON tags, so keys are the Go field names (PascalCase). Node items
stay as raw JSON so that a Nodes-mode filter reply hands kube-scheduler back exactly the objects it
sent, without re-encoding them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import msgspec
import numpy as np
from numpy.typing import NDArray

from extender.objects import Node, Pod


class WireError(ValueError):
    """The request is not a valid ExtenderArgs; the message names the field."""


class _NodeListIn(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _ExtenderArgs(msgspec.Struct):
    # Raw cannot be in a union: an empty Raw means absent, b"null" means null.
    Pod: msgspec.Raw = msgspec.Raw()
    Nodes: _NodeListIn | None = None
    # Kept raw: consecutive calls usually carry the very same list, which the cache recognizes
    # by its bytes without decoding thousands of strings again.
    NodeNames: msgspec.Raw = msgspec.Raw()


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
    node_names_raw: bytes | None  # nodeCacheCapable: true (a JSON array of names)
    node_items: list[msgspec.Raw] | None  # nodeCacheCapable: false (full Node objects)


_args_decoder = msgspec.json.Decoder(_ExtenderArgs)
_names_decoder = msgspec.json.Decoder(list[str])
_pod_decoder = msgspec.json.Decoder(Pod)
_node_decoder = msgspec.json.Decoder(Node)
_encoder = msgspec.json.Encoder()
T = TypeVar("T")


def _decode(decoder: msgspec.json.Decoder[T], data: bytes | msgspec.Raw, what: str) -> T:
    """msgspec's decode, with the two input errors it raises besides DecodeError made WireErrors.

    Left alone, each was a 500 and a logged traceback per request (on /bind uvicorn's own 500):
    - nesting: msgspec bounds recursion with the interpreter's recursion limit and raises
      RecursionError (about 1,000 levels on CPython 3.11, whether the value is decoded or only
      skipped for a Raw or unknown field). It stops at that depth, so refusing a body of 100,000
      `[` costs no more than reading its first thousand levels, where a depth scan of the bytes
      beforehand would cost a pass over every valid body too;
    - a string that is not UTF-8: UnicodeDecodeError.
    """
    try:
        return decoder.decode(data)
    except RecursionError:
        raise WireError(f"invalid {what}: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise WireError(f"invalid {what}: not UTF-8 at byte {exc.start} of a string") from None


def decode_args(body: bytes) -> ExtenderArgs:
    try:
        args = _decode(_args_decoder, body, "ExtenderArgs")
    except msgspec.DecodeError as exc:
        raise WireError(f"invalid ExtenderArgs: {exc}") from None
    if not args.Pod or bytes(args.Pod) == b"null":
        raise WireError("invalid ExtenderArgs: missing `Pod`")
    try:
        pod = _decode(_pod_decoder, args.Pod, "Pod")
    except msgspec.DecodeError as exc:
        raise WireError(f"invalid Pod: {_at(exc, '$.Pod')}") from None
    if not pod.metadata.name:
        raise WireError("invalid Pod: missing `metadata.name` - at `$.Pod.metadata.name`")
    if args.NodeNames and bytes(args.NodeNames) != b"null":
        return ExtenderArgs(pod=pod, node_names_raw=bytes(args.NodeNames), node_items=None)
    if args.Nodes is not None:
        return ExtenderArgs(pod=pod, node_names_raw=None, node_items=args.Nodes.items or [])
    raise WireError("invalid ExtenderArgs: neither `Nodes` nor `NodeNames` is set")


class _BindingArgs(msgspec.Struct):
    PodName: str = ""
    PodNamespace: str = ""
    PodUID: str = ""
    Node: str = ""


class _BindingResult(msgspec.Struct, omit_defaults=False):
    Error: str = ""


@dataclass(frozen=True, slots=True)
class BindingArgs:
    namespace: str
    name: str
    uid: str
    node: str

    @property
    def key(self) -> str:
        """The cache's key for this pod, as `Pod.key` derives it."""
        return self.uid or f"{self.namespace}/{self.name}"


_binding_decoder = msgspec.json.Decoder(_BindingArgs)


def decode_binding_args(body: bytes) -> BindingArgs:
    try:
        args = _decode(_binding_decoder, body, "ExtenderBindingArgs")
    except msgspec.DecodeError as exc:
        raise WireError(f"invalid ExtenderBindingArgs: {exc}") from None
    for field in ("PodName", "PodNamespace", "Node"):
        if not getattr(args, field):
            raise WireError(f"invalid ExtenderBindingArgs: missing `{field}` - at `$.{field}`")
    return BindingArgs(args.PodNamespace, args.PodName, args.PodUID, args.Node)


def encode_binding_result(error: str = "") -> bytes:
    """ExtenderBindingResult: kube-scheduler treats a non-empty Error as a failed binding (and,
    with `ignorable: true`, falls back to its own binder)."""
    return _encoder.encode(_BindingResult(error))


def decode_node_names(raw: bytes) -> list[str]:
    try:
        return _decode(_names_decoder, raw, "ExtenderArgs")
    except msgspec.DecodeError as exc:
        raise WireError(f"invalid ExtenderArgs: {_at(exc, '$.NodeNames')}") from None


def decode_nodes(items: list[msgspec.Raw]) -> list[Node]:
    nodes = []
    for i, raw in enumerate(items):
        try:
            node = _decode(_node_decoder, raw, f"Node at `$.Nodes.items[{i}]`")
        except msgspec.DecodeError as exc:
            raise WireError(f"invalid Node: {_at(exc, f'$.Nodes.items[{i}]')}") from None
        if not node.metadata.name:
            raise WireError(f"invalid Node: missing `metadata.name` - at `$.Nodes.items[{i}]`")
        nodes.append(node)
    return nodes


def _at(exc: msgspec.DecodeError, prefix: str) -> str:
    # msgspec paths start at `$` of the sub-document; re-root them at the request body. An error
    # at the sub-document's root carries no path at all.
    text = str(exc)
    return text.replace("`$", f"`{prefix}", 1) if "`$" in text else f"{text} - at `{prefix}`"


def encode_filter(
    args: ExtenderArgs,
    names: list[str],
    passed: list[int],
    failed: dict[str, str],
    unresolvable: dict[str, str],
) -> bytes:
    """Answer in the request's mode: with nodeCacheCapable=false kube-scheduler reads only
    `Nodes`, and a reply carrying only NodeNames would silently drop every node."""
    if args.node_items is None:
        result = _FilterResult(None, [names[i] for i in passed], failed, unresolvable)
    else:
        items = args.node_items
        result = _FilterResult(_NodeListOut([items[i] for i in passed]), None, failed, unresolvable)
    return _encoder.encode(result)


def json_safe(names: list[str]) -> bool:
    """True when the names can be written into JSON as they are: ASCII with nothing to escape
    (node names are DNS subdomains, so this holds in practice)."""
    text = "".join(names)
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


_HEAD, _MID, _TAIL = '{"Host":"', '","Score":', "}"
# Scores are 0..10, written as two characters: " 7" (JSON allows whitespace before a number) or "10".
_TENS = np.frombuffer(b"          1", dtype=np.uint8)
_ONES = np.frombuffer(b"01234567890", dtype=np.uint8)


class PriorityTemplate:
    """The HostPriorityList for one list of node names, with blank two-character scores.

    kube-scheduler sends the same names pod after pod, so the JSON is laid out once and each call
    only copies it and writes two bytes per node, vectorized: tens of microseconds at 5,000 nodes
    instead of building 5,000 objects. Only for names `json_safe` accepts.
    """

    def __init__(self, names: list[str]) -> None:
        text = "[" + _HEAD + (_MID + "  " + _TAIL + "," + _HEAD).join(names) + _MID + "  " + _TAIL + "]"
        self._bytes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        lengths = np.fromiter(map(len, names), dtype=np.intp, count=len(names))
        per_item = len(_HEAD) + len(_MID) + 2 + len(_TAIL) + 1  # fixed characters of one entry
        starts = 1 + np.concatenate(([0], np.cumsum(lengths + per_item)[:-1]))
        self._offsets = starts + len(_HEAD) + lengths + len(_MID)

    def encode(self, scores: NDArray[np.int64]) -> bytes:
        out = self._bytes.copy()
        clipped = np.clip(scores, 0, 10)
        out[self._offsets] = _TENS[clipped]
        out[self._offsets + 1] = _ONES[clipped]
        return out.tobytes()


def encode_priorities(
    names: list[str], scores: NDArray[np.int64], template: PriorityTemplate | None = None
) -> bytes:
    """HostPriorityList: through the names' template when there is one, else the general encoder."""
    if template is not None and len(names):
        return template.encode(scores)
    return _encoder.encode([HostPriority(n, s) for n, s in zip(names, scores.tolist(), strict=True)])


def encode_error_result(message: str) -> bytes:
    return _encoder.encode({"error": message})
