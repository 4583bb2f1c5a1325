"""Trained models on disk, stamped so that a restart reuses them only when they still fit.

A model is only valid for the feature layout, the scikit-learn version and the settings it was
trained with; the stamp records all three, and a mismatch means "retrain", never a silent reuse.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sklearn

from kinship.errors import InputError
from predictor.config import PredictorConfig
from predictor.features import FEATURE_NAMES
from predictor.usage import Resource

# Bump when the pickled layout changes in a way the other stamp fields would not catch.
MODEL_FORMAT = 2


def _stamp(cfg: PredictorConfig) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "sklearn": sklearn.__version__,
        "features": list(FEATURE_NAMES),
        "config": dataclasses.asdict(cfg),
    }


def save_models(path: Path, models: Mapping[Resource, Any], cfg: PredictorConfig) -> None:
    """Write atomically: a crash mid-write must not leave a file that loads half a model."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        pickle.dump({"stamp": _stamp(cfg), "models": models}, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


def load_models(path: Path, cfg: PredictorConfig) -> tuple[dict[Resource, Any] | None, str]:
    """(models, why): models when the file matches this build and config, else None and the reason.

    Only load files this predictor wrote: unpickling runs code, as with any scikit-learn model.
    """
    if not path.exists():
        return None, "no saved model"
    try:
        with path.open("rb") as handle:
            saved = pickle.load(handle)
        stamp, models = saved["stamp"], saved["models"]
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(str(path), [f"not a kinship model file: {exc}"]) from None
    expected = _stamp(cfg)
    for key in ("format", "sklearn", "features", "config"):
        if stamp.get(key) != expected[key]:
            return None, f"saved model has a different {key}; retraining"
    return models, "reusing saved model"
