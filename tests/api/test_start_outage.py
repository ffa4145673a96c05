"""Starting during an outage, as a user starts the API (``vigil serve``, a real process).

PostgreSQL down at start: the API starts, answers predictions and buffers them; once the store
is back every answered row is written and readiness turns green. A store with a schema behind the
code's stops the start with "run `vigil db upgrade`". MLflow down at start (a real ``mlflow
server`` stopped): the API serves its local copy of the last champion, verified by checksum, says
so, and goes back to the registry when MLflow answers again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from monitoring.serving import local_copy
from monitoring.store.engine import session_scope
from monitoring.store.tables import Prediction
from tests.api.conftest import (
    demo_rows,
    make_settings,
    postgres_unreachable,
    train_version,
    vigil_serve,
)
from tests.net import free_port, wait_until_healthy

VIGIL = str(Path(sys.executable).with_name("vigil"))
# MLflow's client retries a dead server for minutes by default; short here (issue 14, item 3)
FAST_MLFLOW = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def _predict(base: str, rows: list[dict]) -> dict:
    answer = httpx.post(f"{base}/predict", json=rows, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_vigil_serve_starts_and_predicts_with_no_postgresql_listening(api_settings, tmp_path):
    train_version(api_settings)
    dead = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/vigil"
    settings = api_settings.model_copy(update={"database_url": dead})
    log = tmp_path / "serve.log"
    with vigil_serve(settings, log, ready_path="/health") as (_, base):
        _until(lambda: httpx.get(f"{base}/model", timeout=5).json()["loaded"], 60, "no model loaded")
        answer = _predict(base, demo_rows(3))
        assert answer["model_version"] == 1 and len(answer["predictions"]) == 3
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["store_reachable"] is False
        assert any("store is unreachable" in p for p in ready.json()["problems"])
    assert "the store is unreachable; serving anyway" in log.read_text()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_down_at_start_then_back_every_answered_row_is_logged(
        postgres_admin_url, postgres_url, mlflow_store, sqlite_url, tmp_path):
    trained = make_settings(sqlite_url, mlflow_store, tmp_path / "var")
    train_version(trained)
    settings = trained.model_copy(update={"database_url": postgres_url})
    answered: list[str] = []

    def logged() -> int:
        with session_scope(postgres_url) as session:
            return session.scalar(select(func.count()).select_from(Prediction))

    with ExitStack() as running:
        with postgres_unreachable(postgres_admin_url, postgres_url):
            _, base = running.enter_context(
                vigil_serve(settings, tmp_path / "serve.log", ready_path="/health"))
            _until(lambda: httpx.get(f"{base}/model", timeout=5).json()["loaded"], 60, "no model")
            for i in range(20):
                answered += [p["prediction_id"] for p in _predict(base, demo_rows(3, seed=i))["predictions"]]
            assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 503
        # the store is back: the schema is checked, the buffer drains, readiness turns green
        _until(lambda: httpx.get(f"{base}/health/ready", timeout=10).status_code == 200, 60,
               "readiness did not turn green once the store was back")
        answered += [p["prediction_id"] for p in _predict(base, demo_rows(2))["predictions"]]
        _until(lambda: logged() == len(answered), 30, "not every answered prediction was logged")
    with session_scope(postgres_url) as session:
        assert set(session.scalars(select(Prediction.id))) == set(answered)


def test_a_store_without_the_schema_stops_the_start_with_run_vigil_db_upgrade(api_settings, tmp_path):
    train_version(api_settings)
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    env = {**os.environ, "VIGIL_DATABASE_URL": empty, "MLFLOW_TRACKING_URI": api_settings.mlflow_tracking_uri,
           "VIGIL_MODEL_NAME": api_settings.model_name, "VIGIL_VAR_DIR": str(api_settings.var_dir)}
    result = subprocess.run([VIGIL, "serve", "--no-migrate", "--port", str(free_port())], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the store has no Vigil tables: run `vigil db upgrade`")

    from fastapi.testclient import TestClient

    from api.main import create_app
    from monitoring.store.migrations import SchemaNotCurrent

    with pytest.raises(SchemaNotCurrent, match="run `vigil db upgrade`"), \
            TestClient(create_app(api_settings.model_copy(update={"database_url": empty}))):
        pass


# -- MLflow down at start ----------------------------------------------------------------------
@contextmanager
def mlflow_server(root: Path, port: int) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, artifacts served by it) on ``port``."""
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--backend-store-uri",
               f"sqlite:///{root / 'mlflow.db'}", "--serve-artifacts", "--artifacts-destination",
               str(root / "artifacts")]
    with open(root / f"mlflow-{time.monotonic_ns()}.log", "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{url}/health", what="mlflow server", timeout=300,
                           alive=lambda: server.poll() is None)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _ready(base: str) -> dict:
    return httpx.get(f"{base}/health/ready", timeout=30).json()


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two `mlflow server` starts and three API starts: minutes on a busy machine
def test_mlflow_down_at_start_serves_the_local_copy_then_the_registry_again(sqlite_url, tmp_path):
    root, port = tmp_path / "mlflow", free_port()
    root.mkdir()
    with mlflow_server(root, port) as url:
        settings = make_settings(sqlite_url, f"sqlite:///{root / 'unused.db'}", tmp_path / "var")
        settings = settings.model_copy(update={"mlflow_tracking_uri": url})
        train_version(settings)
        with vigil_serve(settings, tmp_path / "first.log", **FAST_MLFLOW) as (_, base):  # MLflow up: a copy is kept
            assert _ready(base)["model_source"] == "registry"
            expected = _predict(base, demo_rows(5))
    copy = local_copy.copy_dir(settings.var_dir, settings.model_name)
    assert (copy / "champion.pkl").is_file() and '"version": 1' in (copy / "champion.json").read_text()

    # MLflow is down: the copy answers, and the same as the registry's version did
    with vigil_serve(settings, tmp_path / "second.log", **FAST_MLFLOW) as (_, base):
        ready = _ready(base)
        assert ready["ready"] is True and ready["model_source"] == "local copy"
        assert "serving v1 from the local copy: MLflow unreachable" in ready["notes"]
        answer = _predict(base, demo_rows(5))
        assert [p["prediction"] for p in answer["predictions"]] == [
            p["prediction"] for p in expected["predictions"]]
        assert answer["model_version"] == 1

        with mlflow_server(root, port):  # back on the same address: the poller takes the registry's
            _until(lambda: _ready(base)["model_source"] == "registry", 90,
                   "the API did not go back to the registry")
            assert not [note for note in _ready(base)["notes"] if "MLflow" in note]


def test_a_corrupted_local_copy_is_refused_not_served(api_settings, tmp_path):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.serving.champion import load_champion

    version = train_version(api_settings)
    directory = local_copy.save(api_settings.var_dir,
                                load_champion(Registry(api_settings), api_settings.model_name, version))
    mlflow_down = api_settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"})
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAST_MLFLOW.items():
            env.setenv(name, value)
        with TestClient(create_app(mlflow_down)) as client:  # the intact copy serves
            assert client.post("/predict", json=demo_rows(1)[0]).status_code == 200
            assert client.get("/health/ready").json()["model_source"] == "local copy"
        data = bytearray((directory / "champion.pkl").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (directory / "champion.pkl").write_bytes(bytes(data))
        with TestClient(create_app(mlflow_down)) as client:
            assert client.post("/predict", json=demo_rows(1)[0]).status_code == 503
            ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert "MLflow is unreachable and the local copy of" in ready.json()["problems"][0]
    assert "fails its checksum: refused" in ready.json()["problems"][0]
