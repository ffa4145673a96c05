"""docker-compose.yml's celery profile, checked on the file (no Docker engine here): Redis and the
Celery workers start only with the profile, one variable switches every Airflow service to the
CeleryExecutor, the workers get what the scheduler gets to run Vigil's tasks, and Celery's results
go to the metadata DB (checked with the Celery provider's own configuration code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_compose import command_of, compose, resolve, secret_files, services  # noqa: F401 - fixtures

EXECUTOR = "${AIRFLOW_EXECUTOR:-LocalExecutor}"


def _airflow_services(services):  # noqa: F811 - the fixture's value
    return {name: s for name, s in services.items() if name.startswith("airflow-") and name != "airflow-init"}


def test_redis_and_the_workers_start_only_with_the_celery_profile(services):  # noqa: F811
    profiled = {name for name, s in services.items() if "celery" in s.get("profiles", [])}
    assert profiled == {"redis", "airflow-worker"}
    redis = services["redis"]
    assert command_of(redis) == ["redis-server", "--save", "", "--appendonly", "no"]  # keeps nothing on disk
    assert "ports" not in redis and "volumes" not in redis


def test_one_variable_switches_every_airflow_service_to_the_celery_executor(services):  # noqa: F811
    for name, service in {**_airflow_services(services), "airflow-init": services["airflow-init"]}.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == EXECUTOR, name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert "AIRFLOW__CELERY__RESULT_BACKEND" not in env, f"{name}: results go to the metadata DB"


def test_the_workers_run_tasks_with_what_the_scheduler_has(services):  # noqa: F811
    worker, scheduler = services["airflow-worker"], services["airflow-scheduler"]
    assert command_of(worker) == ["airflow", "celery", "worker", "--concurrency", "${AIRFLOW_WORKER_CONCURRENCY:-2}"]
    assert resolve(str(worker["deploy"]["replicas"])) == "2"
    for key in ("environment", "secrets", "volumes"):
        assert worker[key] == scheduler[key], key
    assert {"redis", "airflow-api-server"} <= set(worker["depends_on"])  # the broker, the Task Execution API
    assert scheduler["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/"


@pytest.mark.slow
def test_celery_s_results_go_to_the_metadata_db_the_secret_file_names(services, secret_files: Path, tmp_path):  # noqa: F811
    env = services["airflow-worker"]["environment"]
    probe = ("from airflow.configuration import conf\n"
             "from airflow.providers.celery.executors.default_celery import get_default_celery_config\n"
             "config = get_default_celery_config(conf)\n"
             "print(config['broker_url']); print(config['result_backend'])\n")
    run_env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "_AIRFLOW__AS_LIBRARY": "1",  # the configuration only: no engine on the metadata DB
               "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
               "AIRFLOW__CELERY__BROKER_URL": env["AIRFLOW__CELERY__BROKER_URL"],
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"].replace(
                   "/run/secrets/", f"{secret_files}/")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=run_env, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    broker, backend = done.stdout.strip().splitlines()[-2:]
    assert broker == "redis://redis:6379/0"
    assert backend == "db+" + (secret_files / "airflow_database_url").read_text().strip()
