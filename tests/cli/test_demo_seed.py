"""The demo seeder writes the whole story, consistently, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cli.demo_seed import SeedSpec, seed
from monitoring import metric_names
from monitoring.store.engine import session_scope
from monitoring.store.tables import (
    Alert,
    DriftResult,
    MetricWindow,
    OutboxMessage,
    Prediction,
    RegistryEvent,
)

END = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def test_seed_writes_windows_drift_story_and_predictions(store_url):
    summary = seed(store_url, SeedSpec(models=("m1", "m2"), days=0.5, drift_every_minutes=30,
                                       predictions=1_000, end=END))
    assert summary.champions == {"m1": 3, "m2": 3}
    with session_scope(store_url) as session:
        def count(table):
            return session.scalar(select(func.count()).select_from(table))

        assert count(MetricWindow) == 2 * 720 * 12  # 12 hours of minutes, 12 metrics, 2 models
        assert count(DriftResult) == 2 * 24 * 14
        assert count(Prediction) == 2 * 1_000
        assert count(Alert) == 6 and count(OutboxMessage) == 10  # 2 resolved alerts x2 + 1 firing, per model
        moves = session.execute(select(RegistryEvent.kind, RegistryEvent.from_version, RegistryEvent.to_version)
                                .where(RegistryEvent.model_name == "m1", RegistryEvent.alias.is_not(None))
                                .order_by(RegistryEvent.created_at)).all()
        assert moves == [("promote", None, 1), ("promote", 1, 2), ("auto_rollback", 2, 1), ("promote", 1, 3)]
        newest = session.scalar(select(func.max(MetricWindow.window_start)).where(MetricWindow.metric == metric_names.ACCURACY))
        served = session.scalars(select(Prediction.model_version).where(Prediction.model_name == "m1")
                                 .order_by(Prediction.created_at.desc()).limit(1)).one()
    assert newest == END - timedelta(minutes=1)  # the last whole minute before the end
    assert served == 3


def test_seed_refuses_an_empty_period_and_writes_nothing(sqlite_url):
    with pytest.raises(ValueError, match="positive"):
        seed(sqlite_url, SeedSpec(days=0))
    with session_scope(sqlite_url) as session:
        assert session.scalar(select(func.count()).select_from(RegistryEvent)) == 0
