"""Migration 0002 converts a filled store without losing a row (SQLite and PostgreSQL): every
table's rows are the same after it, the prediction log is partitioned by day on PostgreSQL, a
resent prediction is still skipped, feedback still joins, and the way back keeps the rows too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import column, func, insert, inspect, select, table, text

from monitoring.store.engine import dispose_engines, get_engine, utcnow
from monitoring.store.migrations import downgrade, head_revision, upgrade
from monitoring.store.prediction_rows import encode_rows, insert_ignoring_duplicates
from monitoring.store.tables import (
    AccessLog,
    Base,
    Feedback,
    MetricWindow,
    OutboxMessage,
    Prediction,
)

DAYS_BACK = (40, 3, 1, 0)  # days with predictions before the migration
PER_DAY = 250
# feedback as revision 0001 made it (the model's later columns have defaults a plain insert would send)
_OLD_FEEDBACK = table("feedback", column("prediction_id"), column("model_name"), column("label"),
                      column("received_at"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request, tmp_path):
    """A store at revision 0001, filled through plain inserts of the columns it had then."""
    url = f"sqlite:///{tmp_path / 'vigil.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("empty_postgres_url")
    assert upgrade(url, "0001") == "0001"
    now = utcnow()
    predictions = [{"id": f"p-{back}-{i}", "model_name": f"m{i % 2}", "model_version": 1,
                    "created_at": now - timedelta(days=back, seconds=i), "features": {"x": i},
                    "prediction": "1", "score": 0.5, "latency_ms": 1.0, "status": "ok", "error": None,
                    "source": "api"} for back in DAYS_BACK for i in range(PER_DAY)]
    with get_engine(url).begin() as connection:
        connection.execute(insert(Prediction.__table__), predictions)
        connection.execute(insert(_OLD_FEEDBACK), [
            {"prediction_id": row["id"], "model_name": row["model_name"], "label": "1", "received_at": now}
            for row in predictions[::3]])
        connection.execute(insert(OutboxMessage.__table__), [
            {"model_name": "m0", "kind": "firing", "payload": {}, "created_at": now, "attempts": 0,
             "next_attempt_at": now, "delivered_at": None, "alert_id": None}])
        connection.execute(insert(AccessLog.__table__), [
            {"actor": "a", "action": "promote", "model_name": "m0", "allowed": True, "detail": "",
             "channel": "cli", "created_at": now}])
        connection.execute(insert(MetricWindow.__table__), [
            {"model_name": "m0", "model_version": 1, "window_start": now - timedelta(minutes=5),
             "window_end": now, "metric": "accuracy", "value": 0.9, "sample_count": 3, "computed_at": now}])
    yield url
    dispose_engines()


def _contents(url: str) -> dict[str, object]:
    """Every row count of the tables the store has at its revision, the predictions and their joins."""
    with get_engine(url).connect() as connection:
        present = set(inspect(connection).get_table_names())
        counts = {name: connection.execute(select(func.count()).select_from(table)).scalar()
                  for name, table in Base.metadata.tables.items() if name in present}
        rows = sorted(connection.execute(select(Prediction.id, Prediction.created_at, Prediction.features,
                                                Prediction.model_name)).all())
        joined = connection.execute(select(func.count()).select_from(Prediction)
                                    .join(Feedback, Feedback.prediction_id == Prediction.id)).scalar()
    return {"counts": counts, "predictions": [tuple(row) for row in rows], "joined": joined}


def _same_rows(before: dict[str, object], after: dict[str, object]) -> bool:
    """The rows of before are all still there; tables added by later revisions are empty (but the
    predictions' typed copy, which migration 0008 fills: tests/monitoring/store/test_feature_segments.py)."""
    added = set(after["counts"]) - set(before["counts"]) - {"prediction_segments"}
    return (all(after["counts"][name] == 0 for name in added)
            and {name: after["counts"][name] for name in before["counts"]} == before["counts"]
            and after["predictions"] == before["predictions"] and after["joined"] == before["joined"])


def test_upgrade_keeps_every_row_and_the_way_back_too(old_store):
    url = old_store
    before = _contents(url)
    assert before["counts"]["predictions"] == len(DAYS_BACK) * PER_DAY
    assert before["joined"] == before["counts"]["feedback"] > 0

    assert upgrade(url) == head_revision()
    assert _same_rows(before, _contents(url))

    engine = get_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            assert connection.execute(text("SELECT relkind FROM pg_class WHERE relname = 'predictions'"))\
                .scalar() == "p"
            assert connection.execute(text("SELECT count(*) FROM predictions_default")).scalar() == 0
            per_day = {day: connection.execute(text(f"SELECT count(*) FROM predictions_p{day:%Y%m%d}")).scalar()
                       for day in {(utcnow() - timedelta(days=back)).date() for back in (40, 3)}}
        assert all(count > 0 for count in per_day.values())

    resent = next(r for r in before["predictions"] if r[0] == "p-3-7")  # (id, created_at, features, model)
    insert_ignoring_duplicates(url, encode_rows(
        engine.dialect.name == "sqlite", model_name=resent[3], model_version=1, created_at=resent[1],
        ids=[resent[0]], features_json=['{"x": 7}'], predictions=["1"], scores=[0.5], latency_ms=1.0))
    assert _same_rows(before, _contents(url))  # the resend was recognised

    assert downgrade(url, "0001") == "0001"
    assert _same_rows(before, _contents(url))
    assert upgrade(url) == head_revision()
    assert _same_rows(before, _contents(url))
