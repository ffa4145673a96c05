"""Writes of monitoring results: upserts of ``metric_windows``, ``drift_results`` and
``data_quality_checks`` on their keys.

``INSERT ... ON CONFLICT DO UPDATE`` (``monitoring.store.dialect.upsert``) on the natural key, and
only when a value really changed: re-running a window leaves every row, ``computed_at``
included, as it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from monitoring.store.dialect import insert_ignore, upsert
from monitoring.store.tables import DataQualityCheck, DriftResult, MetricWindow

METRIC_KEY = ("model_name", "model_version", "window_start", "window_end", "metric")
DRIFT_KEY = ("model_name", "model_version", "window_start", "window_end", "feature")
_METRIC_VALUES = ("value", "sample_count")
QUALITY_CHECK_KEY = ("model_name", "model_version", "window_start", "window_end", "feature", "kind")
_QUALITY_CHECK_VALUES = ("rate", "reference_rate", "threshold", "failed", "rows")
_DRIFT_VALUES = ("method", "score", "threshold", "drifted", "reference_size", "current_size",
                 "report_path")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def metric_row(
    *, model_name: str, version: int, window_start: datetime, window_end: datetime, metric: str,
    value: float | None, sample_count: int, computed_at: datetime,
) -> dict[str, Any]:
    return {"model_name": model_name, "model_version": version, "window_start": window_start,
            "window_end": window_end, "metric": metric, "value": _finite(value),
            "sample_count": int(sample_count), "computed_at": computed_at}


def upsert_metrics(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update metric rows on (model, version, window, metric)."""
    upsert(session, MetricWindow, rows, key=METRIC_KEY, set_columns=(*_METRIC_VALUES, "computed_at"),
           changed_columns=_METRIC_VALUES)


def insert_metrics_if_absent(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert metric rows whose key is new; keep existing ones (a point-in-time observation)."""
    insert_ignore(session, MetricWindow, rows, key=METRIC_KEY)


def upsert_drift(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update drift rows on (model, version, window, feature)."""
    upsert(session, DriftResult, rows, key=DRIFT_KEY, set_columns=(*_DRIFT_VALUES, "computed_at"),
           changed_columns=_DRIFT_VALUES)



def upsert_quality_checks(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update data-quality rows on (model, version, window, feature, kind)."""
    upsert(session, DataQualityCheck, rows, key=QUALITY_CHECK_KEY,
           set_columns=(*_QUALITY_CHECK_VALUES, "computed_at"), changed_columns=_QUALITY_CHECK_VALUES)
