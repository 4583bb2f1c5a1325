"""A picture of the replay: usage against each method's recommendations for a few series.

The series shown are the ones where the methods disagree most (largest spread between their mean
recommendations relative to usage): that is where a reader learns something.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from predictor.evaluate import Recommendation, Scores
from predictor.foresight import METHODS as FORESIGHT
from predictor.usage import Resource, Series

_COLOURS = {
    "kinship": "tab:green",
    "vpa": "tab:orange",
    "static": "tab:gray",
    "foresight-mean": "tab:purple",
    "foresight-p90": "tab:red",
    "foresight-best": "black",
}
_MARKERS = {"kinship": "^", "foresight-mean": "D", "foresight-p90": "P", "foresight-best": "*"}


def plot_replay(
    path: Path,
    usage: Mapping[str, Series],
    resource: Resource,
    recommendations: Iterable[Recommendation],
    horizon_seconds: float,
    max_series: int = 4,
) -> list[str]:
    """Write a PNG; returns the series drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_series: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in recommendations:
        # Swept targets and foresight references belong on the curve, not on every series.
        if "@" not in r.method and r.method not in FORESIGHT:
            by_series[r.series][r.method].append((r.decision_seconds, r.value))
    spread = {}
    for name, methods in by_series.items():
        means = [np.mean([v for _, v in points]) for points in methods.values()]
        level = float(np.nanmean(usage[name].values(resource))) or 1.0
        spread[name] = (max(means) - min(means)) / level
    chosen = sorted(spread, key=lambda n: -spread[n])[:max_series]
    unit = "millicores" if resource == "cpu" else "bytes"
    fig, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.6 * max(len(chosen), 1)), squeeze=False)
    for ax, name in zip(axes[:, 0], chosen, strict=True):
        series = usage[name]
        start = min(t for points in by_series[name].values() for t, _ in points)
        hours = (series.timestamps_seconds - start) / 3600
        ax.plot(hours, series.values(resource), color="black", linewidth=0.7, label="usage")
        for method, points in sorted(by_series[name].items()):
            points.sort()
            t = np.array([p[0] for p in points] + [points[-1][0] + horizon_seconds])
            v = np.array([p[1] for p in points] + [points[-1][1]])
            ax.step((t - start) / 3600, v, where="post", color=_COLOURS.get(method), label=method)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(f"{resource} ({unit})", fontsize=8)
        ax.set_xlim(left=-0.5)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("hours since first recommendation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return chosen


def plot_curve(path: Path, scores: Mapping[str, Scores], title: str) -> None:
    """Slack against violation rate: kinship's swept targets as a curve, the baselines as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    swept = sorted((s.violation_rate, s.slack, m) for m, s in scores.items() if m.startswith("kinship@"))
    fig, ax = plt.subplots(figsize=(6, 4))
    if swept:
        ax.plot(
            [p[0] for p in swept],
            [p[1] for p in swept],
            "o-",
            color=_COLOURS["kinship"],
            label="kinship (swept)",
        )
        for v, sl, m in swept:
            ax.annotate(m.split("@", 1)[1], (v, sl), fontsize=7, textcoords="offset points", xytext=(3, 3))
    for method, s in sorted(scores.items()):
        if "@" in method:
            continue
        ax.plot(
            [s.violation_rate],
            [s.slack],
            _MARKERS.get(method, "s"),
            color=_COLOURS.get(method),
            label=method,
        )
    if "vpa" in scores:
        ax.axhline(
            0.7 * scores["vpa"].slack,
            color=_COLOURS["vpa"],
            linestyle=":",
            linewidth=0.8,
            label="70 % of VPA's slack",
        )
        ax.axvline(scores["vpa"].violation_rate, color=_COLOURS["vpa"], linestyle=":", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_xlim(left=0.0)  # rates are never negative; symlog would otherwise mirror the axis
    ax.set_xlabel("violation rate (share of samples above the request)")
    ax.set_ylabel("slack (share of the request unused)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
