"""Pruning on a real store (SQLite and PostgreSQL) removes exactly what is due, per kind, and
nothing else; a dry run counts the same and changes nothing; a second run finds nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitoring.metrics.report_files import report_path
from monitoring.retention.policy import cutoffs, day_bounds
from monitoring.retention.prune import prune
from monitoring.settings import RetentionPolicy, Settings
from monitoring.store import retention as store
from monitoring.store.engine import get_engine, session_scope, utcnow
from monitoring.store.prediction_rows import encode_rows, insert_ignoring_duplicates
from monitoring.store.tables import (
    AccessLog,
    DataQualityCheck,
    DriftResult,
    Feedback,
    LatencyHistogram,
    MetricWindow,
    OutboxMessage,
    Prediction,
    PredictionSegment,
)

TINY = timedelta(microseconds=1)


def log_predictions(url: str, model: str, when: datetime, ids: list[str]) -> None:
    """Predictions through the prediction log's own insert, as the shipper writes them."""
    insert_ignoring_duplicates(url, encode_rows(
        get_engine(url).dialect.name == "sqlite", model_name=model, model_version=1, created_at=when,
        ids=ids, features_json=[json.dumps({"x": 1})] * len(ids), predictions=[1] * len(ids),
        scores=[0.5] * len(ids), latency_ms=2.0))


def _window_rows(end: datetime, key: str, report: str | None):
    start = end - timedelta(minutes=5)
    metric = MetricWindow(model_name="m", model_version=1, window_start=start, window_end=end, metric=key,
                          value=0.9, sample_count=10, computed_at=end)
    drift = DriftResult(model_name="m", model_version=1, window_start=start, window_end=end, feature=key,
                        method="ks", score=0.1, threshold=0.05, drifted=False, reference_size=10,
                        current_size=10, computed_at=end, report_path=report)
    quality = DataQualityCheck(model_name="m", model_version=1, window_start=start, window_end=end, feature=key,
                               kind="missing", rate=0.0, reference_rate=0.0, threshold=0.01, failed=False,
                               rows=10, computed_at=end)
    latency = LatencyHistogram(model_name=f"m-{key}", model_version=1, window_start=start, window_end=end,
                               counts={"100": 10}, samples=10, computed_at=end)
    return [metric, drift, quality, latency]


@pytest.fixture
def world(store_url, tmp_path):
    """Rows of every kind on both sides of each cutoff, and report files; which ones must stay."""
    now = utcnow()
    settings = Settings(database_url=store_url, var_dir=tmp_path / "var", retention=RetentionPolicy(delete_batch_rows=2))
    due = cutoffs(settings.retention, now)
    old_day = (due.predictions - timedelta(days=3)).date()
    if store.prediction_partition_days(store_url) is not None:  # PostgreSQL: a whole day to drop
        store.create_partition(store_url, old_day, *day_bounds(old_day))
    predictions = {  # id -> kept?
        **{f"old-day-{i}": False for i in range(5)}, "just-due": False, "at-cutoff": True, "today": True,
        "other-model-due": False, "other-model-kept": True}
    log_predictions(store_url, "m", day_bounds(old_day)[0] + timedelta(hours=5),
                    [f"old-day-{i}" for i in range(5)])
    log_predictions(store_url, "m", due.predictions - TINY, ["just-due"])
    log_predictions(store_url, "m", due.predictions, ["at-cutoff"])
    log_predictions(store_url, "m", now, ["today"])
    log_predictions(store_url, "m-2", due.predictions - timedelta(hours=1), ["other-model-due"])
    log_predictions(store_url, "m-2", due.predictions + timedelta(hours=1), ["other-model-kept"])

    reports = settings.var_dir
    old_report = report_path(reports, "m", 1, due.reports - timedelta(hours=1), due.reports - TINY)
    new_report = report_path(reports, "m", 1, due.reports, due.reports + timedelta(minutes=5))
    stranger = reports / "reports" / "m" / "v1" / "notes.html"
    for path in (old_report, new_report, stranger):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("<html></html>")

    with session_scope(store_url) as session:
        session.add_all([
            Feedback(prediction_id="just-due", label="1", received_at=due.feedback - TINY),
            Feedback(prediction_id="at-cutoff", label="1", received_at=due.feedback),
            *[OutboxMessage(model_name="m", kind=kind, payload={}, created_at=now - timedelta(days=100),
                            next_attempt_at=now, delivered_at=delivered)
              for kind, delivered in (("delivered-due", due.outbox - TINY), ("delivered-kept", due.outbox),
                                      ("never-delivered", None))],
            *[AccessLog(actor=actor, action="rollback", allowed=True, channel="api", created_at=when)
              for actor, when in (("due", due.access_log - TINY), ("kept", due.access_log))],
            *_window_rows(due.metric_windows - TINY, "due", None),
            *_window_rows(due.metric_windows, "kept", None),
            *_window_rows(due.reports - TINY, "report-gone", str(old_report)),
            *_window_rows(due.reports + timedelta(minutes=5), "report-kept", str(new_report)),
        ])
    return {"url": store_url, "settings": settings, "now": now, "predictions": predictions,
            "files": {old_report: False, new_report: True, stranger: True}, "old_day": old_day}


EXPECTED = {"predictions": 7, "prediction_segments": 3, "feedback": 1, "outbox": 1, "access_log": 1, "metric_windows": 1,
            "drift_results": 1, "data_quality_checks": 1, "latency_histograms": 1, "reports": 1}


def _stored(url: str) -> dict[str, list]:
    with session_scope(url) as session:
        return {
            "predictions": sorted(session.scalars(select(Prediction.id))),
            "segments": session.scalar(select(func.sum(PredictionSegment.rows))),
            "feedback": sorted(session.scalars(select(Feedback.prediction_id))),
            "outbox": sorted(session.scalars(select(OutboxMessage.kind))),
            "access_log": sorted(session.scalars(select(AccessLog.actor))),
            "metric_windows": sorted(session.scalars(select(MetricWindow.metric))),
            "drift": sorted(session.execute(select(DriftResult.feature, DriftResult.report_path))),
            "data_quality": sorted(session.scalars(select(DataQualityCheck.feature))),
            "latency": sorted(session.scalars(select(LatencyHistogram.model_name))),
        }


def test_prune_removes_exactly_what_is_due(world):
    url, settings, now = world["url"], world["settings"], world["now"]
    before = _stored(url)

    dry = prune(url, settings, now=now, dry_run=True)
    assert dry.counts() == EXPECTED
    assert _stored(url) == before and all(path.exists() for path in world["files"])

    done = prune(url, settings, now=now)
    assert done.counts() == EXPECTED
    stored = _stored(url)
    assert stored["predictions"] == sorted(pid for pid, kept in world["predictions"].items() if kept)
    assert stored["segments"] == len(stored["predictions"])  # each logged row's segment went with it
    assert stored["feedback"] == ["at-cutoff"]
    assert stored["outbox"] == ["delivered-kept", "never-delivered"]  # undelivered rows always stay
    assert stored["access_log"] == ["kept"]
    assert stored["metric_windows"] == ["kept", "report-gone", "report-kept"]
    report_kept = str(next(p for p, kept in world["files"].items() if kept and p.name != "notes.html"))
    assert stored["drift"] == [("kept", None), ("report-gone", None), ("report-kept", report_kept)]
    assert stored["data_quality"] == ["kept", "report-gone", "report-kept"]
    assert stored["latency"] == ["m-kept", "m-report-gone", "m-report-kept"]
    assert {path: path.exists() for path in world["files"]} == world["files"]

    assert prune(url, settings, now=now).counts() == dict.fromkeys(EXPECTED, 0)


@pytest.mark.postgres
def test_on_postgresql_a_due_day_is_dropped_whole_and_days_ahead_are_created(postgres_url, tmp_path):
    now = utcnow()
    settings = Settings(database_url=postgres_url, var_dir=tmp_path, retention=RetentionPolicy(partitions_ahead_days=5))
    due = cutoffs(settings.retention, now)
    old_day = (due.predictions - timedelta(days=1)).date()
    store.create_partition(postgres_url, old_day, *day_bounds(old_day))
    log_predictions(postgres_url, "m", due.predictions - timedelta(hours=2), [f"p{i}" for i in range(50)])
    far_ahead = now + timedelta(days=5)
    log_predictions(postgres_url, "m", far_ahead, ["early"])  # no partition yet: the default takes it

    report = prune(postgres_url, settings, now=now)
    assert report.counts()["predictions"] == 50
    assert any("1 daily partition(s) dropped" in line for line in report.lines())
    days = store.prediction_partition_days(postgres_url)
    assert old_day not in days
    assert {(now + timedelta(days=n)).date() for n in range(6)} <= days
    assert far_ahead.date() in report.partitions_created
    with get_engine(postgres_url).connect() as connection:  # the early row moved out of the default
        assert connection.exec_driver_sql("SELECT count(*) FROM predictions_default").scalar() == 0
        assert connection.exec_driver_sql(
            f"SELECT id FROM predictions_p{far_ahead:%Y%m%d}").scalars().all() == ["early"]


def test_with_retention_off_nothing_is_deleted(world):
    url, now = world["url"], world["now"]
    settings = world["settings"].model_copy(update={"retention": RetentionPolicy(enabled=False)})
    before = _stored(url)
    report = prune(url, settings, now=now)
    assert report.outcomes == []
    assert "retention is off (VIGIL_RETENTION_ENABLED=false): nothing deleted" in report.lines()
    assert _stored(url) == before and all(Path(p).exists() for p in world["files"])


def test_a_resent_prediction_is_still_stored_once(store_url):
    when = utcnow()
    for _ in range(2):
        log_predictions(store_url, "m", when, ["same", "other"])
    with session_scope(store_url) as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 2
