"""Train on a whole usage history and publish what it says about the next horizon, per agent.

One model per resource is fitted on every elapsed window of every series (or reused from disk),
then asked about the window that ends now. Series `agent/container` become the containers of the
agent's AgentProfile; correlations compare agents' totals within the namespace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from kinship.profile import ContainerProfile, Correlation, ProfileStatus, Resources, profile_document
from predictor.config import PredictorConfig
from predictor.correlations import agent_totals, correlations
from predictor.dataset import SeriesWindows, cut_all, row_groups, stack
from predictor.features import cut_windows, steps
from predictor.model import fit_recommender
from predictor.usage import Resource, Series, format_timestamp, on_grid

RESOURCES: tuple[Resource, ...] = ("cpu", "memory")
_FIELD = {"cpu": "cpuMillicores", "memory": "memoryBytes"}


@dataclass(frozen=True, slots=True)
class Forecast:
    recommended: float
    peak: float


def fit_models(
    usage: Mapping[str, Series], cfg: PredictorConfig, announce: Callable[[str], None] = lambda _: None
) -> dict[Resource, Any]:
    """One fitted recommender per resource the usage measures."""
    models: dict[Resource, Any] = {}
    for resource in RESOURCES:
        train, _ = cut_all(usage, resource, cfg)
        rows = stack(train, np.inf, cfg.horizon_seconds, cfg.max_train_windows, cfg.young_series_seconds)
        if len(rows.y) < cfg.min_train_windows:
            announce(
                f"{resource}: only {len(rows.y)} complete windows, need {cfg.min_train_windows}: not trained"
            )
            continue
        announce(f"{resource}: fitting on {len(rows.y)} windows")
        with threadpool_limits(limits=cfg.max_threads):
            models[resource] = fit_recommender(cfg, resource, rows)
    return models


def forecast(
    usage: Mapping[str, Series], models: Mapping[Resource, Any], cfg: PredictorConfig
) -> dict[str, dict[str, Forecast]]:
    """series -> resource -> forecast for the horizon that starts after the last sample."""
    out: dict[str, dict[str, Forecast]] = defaultdict(dict)
    for resource, model in models.items():
        names, rows, groups = [], [], []
        for name, series in usage.items():
            if np.all(np.isnan(series.values(resource))):
                continue
            grid = on_grid(series, resource)
            step = grid.step_seconds
            now = np.array([len(grid.values)])
            w = cut_windows(
                grid,
                now,
                steps(cfg.window_seconds, step),
                steps(cfg.horizon_seconds, step),
                steps(cfg.long_window_seconds, step),
            )
            if len(w.features):  # else nothing measured in the last window: no basis for a forecast
                names.append(name)
                rows.append(w.features[0])
                groups.append(
                    row_groups(SeriesWindows(name, grid, w), w.decision_seconds, cfg.young_series_seconds)[0]
                )
        if not rows:
            continue
        X = np.vstack(rows)  # one predict call for all series: per-call overhead dominated
        with threadpool_limits(limits=cfg.max_threads):
            recommended = model.predict(X, groups=np.array(groups))
            peak = model.predict_peak(X, groups=np.array(groups))
        for name, r, p in zip(names, recommended, peak, strict=True):
            out[name][resource] = Forecast(float(r), float(p))
    return dict(out)


def profile_documents(
    usage: Mapping[str, Series],
    models: Mapping[Resource, Any],
    cfg: PredictorConfig,
    namespace: str,
    trained_at_seconds: float,
) -> list[dict[str, Any]]:
    forecasts = forecast(usage, models, cfg)
    confidence = min((float(m.estimator_.peak_coverage_fraction_) for m in models.values()), default=None)
    spacings = [
        np.median(np.diff(s.timestamps_seconds)) for s in usage.values() if s.timestamps_seconds.size > 1
    ]
    step = float(max(spacings, default=60.0))
    related: dict[Resource, dict[str, dict[str, float]]] = {
        r: correlations(
            agent_totals(usage, r, step),
            cfg.min_notable_correlation,
            cfg.min_correlation_samples,
            cfg.max_correlations_per_agent,
        )
        for r in RESOURCES
    }
    containers: dict[str, list[ContainerProfile]] = defaultdict(list)
    for name, by_resource in sorted(forecasts.items()):
        series = usage[name]
        containers[series.agent].append(
            ContainerProfile(
                name=series.container,
                predictedPeak=Resources(**{_FIELD[r]: f.peak for r, f in by_resource.items()}),
                recommendedRequests=Resources(**{_FIELD[r]: f.recommended for r, f in by_resource.items()}),
            )
        )
    docs = []
    for agent, agent_containers in sorted(containers.items()):
        others = sorted(set(related["cpu"].get(agent, {})) | set(related["memory"].get(agent, {})))
        status = ProfileStatus(
            model="kinship",
            confidence=confidence,
            lastTrained=format_timestamp(trained_at_seconds),
            horizonSeconds=round(cfg.horizon_seconds),
            containers=agent_containers,
            correlations=[
                Correlation(
                    agent=o,
                    cpu=related["cpu"].get(agent, {}).get(o),
                    memory=related["memory"].get(agent, {}).get(o),
                )
                for o in others
            ],
        )
        docs.append(profile_document(namespace, agent, status))
    return docs
