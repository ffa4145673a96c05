"""Models Vigil did not train, registered by test code into a real MLflow store and served through
the real API: each answers with its own probabilities (checked against the fitted model's
``predict_proba`` or the pyfunc's formula) and every answer is logged with its version."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from monitoring.store.engine import session_scope
from monitoring.store.tables import Prediction
from tests import model_matrix
from tests.model_matrix import close


def _logged(url: str, ids: list[str], timeout: float = 10.0) -> dict[str, Prediction]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(url) as session:
            rows = {p.id: p for p in session.scalars(select(Prediction).where(Prediction.id.in_(ids)))}
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.mark.parametrize("kind", model_matrix.GOOD_KINDS)
def test_a_registered_model_is_served_with_its_own_probabilities_and_logged(kind, api_settings, tmp_path):
    registered = model_matrix.register(api_settings, kind, tmp=tmp_path)
    rows = model_matrix.request_rows(12)
    labels, probabilities = registered.expected(pd.DataFrame(rows))
    with TestClient(create_app(api_settings)) as client:
        info = client.get("/model").json()
        singles = [client.post("/predict", json=row).json() for row in rows[:6]]
        batch = client.post("/predict", json=rows[6:]).json()
    assert info["version"] == registered.version and info["task"] == registered.task
    assert info["flavor"] == registered.flavor and info["fast_path"] is False
    assert info["micro_batched"] is True
    answers = singles + batch["predictions"]
    assert [a["prediction"] for a in answers] == labels
    if registered.task == "regression":
        assert all(a["probability"] is None for a in answers)
    else:
        assert close([a["probability"] for a in answers], probabilities)
    assert {a["model_version"] for a in singles} == {batch["model_version"]} == {registered.version}

    ids = [a["prediction_id"] for a in answers]
    assert len(set(ids)) == len(ids)
    logged = _logged(api_settings.database_url, ids)
    assert set(logged) == set(ids)
    assert {p.model_version for p in logged.values()} == {registered.version}
    assert [logged[i].prediction for i in ids] == [str(v) for v in labels]
    assert close([logged[i].score for i in ids], probabilities)  # regression: the output itself
    assert [logged[i].features for i in ids] == rows


def test_the_positive_class_tag_chooses_the_probability_answered(api_settings, tmp_path):
    """The same scikit-learn model twice: the default positive class (last) and a tagged one."""
    default = model_matrix.register(api_settings, "rf-cloudpickle", tmp=tmp_path)
    rows = model_matrix.request_rows(5)
    with TestClient(create_app(api_settings)) as client:
        first = [client.post("/predict", json=row).json()["probability"] for row in rows]
    tagged = model_matrix.register(api_settings, "rf-cloudpickle", tmp=tmp_path,
                                   tags={"vigil.positive_class": "0"})
    with TestClient(create_app(api_settings)) as client:
        assert client.get("/model").json()["positive_class"] == 0
        second = [client.post("/predict", json=row).json()["probability"] for row in rows]
    _, expected_first = default.expected(pd.DataFrame(rows))
    assert close(first, expected_first)
    assert close(second, [1 - p for p in tagged.expected(pd.DataFrame(rows))[1]], 1e-6)


def test_an_unusable_task_tag_is_refused_and_says_why(api_settings, tmp_path):
    model_matrix.register(api_settings, "python-model", tmp=tmp_path, tags={"vigil.task": "ranking"})
    with TestClient(create_app(api_settings)) as client:
        ready = client.get("/health/ready")
        assert client.post("/predict", json=model_matrix.request_rows(1)[0]).status_code == 503
    assert ready.status_code == 503
    assert "vigil.task='ranking' must be 'classification' or 'regression'" in " ".join(ready.json()["problems"])
