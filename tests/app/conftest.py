"""Fixtures of the dashboard's browser tests: a real MLflow store with two trained versions, a day
of monitoring history in the real PostgreSQL, and ``streamlit run`` serving the dashboard on it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from monitoring.store.engine import utcnow
from tests.app.browser_support import OPERATOR_TOKEN, ROOT, artifacts
from tests.net import free_port, wait_until_healthy


@pytest.fixture
def trained(postgres_url, mlflow_store, model_name, monkeypatch, tmp_path):
    """Two trained versions (v2 is champion), a day of windows and logged predictions for them."""
    from cli.demo_seed import ChampionSpan, seed_predictions, seed_windows
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import get_settings, reset_settings
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    env = {"VIGIL_DATABASE_URL": postgres_url, "MLFLOW_TRACKING_URI": mlflow_store,
           "VIGIL_MODEL_NAME": model_name, "VIGIL_OPERATOR_TOKEN": OPERATOR_TOKEN, "VIGIL_DASHBOARD_ACCESS": "open",
           "VIGIL_VAR_DIR": str(tmp_path / "var"),
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    registry = Registry(get_settings())
    for seed_value in (1, 2):
        train(datasets.generate(1_500, seed_value), registry=registry, store_url=postgres_url,
              model_name=model_name, actor="cli:test", promote=True, seed=seed_value)
    now = utcnow().replace(second=0, microsecond=0)
    spans = [ChampionSpan(1, now - timedelta(days=1), now - timedelta(hours=6)),
             ChampionSpan(2, now - timedelta(hours=6), now)]
    seed_windows(postgres_url, model_name, spans, drift_every_minutes=30, drift_from=now - timedelta(hours=2))
    seed_predictions(postgres_url, model_name, spans, 300)
    yield registry, env
    reset_settings()


@contextmanager
def serve_dashboard(env: dict[str, str]) -> Iterator[str]:
    """``streamlit run`` of the dashboard with ``env`` on a free loopback port; its base URL."""
    port = free_port()
    log = open(artifacts() / "server.log", "w")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "dashboard" / "main.py"),
         "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
         "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/_stcore/health", what="streamlit", alive=lambda: process.poll() is None)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def dashboard(trained):
    """The dashboard over ``trained`` (a new server process per test); its base URL."""
    _registry, env = trained
    with serve_dashboard(env) as base:
        yield base
