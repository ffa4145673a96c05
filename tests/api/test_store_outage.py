"""The store goes away mid-traffic (a PostgreSQL database refusing connections): predictions are
still answered, rows are buffered, and when the store returns every answered row arrives."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.migrations import upgrade
from monitoring.store.tables import Prediction
from tests.api.conftest import (
    demo_rows,
    make_settings,
    postgres_unreachable,
    running_api,
    train_version,
)


def _metric(client: httpx.Client, name: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise KeyError(name)


@pytest.mark.slow
@pytest.mark.postgres
def test_predictions_survive_a_store_outage_and_are_all_logged_after_it(
    postgres_admin_url, postgres_url, mlflow_store, tmp_path
):
    settings = make_settings(postgres_url, mlflow_store, tmp_path / "var")
    upgrade(postgres_url)
    train_version(settings)
    rows = demo_rows(30)
    answered: list[str] = []
    with running_api(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        def send(n: int) -> None:
            for i in range(n):
                response = client.post("/predict", json=rows[i % len(rows)] if i % 3 else rows[:3])
                assert response.status_code == 200, response.text
                body = response.json()
                answered.extend([body["prediction_id"]] if "prediction_id" in body
                                else [p["prediction_id"] for p in body["predictions"]])

        send(30)
        with postgres_unreachable(postgres_admin_url, postgres_url):
            send(60)
            deadline = time.monotonic() + 15
            while _metric(client, "vigil_prediction_log_store_ok") != 0 and time.monotonic() < deadline:
                send(1)
            assert _metric(client, "vigil_prediction_log_store_ok") == 0
            assert _metric(client, "vigil_prediction_log_queue_rows") > 0
            ready = client.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["store_reachable"] is False
            feedback = client.post("/feedback", json={"prediction_id": answered[0], "label": 1})
            assert feedback.status_code == 503
            send(30)
        deadline = time.monotonic() + 30
        while _metric(client, "vigil_prediction_log_queue_rows") > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _metric(client, "vigil_prediction_log_queue_rows") == 0
        assert _metric(client, "vigil_prediction_log_dropped_rows_total") == 0
        assert _metric(client, "vigil_prediction_log_written_rows_total") == len(answered)
        assert client.get("/health/ready").status_code == 200

    with session_scope(postgres_url) as session:
        logged = list(session.scalars(select(Prediction.id)))
    assert len(logged) == len(answered) == len(set(answered))
    assert set(logged) == set(answered)
