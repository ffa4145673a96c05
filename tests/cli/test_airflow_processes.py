"""``vigil demo --executor celery``'s Airflow processes as built (``cli.airflow_processes``), and its
clear refusals: no PostgreSQL metadata DB, no Redis. The processes themselves run in
``test_airflow_celery.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli import airflow_processes
from cli.demo import DemoOptions, services
from monitoring.settings import Settings
from tests.net import free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "meta-Pa55word-Zq1"
METADATA = f"postgresql+psycopg2://airflow:{PASSWORD}@127.0.0.1:5432/airflow"


def _celery_services(tmp_path: Path, monkeypatch, workers: int = 2):
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", METADATA)
    monkeypatch.delenv("AIRFLOW__CELERY__BROKER_URL", raising=False)
    settings = Settings().model_copy(update={"var_dir": tmp_path})
    listed = services(settings, DemoOptions(executor="celery", celery_workers=workers), REPO)
    return {s.name: s for s in listed if s.name.startswith("airflow")}


def test_the_demo_starts_airflow_s_parts_and_two_celery_workers_that_share_one_configuration(tmp_path, monkeypatch):
    airflow = _celery_services(tmp_path, monkeypatch)
    assert set(airflow) == {"airflow", "airflow-scheduler", "airflow-dag-processor", "airflow-worker-1",
                            "airflow-worker-2"}
    api = airflow["airflow"]
    assert api.command[1:] == ["api-server", "--host", "127.0.0.1", "--port", "8080", "--workers", "1"]
    assert api.ready_url == "http://127.0.0.1:8080/api/v2/monitor/health"
    env = api.env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{METADATA}"
    # Airflow's own async URL would want asyncpg; psycopg 3 is what Vigil installs
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == METADATA.replace("+psycopg2://", "+psycopg://")
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 32
    for service in airflow.values():  # the scheduler signs what the api-server checks
        assert service.env == env, service.name
        assert PASSWORD not in " ".join(service.command), service.name
    workers = [airflow[f"airflow-worker-{n}"].command for n in (1, 2)]
    assert all(w[1:5] == ["celery", "worker", "--concurrency", "1"] for w in workers)
    names = [w[w.index("--celery-hostname") + 1] for w in workers]
    assert len(set(names)) == 2 and all(name.endswith("@%h") for name in names)


def test_the_number_of_workers_is_the_option_s(tmp_path, monkeypatch):
    airflow = _celery_services(tmp_path, monkeypatch, workers=3)
    assert sorted(name for name in airflow if "worker" in name) == [f"airflow-worker-{n}" for n in (1, 2, 3)]


def test_the_local_executor_has_no_workers_and_a_jwt_secret_from_the_environment_wins(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "from-the-environment")
    env = airflow_processes.executor_env({"AIRFLOW__API__PORT": "8081"}, executor="local", metadata_url=METADATA)
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "from-the-environment"
    assert "AIRFLOW__CELERY__BROKER_URL" not in env
    assert [s.name for s in airflow_processes.services(env)] == ["airflow", "airflow-scheduler", "airflow-dag-processor"]


def test_celery_on_sqlite_is_refused_with_how_to_fix_it():
    with pytest.raises(airflow_processes.AirflowSetupError, match="PostgreSQL .*AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        airflow_processes.check_can_run("celery", "sqlite:////tmp/airflow.db")


def test_a_redis_that_does_not_answer_is_named_with_how_to_fix_it():
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(airflow_processes.AirflowSetupError) as raised:
        airflow_processes.check_can_run("celery", METADATA, url)
    message = str(raised.value)
    assert "Redis is not reachable at redis://:***@127.0.0.1:" in message and "AIRFLOW__CELERY__BROKER_URL" in message
    assert "secret" not in message


def test_vigil_demo_with_celery_and_no_metadata_db_says_so_and_starts_nothing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VIGIL_VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    ports = [f"--port={name}={free_port()}" for name in ("api", "gradio", "dashboard", "mlflow", "airflow")]
    done = subprocess.run([sys.executable, "-m", "cli", "demo", "--executor", "celery", *ports], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "error: the CeleryExecutor needs Airflow's metadata DB on PostgreSQL" in done.stderr
    assert not (tmp_path / "logs").exists()  # no process was started


def test_the_checks_do_not_import_airflow(tmp_path):
    """Importing Airflow would configure it from the demo's environment (and, on PostgreSQL,
    want a driver Vigil does not install) before anything is set up."""
    probe = ("import sys\nfrom cli.airflow_processes import AirflowSetupError, check_can_run\n"
             "try:\n    check_can_run('celery', sys.argv[1], sys.argv[2])\nexcept AirflowSetupError as e:\n"
             "    print(e)\nprint('airflow imported' if 'airflow' in sys.modules else 'airflow not imported')\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": METADATA}
    done = subprocess.run([sys.executable, "-c", probe, METADATA, f"redis://127.0.0.1:{free_port()}/0"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Redis is not reachable" in done.stdout and "airflow not imported" in done.stdout
