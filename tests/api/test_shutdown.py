"""Ctrl-C on a served API: the prediction log's shipper is not hit by the terminal's signal, writes
every answered prediction that was still waiting, and exits with the API."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from monitoring.store.engine import session_scope
from monitoring.store.migrations import upgrade
from monitoring.store.tables import Prediction
from tests.api.conftest import demo_rows, train_version, vigil_serve


@pytest.mark.slow
def test_ctrl_c_writes_every_waiting_prediction_and_stops_the_shipper(api_settings, tmp_path: Path):
    upgrade(api_settings.database_url)
    train_version(api_settings)
    # nothing is written before the shutdown: every row waits for the last drain
    with vigil_serve(api_settings, tmp_path / "serve.log",
                     VIGIL_LOG_FLUSH_ROWS="100000", VIGIL_LOG_FLUSH_SECONDS="600") as (server, base):
        shippers = [p for p in psutil.Process(server.pid).children(recursive=True)
                    if "monitoring.serving.log_shipper" in " ".join(p.cmdline())]
        assert len(shippers) == 1
        with httpx.Client(base_url=base) as client:
            answered = [client.post("/predict", json=row).json()["prediction_id"] for row in demo_rows(120)]
        with session_scope(api_settings.database_url) as session:
            assert session.scalar(select(func.count()).select_from(Prediction)) == 0

        os.killpg(server.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole foreground group
        assert server.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(shippers, timeout=15)
    assert not alive
    with session_scope(api_settings.database_url) as session:
        stored = set(session.scalars(select(Prediction.id)))
    assert stored == set(answered) and len(answered) == 120
