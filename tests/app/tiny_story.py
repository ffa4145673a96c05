"""The first minutes of a story, written into a store: one 5-minute monitoring window (quality,
service, drift, estimated accuracy, data quality with one failed check) and three alias moves a minute apart (v1 promoted, v2 promoted, v2 rolled back by
the watchdog). The hard case for the charts: a single time bucket and close-together events."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from cli.demo_seed import ChampionSpan, seed_windows
from monitoring.store import history, metric_windows
from monitoring.store.engine import session_scope

WINDOW = timedelta(minutes=5)


def seed_one_bucket(url: str, model_name: str, now: datetime) -> datetime:
    """Write the tiny story ending before ``now``; returns the start of its only window."""
    window_start = pd.Timestamp(now).floor("5min").to_pydatetime() - WINDOW
    seed_windows(url, model_name, [ChampionSpan(1, window_start, window_start + WINDOW)],
                 window_minutes=5, drift_every_minutes=5, drift_from=window_start)
    moves = [(None, 1, "promote", "cli:demo", "first version"),
             (1, 2, "promote", "cli:demo", "v2 beats v1 on the holdout"),
             (2, 1, "auto_rollback", "watchdog", "accuracy below the champion's baseline")]
    with session_scope(url) as session:
        for minute, (before, after, kind, actor, reason) in enumerate(moves):
            history.record_event(session, model_name=model_name, kind=kind, actor=actor, reason=reason,
                                 alias="champion", from_version=before, to_version=after,
                                 now=window_start + timedelta(minutes=minute + 1))
        metric_windows.upsert_metrics(session, [metric_windows.metric_row(
            model_name=model_name, version=1, window_start=window_start, window_end=window_start + WINDOW,
            metric="estimated_accuracy", value=0.81, sample_count=300, computed_at=window_start + WINDOW)])
        metric_windows.upsert_quality_checks(session, [
            {"model_name": model_name, "model_version": 1, "window_start": window_start,
             "window_end": window_start + WINDOW, "feature": feature, "kind": kind, "rate": rate,
             "reference_rate": 0.0, "threshold": 0.02, "failed": rate > 0.02, "rows": 300,
             "computed_at": window_start + WINDOW}
            for feature, kind, rate in [("income", "missing", 0.15), ("income", "out_of_range", 0.01),
                                        ("region", "missing", 0.0), ("region", "unseen_category", 0.0)]])
    return window_start
