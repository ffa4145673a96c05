"""POST /feedback: true labels for served predictions, each judged on its own, in the real store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, Feedback
from tests.api.conftest import demo_rows


def _labels(url: str, ids: list[str]) -> dict[str, str]:
    with session_scope(url) as session:
        return {f.prediction_id: f.label for f in session.scalars(select(Feedback).where(Feedback.prediction_id.in_(ids)))}


def test_one_label_then_a_batch_with_per_item_results(shared_client, shared_settings):
    ids = [p["prediction_id"] for p in shared_client.post("/predict", json=demo_rows(4)).json()["predictions"]]
    response = shared_client.post("/feedback", json={"prediction_id": ids[0], "label": 1})
    assert response.status_code == 200, response.text
    assert response.json()["received"] == 1
    assert _labels(shared_settings.database_url, ids) == {ids[0]: "1"}

    response = shared_client.post("/feedback", json=[
        {"prediction_id": ids[0], "label": 0.0},  # the first label stands: 409
        {"prediction_id": ids[1], "label": "1"},
        {"prediction_id": ids[2], "label": 1.0},  # as a float: stored as "1"
        {"prediction_id": ids[2], "label": 0},  # repeated in one batch: the first one counts
        {"prediction_id": ids[3], "label": False},  # JSON false is the class 0
    ])
    assert response.status_code == 207
    body = response.json()
    assert (body["received"], body["refused"]) == (3, 2)
    assert [r["status"] for r in body["results"]] == [409, 200, 200, 409, 200]
    assert _labels(shared_settings.database_url, ids) == {ids[0]: "1", ids[1]: "1", ids[2]: "1", ids[3]: "0"}
    with session_scope(shared_settings.database_url) as session:
        row = session.get(Feedback, ids[0])
        assert row.model_name == shared_settings.model_name
        assert row.received_at.tzinfo is not None
        assert row.trusted is True and row.client is None  # open access: no key, trusted


def test_a_correction_is_explicit_needs_a_reason_and_is_audited(shared_client, shared_settings):
    [pid] = [shared_client.post("/predict", json=demo_rows(1)[0]).json()["prediction_id"]]
    assert shared_client.post("/feedback", json={"prediction_id": pid, "label": 1}).status_code == 200
    no_reason = shared_client.post("/feedback", json={"prediction_id": pid, "label": 0, "correction": True})
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    fixed = shared_client.post("/feedback", json={"prediction_id": pid, "label": 0, "correction": True,
                                                  "reason": "the loan was repaid after all"})
    assert fixed.status_code == 200, fixed.text
    assert _labels(shared_settings.database_url, [pid]) == {pid: "0"}
    with session_scope(shared_settings.database_url) as session:
        audit = session.scalars(select(AccessLog).where(AccessLog.action == "label_correction")
                                .order_by(AccessLog.id.desc())).first()
        assert audit.actor == "api:open-access" and pid in audit.detail
        assert "'1' -> '0'" in audit.detail and "repaid" in audit.detail
        assert session.get(Feedback, pid).corrected_at is not None


@pytest.mark.parametrize(("body", "status"), [
    ({"prediction_id": "x"}, 422),
    ({"label": 1}, 422),
    ({"prediction_id": "", "label": 1}, 422),
    ({"prediction_id": "x" * 37, "label": 1}, 422),
    ({"prediction_id": "x", "label": ""}, 422),
    ({"prediction_id": "x", "label": [1]}, 422),
    ([], 422),
    ([{"prediction_id": "x", "label": 1}] * 51, 413),
    ({"prediction_id": "x", "label": 1}, 404),  # no such prediction
])
def test_bad_feedback_is_refused_and_nothing_is_written(shared_client, shared_settings, body, status):
    response = shared_client.post("/feedback", json=body)
    assert response.status_code == status, response.text
    assert _labels(shared_settings.database_url, ["x", ""]) == {}


def test_a_label_sent_before_its_prediction_is_written_waits_for_the_log(shared_settings):
    """The log ships every 2 s and the minimum wait is 0: the label is taken once its row is written."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    settings = shared_settings.model_copy(update={"log_flush_seconds": 2.0, "feedback_wait_seconds": 0.0})
    with TestClient(create_app(settings)) as client:
        pid = client.post("/predict", json=demo_rows(1)[0]).json()["prediction_id"]
        response = client.post("/feedback", json={"prediction_id": pid, "label": 1})
        assert response.status_code == 200, response.text
    assert _labels(settings.database_url, [pid]) == {pid: "1"}
