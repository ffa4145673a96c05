"""Latency histograms in the store: written per window when the window is computed (its counts
come with the window's traffic: ``window_queries.traffic``), merged when a longer range is read
(``monitoring.metrics.latency_sketch`` has the buckets).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from monitoring.metrics import latency_sketch
from monitoring.metrics.windows import PERCENTILES, Window
from monitoring.store.dialect import upsert
from monitoring.store.tables import LatencyHistogram

KEY = ("model_name", "model_version", "window_start", "window_end")


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
