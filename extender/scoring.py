"""Pure scoring and filtering terms over candidate nodes.

Every function takes plain numpy arrays indexed by candidate (or by cache slot) and returns an
array, so each term is testable with a handful of numbers and costs O(candidates + peer pods).
Terms return values in [0, 1] meaning "how good is this node for this term"; `combine` turns them
into the extender's 0..10 integer scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MAX_EXTENDER_PRIORITY = 10  # k8s.io/kube-scheduler/extender/v1.MaxExtenderPriority

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class PeerPlacement:
    """Where one graph neighbour runs: per node hosting its pods, that node's position among the
    candidates (-1 if it is not one), how many of its pods run there, and the node's zone id."""

    weight: float
    positions: IntArray
    counts: FloatArray
    zones: IntArray


def communication(
    cand_zones: IntArray,
    peers: Sequence[PeerPlacement],
    same_zone_fraction: float,
    n_zones: int,
) -> FloatArray:
    """Expected share of this pod's weighted traffic that stays close, per candidate.

    For each peer agent, traffic is assumed to spread evenly over its pods (a Service's default
    load balancing), so a candidate scores weight * (pods on that node + f * other pods in its
    zone) / all pods of the peer. Peers run on few nodes: the zone part is one gather over
    candidates, the same-node part a sparse addition at the peers' own nodes. Zone id -1 (no zone
    label) indexes the spare last element of the zone accumulator, which stays 0; a candidate
    without a zone gets full credit for pods on itself and no zone credit.
    """
    zone_acc = np.zeros(n_zones + 1)
    shares = []
    for peer in peers:
        total = peer.counts.sum()
        share = peer.counts * (peer.weight / total) if total > 0 else np.zeros_like(peer.counts)
        np.add.at(zone_acc, peer.zones, share)
        shares.append(share)
    zone_acc[-1] = 0.0
    result: FloatArray = same_zone_fraction * zone_acc[cand_zones]
    for peer, share in zip(peers, shares, strict=True):
        here = peer.positions >= 0
        pos = peer.positions[here]
        # the zone part above already credited f of a same-node pod when the candidate's zone is
        # the one the peer was counted in (a Nodes-mode request may carry fresher labels)
        zone = cand_zones[pos]
        credited = (zone >= 0) & (zone == peer.zones[here])
        missing = np.where(credited, 1.0 - same_zone_fraction, 1.0)
        np.add.at(result, pos, share[here] * missing)
    return result


def spread(same_agent_counts: FloatArray) -> FloatArray:
    """Replicas of one agent avoid sharing a node: 1 where none run, 0 on the most crowded."""
    most = same_agent_counts.max(initial=0.0)
    if most <= 0:
        return np.ones_like(same_agent_counts)
    result: FloatArray = 1.0 - same_agent_counts / most
    return result


def gpu_preference(pod_gpus: float, gpu_alloc: FloatArray, gpu_free: FloatArray) -> FloatArray:
    """Non-GPU pods avoid GPU nodes; GPU pods prefer the tightest fit (least fragmentation).

    Tightest fit is requested/free: a node left with no idle GPU scores 1.
    """
    if pod_gpus <= 0:
        return np.where(gpu_alloc > 0, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gpu_free >= pod_gpus, pod_gpus / gpu_free, 0.0)


def gpu_fits(pod_gpus: float, gpu_free: FloatArray) -> NDArray[np.bool_]:
    if pod_gpus <= 0:
        return np.ones(gpu_free.shape, dtype=bool)
    return gpu_free >= pod_gpus


def peaks_over(pod_peak: float, peak_sum: FloatArray, allocatable: FloatArray) -> NDArray[np.bool_]:
    """Spike-aware fit of one resource: True where the predicted peaks of the node's pods plus
    this pod's exceed allocatable. NaN allocatable (unknown) is never exceeded: comparisons with
    NaN are False, and the built-in NodeResourcesFit still checks requests there."""
    result: NDArray[np.bool_] = peak_sum + pod_peak > allocatable
    return result


def spike_correlation(correlated_on_node: FloatArray) -> FloatArray:
    """1 on nodes hosting no agent whose usage correlates with this pod's, falling to 1 - c for
    the most correlated agent already there (c in [0, 1]): one agent spiking with ours is enough
    to risk both peaking at once, however many uncorrelated pods sit beside it."""
    result: FloatArray = 1.0 - correlated_on_node
    return result


def hosts_peer(cand_slots: IntArray, peer_slots: IntArray) -> NDArray[np.bool_]:
    """Required co-location: the candidate already runs a pod of the peer."""
    return np.isin(cand_slots, peer_slots) & (cand_slots >= 0)


def normalized(term: FloatArray) -> FloatArray | None:
    """Scale a raw term so the best candidate gets 1; None when no candidate has any signal."""
    best = term.max(initial=0.0)
    if best <= 0:
        return None
    result: FloatArray = term / best
    return result


def weighted_mean(terms: Mapping[str, FloatArray], weights: Mapping[str, float], n: int) -> FloatArray:
    """Weighted mean of the applicable terms, in [0, 1] (0 everywhere when no term weighs)."""
    total_weight = sum(weights[name] for name in terms)
    acc = np.zeros(n)
    if total_weight <= 0:
        return acc
    for name, values in terms.items():
        acc += weights[name] * values
    result: FloatArray = acc / total_weight
    return result


def combine(terms: Mapping[str, FloatArray], weights: Mapping[str, float], n: int) -> NDArray[np.int64]:
    """Weighted mean of the applicable terms, as 0..10 integers (the extender's score range)."""
    return np.rint(weighted_mean(terms, weights, n) * MAX_EXTENDER_PRIORITY).astype(np.int64)


def keep_best(values: FloatArray, keep: int, offset: int) -> NDArray[np.intp]:
    """Positions of the `keep` best `values` (all of them, in order, when there are no more).

    Ties are common (a pod without placed peers scores every node alike) and are broken by
    position counted from `offset`, a per-pod rotation: kube-scheduler sends the nodes in much the
    same order for every pod when it scores them all, so breaking ties by that order alone would
    hand every tied pod the same first nodes and leave the rest of the cluster idle."""
    n = values.size
    if keep <= 0 or n <= keep:
        return np.arange(n)
    rotation = (np.arange(n) - offset) % n
    order: NDArray[np.intp] = np.lexsort((rotation, -values))[:keep]
    return np.sort(order)
