"""Wire-format cases that the API tests do not reach directly."""

from __future__ import annotations

import json

import msgspec
import numpy as np
import pytest

from extender import wire


@pytest.mark.parametrize(
    "names",
    [
        ["node-1", "node-2", "node-3", "gpu-1.example.com"],
        ["only-one"],
        [f"node-{i:05d}" for i in range(5000)],
    ],
)
def test_priority_template_is_exactly_the_pairs(names: list[str]) -> None:
    scores = np.random.default_rng(len(names)).integers(0, 11, len(names))
    body = wire.encode_priorities(names, scores, wire.PriorityTemplate(names))
    decoded = json.loads(body)
    assert [(p["Host"], p["Score"]) for p in decoded] == list(zip(names, scores.tolist(), strict=True))
    assert all(set(p) == {"Host", "Score"} for p in decoded)


def test_template_writes_scores_as_two_characters() -> None:
    body = wire.encode_priorities(["a", "b"], np.array([7, 10]), wire.PriorityTemplate(["a", "b"]))
    # whitespace before a number is valid JSON (Go's encoding/json accepts it like any parser)
    assert body == b'[{"Host":"a","Score": 7},{"Host":"b","Score":10}]'


def test_template_is_reused_across_score_vectors() -> None:
    names = ["a", "bb", "ccc"]
    template = wire.PriorityTemplate(names)
    for scores in ([0, 5, 10], [10, 10, 10], [3, 0, 7]):
        decoded = json.loads(wire.encode_priorities(names, np.array(scores), template))
        assert [p["Score"] for p in decoded] == scores


def test_names_needing_escapes_take_the_general_encoder() -> None:
    names = ['a"quoted', "back\\slash", "ctrl\x01", "ünïcode"]
    assert not any(wire.json_safe([n]) for n in names)
    decoded = json.loads(wire.encode_priorities(names, np.array([1, 2, 3, 4]), None))
    assert [(p["Host"], p["Score"]) for p in decoded] == list(zip(names, [1, 2, 3, 4], strict=True))


def test_json_safe() -> None:
    assert wire.json_safe(["node-1", "gpu-a1.zone-a.example.com"])
    assert not wire.json_safe(["ünïcode.example"])  # template offsets are byte offsets: ASCII only
    assert not wire.json_safe(['a"b'])
    assert not wire.json_safe(["a\\b"])
    assert not wire.json_safe(["a\nb"])


def test_null_pod_and_null_node_names_are_absent() -> None:
    with pytest.raises(wire.WireError, match="missing `Pod`"):
        wire.decode_args(b'{"Pod": null, "NodeNames": []}')
    with pytest.raises(wire.WireError, match="neither"):
        wire.decode_args(
            b'{"Pod": {"metadata": {"name": "p"}, "spec": {}}, "NodeNames": null, "Nodes": null}'
        )


def test_node_names_type_errors_are_rooted_at_the_field() -> None:
    with pytest.raises(wire.WireError, match=r"\$\.NodeNames\[1\]"):
        wire.decode_node_names(b'["a", 2]')


DEEP = 100_000
POD = b'{"metadata": {"name": "p"}, "spec": {}}'


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b'{"Pod": ' + b"[" * DEEP + b"]" * DEEP + b', "NodeNames": []}', "ExtenderArgs"),
        (b'{"Pod": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b', "NodeNames": []}', "ExtenderArgs"),
        (b'{"Pod": ' + POD + b', "NodeNames": ' + b"[" * DEEP, "ExtenderArgs"),  # truncated, too
        (b'{"Pod": ' + POD + b', "Nodes": {"items": [' + b"[" * DEEP + b"]" * DEEP + b"]}}", "ExtenderArgs"),
        (b'{"Unknown": ' + b"[" * DEEP + b"]" * DEEP + b"}", "ExtenderArgs"),  # skipped, still bounded
    ],
)
def test_deep_nesting_is_a_wire_error(body: bytes, what: str) -> None:
    with pytest.raises(wire.WireError, match=f"invalid {what}: JSON nested too deeply"):
        wire.decode_args(body)


def test_deep_nesting_in_node_items_and_binding_args_is_a_wire_error() -> None:
    # The node items are decoded apart from the envelope (Raw fields), and an unknown field is
    # skipped level by level: each decode is bounded on its own.
    raw = msgspec.Raw(b'{"unknown": ' + b"[" * DEEP + b"]" * DEEP + b"}")
    with pytest.raises(
        wire.WireError, match=r"invalid Node at `\$\.Nodes\.items\[0\]`: JSON nested too deeply"
    ):
        wire.decode_nodes([raw])
    with pytest.raises(wire.WireError, match="invalid ExtenderBindingArgs: JSON nested too deeply"):
        wire.decode_binding_args(b'{"Extra": ' + b"[" * DEEP + b"]" * DEEP + b"}")


def test_real_objects_are_far_from_the_nesting_bound() -> None:
    """Kubernetes objects nest a few dozen levels at most (managedFields included): a pod with a
    field nested 200 levels deep still decodes, so the bound refuses only abuse."""
    body = b'{"Pod": {"metadata": {"name": "p", "annotations": {}}, "spec": {"x": ' + b"[" * 200
    body += b"]" * 200 + b'}}, "NodeNames": ["n"]}'
    args = wire.decode_args(body)
    assert args.pod.metadata.name == "p"
    assert wire.decode_node_names(args.node_names_raw or b"") == ["n"]


@pytest.mark.parametrize(
    ("decode", "body", "what"),
    [
        (wire.decode_args, b'{"Pod": {"metadata": {"name": "p\xff"}, "spec": {}}, "NodeNames": []}', "Pod"),
        (
            wire.decode_args,
            b'{"Pod": {"metadata": {"name": "p", "labels": {"\xc3": "v"}}, "spec": {}}}',
            "Pod",
        ),
        (wire.decode_node_names, b'["node-a1", "\x80"]', "ExtenderArgs"),
        (
            wire.decode_binding_args,
            b'{"PodName": "\x80p", "PodNamespace": "ns", "Node": "n"}',
            "ExtenderBindingArgs",
        ),
    ],
)
def test_strings_that_are_not_utf8_are_a_wire_error(decode, body: bytes, what: str) -> None:
    # msgspec raises UnicodeDecodeError, no DecodeError: /bind answered uvicorn's bare 500
    with pytest.raises(wire.WireError, match=f"invalid {what}: not UTF-8 at byte"):
        decode(body)
