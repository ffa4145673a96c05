"""POST /feedback: true labels for served predictions, upserted into the real store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import Feedback
from tests.api.conftest import demo_rows


def _labels(url: str, ids: list[str]) -> dict[str, str]:
    with session_scope(url) as session:
        return {f.prediction_id: f.label for f in session.scalars(select(Feedback).where(Feedback.prediction_id.in_(ids)))}


def test_one_label_then_a_batch_with_a_correction(shared_client, shared_settings):
    ids = [p["prediction_id"] for p in shared_client.post("/predict", json=demo_rows(3)).json()["predictions"]]
    response = shared_client.post("/feedback", json={"prediction_id": ids[0], "label": 1})
    assert response.status_code == 200
    assert response.json() == {"received": 1}
    assert _labels(shared_settings.database_url, ids) == {ids[0]: "1"}

    response = shared_client.post("/feedback", json=[
        {"prediction_id": ids[0], "label": 0.0},  # a correction, as a float: stored as "0"
        {"prediction_id": ids[1], "label": "1"},
        {"prediction_id": ids[2], "label": 1},
        {"prediction_id": ids[2], "label": 0},  # repeated in one batch: the last one wins
    ])
    assert response.json() == {"received": 3}
    assert _labels(shared_settings.database_url, ids) == {ids[0]: "0", ids[1]: "1", ids[2]: "0"}

    response = shared_client.post("/feedback", json={"prediction_id": ids[1], "label": False})
    assert response.status_code == 200
    assert _labels(shared_settings.database_url, ids)[ids[1]] == "0"  # JSON false is the class 0
    with session_scope(shared_settings.database_url) as session:
        row = session.get(Feedback, ids[0])
        assert row.model_name == shared_settings.model_name
        assert row.received_at.tzinfo is not None


@pytest.mark.parametrize(("body", "status"), [
    ({"prediction_id": "x"}, 422),
    ({"label": 1}, 422),
    ({"prediction_id": "", "label": 1}, 422),
    ({"prediction_id": "x" * 37, "label": 1}, 422),
    ({"prediction_id": "x", "label": ""}, 422),
    ({"prediction_id": "x", "label": [1]}, 422),
    ([], 422),
    ([{"prediction_id": "x", "label": 1}] * 51, 413),
])
def test_bad_feedback_is_refused_and_nothing_is_written(shared_client, shared_settings, body, status):
    response = shared_client.post("/feedback", json=body)
    assert response.status_code == status, response.text
    assert _labels(shared_settings.database_url, ["x", ""]) == {}
