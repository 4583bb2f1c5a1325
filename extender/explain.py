"""Why a pod would land where it lands: per-term contributions for every candidate node.

Shared by `kinship explain` (a table) and the server's debug log (plain lines), so both always
show the same numbers the scorer used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from extender.config import ExtenderConfig
from extender.offline import load_pod_file
from extender.placement import (
    TERMS,
    Candidates,
    FilterOutcome,
    NodeFit,
    PodContext,
    Priorities,
    candidates_from_names,
    keep_best,
    resolve_names,
    run_filter,
    run_prioritize,
)
from extender.scoring import MAX_EXTENDER_PRIORITY
from extender.state import ClusterState
from extender.wire import WireError
from kinship.errors import InputError
from kinship.graph import Colocation

_SHORT = {"communication": "comm", "spike_correlation": "spike corr"}


def contributions(prio: Priorities) -> dict[str, np.ndarray]:
    """Each applicable term's share of the 0..10 score (they add up to the unrounded score)."""
    total = sum(prio.weights[t] for t in prio.terms)
    if total <= 0:
        return {}
    scale = MAX_EXTENDER_PRIORITY / total
    return {t: prio.weights[t] * v * scale for t, v in prio.terms.items()}


def header_lines(ctx: PodContext, prio: Priorities | None, state: ClusterState) -> Iterator[str]:
    yield f"pod {ctx.namespace}/{ctx.name}: agent {ctx.agent or '(none: no graph terms)'}, GPUs {ctx.gpus:g}"
    if not ctx.neighbours:
        yield "  graph: no edges for this agent (communication term not applied)"
    placed = {
        nb.agent: [n for n in map(state.node_name, slots.tolist()) if n]
        for nb, slots in (prio.peers if prio else [])
    }
    expected = {
        nb.agent: [n for n in map(state.node_name, slots.tolist()) if n]
        for nb, slots in (prio.anticipated if prio else [])
    }
    for nb in ctx.neighbours:
        req = " Required" if nb.colocation is Colocation.REQUIRED else ""
        if nb.agent in placed:
            where = "runs on " + ", ".join(sorted(placed[nb.agent]))
        elif nb.agent in expected:
            nodes = ", ".join(sorted(expected[nb.agent]))
            where = f"not placed yet, its pending GPU pod expected on {nodes} (tightest GPU fit)"
        else:
            where = "runs on not placed"
        yield f"  peer {nb.agent}: weight {nb.weight:.2f}{req}; {where}"
    for r, slots in prio.relayed if prio else []:
        where = ", ".join(sorted(n for n in map(state.node_name, slots.tolist()) if n))
        yield (
            f"  peer {r.peer.agent} of {r.via} (Required, not placed yet: it will join this pod): "
            f"weight {r.peer.weight:.2f}; runs on {where}"
        )
    cpu, memory = ctx.peak
    yield (
        f"  predicted peak: cpu {cpu / 1000:g} cores (from {ctx.peak_source('cpu')}), "
        f"memory {memory / 2**30:.2f} GiB (from {ctx.peak_source('memory')})"
    )
    if ctx.profile is not None and ctx.profile.ignored:
        yield f"  AgentProfile ignored (peaks from the pod's requests): {ctx.profile.ignored}"
    for agent, coefficient, slots in prio.correlated if prio else []:
        where = ", ".join(sorted(n for n in map(state.node_name, slots.tolist()) if n))
        yield f"  correlated agent {agent}: {coefficient:.2f}; runs on {where}"
    if prio is not None:
        weights = ", ".join(f"{t}={prio.weights[t]:g}" for t in TERMS if t in prio.terms)
        yield f"  terms applied (weight): {weights or 'none'}"
        if prio.uniform:
            yield f"  same on every node, so not applied: {', '.join(prio.uniform)}"


def breakdown_lines(ctx: PodContext, cand: Candidates, prio: Priorities, state: ClusterState) -> list[str]:
    lines = list(header_lines(ctx, prio, state))
    parts = contributions(prio)
    for i in np.argsort(-prio.scores, kind="stable")[:20]:
        terms = " ".join(f"{t}={parts[t][i]:.2f}" for t in TERMS if t in parts)
        lines.append(f"  {cand.names[i]}: score {prio.scores[i]} ({terms})")
    return lines


def _share(used: float, alloc: float) -> str:
    return "?" if not np.isfinite(alloc) or alloc <= 0 else f"{used / alloc:.0%}"


def table(
    ctx: PodContext,
    cand: Candidates,
    filt: FilterOutcome,
    prio: Priorities | None,
    passed_idx: np.ndarray,
    zone_names: dict[int, str],
    fit: NodeFit,
) -> Table:
    """Candidates best first, then the filtered-out ones with the filter's reason."""
    t = Table(title=f"{ctx.namespace}/{ctx.name} ({ctx.agent or 'no agent'})", title_justify="left")
    t.add_column("node")
    t.add_column("zone")
    t.add_column("GPU free/all", justify="right")
    # the share of allocatable the predicted peaks would reach with this pod on the node
    t.add_column("peak cpu/mem", justify="right")
    cpu, memory = ctx.peak

    def peaks(i: int) -> str:
        return (
            f"{_share(fit.cpu_peak[i] + cpu, fit.cpu_alloc[i])}/"
            f"{_share(fit.mem_peak[i] + memory, fit.mem_alloc[i])}"
        )

    applied = [x for x in TERMS if prio is not None and x in prio.terms]
    for term in applied:
        t.add_column(_SHORT.get(term, term), justify="right")
    t.add_column("score", justify="right", style="bold")
    t.add_column("filter")
    parts = contributions(prio) if prio is not None else {}
    order = np.argsort(-prio.scores, kind="stable") if prio is not None else range(len(passed_idx))
    for j in order:
        i = passed_idx[j]
        cells = [f"{parts[x][j]:.2f}" for x in applied]
        score = str(prio.scores[j]) if prio is not None else "-"
        t.add_row(
            cand.names[i],
            zone_names.get(int(cand.zones[i]), "-"),
            f"{cand.gpu_free[i]:g}/{cand.gpu_alloc[i]:g}",
            peaks(int(i)),
            *cells,
            score,
            "pass",
        )
    for i in np.flatnonzero(~filt.passed):
        t.add_row(
            cand.names[i],
            zone_names.get(int(cand.zones[i]), "-"),
            f"{cand.gpu_free[i]:g}/{cand.gpu_alloc[i]:g}",
            peaks(int(i)),
            *["-"] * len(applied),
            "-",
            "[red]filtered[/red]",
        )
    return t


def filter_lines(cand: Candidates, filt: FilterOutcome) -> Iterator[str]:
    reasons = {**filt.failed, **filt.unresolvable}
    not_best = set(filt.not_best)
    for i in np.flatnonzero(~filt.passed):
        why = "fits, but not among the filter_keep_best nodes Kinship scores best"
        yield f"  {cand.names[i]}: {why if i in not_best else reasons.get(cand.names[i], 'filtered')}"


def render(
    console: Any, state: ClusterState, config: ExtenderConfig, pod_file: Path, name: str | None
) -> None:
    """`kinship explain`: run the server's filter and prioritize over every node of the snapshot."""
    pod = load_pod_file(pod_file, name)
    with state.lock:
        try:
            ctx = PodContext.of(pod, state)
        except WireError as exc:
            raise InputError(str(pod_file), [str(exc)]) from None
        cand = candidates_from_names(state, resolve_names(state, state.node_names()))
        filt = run_filter(state, ctx, cand)
        keep_best(state, ctx, cand, filt, config)
        fit = NodeFit.of(state, cand)
        passed = np.flatnonzero(filt.passed)
        prio = None
        if passed.size:
            prio = run_prioritize(
                state,
                ctx,
                candidates_from_names(state, resolve_names(state, [cand.names[i] for i in passed])),
                config,
            )
        zone_names = {i: z for z, i in state.zones().items()}
    for line in header_lines(ctx, prio, state):
        console.print(line, highlight=False)
    if filt.not_best:
        console.print(
            f"  filter_keep_best {config.filter_keep_best}: kube-scheduler is shown the "
            f"{passed.size} of {passed.size + len(filt.not_best)} fitting nodes Kinship scores best, "
            "and these scores are over those alone",
            highlight=False,
        )
    console.print(table(ctx, cand, filt, prio, passed, zone_names, fit))
    if not filt.passed.all():
        console.print("filtered out by the extender:")
        for line in filter_lines(cand, filt):
            console.print(line, highlight=False, soft_wrap=True)
    if prio is None:
        console.print("[red]no node passes the extender's filter[/red]")
    console.print(
        "Built-in kube-scheduler filters (resources, taints, affinity) run before these.", style="dim"
    )
