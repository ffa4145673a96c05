"""POST /predict through the real HTTP stack, with a model trained into a real MLflow store."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import session_scope
from monitoring.store.tables import Prediction
from tests.api.conftest import demo_rows


def _stored(url: str, ids: list[str], timeout: float = 10.0) -> dict[str, Prediction]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(url) as session:
            rows = {p.id: p for p in session.scalars(select(Prediction).where(Prediction.id.in_(ids)))}
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_one_row_is_answered_by_the_champion_like_scikit_learn(shared_client, shared_settings):
    row = demo_rows(1)[0]
    response = shared_client.post("/predict", json=row)
    assert response.status_code == 200
    answer = response.json()
    assert answer["model_name"] == shared_settings.model_name
    assert answer["model_version"] == 1
    assert len(answer["prediction_id"]) == 36
    model = Registry(shared_settings).load_version(shared_settings.model_name, 1).native
    import pandas as pd

    frame = pd.DataFrame([row])
    assert answer["prediction"] == int(model.predict(frame)[0])
    assert answer["probability"] == pytest.approx(float(model.predict_proba(frame)[0, 1]), rel=1e-9)


def test_a_batch_is_answered_in_order_and_every_row_is_logged(shared_client, shared_settings):
    rows = demo_rows(7, seed=3)
    answer = shared_client.post("/predict", json=rows).json()
    assert answer["model_version"] == 1
    predictions = answer["predictions"]
    assert len(predictions) == 7
    ids = [p["prediction_id"] for p in predictions]
    assert len(set(ids)) == 7
    singles = [shared_client.post("/predict", json=row).json() for row in rows]
    assert [p["probability"] for p in predictions] == pytest.approx([s["probability"] for s in singles], rel=1e-9)

    stored = _stored(shared_settings.database_url, ids)
    assert set(stored) == set(ids)
    for prediction, row in zip(predictions, rows, strict=False):
        logged = stored[prediction["prediction_id"]]
        assert logged.model_name == shared_settings.model_name
        assert logged.model_version == 1
        assert logged.features == row
        assert logged.prediction == str(prediction["prediction"])
        assert logged.score == pytest.approx(prediction["probability"])
        assert logged.status == "ok" and logged.source == "api"
        assert logged.latency_ms > 0
        assert logged.created_at.tzinfo is not None


def _row(**changes):
    row = demo_rows(1)[0]
    for key, value in changes.items():
        if value is ...:
            row.pop(key)
        else:
            row[key] = value
    return row


@pytest.mark.parametrize(("body", "status", "words"), [
    (_row(colour="red"), 422, ["unknown feature", "colour"]),
    (_row(age=...), 422, ["missing feature", "age"]),
    (_row(age="old"), 422, ["'age'", "number", "string"]),
    (_row(age=None), 422, ["'age'", "number", "null"]),
    (_row(age=True), 422, ["'age'", "number", "boolean"]),
    (_row(region=3), 422, ["'region'", "string", "integer"]),
    ([_row(), _row(income=[1])], 422, ["row 1", "'income'", "array"]),
    ([_row(), "x"], 422, ["row 1", "object"]),
    ([], 422, ["empty"]),
    ("a string", 422, ["object", "array"]),
    (42, 422, ["object"]),
    ([_row()] * 51, 413, ["51 rows", "50"]),
])
def test_bad_input_gets_a_4xx_naming_the_problem(shared_client, body, status, words):
    response = shared_client.post("/predict", json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    for word in words:
        assert word in detail


HOSTILE_VALUES = ["</script><script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=2">',
                  "rent\u202e", "rent\x00", "r" * 201]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_category_that_could_be_markup_is_refused_and_nothing_of_the_batch_is_logged(
        shared_client, shared_settings, value):
    response = shared_client.post("/predict", json=[_row(), _row(home_ownership=value)])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "row 1: feature 'home_ownership'" in detail
    assert ("201 characters long; at most 200" in detail) if len(value) > 200 else ("U+" in detail)
    marker = shared_client.post("/predict", json=_row()).json()["prediction_id"]
    assert _stored(shared_settings.database_url, [marker])  # the log has flushed past the refusal
    with session_scope(shared_settings.database_url) as session:
        logged = [p.features["home_ownership"] for p in session.scalars(
            select(Prediction).where(Prediction.model_name == shared_settings.model_name))]
    assert value not in logged


def test_extreme_numbers_are_scored_not_a_500(shared_client):
    response = shared_client.post("/predict", json=_row(age=1.7e308, income=-1.7e308, savings=1e-300))
    assert response.status_code == 200
    assert 0.0 <= response.json()["probability"] <= 1.0


def test_a_body_that_is_not_json_gets_400(shared_client):
    response = shared_client.post("/predict", content=b'{"age": 3', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_an_oversized_body_is_refused_before_it_is_read(shared_client, shared_settings):
    body = b"[" + b",".join([b'{"age": 1}'] * 30_000) + b"]"
    assert len(body) > shared_settings.max_body_bytes
    response = shared_client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert str(shared_settings.max_body_bytes) in response.json()["detail"]


def test_an_oversized_chunked_body_is_refused_too(shared_client, shared_settings):
    def chunks():
        for _ in range(40):
            yield b" " * 10_000

    response = shared_client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_no_champion_means_503_not_500(api_settings):
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(api_settings)) as client:  # this model name was never registered
        response = client.post("/predict", json=demo_rows(1)[0])
        assert response.status_code == 503
        assert api_settings.model_name in response.json()["detail"]
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["model_loaded"] is False
        assert client.get("/health").json()["status"] == "ok"
