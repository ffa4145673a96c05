"""An alias moved by another process (``vigil promote`` / ``vigil rollback``) is picked up under load:
no request fails, and every answer and log row carries the version that produced it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import httpx
import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import Prediction
from tests.api.conftest import demo_rows, running_api, train_version


def _vigil(settings, *args: str) -> None:
    env = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
           "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(settings.artifact_root), "VIGIL_MODEL_NAME": settings.model_name}
    vigil = Path(sys.executable).with_name("vigil")
    done = subprocess.run([str(vigil), *args], env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr


class Traffic:
    """Threads posting single rows until stopped; every answer kept in order, per thread."""

    def __init__(self, url: str, threads: int = 4):
        self.url = url
        self.answers: list[list[tuple[int, int | None, str | None]]] = [[] for _ in range(threads)]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,)) for i in range(threads)]

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _send(self, index: int) -> None:
        rows = demo_rows(50, seed=index)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                response = client.post("/predict", json=rows[n % len(rows)])
                body = response.json() if response.status_code == 200 else {}
                self.answers[index].append((response.status_code, body.get("model_version"),
                                            body.get("prediction_id")))
                n += 1
                time.sleep(0.01)  # leave CPU to the promoting process on a small machine

    def wait_for_version(self, version: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(a and a[-1][1] == version for a in self.answers):
                return
            time.sleep(0.05)
        raise AssertionError(f"answers did not reach version {version}")


def _runs(versions: list[int]) -> list[int]:
    """The sequence of distinct versions in order (1, 1, 2, 2, 1 -> [1, 2, 1])."""
    return [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]


@pytest.mark.slow
def test_alias_moves_by_another_process_are_followed_without_a_failed_request(api_settings):
    train_version(api_settings, seed=0)
    train_version(api_settings, seed=1, promote=False)
    with running_api(api_settings) as url:
        with Traffic(url) as traffic:
            traffic.wait_for_version(1)
            _vigil(api_settings, "promote", "2", "--reason", "hot swap test")
            traffic.wait_for_version(2)
            _vigil(api_settings, "rollback", "--reason", "hot swap test, back")
            traffic.wait_for_version(1)
        time.sleep(0.5)  # let the writer flush the last rows

    answers = [a for per_thread in traffic.answers for a in per_thread]
    assert len(answers) > 100
    assert {status for status, _, _ in answers} == {200}
    for per_thread in traffic.answers:
        assert _runs([version for _, version, _ in per_thread]) == [1, 2, 1]

    answered = {pid: version for _, version, pid in answers}
    with session_scope(api_settings.database_url) as session:
        logged = dict(session.execute(select(Prediction.id, Prediction.model_version)
                                      .where(Prediction.model_name == api_settings.model_name)).all())
    assert logged == answered
