"""Shared fixtures: throwaway stores on SQLite and the real PostgreSQL, a real MLflow store, Redis.

PostgreSQL is expected at ``VIGIL_TEST_POSTGRES_URL`` (default: postgres@127.0.0.1:5432, trust
auth), Redis (the CeleryExecutor's broker) at ``VIGIL_TEST_REDIS_URL`` (default:
redis://127.0.0.1:6379/0). When one cannot be reached, tests that need it are skipped with the
reason, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_slack import fake_slack_fixture  # noqa: F401 - registers the `fake_slack` fixture

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _postgres_problem() -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {ADMIN_URL}: {type(error).__name__}: {error}".splitlines()[0]
    finally:
        engine.dispose()
    return None


def _require(service: str, problem: str | None) -> None:
    """Skip the test for a missing service, or fail it in CI, where every service is required."""
    if problem:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: {service} is required)")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    _require("PostgreSQL", _postgres_problem())
    return ADMIN_URL


def _redis_problem() -> str | None:
    try:
        from cli.airflow_processes import broker_problem

        return broker_problem(REDIS_URL)
    except ImportError as error:
        return f"Redis cannot be used: {error} (`make install` installs the celery extra)"


@pytest.fixture(scope="session")
def redis_url() -> str:
    _require("Redis", _redis_problem())
    return REDIS_URL


def _admin_execute(admin_url: str, *statements: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _database_url(admin_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database that per-test databases are cloned from."""
    from monitoring.store.engine import dispose_engines
    from monitoring.store.migrations import upgrade

    name = f"vigil_tpl_{uuid.uuid4().hex[:8]}"
    _admin_execute(postgres_admin_url, f'CREATE DATABASE "{name}"')
    upgrade(_database_url(postgres_admin_url, name))
    dispose_engines()
    yield name
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test, dropped afterwards."""
    from monitoring.store.engine import dispose_engines

    name = f"vigil_test_{uuid.uuid4().hex[:10]}"
    _admin_execute(postgres_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield _database_url(postgres_admin_url, name)
    dispose_engines()
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database with no tables (for migration tests)."""
    from monitoring.store.engine import dispose_engines

    name = f"vigil_empty_{uuid.uuid4().hex[:10]}"
    _admin_execute(postgres_admin_url, f'CREATE DATABASE "{name}"')
    yield _database_url(postgres_admin_url, name)
    dispose_engines()
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated SQLite store for one test."""
    from monitoring.store.engine import dispose_engines
    from monitoring.store.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    upgrade(url)
    yield url
    dispose_engines()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated store: the test runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def browser():
    """Headless Debian chromium driven by Playwright: skipped locally without it, required in CI."""
    if not Path(CHROMIUM).exists():
        problem = f"no browser at {CHROMIUM} (`make system-deps` installs Debian's chromium)"
        if IN_CI:
            pytest.fail(f"{problem}; CI=true requires it")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real MLflow tracking store and registry (SQLite) in a temp folder, shared by the run.

    Creating one runs MLflow's own migrations (seconds), so tests share it and isolate
    themselves by model name (see ``model_name``).
    """
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture
def model_name() -> str:
    return f"test-model-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str, mlflow_store: str):
    """Settings pointing at a fresh SQLite store and the shared MLflow store."""
    from monitoring.settings import get_settings, reset_settings

    monkeypatch.setenv("VIGIL_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VIGIL_MLFLOW_ARTIFACT_ROOT", str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"))
    reset_settings()
    yield get_settings()
    reset_settings()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--skip-slow", action="store_true", help="skip tests marked slow (local runs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _slow_files_first(items)
    if not config.getoption("--skip-slow"):
        return
    if IN_CI:
        return  # CI always runs the slow end-to-end tests
    skip = pytest.mark.skip(reason="slow end-to-end test; skipped locally with --skip-slow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _slow_files_first(items: list[pytest.Item]) -> None:
    """Files with slow tests run first, in collection order otherwise. The workers take whole
    files, so the quick ones then fill in at the end instead of one worker finishing a long file
    alone while the other idles."""
    slow_files = {item.path for item in items if "slow" in item.keywords}
    first_seen = {path: index for index, path in reversed(list(enumerate(item.path for item in items)))}
    items.sort(key=lambda item: (item.path not in slow_files, first_seen[item.path]))
