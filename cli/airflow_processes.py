"""Airflow's components as separate processes on this machine, for the CeleryExecutor on Redis.

``airflow standalone`` (the demo's default) forces the LocalExecutor. Running the CeleryExecutor
locally therefore means starting Airflow's parts one by one: the api-server (which also serves the
Task Execution API the workers run their tasks through), the scheduler, the dag-processor and N
``airflow celery worker`` processes. This module checks what they need (a PostgreSQL metadata DB,
a reachable broker, the ``celery`` extra), prepares the metadata DB and builds them as
``cli.supervisor.Service`` entries on top of the demo's Airflow environment
(``cli.demo.airflow_env``). ``vigil demo --executor celery``, the Celery end-to-end test and
``benchmarks/fleet_executor_benchmark.py`` use it; the last two also run the LocalExecutor with it
(same processes, tasks run by the scheduler), so both executors are compared on the same layout.

No triggerer is started: no Vigil task defers.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cli.supervisor import Service

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}


class AirflowSetupError(ValueError):
    """Something Airflow needs for this executor is missing: nothing was started."""


def _airflow() -> str:
    return str(Path(sys.executable).parent / "airflow")


def without_password(url: str) -> str:
    """A broker or database URL safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def executor_env(base: dict[str, str], *, executor: str, metadata_url: str, broker_url: str = DEFAULT_BROKER_URL,
                 queue: str | None = None) -> dict[str, str]:
    """``base`` (``cli.demo.airflow_env``) with the executor, its metadata DB and, for Celery, its broker.

    Celery's results go to the metadata DB (``db+`` and its URL), so Redis is only the queue. The
    workers reach the api-server's Task Execution API at ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL``
    with tokens the scheduler signs: every process gets the same JWT secret (the environment's, or
    one made for this run).
    """
    if executor not in EXECUTORS:
        raise AirflowSetupError(f"unknown executor {executor!r}: one of {', '.join(EXECUTORS)}")
    env = {
        **base,
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[executor],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL":
            f"http://127.0.0.1:{base['AIRFLOW__API__PORT']}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": os.environ.get("AIRFLOW__API_AUTH__JWT_SECRET") or secrets.token_urlsafe(32),
    }
    scheme, _, rest = metadata_url.partition("://")
    if scheme.split("+")[0] == "postgresql":  # async connections through psycopg 3, the driver Vigil uses already
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = f"postgresql+psycopg://{rest}"
    if executor == "celery":
        env |= {"AIRFLOW__CELERY__BROKER_URL": broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}"}
    if queue:  # Celery's tasks go to, and its workers take from, this queue (a shared broker stays tidy)
        env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] = queue
    return env


def check_can_run(executor: str, metadata_url: str, broker_url: str = DEFAULT_BROKER_URL) -> None:
    """Raise ``AirflowSetupError`` saying what is missing and how to fix it."""
    if executor == "local":
        return
    if not metadata_url.startswith(("postgresql", "mysql")):
        raise AirflowSetupError(
            "the CeleryExecutor needs Airflow's metadata DB on PostgreSQL (Celery cannot use SQLite): "
            "set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/airflow")
    if not _celery_provider_installed() or importlib.util.find_spec("redis") is None:
        raise AirflowSetupError("the CeleryExecutor needs the celery extra: pip install -e '.[celery]' "
                                "(apache-airflow-providers-celery and redis)")
    problem = broker_problem(broker_url)
    if problem:
        raise AirflowSetupError(problem)


def _celery_provider_installed() -> bool:
    """Looked up on disk: importing Airflow here would configure it from this process's environment."""
    airflow = importlib.util.find_spec("airflow")
    return airflow is not None and (Path(airflow.origin).parent / "providers" / "celery" / "__init__.py").is_file()


def broker_problem(broker_url: str) -> str | None:
    """Why the Redis broker cannot be used, or None when it answers a PING."""
    import redis

    try:
        redis.Redis.from_url(broker_url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, OSError, ValueError) as error:
        return (f"Redis is not reachable at {without_password(broker_url)} ({type(error).__name__}: {error}); "
                "start it (redis-server --bind 127.0.0.1 --port 6379) or point AIRFLOW__CELERY__BROKER_URL at yours")
    return None


def migrate(env: dict[str, str], timeout: float = 600) -> None:
    """``airflow db migrate`` on the metadata DB of ``env`` (the components expect it done)."""
    done = subprocess.run([_airflow(), "db", "migrate"], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise AirflowSetupError(f"airflow db migrate failed on {without_password(env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'])}:\n{tail}")


def services(env: dict[str, str], *, workers: int = 2, concurrency: int = 1, name: str = "airflow") -> list[Service]:
    """The api-server (named ``name``, with the URL and readiness check), the scheduler, the
    dag-processor and, with the CeleryExecutor, ``workers`` Celery workers of ``concurrency``
    task slots each. Logs are read from the shared local folder, so nothing serves them."""
    airflow, port = _airflow(), env["AIRFLOW__API__PORT"]
    url = f"http://127.0.0.1:{port}"
    listed = [
        Service(name, [airflow, "api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"],
                url=url, ready_url=f"{url}/api/v2/monitor/health", env=env),
        Service(f"{name}-scheduler", [airflow, "scheduler", "--skip-serve-logs"], env=env),
        Service(f"{name}-dag-processor", [airflow, "dag-processor"], env=env),
    ]
    if env["AIRFLOW__CORE__EXECUTOR"] == EXECUTORS["celery"]:
        tag = secrets.token_hex(3)  # Celery node names must be unique on the broker
        listed += [Service(f"{name}-worker-{number}",
                           [airflow, "celery", "worker", "--concurrency", str(concurrency),
                            "--celery-hostname", f"vigil-{tag}-{number}@%h", "--skip-serve-logs"], env=env)
                   for number in range(1, workers + 1)]
    return listed
