"""Fixtures for the API tests: models trained into the real MLflow store, and the running app.

Training a version takes a few seconds, so read-only tests share one app per module
(``shared_client``); tests that move the alias or break the store get their own model.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

OPERATOR_TOKEN = "test-operator-token-0123456789"


def make_settings(store_url: str, mlflow_store: str, var_dir: Path, **overrides):
    """Settings for one API under test: its own model name, a fast alias poll, an operator token.

    Open access (no client key needed): the tests of serving are not about access; the access
    tests (test_client_keys.py, test_label_integrity.py) pass ``open_access=False``.
    """
    from monitoring.settings import Settings

    values = {
        "database_url": store_url, "mlflow_tracking_uri": mlflow_store, "var_dir": var_dir,
        "mlflow_artifact_root": str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"),
        "model_name": f"api-model-{uuid.uuid4().hex[:8]}", "alias_poll_seconds": 0.2,
        "log_flush_seconds": 0.05, "operator_token": SecretStr(OPERATOR_TOKEN),
        "max_batch_rows": 50, "max_body_bytes": 200_000, "open_access": True,
        "feedback_wait_seconds": 3.0, "key_refresh_seconds": 0.5,
    }
    return Settings().model_copy(update={**values, **overrides})


def train_version(settings, seed: int = 0, promote: bool | None = True) -> int:
    """Train and register a version of the demo model (small data); returns its version number."""
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    result = train(datasets.generate(400, seed), registry=Registry(settings), store_url=settings.database_url,
                   model_name=settings.model_name, actor="test", promote=promote, seed=seed)
    return result.version


def demo_rows(n: int, seed: int = 1) -> list[dict]:
    from monitoring.training import datasets

    return datasets.generate_features(n, seed).to_dict("records")


@pytest.fixture(scope="module")
def shared_settings(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str):
    """A migrated SQLite store and version 1 of a model as champion, shared by a test module."""
    from monitoring.store.engine import dispose_engines
    from monitoring.store.migrations import upgrade

    root = tmp_path_factory.mktemp("api")
    settings = make_settings(f"sqlite:///{root / 'vigil.db'}", mlflow_store, root / "var")
    upgrade(settings.database_url)
    train_version(settings)
    yield settings
    dispose_engines()


@pytest.fixture(scope="module")
def shared_client(shared_settings) -> Iterator:
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(shared_settings)) as client:
        yield client


@pytest.fixture
def api_settings(sqlite_url: str, mlflow_store: str, tmp_path: Path):
    """Settings of a fresh store and a fresh model name, for a test of its own."""
    return make_settings(sqlite_url, mlflow_store, tmp_path / "var")


@contextmanager
def running_api(settings) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port (in a thread); yields its base URL."""
    import socket
    import threading

    import uvicorn

    from api.main import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


@contextmanager
def vigil_serve(settings, log_path: Path, *args: str, ready_path: str = "/health/ready",
                **env: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``vigil serve`` as its own process group (like a terminal's foreground job) on a free port,
    configured from ``settings`` plus ``env``; yields the process once ``ready_path`` answers 200
    (readiness by default) and its base URL."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
                   "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "VIGIL_MODEL_NAME": settings.model_name,
                   "VIGIL_VAR_DIR": str(settings.var_dir), "VIGIL_MLFLOW_ARTIFACT_ROOT": settings.mlflow_artifact_root,
                   "VIGIL_OPEN_ACCESS": str(settings.open_access).lower(), **env}
    vigil = str(Path(sys.executable).with_name("vigil"))
    with open(log_path, "wb") as log:
        server = subprocess.Popen([vigil, "serve", "--port", str(port), *args], env=environment,
                                  start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}{ready_path}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield server, base
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@contextmanager
def postgres_unreachable(admin_url: str, url: str) -> Iterator[None]:
    """Make a PostgreSQL database refuse every connection (the live ones are cut), then let it back."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
        yield
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        engine.dispose()
