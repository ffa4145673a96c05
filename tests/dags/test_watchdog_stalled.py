"""A watchdog that stopped is told by a path that does not depend on it: the vigil_monitoring DAG
(real ``dag.test()``) raises ``watchdog_stalled`` and delivers it to Slack (a fake Slack over real
HTTP) itself; once the watchdog runs again, the alert is resolved in the same thread."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert
from monitoring.watchdog import heartbeat
from monitoring.watchdog.evaluation import evaluate_and_act
from tests.dags.conftest import DAGS
from tests.runtimes import runtime_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
STALE_SECONDS = 3


@pytest.fixture
def vigil(airflow_home, postgres_url, mlflow_store, tmp_path, monkeypatch, fake_slack):
    from monitoring.settings import get_settings, reset_settings

    monkeypatch.setenv("VIGIL_DATABASE_URL", postgres_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VIGIL_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("VIGIL_SLACK_BOT_TOKEN", fake_slack.token)
    monkeypatch.setenv("VIGIL_SLACK_BASE_URL", fake_slack.base_url)
    monkeypatch.setenv("VIGIL_WATCHDOG_STALE_SECONDS", str(STALE_SECONDS))
    reset_settings()
    yield get_settings()
    reset_settings()


def _run_monitoring() -> dict[str, str]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "vigil_monitoring.py"))
    assert bag.import_errors == {}
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    run = bag.get_dag("vigil_monitoring").test(logical_date=end - timedelta(minutes=5))
    assert str(run.state) == "success"
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _stalled(url: str) -> Alert:
    with session_scope(url) as session:
        return session.scalars(select(Alert).where(Alert.alert_key == heartbeat.ALERT_KEY)).one()


def test_the_monitoring_dag_tells_slack_the_watchdog_stalled_and_that_it_is_back(vigil, fake_slack):
    url = vigil.database_url
    runtime = runtime_for(url, settings=vigil)
    evaluate_and_act(runtime)  # a watchdog ran (nothing to watch yet), then went silent
    time.sleep(STALE_SECONDS + 0.5)

    # no model yet: the mapped task has nothing to map over and is skipped
    assert _run_monitoring() == {"list_models": "success", "compute_windows": "skipped",
                                 "check_watchdog": "success"}
    alert = _stalled(url)
    assert (alert.state, alert.kind, alert.severity) == ("firing", "watchdog_stalled", "critical")
    [firing] = [m for m in fake_slack.posted() if "The watchdog is stalled" in m["text"]]
    assert "CRITICAL" in firing["text"] and f"over {STALE_SECONDS} s" in str(firing["blocks"])
    thread = _stalled(url).slack_thread_ts
    assert thread

    _run_monitoring()  # still stalled: no second message
    assert len([m for m in fake_slack.posted() if "stalled" in m["text"]]) == 1

    evaluate_and_act(runtime)  # the watchdog runs again: its beat resolves the alert
    assert _stalled(url).state == "resolved"
    _run_monitoring()  # ... and this run delivers the resolution, in the alert's thread
    [resolved] = [m for m in fake_slack.posted() if "Resolved: The watchdog is stalled" in m["text"]]
    assert resolved["thread_ts"] == thread
