"""The store's one upsert and one insert_ignore, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitoring.store.dialect import insert_ignore, is_postgres, upsert
from monitoring.store.engine import get_engine, session_scope
from monitoring.store.tables import MetricWindow, Prediction

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
KEY = ("model_name", "model_version", "window_start", "window_end", "metric")
VALUES = ("value", "sample_count")


def metric(name: str, value: float | None, samples: int = 10, at: datetime = T0) -> dict:
    return {"model_name": "m", "model_version": 1, "window_start": T0,
            "window_end": T0 + timedelta(minutes=1), "metric": name, "value": value,
            "sample_count": samples, "computed_at": at}


def stored_metrics(url: str) -> dict[str, tuple]:
    with session_scope(url) as session:
        return {row.metric: (row.value, row.sample_count, row.computed_at)
                for row in session.scalars(select(MetricWindow))}


UPSERT_CASES = [
    # (what is stored, what is upserted, changed_columns, what is stored afterwards)
    pytest.param([], [metric("a", 0.5)], VALUES, {"a": (0.5, 10, T0)}, id="new key inserted"),
    pytest.param([metric("a", 0.5)], [metric("a", 0.7, at=LATER)], VALUES,
                 {"a": (0.7, 10, LATER)}, id="changed value updated with its time"),
    pytest.param([metric("a", 0.5)], [metric("a", 0.5, at=LATER)], VALUES,
                 {"a": (0.5, 10, T0)}, id="same values leave the row as it was"),
    pytest.param([metric("a", 0.5)], [metric("a", 0.5, at=LATER)], None,
                 {"a": (0.5, 10, LATER)}, id="without changed_columns always updated"),
    pytest.param([metric("a", None)], [metric("a", None, at=LATER)], VALUES,
                 {"a": (None, 10, T0)}, id="missing stays missing, untouched"),
    pytest.param([metric("a", None)], [metric("a", 0.1, at=LATER)], VALUES,
                 {"a": (0.1, 10, LATER)}, id="missing to a value is a change"),
    pytest.param([metric("a", 0.5)], [metric("a", 0.5, samples=11, at=LATER), metric("b", 1.0)],
                 VALUES, {"a": (0.5, 11, LATER), "b": (1.0, 10, T0)}, id="update and insert at once"),
]


@pytest.mark.parametrize(("before", "rows", "changed", "after"), UPSERT_CASES)
def test_upsert(store_url, before, rows, changed, after):
    with session_scope(store_url) as session:
        insert_ignore(session, MetricWindow, before, key=KEY)
    with session_scope(store_url) as session:
        upsert(session, MetricWindow, rows, key=KEY, set_columns=(*VALUES, "computed_at"),
               changed_columns=changed)
    assert stored_metrics(store_url) == after


INSERT_IGNORE_CASES = [
    # (what is stored, what is inserted, the inserted keys returned, what is stored afterwards)
    pytest.param([], [metric("a", 0.5)], ["a"], {"a": (0.5, 10, T0)}, id="new key inserted"),
    pytest.param([metric("a", 0.5)], [metric("a", 0.9, at=LATER)], [], {"a": (0.5, 10, T0)},
                 id="existing key kept as it was"),
    pytest.param([metric("a", 0.5)], [metric("a", 0.9), metric("b", 0.1)], ["b"],
                 {"a": (0.5, 10, T0), "b": (0.1, 10, T0)}, id="only the new key of a batch"),
]


@pytest.mark.parametrize(("before", "rows", "returned", "after"), INSERT_IGNORE_CASES)
def test_insert_ignore(store_url, before, rows, returned, after):
    with session_scope(store_url) as session:
        insert_ignore(session, MetricWindow, before, key=KEY)
    with session_scope(store_url) as session:
        ids = insert_ignore(session, MetricWindow, rows, key=KEY, returning=MetricWindow.id)
        assert sorted(session.get(MetricWindow, i).metric for i in ids) == returned
    assert stored_metrics(store_url) == after


@pytest.mark.parametrize("chunk", [1, 2, 500])
def test_both_write_every_row_whatever_the_chunk(store_url, chunk):
    rows = [metric(f"m{i}", float(i)) for i in range(5)]
    with session_scope(store_url) as session:
        assert len(insert_ignore(session, MetricWindow, rows, key=KEY, returning=MetricWindow.id,
                                 chunk=chunk)) == 5
    with session_scope(store_url) as session:
        upsert(session, MetricWindow, [{**r, "value": -r["value"]} for r in rows], key=KEY,
               set_columns=VALUES, changed_columns=VALUES, chunk=chunk)
    assert {k: v[0] for k, v in stored_metrics(store_url).items()} == {
        f"m{i}": -float(i) for i in range(5)}


def prediction(features: dict, version: int = 1) -> dict:
    return {"id": "p1", "model_name": "m", "model_version": version, "created_at": T0,
            "features": features, "prediction": "1", "score": 0.9, "latency_ms": 3.0,
            "status": "ok", "error": None, "source": "batch"}


@pytest.mark.parametrize(("new", "updated"), [
    pytest.param({"x": 1, "c": "a"}, False, id="same JSON document: no update"),
    pytest.param({"x": 2, "c": "a"}, True, id="another JSON document: updated"),
])
def test_upsert_compares_json_columns_as_text(store_url, new, updated):
    """PostgreSQL's JSON has no equality operator; the upsert must still tell changes apart."""
    with get_engine(store_url).begin() as connection:
        insert_ignore(connection, Prediction, [prediction({"x": 1, "c": "a"})], key=["id", "created_at"])
    with get_engine(store_url).begin() as connection:
        upsert(connection, Prediction, [{**prediction(new), "latency_ms": 99.0}], key=["id", "created_at"],
               set_columns=("features", "latency_ms"), changed_columns=("features",))
    with session_scope(store_url) as session:
        row = session.get(Prediction, ("p1", T0))
        assert (row.features, row.latency_ms) == ((new, 99.0) if updated else ({"x": 1, "c": "a"}, 3.0))


def test_is_postgres_tells_the_stores_apart(store_url):
    with session_scope(store_url) as session:
        assert is_postgres(session) == store_url.startswith("postgresql")
        assert is_postgres(session) == is_postgres(get_engine(store_url))
