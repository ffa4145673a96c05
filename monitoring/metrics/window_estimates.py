"""CBPE for one window of one classifier version, read from the store (the monitoring run's step).

The calibration check uses the version's own labelled predictions made before the window (the
newest ``CALIBRATION_ROWS``): the labels of a long-serving champion arrive weeks late, but those of
its earlier weeks are there, and they say how far its probabilities can be trusted. The positive
class is the one the version predicts when its score is above 0.5 (the score is the
positive-class probability). A version with too few labelled predictions, or probabilities that
fail the check, gets no estimate; the reason is returned for the run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring.labels import label_texts
from monitoring.metrics import estimated_performance as cbpe
from monitoring.metrics.windows import Window
from monitoring.store import window_queries
from monitoring.store.engine import get_engine

CALIBRATION_ROWS = 5000


@dataclass(frozen=True)
class Estimate:
    metrics: dict[str, tuple[float | None, int]]  # metric -> (value, predictions it was estimated on)
    note: str | None = None  # why there is none


def estimate_window(url: str, model_name: str, version: int, window: Window, current: pd.DataFrame) -> Estimate:
    """The expected classification metrics of the version's predictions in ``window``, whose
    outputs (``window_queries.outputs``) are ``current``."""
    with get_engine(url).connect() as connection:
        labelled = window_queries.labelled_before(connection, model_name, version, window.start, CALIBRATION_ROWS)
    current = current[pd.to_numeric(current["score"], errors="coerce").notna()]
    if current.empty:
        return Estimate({}, "no scored predictions in the window")
    positive = positive_class(labelled)
    if positive is None:
        return Estimate({}, "no labelled prediction with a score above 0.5 tells the positive class yet")
    scores = labelled["score"].to_numpy(dtype=float, na_value=np.nan)
    outcomes = (label_texts(labelled["label"]) == positive).astype(float)
    calibration = cbpe.calibrate(scores, outcomes)
    if not calibration.usable:
        return Estimate({}, calibration.reason)
    probabilities = calibration.transform(current["score"].to_numpy(dtype=float))
    predicted = label_texts(current["prediction"]) == positive
    values = cbpe.estimate(probabilities, predicted)
    return Estimate({name: (value, len(current)) for name, value in values.items()})


def positive_class(labelled: pd.DataFrame) -> str | None:
    """The class predicted most often with a score above 0.5."""
    confident = label_texts(labelled[pd.to_numeric(labelled["score"], errors="coerce") > 0.5]["prediction"])
    counts = pd.Series(confident, dtype=object).dropna().value_counts()
    return None if counts.empty else str(counts.index[0])
