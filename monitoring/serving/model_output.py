"""What a model's output means: its task, its positive class, and the labels and probabilities
read from what ``predict`` returned. Pure decisions over plain values; no I/O, no MLflow.

The task and the positive class come from tags when they are set (``vigil.task``:
``classification`` or ``regression``; ``vigil.positive_class``: the class whose probability the
API answers), else they are inferred: a model with ``classes_`` is a classifier, a scikit-learn
style regressor is a regressor; for any other pyfunc the output decides (its signature's output
columns, or what it answered on its own input example): columns ``prediction`` with
``probability`` or ``proba_<class>`` mean a classifier, float values a regressor, anything else
(integers, strings, booleans) a classifier without probabilities.

The output convention for a pyfunc that is not a scikit-learn, XGBoost or LightGBM model:
- a one-dimensional array, a Series, a list or a one-column DataFrame: the predictions;
- a DataFrame (or a dict of columns) with a ``prediction`` column and, for a classifier,
  either ``probability`` (the positive class's probability) or one ``proba_<class>`` column per
  class (the positive class is ``vigil.positive_class``, else the last of these columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

TASK_TAG = "vigil.task"
POSITIVE_CLASS_TAG = "vigil.positive_class"
CLASSIFICATION, REGRESSION = "classification", "regression"
PREDICTION, PROBABILITY, PROBA_PREFIX = "prediction", "probability", "proba_"
_FLOAT_TYPES = ("double", "float")


class ModelOutputError(ValueError):
    """The model answered something Vigil cannot read as one prediction per row."""


@dataclass(frozen=True)
class Scored:
    labels: list[Any]
    scores: list[float | None]  # positive-class probability, regression output, or None


def decide_task(tags: dict[str, str], native: Any | None, output_columns: list[dict[str, Any]],
                sample_output: Any | None) -> str:
    """``classification`` or ``regression``; raises ValueError when nothing tells which."""
    tagged = tags.get(TASK_TAG)
    if tagged is not None:
        if tagged not in (CLASSIFICATION, REGRESSION):
            raise ValueError(f"the tag {TASK_TAG}={tagged!r} must be {CLASSIFICATION!r} or {REGRESSION!r}")
        return tagged
    if native is not None and hasattr(native, "classes_"):
        return CLASSIFICATION
    if native is not None and _estimator_type(native) == "regressor":
        return REGRESSION
    if output_columns:
        return _task_of_columns({c.get("name"): c.get("type") for c in output_columns})
    if sample_output is not None:
        labels, probabilities = read_output(sample_output, _length(sample_output), None)
        if probabilities is not None:
            return CLASSIFICATION
        return REGRESSION if np.asarray(labels).dtype.kind == "f" else CLASSIFICATION
    raise ValueError(f"cannot tell whether it is a classifier or a regressor: set the version tag "
                     f"{TASK_TAG} to {CLASSIFICATION!r} or {REGRESSION!r}, or log it with an output "
                     f"signature (mlflow.models.infer_signature(X, y))")


def _task_of_columns(types: dict[str | None, str | None]) -> str:
    if PROBABILITY in types or any(str(n).startswith(PROBA_PREFIX) for n in types):
        return CLASSIFICATION
    kind = types.get(PREDICTION) if PREDICTION in types else next(iter(types.values()))
    return REGRESSION if kind in _FLOAT_TYPES else CLASSIFICATION


def _estimator_type(model: Any) -> str | None:
    try:
        from sklearn.base import is_regressor

        return "regressor" if is_regressor(model) else None
    except Exception:  # noqa: BLE001 - a model without scikit-learn's tags: no opinion
        return getattr(model, "_estimator_type", None)


def positive_class(tags: dict[str, str], classes: list[Any] | None) -> Any | None:
    """The class whose probability is answered: the tag's (matched as text), else the last class."""
    tagged = tags.get(POSITIVE_CLASS_TAG)
    if classes is None:
        return tagged
    if tagged is None:
        return classes[-1]
    for cls in classes:
        if str(cls) == tagged:
            return cls
    raise ValueError(f"the tag {POSITIVE_CLASS_TAG}={tagged!r} is not one of the model's classes "
                     f"{[str(c) for c in classes]}")


def read_output(output: Any, rows: int, positive: Any | None) -> tuple[list[Any], list[float] | None]:
    """Labels (one per row) and, when the output carries them, the positive-class probabilities."""
    if isinstance(output, dict):
        output = pd.DataFrame(output)
    probabilities = None
    if isinstance(output, pd.DataFrame):
        labels, probabilities = _read_frame(output, positive)
    else:
        values = np.asarray(output)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise ModelOutputError(f"the model answered an array of shape {values.shape}; Vigil reads "
                                   f"one prediction per row (or a DataFrame with a 'prediction' column)")
        labels = values
    labels = np.asarray(labels).tolist()
    if len(labels) != rows:
        raise ModelOutputError(f"the model returned {len(labels)} predictions for {rows} rows")
    return labels, probabilities


def _read_frame(frame: pd.DataFrame, positive: Any | None) -> tuple[Any, list[float] | None]:
    if PREDICTION not in frame.columns:
        if len(frame.columns) == 1:
            return frame.iloc[:, 0].to_numpy(), None
        raise ModelOutputError(f"the model answered the columns {list(frame.columns)[:10]}; "
                               f"name one of them {PREDICTION!r}")
    if PROBABILITY in frame.columns:
        return frame[PREDICTION].to_numpy(), frame[PROBABILITY].astype(float).tolist()
    proba = [c for c in frame.columns if str(c).startswith(PROBA_PREFIX)]
    if not proba:
        return frame[PREDICTION].to_numpy(), None
    column = f"{PROBA_PREFIX}{positive}" if positive is not None else proba[-1]
    if column not in frame.columns:
        raise ModelOutputError(f"the model answered no column {column!r} for the positive class "
                               f"(it answered {proba})")
    return frame[PREDICTION].to_numpy(), frame[column].astype(float).tolist()


def _length(output: Any) -> int:
    if isinstance(output, dict):
        return len(next(iter(output.values()), []))
    return len(output)
