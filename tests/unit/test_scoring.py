import numpy as np
import pytest

from extender import scoring
from extender.scoring import PeerPlacement


def peer(weight, positions, counts, zones):
    """A peer's pods: per hosting node, its candidate position (-1: not a candidate) and zone."""
    return PeerPlacement(
        weight, np.array(positions, np.intp), np.array(counts, float), np.array(zones, np.intp)
    )


def test_communication_same_node_beats_same_zone_beats_elsewhere() -> None:
    # candidates 0,1 in zone 0; candidate 2 in zone 1; the peer runs on candidate 0
    got = scoring.communication(np.array([0, 0, 1]), [peer(1.0, [0], [1], [0])], 0.5, n_zones=2)
    assert got.tolist() == [1.0, 0.5, 0.0]


def test_communication_splits_traffic_over_peer_replicas_and_adds_peers() -> None:
    cand_zones = np.array([0, 0, 1])
    peers = [
        peer(1.0, [0, 2], [1, 1], [0, 1]),  # half the traffic to candidate 0, half to candidate 2
        peer(0.5, [1], [2], [0]),
    ]
    got = scoring.communication(cand_zones, peers, 0.5, n_zones=2)
    # c0: p1 0.5 + p2 zone 0.5*0.5 = 0.75; c1: p1 zone .5*.5 + p2 .5 = 0.75; c2: p1 .5
    np.testing.assert_allclose(got, [0.75, 0.75, 0.5])


def test_communication_peer_on_a_non_candidate_still_credits_its_zone() -> None:
    # the peer's node was filtered out (-1) but sits in zone 0 with candidate 0
    got = scoring.communication(np.array([0, 1]), [peer(1.0, [-1], [1], [0])], 0.5, n_zones=2)
    assert got.tolist() == [0.5, 0.0]


def test_communication_zoneless_nodes_count_their_own_pods_only() -> None:
    # candidates 0 and 1 have no zone; the peer runs on candidate 0
    got = scoring.communication(np.array([-1, -1, 0]), [peer(1.0, [0], [1], [-1])], 0.5, n_zones=1)
    assert got.tolist() == [1.0, 0.0, 0.0]


def test_spread_prefers_nodes_without_replicas() -> None:
    assert scoring.spread(np.array([0.0, 1.0, 2.0])).tolist() == [1.0, 0.5, 0.0]
    assert scoring.spread(np.zeros(3)).tolist() == [1.0, 1.0, 1.0]


def test_gpu_non_gpu_pods_avoid_gpu_nodes() -> None:
    got = scoring.gpu_preference(0, np.array([0.0, 8.0, 4.0]), np.array([0.0, 8.0, 0.0]))
    assert got.tolist() == [1.0, 0.0, 0.0]


def test_gpu_pods_prefer_tightest_fit() -> None:
    alloc = np.array([8.0, 8.0, 4.0, 0.0])
    free = np.array([8.0, 2.0, 1.0, 0.0])
    got = scoring.gpu_preference(2, alloc, free)
    assert got.tolist() == [0.25, 1.0, 0.0, 0.0]
    assert scoring.gpu_fits(2, free).tolist() == [True, True, False, False]
    assert scoring.gpu_fits(0, free).all()


def test_hosts_peer_ignores_unknown_slots() -> None:
    assert scoring.hosts_peer(np.array([3, -1, 5]), np.array([5, 7])).tolist() == [False, False, True]


def test_normalized_best_is_one_and_no_signal_is_none() -> None:
    assert scoring.normalized(np.array([0.0, 0.25, 0.5])).tolist() == [0.0, 0.5, 1.0]
    assert scoring.normalized(np.zeros(2)) is None


def test_combine_is_a_weighted_mean_on_0_to_10() -> None:
    terms = {"communication": np.array([1.0, 0.5, 0.0]), "gpu": np.array([1.0, 1.0, 0.0])}
    got = scoring.combine(terms, {"communication": 3.0, "gpu": 1.0, "spread": 9.0}, 3)
    assert got.tolist() == [10, 6, 0]  # (3*.5 + 1)/4*10 = 6.25 -> 6; spread not applicable
    assert scoring.combine({}, {"gpu": 1.0}, 2).tolist() == [0, 0]


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_communication_fraction_extremes(fraction: float) -> None:
    got = scoring.communication(np.array([0, 0]), [peer(1.0, [0], [1], [0])], fraction, 1)
    assert got.tolist() == [1.0, fraction]


def test_keep_best_keeps_the_best_values_and_rotates_ties_by_the_offset() -> None:
    values = np.array([0.3, 0.9, 0.5, 0.9, 0.5, 0.5])
    assert scoring.keep_best(values, 3, 0).tolist() == [1, 2, 3]  # 0.9, 0.9, then the first 0.5
    assert scoring.keep_best(values, 3, 3).tolist() == [1, 3, 4]  # ties counted from position 3
    assert scoring.keep_best(values, 3, 5).tolist() == [1, 3, 5]
    assert scoring.keep_best(values, 0, 2).tolist() == list(range(6))  # off
    assert scoring.keep_best(values, 6, 2).tolist() == list(range(6))  # no more than asked for


def test_weighted_mean_is_combine_before_rounding() -> None:
    terms = {"a": np.array([1.0, 0.5, 0.0]), "b": np.array([0.0, 0.5, 1.0])}
    weights = {"a": 3.0, "b": 1.0}
    mean = scoring.weighted_mean(terms, weights, 3)
    assert mean.tolist() == [0.75, 0.5, 0.25]
    assert scoring.combine(terms, weights, 3).tolist() == np.rint(mean * 10).tolist()
