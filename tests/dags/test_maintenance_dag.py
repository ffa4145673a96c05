"""The maintenance DAG with real Airflow (``dag.test()``) on the real PostgreSQL: the due day's
partition goes, today's rows and the days ahead stay, and a second run deletes nothing more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from monitoring.retention.policy import cutoffs, day_bounds
from monitoring.store import retention as store
from monitoring.store.engine import session_scope
from monitoring.store.tables import Prediction
from tests.dags.conftest import DAGS
from tests.monitoring.retention.test_prune import log_predictions

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def vigil(airflow_home, postgres_url, tmp_path, monkeypatch):
    from monitoring.settings import get_settings, reset_settings

    monkeypatch.setenv("VIGIL_DATABASE_URL", postgres_url)
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    reset_settings()
    yield get_settings()
    reset_settings()


def _run(logical_date: datetime):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "vigil_maintenance.py"))
    assert bag.import_errors == {}
    run = bag.get_dag("vigil_maintenance").test(logical_date=logical_date)
    return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Prediction))


def test_maintenance_dag_prunes_the_due_days(vigil):
    url = vigil.database_url
    # the run of the interval that ends today at 02:30 UTC (its logical date): it prunes as of then
    today = datetime.now(UTC).replace(hour=2, minute=30, second=0, microsecond=0)
    due = cutoffs(vigil.retention, today)
    old_day = (due.predictions - timedelta(days=1)).date()
    store.create_partition(url, old_day, *day_bounds(old_day))
    log_predictions(url, "m", day_bounds(old_day)[0] + timedelta(hours=3), [f"old-{i}" for i in range(40)])
    log_predictions(url, "m", datetime.now(UTC), ["today"])

    assert _run(today) == ("success", {"prune": "success"})
    assert _count(url) == 1
    days = store.prediction_partition_days(url)
    assert old_day not in days and today.date() + timedelta(days=vigil.retention.partitions_ahead_days) in days

    assert _run(today)[0] == "success"  # a re-run: nothing more goes
    assert _count(url) == 1
