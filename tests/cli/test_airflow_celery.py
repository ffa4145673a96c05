"""The CeleryExecutor for real: Airflow's api-server, scheduler and dag-processor with two
``airflow celery worker`` processes on the local Redis (``cli.airflow_processes``, as
``vigil demo --executor celery`` starts them), its metadata and Celery's results in a throwaway
PostgreSQL database, run the monitoring DAG over a fleet of three models, one of which fails.

Checked through Airflow's REST API and metadata DB and the workers' own logs: each model's mapped
task was executed by one of the two Celery workers (both took some), Celery's result of each
successful one is in the metadata DB, the broken model's task failed on its own (it waits for the
DAG's retry) and the two good models' windows are in Vigil's store. Skipped locally without Redis
or PostgreSQL; a failure in CI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import session_scope
from monitoring.store.tables import MetricWindow
from tests.airflow_fleet import (
    airflow_cluster,
    first_logical_date,
    last_closed_window,
    seed_fleet,
    vigil_env,
    worker_map_indexes,
)
from tests.conftest import _admin_execute, _database_url
from tests.monitoring.watchdog.conftest import _settings, trained  # noqa: F401 - the `trained` fixture
from tests.net import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAG = "vigil_monitoring"
RUN = "celery-fleet"
FAILED_ONCE = {"up_for_retry", "failed"}  # the broken model's task after its first try


@pytest.fixture
def airflow_metadata_url(postgres_admin_url: str) -> Iterator[str]:
    """A throwaway PostgreSQL database for Airflow's metadata and Celery's results."""
    name = f"vigil_airflow_{uuid.uuid4().hex[:10]}"
    _admin_execute(postgres_admin_url, f'CREATE DATABASE "{name}"')
    yield _database_url(postgres_admin_url, name)
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fleet_done(instances: list[dict]) -> bool:
    states = {ti["task_id"]: ti["state"] for ti in instances if ti["map_index"] < 0}
    if states.get("list_models") in {"failed", "upstream_failed"}:
        return True
    mapped = [ti["state"] for ti in instances if ti["task_id"] == "compute_windows" and ti["map_index"] >= 0]
    return len(mapped) == 3 and all(state in {"success", "failed", "up_for_retry"} for state in mapped)


def _metadata(url: str, run_id: str) -> tuple[dict[int, str | None], dict[str, str]]:
    """Each mapped task's Celery task id, and the status of every Celery result in the metadata DB."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            ids = dict(connection.execute(text(
                "SELECT map_index, external_executor_id FROM task_instance "
                "WHERE dag_id = :dag AND run_id = :run AND task_id = 'compute_windows'"), {"dag": DAG, "run": run_id}).all())
            results = dict(connection.execute(text("SELECT task_id, status FROM celery_taskmeta")).all())
    finally:
        engine.dispose()
    return ids, results


def _metric_models(url: str) -> set[str]:
    with session_scope(url) as session:
        return set(session.scalars(select(MetricWindow.model_name).distinct()))


@pytest.mark.timeout(480)
def test_two_celery_workers_run_the_fleet_and_one_models_failure_spares_the_others(
        redis_url, airflow_metadata_url, postgres_url, mlflow_store, trained, model_name, tmp_path: Path):  # noqa: F811
    var = tmp_path / "var"
    settings = _settings(postgres_url, mlflow_store, var)
    window = last_closed_window()
    names = sorted(f"{model_name}-{suffix}" for suffix in ("a", "b", "broken"))  # map index i: names[i]
    seed_fleet(postgres_url, settings, Registry(settings), trained, names, window, broken=names[2])

    home = tmp_path / "airflow"
    with airflow_cluster("celery", home=home, metadata_url=airflow_metadata_url, port=free_port(),
                         broker_url=redis_url, tasks_env=vigil_env(postgres_url, mlflow_store, var)) as airflow:
        dag = airflow.wait_for_dag(DAG)
        airflow.trigger(DAG, RUN, window, first_logical_date(dag, window))
        airflow.unpause(DAG)
        instances = airflow.wait_for_run(DAG, RUN, timeout=300, done=_fleet_done)
        queue = airflow.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    executed = worker_map_indexes(home / "logs-processes", RUN, "compute_windows")
    celery_ids, celery_results = _metadata(airflow_metadata_url, RUN)

    mapped = {ti["map_index"]: ti for ti in instances if ti["task_id"] == "compute_windows"}
    states = {names[index]: ti["state"] for index, ti in mapped.items()}
    assert states[names[0]] == states[names[1]] == "success", states
    assert states[names[2]] in FAILED_ONCE, states
    assert all(ti["queue"] == queue for ti in mapped.values())

    # the two workers executed the three mapped tasks between them, each worker at least one
    assert len(executed) == 2, executed
    assert set().union(*executed.values()) == {0, 1, 2}, executed
    assert all(executed.values()), f"one worker took every task: {executed}"
    # a task that succeeded was a Celery task whose result is in the metadata DB
    for index in (0, 1):
        assert celery_results.get(celery_ids[index]) == "SUCCESS", (celery_ids, celery_results)

    assert _metric_models(postgres_url) == {names[0], names[1]}
