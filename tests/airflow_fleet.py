"""A fleet of models with traffic in one closed hour window, and a real Airflow to monitor it.

Shared by the CeleryExecutor end-to-end test and ``benchmarks/fleet_executor_benchmark.py``:
``seed_fleet`` copies a trained version under each model name, records its reference data and
writes a window of predictions with labels (``tests.monitoring.watchdog.conftest.World``);
``airflow_cluster`` runs Airflow's processes (``cli.airflow_processes``) with the LocalExecutor or
the CeleryExecutor on a throwaway metadata database; ``AirflowApi`` drives them over the REST API.

The processes get one-hour windows (``VIGIL_WINDOW_MINUTES=60``): the monitoring DAG is then due
only on the hour, so the runs measured are the ones triggered here. The first triggered run takes
the logical date the scheduler would have used next, so no scheduled run of the same interval
competes with it (``max_active_runs=1``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from cli import airflow_processes
from cli.demo import airflow_env
from cli.supervisor import Supervisor
from monitoring.store import history
from monitoring.store.engine import session_scope
from tests.monitoring.watchdog.conftest import World

REPO = Path(__file__).resolve().parents[1]
WINDOW_MINUTES = 60
TERMINAL = {"success", "failed", "upstream_failed", "skipped", "removed"}
MISSING_RUN = "0" * 32  # a reference whose MLflow run is gone


def last_closed_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(minutes=WINDOW_MINUTES), end


def seed_fleet(url: str, settings, registry, trained: dict, names: list[str], window: tuple[datetime, datetime], *,
               rows: int = 60, broken: str | None = None) -> dict[str, int]:
    """Each model: a healthy champion (a copy of the trained good version) with its reference data
    and ``rows`` labelled predictions early in ``window``. ``broken``'s reference points at an MLflow
    run that does not exist, so computing its window fails. Returns each model's version."""
    versions = {}
    for number, name in enumerate(names):
        world = World(url, settings, registry, trained, name)
        version = world.add("good", health="healthy")
        run_id = MISSING_RUN if name == broken else registry.get_version(name, version).run_id
        with session_scope(url) as session:
            history.record_reference(session, model_name=name, version=version,
                                     uri=f"runs:/{run_id}/reference/reference.parquet", rows=500)
        world.serve(version, rows, seed=10 + number, start=window[0] + timedelta(minutes=1))
        versions[name] = version
    return versions


def vigil_env(store_url: str, mlflow_store: str, var_dir: Path) -> dict[str, str]:
    """What the tasks need to reach Vigil's store and MLflow; no API (process metrics are skipped)."""
    return {"VIGIL_DATABASE_URL": store_url, "MLFLOW_TRACKING_URI": mlflow_store, "VIGIL_VAR_DIR": str(var_dir),
            "VIGIL_MLFLOW_ARTIFACT_ROOT": str(Path(mlflow_store.removeprefix("sqlite:///")).parent / "artifacts"),
            "VIGIL_API_URL": "http://127.0.0.1:9", "VIGIL_WINDOW_MINUTES": str(WINDOW_MINUTES),
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@dataclass
class AirflowApi:
    """Airflow's REST API (every user is an admin here: no token) and the processes behind it."""

    url: str
    supervisor: Supervisor
    env: dict[str, str]

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = httpx.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def _alive(self) -> None:
        for name, code in self.supervisor.exited():
            raise RuntimeError(f"{name} exited with {code}:\n{self.supervisor.log_tail(name, 30)}")

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            try:
                return self._call("GET", f"/dags/{dag_id}")
            except httpx.HTTPError:
                time.sleep(2)
        raise TimeoutError(f"{dag_id} was not parsed within {timeout:.0f} s:\n"
                           f"{self.supervisor.log_tail('airflow-dag-processor', 30)}")

    def trigger(self, dag_id: str, run_id: str, window: tuple[datetime, datetime], logical_date: datetime) -> None:
        self._call("POST", f"/dags/{dag_id}/dagRuns", json={
            "dag_run_id": run_id, "logical_date": logical_date.isoformat(),
            "data_interval_start": window[0].isoformat(), "data_interval_end": window[1].isoformat()})

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                          params={"limit": 100})["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, done=None) -> list[dict]:
        """Poll until ``done(task_instances)`` (default: the run ended); the task instances then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            instances = self.task_instances(dag_id, run_id)
            if done(instances) if done else self.run(dag_id, run_id)["state"] in {"success", "failed"}:
                return instances
            time.sleep(1)
        states = sorted((ti["task_id"], ti["map_index"], ti["state"]) for ti in self.task_instances(dag_id, run_id))
        raise TimeoutError(f"{dag_id} {run_id} not done within {timeout:.0f} s: {states}\n"
                           f"{self.supervisor.log_tail('airflow-scheduler', 30)}")


def first_logical_date(dag: dict, window: tuple[datetime, datetime]) -> datetime:
    """The logical date the scheduler has due next (so it creates no run of its own), else the window's start."""
    due = dag.get("next_dagrun_logical_date")
    return datetime.fromisoformat(due) if due else window[0]


@contextmanager
def airflow_cluster(executor: str, *, home: Path, metadata_url: str, port: int, tasks_env: dict[str, str],
                    broker_url: str = airflow_processes.DEFAULT_BROKER_URL, workers: int = 2,
                    parallelism: int = 2, queue: str | None = None) -> Iterator[AirflowApi]:
    """Airflow's processes on ``metadata_url`` (migrated here), stopped on leaving.

    LocalExecutor: ``parallelism`` task processes under the scheduler; CeleryExecutor: ``workers``
    workers of one task each, on ``queue`` (default: a queue of this run's own on the broker)."""
    airflow_processes.check_can_run(executor, metadata_url, broker_url)
    base = {**tasks_env, **airflow_env(home, REPO / "dags", port),
            "AIRFLOW__CORE__PARALLELISM": str(parallelism if executor == "local" else 2 * workers)}
    env = airflow_processes.executor_env(base, executor=executor, metadata_url=metadata_url, broker_url=broker_url,
                                         queue=queue or f"vigil-test-{secrets.token_hex(4)}")
    airflow_processes.migrate(env)
    with Supervisor(home / "logs-processes") as supervisor:
        for service in airflow_processes.services(env, workers=workers):
            supervisor.start(service)
        if not supervisor.wait_ready("airflow", 240):
            raise RuntimeError(f"the api-server did not come up:\n{supervisor.log_tail('airflow', 30)}")
        yield AirflowApi(f"http://127.0.0.1:{port}", supervisor, env)


def worker_map_indexes(log_dir: Path, run_id: str, task_id: str) -> dict[str, set[int]]:
    """Per Celery worker log: the map indexes of ``task_id`` in ``run_id`` it was handed to execute."""
    import re

    pattern = re.compile(rf"Executing workload in Celery.*task_id='{task_id}'.*run_id='{re.escape(run_id)}'"
                         r".*map_index=(-?\d+)")
    found = {}
    for log in sorted(log_dir.glob("airflow-worker-*.log")):
        found[log.stem] = {int(m.group(1)) for m in pattern.finditer(log.read_text(errors="replace"))}
    return found
