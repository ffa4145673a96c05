"""Registered models that cannot be served as they are, through the real API: a version without a
signature (refused, the old one keeps serving, and readiness and a gauge say so), a pyfunc that
raises (500, counted, logged), one that answers the wrong number of rows, one that takes 2 s
per call (batched, bounded by the timeout and the queue; the other endpoints keep answering)."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from monitoring.store.engine import session_scope
from monitoring.store.tables import Prediction
from tests import model_matrix
from tests.api.conftest import make_settings, running_api


def _gauge(text: str, name: str, model: str) -> float:
    match = re.search(rf'^{name}{{model_name="{re.escape(model)}"}} ([\d.]+)$', text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def _counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((f"{name} ", f"{name}{{")))


def _until(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def _errors(url: str, model: str) -> list[Prediction]:
    with session_scope(url) as session:
        return list(session.scalars(select(Prediction).where(Prediction.model_name == model,
                                                             Prediction.status == "error")))


def test_a_version_without_signature_is_refused_the_old_one_serves_and_that_shows(api_settings, tmp_path):
    model_matrix.register(api_settings, "python-model", tmp=tmp_path)
    name, row = api_settings.model_name, model_matrix.request_rows(1)[0]
    with TestClient(create_app(api_settings)) as client:
        assert client.get("/health/ready").status_code == 200
        unsigned = model_matrix.register(api_settings, "no-signature", tmp=tmp_path)
        ready = _until(lambda: (r := client.get("/health/ready")).status_code == 503 and r)
        problem = " ".join(ready.json()["problems"])
        assert f"@champion points at version {unsigned.version}, which cannot be loaded" in problem
        assert "log the model with a signature: mlflow.models.infer_signature(X, y)" in problem
        assert "still serving version 1" in problem
        assert ready.json()["model_version"] == 1 and ready.json()["alias_version"] == 2
        answer = client.post("/predict", json=row)
        assert answer.status_code == 200 and answer.json()["model_version"] == 1
        assert client.get("/model").json()["load_failure"] == problem
        assert _gauge(client.get("/metrics").text, "vigil_champion_load_failed", name) == 1

        from monitoring.registry.mlflow_registry import Registry

        Registry(api_settings).set_alias(name, "champion", 1)  # the operator puts the alias back
        _until(lambda: client.get("/health/ready").status_code == 200)
        assert _gauge(client.get("/metrics").text, "vigil_champion_load_failed", name) == 0


def test_a_pyfunc_failing_on_its_own_input_example_is_never_swapped_in(api_settings, tmp_path):
    model_matrix.register(api_settings, "python-model", tmp=tmp_path)
    with TestClient(create_app(api_settings)) as client:
        model_matrix.register(api_settings, "wrong-rows", tmp=tmp_path, with_example=True)
        ready = _until(lambda: (r := client.get("/health/ready")).status_code == 503 and r)
        assert client.post("/predict", json=model_matrix.request_rows(1)[0]).json()["model_version"] == 1
    assert ("version 2 fails on its own input example (ModelOutputError: the model returned 2 "
            "predictions for 3 rows)") in " ".join(ready.json()["problems"])


def test_a_pyfunc_that_raises_answers_500_with_the_reason_and_the_failure_is_counted(api_settings, tmp_path):
    model_matrix.register(api_settings, "raises", tmp=tmp_path)
    good, bad = model_matrix.request_rows(2)
    bad = {**bad, "x1": 99.0}
    with TestClient(create_app(api_settings)) as client:
        failed = client.post("/predict", json=bad)
        fine = client.post("/predict", json=good)
        metrics = client.get("/metrics").text
    assert failed.status_code == 500
    assert failed.json()["detail"] == (f"{api_settings.model_name} version 1 failed on this input (ValueError: "
                                       f"x1 above 50 is outside this model's domain); the failure is logged")
    assert fine.status_code == 200 and fine.json()["model_version"] == 1
    assert _counter(metrics, "vigil_prediction_failures_total") == 1
    errors = _until(lambda: _errors(api_settings.database_url, api_settings.model_name))
    assert [e.features for e in errors] == [bad] and "outside this model's domain" in errors[0].error


def test_a_pyfunc_answering_the_wrong_number_of_rows_is_a_500_that_says_so(api_settings, tmp_path):
    model_matrix.register(api_settings, "wrong-rows", tmp=tmp_path)
    with TestClient(create_app(api_settings)) as client:
        answer = client.post("/predict", json=model_matrix.request_rows(3))
    assert answer.status_code == 500
    assert "the model returned 2 predictions for 3 rows" in answer.json()["detail"]


@pytest.mark.slow
def test_a_model_taking_2_s_per_call_is_batched_and_never_blocks_the_rest(sqlite_url, mlflow_store, tmp_path):
    settings = make_settings(sqlite_url, mlflow_store, tmp_path / "var", predict_timeout_seconds=10.0)
    model_matrix.register(settings, "slow", tmp=tmp_path)
    rows = model_matrix.request_rows(8)
    with running_api(settings) as base:
        answers: list[httpx.Response] = [None] * len(rows)  # type: ignore[list-item]

        def send(i: int) -> None:
            answers[i] = httpx.post(f"{base}/predict", json=rows[i], timeout=30)

        assert httpx.post(f"{base}/predict", json=rows[0], timeout=30).status_code == 200  # warm-up
        started = time.monotonic()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(rows))]
        for thread in threads:
            thread.start()
        health_took = []
        for _ in range(4):  # while the model holds its calls
            time.sleep(0.5)
            health_started = time.monotonic()
            assert httpx.get(f"{base}/health", timeout=5).status_code == 200
            health_took.append(time.monotonic() - health_started)
        for thread in threads:
            thread.join(30)
        took = time.monotonic() - started
        metrics = httpx.get(f"{base}/metrics").text
    assert [a.status_code for a in answers] == [200] * len(rows)
    assert len({a.json()["prediction_id"] for a in answers}) == len(rows)
    assert max(health_took) < 1.0  # the model holds each call for 2 s: /health never waits for it
    assert took < 8  # one by one: 8 x 2 s = 16 s; batched: two or three calls
    assert _counter(metrics, "vigil_micro_batches_total") <= 4  # the warm-up's, then two or three


@pytest.mark.slow
def test_a_model_slower_than_the_timeout_answers_504_and_a_full_queue_503(sqlite_url, mlflow_store, tmp_path):
    settings = make_settings(sqlite_url, mlflow_store, tmp_path / "var", predict_timeout_seconds=1.0,
                             micro_batch_queue=1)
    model_matrix.register(settings, "slow", tmp=tmp_path)
    row = model_matrix.request_rows(1)[0]
    with running_api(settings) as base:
        answers: dict[str, httpx.Response] = {}

        def send(key: str) -> None:
            answers[key] = httpx.post(f"{base}/predict", json=row, timeout=30)

        first = threading.Thread(target=send, args=("first",))
        first.start()
        time.sleep(0.3)  # the first is in the model; the queue has room for one more
        queued = threading.Thread(target=send, args=("queued",))
        queued.start()
        time.sleep(0.2)
        send("refused")
        first.join(10)
        queued.join(10)
    assert answers["refused"].status_code == 503
    assert answers["refused"].headers["retry-after"] == "1"
    assert "requests are already waiting for the model" in answers["refused"].json()["detail"]
    for key in ("first", "queued"):
        assert answers[key].status_code == 504
        assert "did not answer within 1 s (VIGIL_PREDICT_TIMEOUT_SECONDS)" in answers[key].json()["detail"]
    errors = _until(lambda: len(found := _errors(settings.database_url, settings.model_name)) == 2 and found)
    assert all("did not answer within 1 s" in e.error for e in errors)


def test_a_version_that_cannot_be_loaded_is_a_critical_alert_in_slack_until_it_is_served(
        api_settings, tmp_path, fake_slack):
    from monitoring.alerts.delivery import deliver_pending
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.serving.load_alert import alert_key
    from monitoring.settings import Settings
    from monitoring.store.tables import Alert

    slack = Settings(slack_bot_token=fake_slack.token, slack_webhook_url=None,
                     slack_base_url=fake_slack.base_url, slack_channel="#oncall")
    name, url = api_settings.model_name, api_settings.database_url

    def alert() -> Alert | None:
        with session_scope(url) as session:
            return session.scalars(select(Alert).where(Alert.alert_key == alert_key(name))).one_or_none()

    model_matrix.register(api_settings, "python-model", tmp=tmp_path)
    with TestClient(create_app(api_settings)) as client:
        assert client.get("/health/ready").status_code == 200
        unsigned = model_matrix.register(api_settings, "no-signature", tmp=tmp_path)
        firing = _until(lambda: (a := alert()) is not None and a)
        assert (firing.state, firing.severity, firing.kind) == ("firing", "critical", "load_failure")
        deliver_pending(url, settings=slack)
        [message] = fake_slack.posted()
        assert message["text"] == (f":red_circle: [CRITICAL] {name}: @champion points at version "
                                   f"{unsigned.version}, which the API cannot load")
        assert "still serving version 1" in str(message["blocks"])

        Registry(api_settings).set_alias(name, "champion", 1)  # the operator puts the alias back
        _until(lambda: alert().state == "resolved")
        deliver_pending(url, settings=slack)
        assert fake_slack.posted()[-1]["text"].startswith(":white_check_mark: [RESOLVED]")
        assert len(fake_slack.posted()) == 2  # one firing, one resolved: nothing sent twice
