"""docker/mlflow-server.sh for real: ``mlflow server --app-name basic-auth`` on SQLite in a temp
folder, its secrets read from files as in docker-compose.yml. Without a login (or with a wrong
one) the registry refuses to move ``@champion``; Vigil's Registry, logging in with the password
from MLFLOW_TRACKING_PASSWORD_FILE, registers versions (artifacts through the server) and moves
the alias. Slow: the server takes one to three minutes to start on the test machines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from monitoring.settings import Settings
from tests.net import free_port, wait_until_healthy

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
ADMIN, PASSWORD = "vigil", "admin-password-from-a-file-42"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-auth")
    secrets = {"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{root / 'mlflow.db'}",
               "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-tests"}
    config = (REPO / "docker" / "mlflow-basic-auth.ini").read_text().replace(
        "sqlite:////var/lib/mlflow-auth/basic_auth.db", f"sqlite:///{root / 'basic_auth.db'}")
    (root / "basic_auth.ini").write_text(config)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN, "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    for variable, value in secrets.items():
        (root / variable.lower()).write_text(value + "\n")
        env[f"{variable}_FILE"] = str(root / variable.lower())
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [str(REPO / "docker" / "mlflow-server.sh"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--serve-artifacts", "--artifacts-destination", str(root / "artifacts")],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{url}/health", what="mlflow server", timeout=300,
                           alive=lambda: process.poll() is None)
        yield url, root
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)
        log.close()


@pytest.fixture
def registry(server, monkeypatch, tmp_path):
    """Vigil's Registry as a compose service makes it: user from the variable, password from a file."""
    from monitoring.registry.mlflow_registry import Registry

    url, _root = server
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    before = {name: os.environ.pop(name, None) for name in names}
    (tmp_path / "password").write_text(PASSWORD + "\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("VIGIL_MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("VIGIL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VIGIL_MLFLOW_TIMEOUT_SECONDS", "60")  # a loaded test machine is slow
    yield Registry(Settings())  # puts the login into MLflow's own variables for this process
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == PASSWORD
    for name, value in before.items():  # as they were before the test
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


def _register(registry, name: str) -> int:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    return registry.log_and_register(model=model, model_name=name, input_example=frame, params={},
                                     metrics={"accuracy": 1.0}).version


def _move(url: str, name: str, version: int, auth=None) -> httpx.Response:
    return httpx.post(f"{url}/api/2.0/mlflow/registered-models/alias", auth=auth, timeout=30,
                      json={"name": name, "alias": "champion", "version": str(version)})


def test_without_a_login_the_alias_cannot_move_and_vigil_moves_it_with_its_login(server, registry):
    url, root = server
    first, second = _register(registry, "guarded"), _register(registry, "guarded")
    registry.set_alias("guarded", "champion", first)
    assert _move(url, "guarded", second).status_code == 401
    assert _move(url, "guarded", second, auth=(ADMIN, "a-guess")).status_code == 401
    assert httpx.get(f"{url}/api/2.0/mlflow/registered-models/get", params={"name": "guarded"},
                     timeout=30).status_code == 401  # not even a read
    assert registry.alias_version("guarded", "champion") == first
    registry.set_alias("guarded", "champion", second)
    assert registry.alias_version("guarded", "champion") == second
    assert PASSWORD not in (root / "server.log").read_text()
