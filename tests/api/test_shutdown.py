"""Ctrl-C on a served API: the prediction log's shipper is not hit by the terminal's signal, writes
every answered prediction that was still waiting, and exits with the API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from monitoring.db import session_scope
from monitoring.migrate import upgrade
from monitoring.tables import Prediction
from tests.api.conftest import demo_rows, train_version


@pytest.mark.slow
def test_ctrl_c_writes_every_waiting_prediction_and_stops_the_shipper(api_settings, tmp_path: Path):
    upgrade(api_settings.database_url)
    train_version(api_settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "VIGIL_DATABASE_URL": api_settings.database_url,
           "MLFLOW_TRACKING_URI": api_settings.mlflow_tracking_uri, "VIGIL_MODEL_NAME": api_settings.model_name,
           "VIGIL_VAR_DIR": str(api_settings.var_dir), "VIGIL_MLFLOW_ARTIFACT_ROOT": api_settings.mlflow_artifact_root,
           # nothing is written before the shutdown: every row waits for the last drain
           "VIGIL_LOG_FLUSH_ROWS": "100000", "VIGIL_LOG_FLUSH_SECONDS": "600"}
    vigil = str(Path(sys.executable).with_name("vigil"))
    server = subprocess.Popen([vigil, "serve", "--port", str(port)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "wb"))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        shippers = [p for p in psutil.Process(server.pid).children(recursive=True)
                    if "monitoring.log_shipper" in " ".join(p.cmdline())]
        assert len(shippers) == 1
        with httpx.Client(base_url=base) as client:
            answered = [client.post("/predict", json=row).json()["prediction_id"] for row in demo_rows(120)]
        with session_scope(api_settings.database_url) as session:
            assert session.scalar(select(func.count()).select_from(Prediction)) == 0

        os.killpg(server.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole foreground group
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    _, alive = psutil.wait_procs(shippers, timeout=15)
    assert not alive
    with session_scope(api_settings.database_url) as session:
        stored = set(session.scalars(select(Prediction.id)))
    assert stored == set(answered) and len(answered) == 120
