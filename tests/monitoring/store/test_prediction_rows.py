"""Batch-scored rows written while the prediction log writes too: nobody gets "database is locked"."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from monitoring.store.engine import session_scope
from monitoring.store.prediction_rows import encode_rows, insert_ignoring_duplicates, upsert_batch_predictions
from monitoring.store.tables import Prediction


def _batch_rows(ids: list[str]) -> list[dict]:
    now = datetime.now(UTC)
    return [{"id": pid, "model_name": "m", "model_version": 1, "created_at": now, "features": {"x": 1.0},
             "prediction": "1", "score": 0.9, "latency_ms": 1.0, "status": "ok", "error": None, "source": "batch"}
            for pid in ids]


def test_batch_upserts_wait_for_a_busy_log_writer_instead_of_failing(sqlite_url):
    """The log writer commits every few milliseconds; each batch upsert (read, then write) still lands."""
    stop = threading.Event()
    logged = []

    def log_writer() -> None:
        while not stop.is_set():
            ids = [str(uuid.uuid4()) for _ in range(50)]
            insert_ignoring_duplicates(sqlite_url, encode_rows(
                True, model_name="m", model_version=1, created_at=datetime.now(UTC), ids=ids,
                features_json=['{"x": 1.0}'] * 50, predictions=[1] * 50, scores=[0.5] * 50, latency_ms=1.0))
            logged.extend(ids)

    writer = threading.Thread(target=log_writer)
    writer.start()
    batch_ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"batch-{n}")) for n in range(500)]
    try:
        for _ in range(20):  # re-running the same interval: the second time the rows are found first
            upsert_batch_predictions(sqlite_url, _batch_rows(batch_ids))
    finally:
        stop.set()
        writer.join()
    with session_scope(sqlite_url) as session:
        stored = session.scalar(select(func.count()).select_from(Prediction))
    assert stored == len(batch_ids) + len(logged) and logged
