"""Every kind of the model matrix, guarded end to end (issue 13's test matrix).

For each kind of ``tests.model_matrix.GOOD_KINDS`` (registered by test code, never by ``vigil
train``): adopted as ``vigil adopt`` does (with a reference file), served by the real API
(``api.main.create_app`` in a TestClient) with its own probabilities and logged, labelled through
``/feedback`` with the true outcome of the rule the good version was built for, monitored by the
monitoring run (``compute_windows``, what the ``vigil_monitoring`` DAG's task calls) with quality
metrics and drift against the reference; then a clearly worse version of the same kind is put on
@champion with ``MlflowClient.set_registered_model_alias`` (outside Vigil), answers labelled
traffic, and ``vigil watch --interval 1`` (a real process, started after the adoption) records
the outside move, rolls it back, and the fake Slack receives both.

Real parts throughout: MLflow on SQLite in a temp folder, Vigil's SQLite store, the API in
process, the watchdog in its own process, the fake Slack over HTTP. No table is written by the
test. The monitoring run is given the window the traffic is in (it is not waited for to close:
windows are 5 minutes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from api.main import create_app
from monitoring import metric_names
from monitoring.metrics.window_pipeline import compute_windows
from monitoring.metrics.windows import window_containing
from monitoring.registry.adoption import adopt
from monitoring.runtime import Runtime
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import DriftResult, Feedback, MetricWindow, Prediction, RegistryEvent, VersionHealth
from tests import model_matrix
from tests.api.conftest import make_settings
from tests.fakes.fake_slack import fake_slack_fixture  # noqa: F401 - the "fake_slack" fixture
from tests.model_matrix import close

GOOD_ROWS = 300  # labelled answers of the good version: its own baseline, then its health
BAD_ROWS = 150  # labelled answers of the bad version: far more than the test needs to trip
BATCH = 50  # the settings' max_batch_rows
VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


def _settings(sqlite_url: str, mlflow_store: str, tmp_path: Path, fake_slack):
    return make_settings(sqlite_url, mlflow_store, tmp_path / "var", slack_bot_token=SecretStr(fake_slack.token),
                         slack_webhook_url=None, slack_base_url=fake_slack.base_url, slack_channel="#oncall")


def _send(client: TestClient, kind: str, rows: list[dict], registered) -> list[dict]:
    """/predict in batches, then /feedback with each row's true outcome; the answers."""
    answers = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        response = client.post("/predict", json=chunk)
        assert response.status_code == 200, response.text
        batch = response.json()
        assert batch["model_version"] == registered.version
        truth = model_matrix.truth(kind, pd.DataFrame(chunk))
        labels = [{"prediction_id": a["prediction_id"], "label": t}
                  for a, t in zip(batch["predictions"], truth, strict=True)]
        received = client.post("/feedback", json=labels).json()
        assert (received["received"], received["refused"]) == (len(chunk), 0), received
        answers += batch["predictions"]
    labels, probabilities = registered.expected(pd.DataFrame(rows))
    assert [a["prediction"] for a in answers] == labels
    if registered.task == "classification":
        assert close([a["probability"] for a in answers], probabilities)
    else:
        assert all(a["probability"] is None for a in answers)
    return answers


def _wait_logged(url: str, ids: list[str], timeout: float = 20.0) -> None:
    """Until the API's prediction log (written in the background) holds every answer, labelled."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(url) as session:
            logged = session.scalar(select(func.count()).select_from(Prediction)
                                    .join(Feedback, Feedback.prediction_id == Prediction.id)
                                    .where(Prediction.id.in_(ids)))
        if logged == len(ids):
            return
        assert time.monotonic() < deadline, f"{logged} of {len(ids)} answers logged with their labels"
        time.sleep(0.05)


def _wait_serving(client: TestClient, version: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/model").json().get("version") != version:
        assert time.monotonic() < deadline, f"the API did not take up version {version}"
        time.sleep(0.1)


def _monitor(runtime: Runtime, name: str, since, until):
    """The monitoring run over the windows holding ``[since, until]`` (the DAG's task function's call)."""
    minutes = runtime.settings.window_minutes
    start = window_containing(since, minutes).start
    end = window_containing(until, minutes).end
    return compute_windows(runtime, model_name=name, start=start - timedelta(microseconds=1), end=end)


def _events(url: str, name: str) -> list[tuple[str, int | None, int | None, str]]:
    with session_scope(url) as session:
        return [(e.kind, e.from_version, e.to_version, e.actor) for e in session.scalars(
            select(RegistryEvent).where(RegistryEvent.model_name == name).order_by(RegistryEvent.id))]


def _window_metrics(url: str, name: str, version: int) -> dict[str, float]:
    """The metrics of the version's busiest window (the traffic may straddle two)."""
    windows: dict[object, dict[str, float]] = {}
    with session_scope(url) as session:
        for row in session.scalars(select(MetricWindow).where(MetricWindow.model_name == name,
                                                              MetricWindow.model_version == version)):
            windows.setdefault(row.window_start, {})[row.metric] = row.value
    return max(windows.values(), key=lambda metrics: metrics.get("requests", 0), default={})


def _drift_features(url: str, name: str, version: int) -> set[tuple[str, int]]:
    """(feature, reference rows) of the version's drift results."""
    with session_scope(url) as session:
        return set(session.execute(select(DriftResult.feature, DriftResult.reference_size).where(
            DriftResult.model_name == name, DriftResult.model_version == version)))


def _health(url: str, name: str, version: int) -> str | None:
    with session_scope(url) as session:
        row = session.get(VersionHealth, (name, version))
        return row.state if row else None


@contextmanager
def _vigil_watch(settings, fake_slack, log: Path) -> Iterator[Path]:
    """``vigil watch --interval 1`` on the test's stores and the fake Slack, stopped with Ctrl-C."""
    env = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
           "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "VIGIL_MODEL_NAME": settings.model_name,
           "VIGIL_VAR_DIR": str(settings.var_dir), "VIGIL_MLFLOW_ARTIFACT_ROOT": settings.mlflow_artifact_root,
           "VIGIL_SLACK_BOT_TOKEN": fake_slack.token, "VIGIL_SLACK_BASE_URL": fake_slack.base_url,
           "VIGIL_SLACK_CHANNEL": "#oncall"}
    with open(log, "wb") as out:
        watcher = subprocess.Popen([*VIGIL, "watch", "--interval", "1"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield log
    finally:
        os.killpg(watcher.pid, signal.SIGINT)
        try:
            watcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait()


def _wait(condition: Callable[[], object], what: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s:\n{log.read_text()[-4000:]}"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", model_matrix.GOOD_KINDS)
def test_each_kind_is_served_monitored_and_a_worse_version_moved_in_mlflow_is_rolled_back(
        kind, sqlite_url, mlflow_store, tmp_path, fake_slack):
    settings = _settings(sqlite_url, mlflow_store, tmp_path, fake_slack)
    runtime, url, name = Runtime(settings), settings.database_url, settings.model_name
    good = model_matrix.register(settings, kind, tmp=tmp_path)
    reference = tmp_path / "reference.parquet"
    model_matrix.features(400, seed=0).to_parquet(reference, index=False)  # its training inputs
    adopted = adopt(runtime, model_name=name, actor="team-lead", reference=reference)
    assert (adopted.version, adopted.reference_rows) == (good.version, 400)

    log = tmp_path / "watch.log"
    with _vigil_watch(settings, fake_slack, log), TestClient(create_app(settings)) as client:
        began = utcnow()
        answers = _send(client, kind, model_matrix.request_rows(GOOD_ROWS, seed=11), good)
        _wait_logged(url, [a["prediction_id"] for a in answers])
        _wait(lambda: _health(url, name, good.version) == "healthy", f"health for v{good.version}", log)
        summary = _monitor(runtime, name, began, utcnow())
        assert summary.drift_rows > 0, summary.notes
        outputs = metric_names.OUTPUT_DRIFT if good.task == "classification" else (metric_names.PREDICTION_SCORE,)
        assert _drift_features(url, name, good.version) == {(f, 400) for f in (*model_matrix.FEATURES, *outputs)}
        _assert_quality(good.task, _window_metrics(url, name, good.version))

        bad = model_matrix.register(settings, kind, tmp=tmp_path, bad=True, promote=False)
        mlflow.MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
            name, "champion", str(bad.version))  # outside Vigil
        _wait(lambda: ("outside_move", good.version, bad.version, "mlflow (outside Vigil)") in _events(url, name),
              "outside move recorded", log)
        _wait_serving(client, bad.version)
        answers = _send(client, kind, model_matrix.request_rows(BAD_ROWS, seed=12), bad)
        _wait_logged(url, [a["prediction_id"] for a in answers])
        _wait(lambda: _events(url, name)[-1][0] == "auto_rollback", "automatic rollback", log)
        _wait(lambda: any("rolled back" in m["text"] for m in fake_slack.posted()), "rollback in Slack", log)
        _wait_serving(client, good.version)

    champion = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_model_version_by_alias(name, "champion")
    assert int(champion.version) == good.version
    assert _events(url, name) == [
        ("adopt", None, good.version, "team-lead"),
        ("outside_move", good.version, bad.version, "mlflow (outside Vigil)"),
        ("auto_rollback", bad.version, good.version, "watchdog"),
    ], log.read_text()[-4000:]
    assert _health(url, name, bad.version) == "bad"
    texts = [m["text"] for m in fake_slack.posted()]
    assert sum(f"@champion moved outside Vigil to version {bad.version}" in t for t in texts) == 1, texts
    assert sum(f"version {bad.version} degraded, rolled back to version {good.version}" in t
               for t in texts) == 1, texts


def _assert_quality(task: str, metrics: dict[str, float]) -> None:
    """The window's quality says what the traffic was: a good model on its own rule's outcomes."""
    assert metrics["requests"] >= GOOD_ROWS // 2, metrics
    if task == "regression":
        assert metrics["mae"] < 1.5 and metrics["rmse"] < 2.0, metrics
    else:
        assert metrics["accuracy"] > 0.8 and metrics["roc_auc"] > 0.85, metrics
