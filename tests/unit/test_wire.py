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
        ['a"quoted', "back\\slash", "ctrl\x01", "plain", "ünïcode"],  # the general encoder's path
        ["only-one"],
        [],
    ],
)
def test_grouped_priorities_are_exactly_the_pairs(names: list[str]) -> None:
    scores = np.arange(len(names), dtype=np.int64) % 11
    decoded = json.loads(wire.encode_priorities(names, scores))
    assert sorted((p["Host"], p["Score"]) for p in decoded) == sorted(
        zip(names, scores.tolist(), strict=True)
    )
    assert all(set(p) == {"Host", "Score"} for p in decoded)


def test_grouped_priorities_at_scale_match_the_general_encoder() -> None:
    names = [f"node-{i:05d}" for i in range(5000)]
    scores = np.random.default_rng(3).integers(0, 11, len(names))
    fast = json.loads(wire.encode_priorities(names, scores, names_safe=True))
    general = json.loads(
        msgspec.json.encode([{"Host": n, "Score": s} for n, s in zip(names, scores.tolist(), strict=True)])
    )
    assert sorted(map(tuple, (p.values() for p in fast))) == sorted(map(tuple, (p.values() for p in general)))


def test_json_safe() -> None:
    assert wire.json_safe(["node-1", "ünïcode.example"])
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
