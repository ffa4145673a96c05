"""Each pipeline end to end with ``dag.test()``: a migrated Airflow metadata DB, Vigil's store on the
real PostgreSQL, a real MLflow store. The promised rows are there, and running a data interval a
second time changes nothing."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitoring import metric_names
from monitoring.metrics import prediction_drift
from monitoring.store.engine import session_scope
from monitoring.store.tables import (
    Alert,
    DriftResult,
    Feedback,
    MetricWindow,
    OutboxMessage,
    Prediction,
    ReferenceData,
    RegistryEvent,
    Release,
    VersionHealth,
)
from monitoring.training import datasets
from tests.dags.conftest import DAGS

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAY = datetime(2026, 11, 26, tzinfo=UTC)  # the training run's data interval: the day before
WATCHDOG_OK = {"list_models": "success", "evaluate_act": "success", "notify": "success"}
TABLES = (Prediction, Feedback, MetricWindow, DriftResult, RegistryEvent, VersionHealth, ReferenceData,
          Alert, OutboxMessage, Release)


@pytest.fixture
def vigil(airflow_home, postgres_url, mlflow_store, model_name, tmp_path, monkeypatch):
    """Settings for the tasks (they read the environment): PostgreSQL store, MLflow store, own var dir."""
    from monitoring.settings import get_settings, reset_settings

    monkeypatch.setenv("VIGIL_DATABASE_URL", postgres_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VIGIL_MLFLOW_ARTIFACT_ROOT", str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"))
    monkeypatch.setenv("VIGIL_MODEL_NAME", model_name)
    monkeypatch.setenv("VIGIL_API_URL", "http://127.0.0.1:9")  # no API: process metrics are skipped
    reset_settings()
    yield get_settings()
    reset_settings()


@functools.cache
def _dag(dag_id):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def _run(dag_id, logical_date, conf=None):
    run = _dag(dag_id).test(logical_date=logical_date, run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return str(run.state), states


def _snapshot(url):
    """Every row of Vigil's tables, all columns."""
    snapshot = {}
    with session_scope(url) as session:
        for table in TABLES:
            columns = table.__table__.columns
            rows = session.execute(select(*columns)).all()
            snapshot[table.__tablename__] = sorted(tuple(map(repr, row)) for row in rows)
    return snapshot


def _count(url, query):
    with session_scope(url) as session:
        return session.scalar(query)


def test_training_batch_monitoring_and_watchdog_pipelines(vigil, model_name):
    from monitoring.registry.mlflow_registry import Registry

    url = vigil.database_url
    registry = Registry(vigil)

    # training: one version, registered with its reference data and promoted; a re-run adds nothing
    assert _run("vigil_training", DAY, {"rows": 2000}) == ("success", dict.fromkeys(
        ["ingest", "validate", "train", "evaluate", "register", "promote"], "success"))
    assert [v.version for v in registry.list_versions(model_name)] == [1]
    assert registry.alias_version(model_name, "champion") == 1
    trained = _snapshot(url)
    assert [r[0] for r in trained["reference_data"]] == [repr(model_name)]
    assert sorted(eval(r[5]) for r in trained["registry_events"]) == ["promote", "train"]
    assert _run("vigil_training", DAY, {"rows": 2000})[0] == "success"
    assert _snapshot(url) == trained and len(registry.list_versions(model_name)) == 1

    # batch scoring: the hour's records scored by the champion and logged as batch traffic, once
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    assert _run("vigil_batch_scoring", hour, {"rows": 300}) == ("success", {"score_batch": "success"})
    scored = _snapshot(url)
    assert len(scored["predictions"]) == 300
    assert _count(url, select(func.count()).where(Prediction.source == "batch",
                                                  Prediction.model_version == 1)) == 300
    assert _run("vigil_batch_scoring", hour, {"rows": 300})[0] == "success"
    assert _snapshot(url) == scored
    assert list((Path(vigil.var_dir) / "batch" / model_name).glob("*.parquet"))

    # feedback for half of them, then the monitoring run over the window they were logged in
    with session_scope(url) as session:
        logged = session.execute(select(Prediction.id, Prediction.prediction, Prediction.created_at)
                                 .order_by(Prediction.id)).all()
        for pid, prediction, created in logged[:150]:
            session.add(Feedback(prediction_id=pid, model_name=model_name, label=prediction,
                                 received_at=created + timedelta(seconds=1)))
    minutes = vigil.window_minutes
    created = logged[0].created_at
    window_start = created - timedelta(minutes=created.minute % minutes, seconds=created.second,
                                       microseconds=created.microsecond)
    window_end = window_start + timedelta(minutes=minutes)  # a run's logical date ends its interval
    assert _run("vigil_monitoring", window_end) == ("success", {"list_models": "success",
                                                                "compute_windows": "success",
                                                                "check_watchdog": "success"})
    monitored = _snapshot(url)
    with session_scope(url) as session:
        metrics = {r.metric: (r.value, r.sample_count) for r in session.scalars(select(MetricWindow))}
        drift = session.scalars(select(DriftResult)).all()
    assert metrics[metric_names.REQUESTS] == (300.0, 300) and metrics[metric_names.ACCURACY] == (1.0, 150)
    assert metrics[metric_names.ERROR_RATE] == (0.0, 300) and metric_names.LATENCY_P95 not in metrics  # batch only
    assert {r.feature for r in drift} == {*datasets.NUMERIC, *datasets.CATEGORICAL, *prediction_drift.OUTPUT_COLUMNS}
    assert metric_names.DRIFT_SHARE in metrics and Path(drift[0].report_path).is_file()
    assert _run("vigil_monitoring", window_end)[0] == "success"
    assert _snapshot(url) == monitored

    # watchdog: evaluates the champion (the evaluation itself is the watchdog's own tests' business)
    assert _run("vigil_watchdog", datetime.now(UTC).replace(second=0, microsecond=0)
                - timedelta(minutes=1)) == ("success", WATCHDOG_OK)


def test_training_sends_a_better_version_to_a_canary(vigil, model_name, tmp_path):
    from monitoring.registry.mlflow_registry import Registry

    corrupted = tmp_path / "corrupted.csv"  # a first champion that learned the wrong rule
    datasets.bad_training_set(600, seed=3).frame.to_csv(corrupted, index=False)
    assert _run("vigil_training", DAY, {"data_path": str(corrupted), "target": "default"})[0] == "success"
    registry = Registry(vigil)
    assert registry.alias_version(model_name, "champion") == 1

    # the next day's demo data makes a better version: it goes to a canary, the champion stays
    next_day = DAY + timedelta(days=1)
    assert _run("vigil_training", next_day, {"data_path": None, "target": None, "rows": 600})[0] == "success"
    assert registry.alias_version(model_name, "champion") == 1
    assert registry.alias_version(model_name, "challenger") == 2
    with session_scope(vigil.database_url) as session:
        release = session.scalars(select(Release)).one()
    assert (release.mode, release.state, release.challenger_version, release.champion_version) == (
        "canary", "running", 2, 1)
    assert release.share == vigil.release.default_share and release.started_by == "airflow:vigil_training"


def test_a_task_that_fails_for_good_tells_the_on_call(vigil, tmp_path):
    broken = tmp_path / "broken.csv"
    datasets.generate(400, 0).frame.assign(credit_score=-5).to_csv(broken, index=False)

    state, tasks = _run("vigil_training", DAY, {"data_path": str(broken), "target": "default"})

    assert state == "failed" and tasks["ingest"] == "success" and tasks["validate"] == "failed"
    assert tasks["train"] == "upstream_failed"
    with session_scope(vigil.database_url) as session:
        alert = session.scalars(select(Alert)).one()
        outbox = session.scalars(select(OutboxMessage)).one()
    assert alert.alert_key == "pipeline:vigil_training:validate" and alert.state == "firing"
    assert "'credit_score' has 400 values outside" in alert.details["facts"]["error"]
    assert outbox.alert_id == alert.id and outbox.payload["severity"] == "critical"
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS)
