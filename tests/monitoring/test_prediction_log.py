"""The prediction log: batches reach the real store; an outage buffers, drops are counted, nothing vanishes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from monitoring.db import is_sqlite, session_scope, utcnow
from monitoring.prediction_log import (
    COLUMNS,
    LogRow,
    PredictionLog,
    encode_rows,
    insert_ignoring_duplicates,
    new_prediction_id,
)
from monitoring.tables import Prediction
from tests.api.conftest import postgres_unreachable


def _rows(n: int, url: str = "sqlite://", created_at: datetime | None = None) -> list[LogRow]:
    return encode_rows(is_sqlite(url), model_name="m", model_version=1, created_at=created_at or utcnow(),
                       ids=[str(uuid.uuid4()) for _ in range(n)],
                       features=[{"age": 30 + i, "region": "north"} for i in range(n)],
                       predictions=[1.0] * n, scores=[0.7] * n, latency_ms=1.5)


def _count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Prediction))


def _wait(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_prediction_ids_are_unique_time_ordered_uuids():
    first = [new_prediction_id() for _ in range(2000)]
    time.sleep(0.002)
    later = new_prediction_id()
    assert len(set(first)) == 2000
    assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in first[:50])
    assert max(first) < later  # a later millisecond sorts after (the index appends)


def test_rows_are_written_in_batches_by_the_writer_thread(store_url):
    log = PredictionLog(store_url, capacity=10_000, flush_rows=100, flush_seconds=0.05)
    log.start()
    try:
        when = datetime(2026, 3, 1, 13, 5, 7, 123456, tzinfo=timezone(timedelta(hours=2)))
        rows = _rows(1234, store_url, created_at=when)
        for start in range(0, len(rows), 7):
            log.add(rows[start:start + 7])
        assert _wait(lambda: log.stats.written == 1234)
    finally:
        log.stop()
    assert _count(store_url) == 1234
    assert (log.stats.accepted, log.stats.dropped, log.queued) == (1234, 0, 0)
    with session_scope(store_url) as session:
        stored = session.get(Prediction, rows[5][0])
        assert stored.features == {"age": 35, "region": "north"}
        assert stored.created_at == when and stored.created_at.tzinfo is not None
        assert (stored.prediction, stored.score, stored.status, stored.error) == ("1", 0.7, "ok", None)


def test_writing_a_batch_again_changes_nothing(store_url):
    rows = _rows(20, store_url)
    insert_ignoring_duplicates(store_url, rows)
    insert_ignoring_duplicates(store_url, rows[:10] + _rows(5, store_url))  # a retried batch, plus new rows
    assert _count(store_url) == 25


def test_a_full_buffer_refuses_and_counts_rows(sqlite_url):
    log = PredictionLog(sqlite_url, capacity=10, flush_rows=100, flush_seconds=60)  # writer not started
    assert log.add(_rows(6)) == 6
    assert log.add(_rows(6)) == 4
    assert (log.queued, log.stats.accepted, log.stats.dropped) == (10, 10, 2)
    assert log.flush() is True
    assert _count(sqlite_url) == 10 and log.stats.written == 10 and log.queued == 0


def test_stopping_with_the_store_down_counts_the_unwritten_rows(sqlite_url):
    log = PredictionLog("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere", capacity=100,
                        flush_rows=10, flush_seconds=0.05)
    log.start()
    log.add(_rows(25, log.url))
    log.stop(timeout=1)
    assert log.stats.written == 0
    assert log.stats.dropped == 25 and log.stats.accepted == 0
    assert log.stats.store_ok is False and log.stats.write_errors >= 1
    assert "OperationalError" in log.stats.last_error


@pytest.mark.postgres
def test_an_outage_buffers_rows_and_they_arrive_when_the_store_returns(postgres_admin_url, postgres_url):
    log = PredictionLog(postgres_url, capacity=300, flush_rows=50, flush_seconds=0.05)
    log.start()
    try:
        first = _rows(40, postgres_url)
        log.add(first)
        assert _wait(lambda: log.stats.written == 40)
        with postgres_unreachable(postgres_admin_url, postgres_url):
            during = _rows(320, postgres_url)
            taken = sum(log.add(during[i:i + 10]) for i in range(0, 320, 10))
            assert taken == 300
            assert _wait(lambda: log.stats.store_ok is False)
            time.sleep(0.3)
            assert log.stats.written == 40 and log.queued == 300
            assert log.stats.dropped == 20
        assert _wait(lambda: log.stats.written == 340, timeout=30)
        assert log.stats.store_ok is True and log.queued == 0
    finally:
        log.stop()
    assert _count(postgres_url) == 340
    with session_scope(postgres_url) as session:
        stored = set(session.scalars(select(Prediction.id)))
    assert stored == {r[0] for r in first + during[:300]}


def test_failed_predictions_are_logged_with_their_error(store_url):
    log = PredictionLog(store_url, capacity=10, flush_rows=10, flush_seconds=60)  # writer not started
    ids = [new_prediction_id(), new_prediction_id()]
    taken = log.add_predictions(model_name="m", model_version=3, created_at=utcnow(), ids=ids,
                                features=[{"age": 1}, {"age": 2}], predictions=[None, None], scores=[None, None],
                                latency_ms=2.0, status="error", error="ValueError: boom")
    assert taken == 2 and log.flush() is True
    with session_scope(store_url) as session:
        stored = session.get(Prediction, ids[1])
        assert (stored.model_version, stored.features, stored.prediction, stored.score) == (3, {"age": 2}, None, None)
        assert (stored.status, stored.error) == ("error", "ValueError: boom")


def test_rows_that_do_not_line_up_are_refused_before_anything_is_buffered(sqlite_url):
    log = PredictionLog(sqlite_url, capacity=10, flush_rows=10, flush_seconds=60)
    with pytest.raises(ValueError):
        log.add_predictions(model_name="m", model_version=1, created_at=utcnow(), ids=["a", "b"],
                            features=[{"age": 1}], predictions=[1, 0], scores=[0.5, 0.4], latency_ms=1.0)
    assert log.queued == 0 and log.stats.accepted == 0


def test_sqlite_times_are_the_text_sqlalchemy_writes_across_second_boundaries():
    start = datetime(2026, 11, 27, 23, 59, 58, 999_999, tzinfo=UTC)
    for offset_us in (0, 1, 2_000_000, 1, 0, 86_400_000_000):
        when = (start + timedelta(microseconds=offset_us)).astimezone(timezone(timedelta(hours=-5)))
        [row] = encode_rows(True, model_name="m", model_version=1, created_at=when, ids=["a"],
                            features=[{}], predictions=[1], scores=[0.5], latency_ms=1.0)
        assert row[COLUMNS.index("created_at")] == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
