"""Latency histograms in the store: counted per window when the window is computed, merged when
a longer range is read (``monitoring.metrics.latency_sketch`` has the buckets).

On PostgreSQL a window's buckets are counted in SQL (one ``GROUP BY`` over the window's rows, no
latency leaves the database); on SQLite, which has no logarithm by default, from the latencies.
Only online requests count (batch rows carry an amortised latency), as for the stored percentiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, func, literal, select
from sqlalchemy.orm import Session

from monitoring.metrics import latency_sketch
from monitoring.metrics.windows import PERCENTILES, Window
from monitoring.store.dialect import is_postgres, upsert
from monitoring.store.served import SERVED
from monitoring.store.tables import LatencyHistogram, Prediction

KEY = ("model_name", "model_version", "window_start", "window_end")
_BATCH_SOURCE = "batch"


def window_histograms(connection: Connection, window: Window, model_name: str) -> dict[int, dict[int, int]]:
    """Per version that served the model in the window: its online latencies' bucket counts."""
    where = and_(Prediction.model_name == model_name, Prediction.created_at >= window.start,
                 Prediction.created_at < window.end, SERVED, Prediction.source != _BATCH_SOURCE)
    histograms: dict[int, dict[int, int]] = {}
    if is_postgres(connection):
        index = func.ceil(func.ln(func.greatest(Prediction.latency_ms, latency_sketch.SMALLEST_MS))
                          / literal(latency_sketch.LOG_GAMMA) - 1e-9)
        rows = connection.execute(select(Prediction.model_version, index.label("bucket"), func.count())
                                  .where(where).group_by(Prediction.model_version, index))
        for version, bucket, count in rows:
            histograms.setdefault(int(version), {})[int(bucket)] = int(count)
        return histograms
    latencies: dict[int, list[float]] = {}
    for version, latency in connection.execute(select(Prediction.model_version, Prediction.latency_ms).where(where)):
        latencies.setdefault(int(version), []).append(latency)
    return {version: latency_sketch.histogram(values) for version, values in latencies.items()}


def histogram_row(*, model_name: str, version: int, window: Window, counts: dict[int, int],
                  computed_at: datetime) -> dict[str, Any]:
    return {"model_name": model_name, "model_version": version, "window_start": window.start,
            "window_end": window.end, "counts": {str(index): count for index, count in sorted(counts.items())},
            "samples": sum(counts.values()), "computed_at": computed_at}


def upsert_histograms(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update histogram rows on (model, version, window); an unchanged one stays as it was."""
    upsert(session, LatencyHistogram, rows, key=KEY, set_columns=("counts", "samples", "computed_at"),
           changed_columns=("counts", "samples"))


def merged_percentiles(connection: Connection, model_name: str, start: datetime, end: datetime,
                       bucket_seconds: int | None = None, *, by_version: bool = True) -> pd.DataFrame:
    """p50/p95/p99 of the windows starting in [start, end), their histograms merged per version
    (or over all versions) and per time bucket of ``bucket_seconds`` counted from the epoch (or
    over the whole range): ``bucket`` (a time, or None), ``model_version`` (None over all),
    ``metric``, ``value``, ``samples``."""
    rows = connection.execute(
        select(LatencyHistogram.model_version, LatencyHistogram.window_start, LatencyHistogram.counts)
        .where(LatencyHistogram.model_name == model_name, LatencyHistogram.window_start >= start,
               LatencyHistogram.window_start < end)
    ).all()
    groups: dict[tuple[int | None, int | None], list[dict]] = {}
    for version, window_start, counts in rows:
        moment = int(window_start.timestamp())
        bucket = moment - moment % bucket_seconds if bucket_seconds else None
        groups.setdefault((bucket, int(version) if by_version else None), []).append(counts)
    records = []
    for (bucket, version), histograms in groups.items():
        merged = latency_sketch.merge({int(k): v for k, v in counts.items()} for counts in histograms)
        for metric, q in PERCENTILES.items():
            records.append({"bucket": bucket, "model_version": version, "metric": metric,
                            "value": latency_sketch.percentile(merged, q), "samples": sum(merged.values())})
    frame = pd.DataFrame(records, columns=["bucket", "model_version", "metric", "value", "samples"])
    if bucket_seconds and not frame.empty:
        frame["bucket"] = pd.to_datetime(frame["bucket"].astype("int64"), unit="s", utc=True)
    return frame
