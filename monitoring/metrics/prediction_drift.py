"""Prediction drift: the champion's outputs in a window against its outputs on the reference data.

A shift in what the model answers is often the first sign of trouble, before any label arrives.
The version's reference features are scored once by the version itself (through the same load
path as serving, ``monitoring.serving.servable``) and the outputs cached beside the reference
(``<var_dir>/references/<model>/v<version>/outputs.parquet``). Each window's logged outputs are
then compared with them by the same tests as feature drift (``monitoring.metrics.drift``):

- ``prediction (class)``: the predicted classes of a classifier, as a categorical feature;
- ``prediction (score)``: its positive-class probability, or a regressor's output, as a
  numerical one.

The rows sit beside the features' drift rows (the Drift page's heatmap shows them as two more
rows) but do not count in the share of drifted features, which stays about the inputs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitoring import metric_names
from monitoring.labels import label_texts
from monitoring.metrics.drift import FeatureDrift, compute_drift
from monitoring.metrics.references import Reference
from monitoring.runtime import Runtime

CLASS = metric_names.PREDICTION_CLASS
SCORE = metric_names.PREDICTION_SCORE
OUTPUT_COLUMNS = metric_names.OUTPUT_DRIFT


def outputs_frame(labels: list | pd.Series, scores: list | pd.Series) -> pd.DataFrame:
    """Outputs as the drift tests take them: classes as canonical text, scores as floats (a score
    that is not a number is missing)."""
    numbers = pd.Series(scores)
    if not pd.api.types.is_float_dtype(numbers):  # floats (a window's scores) are taken as they are
        numbers = pd.to_numeric(numbers.astype(object), errors="coerce")
    return pd.DataFrame({CLASS: label_texts(labels), SCORE: numbers.to_numpy(dtype=float)})


def reference_outputs(runtime: Runtime, model_name: str, version: int, reference: Reference) -> pd.DataFrame:
    """The version's outputs on its reference features (scored once, then read from the cache).

    Raises RegistryError when the version cannot be loaded, ValueError when it cannot score them.
    """
    from monitoring.serving.servable import load_servable

    cache = _cache_path(runtime.settings.var_dir, model_name, version)
    if cache.is_file():
        return pd.read_parquet(cache)
    servable = load_servable(runtime.registry, model_name, version)
    scored = servable.score_frame(reference.frame)
    frame = outputs_frame(scored.labels, scored.scores)
    if not servable.is_classifier:
        frame[CLASS] = None  # a regressor's output is a number: only the score column is tested
    cache.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(cache, index=False)
    return frame


def prediction_drift(reference: pd.DataFrame, current: pd.DataFrame, *, drift_share: float) -> list[FeatureDrift]:
    """Drift of the classes (classifiers) and of the scores, where both sides have them."""
    numerical = [SCORE] if reference[SCORE].notna().any() and current[SCORE].notna().any() else []
    categorical = [CLASS] if reference[CLASS].notna().any() and current[CLASS].notna().any() else []
    if not numerical and not categorical:
        return []
    return compute_drift(reference, current, numerical, categorical, drift_share=drift_share).features


def _cache_path(var_dir: Path, model_name: str, version: int) -> Path:
    return var_dir / "references" / model_name / f"v{version}" / "outputs.parquet"
