"""The prediction log through its shipper process: batches reach the real store; an outage buffers,
drops are counted, a shipper that dies is replaced, nothing vanishes uncounted."""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from monitoring.serving.prediction_log import PredictionLog
from monitoring.store.engine import is_sqlite, session_scope, utcnow
from monitoring.store.prediction_rows import (
    COLUMNS,
    LogRow,
    encode_rows,
    insert_ignoring_duplicates,
    new_prediction_id,
)
from monitoring.store.tables import Prediction, PredictionSegment
from tests.api.conftest import postgres_unreachable


def _rows(n: int, url: str = "sqlite://", created_at: datetime | None = None) -> list[LogRow]:
    return encode_rows(is_sqlite(url), model_name="m", model_version=1, created_at=created_at or utcnow(),
                       ids=[str(uuid.uuid4()) for _ in range(n)],
                       features_json=[f'{{"age":{30 + i},"region":"north"}}' for i in range(n)],
                       predictions=[1.0] * n, scores=[0.7] * n, latency_ms=1.5)


def _hand_over(log: PredictionLog, n: int, created_at: datetime | None = None) -> tuple[list[str], int]:
    """One request of ``n`` predictions given to the log: their ids, and how many rows it took."""
    ids = [new_prediction_id() for _ in range(n)]
    taken = log.add_predictions(model_name="m", model_version=1, created_at=created_at or utcnow(), ids=ids,
                                features=[{"age": 30 + i, "region": "north"} for i in range(n)],
                                predictions=[1.0] * n, scores=[0.7] * n, latency_ms=1.5)
    return ids, taken


def _count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Prediction))


def _segment_rows(url: str) -> int:
    """Rows in the prediction segments (the typed copy the monitoring run reads)."""
    with session_scope(url) as session:
        return session.scalar(select(func.coalesce(func.sum(PredictionSegment.rows), 0)))


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


def test_rows_are_written_in_batches_by_the_shipper(store_url):
    log = PredictionLog(store_url, capacity=10_000, flush_rows=100, flush_seconds=0.05)
    log.start()
    try:
        when = datetime(2026, 3, 1, 13, 5, 7, 123456, tzinfo=timezone(timedelta(hours=2)))
        ids = [pid for _ in range(176) for pid in _hand_over(log, 7, created_at=when)[0]]
        ids += _hand_over(log, 2, created_at=when)[0]
        assert _wait(lambda: log.stats.written == 1234)
    finally:
        log.stop()
    stats = log.stats
    assert _count(store_url) == 1234 == stats.offered == stats.accepted == _segment_rows(store_url)
    assert (stats.dropped, stats.queued) == (0, 0)
    with session_scope(store_url) as session:
        stored = session.scalars(select(Prediction).where(Prediction.id == ids[5])).one()
        assert stored.features == {"age": 35, "region": "north"}
        assert stored.created_at == when and stored.created_at.tzinfo is not None
        assert (stored.prediction, stored.score, stored.status, stored.error) == ("1", 0.7, "ok", None)


def test_a_burst_larger_than_the_pipe_arrives_without_more_requests_to_push_it(sqlite_url):
    log = PredictionLog(sqlite_url, capacity=100_000, flush_rows=500, flush_seconds=0.5)
    log.start()
    try:
        row = {f"f{i:02d}": 0.123456789 * i for i in range(20)}
        for _ in range(8000):  # about 4 MB of frames, many times what the pipe holds
            log.add_predictions(model_name="m", model_version=1, created_at=utcnow(), ids=[new_prediction_id()],
                                features=[row], predictions=[1], scores=[0.5], latency_ms=1.0)
        assert _wait(lambda: log.stats.written == 8000, timeout=10)
    finally:
        log.stop()


def test_writing_a_batch_again_changes_nothing(store_url):
    rows = _rows(20, store_url)
    insert_ignoring_duplicates(store_url, rows)
    insert_ignoring_duplicates(store_url, rows[:10] + _rows(5, store_url))  # a retried batch, plus new rows
    assert _count(store_url) == 25 == _segment_rows(store_url)  # and no row in two segments


def test_rows_the_api_process_cannot_hold_are_refused_and_counted(sqlite_url):
    log = PredictionLog(sqlite_url, capacity=10, flush_rows=100, flush_seconds=0.05)  # no shipper yet
    assert _hand_over(log, 6)[1] == 6
    assert _hand_over(log, 6)[1] == 4
    stats = log.stats
    assert (stats.offered, stats.queued, stats.accepted, stats.dropped) == (12, 10, 10, 2)
    log.start()
    assert _wait(lambda: log.stats.written == 10)
    log.stop()
    assert _count(sqlite_url) == 10 and log.stats.queued == 0


def test_stopping_with_the_store_down_counts_the_unwritten_rows():
    log = PredictionLog("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere", capacity=100,
                        flush_rows=10, flush_seconds=0.05, drain_seconds=1)
    log.start()
    _hand_over(log, 25)
    assert _wait(lambda: log.stats.store_ok is False)
    log.stop()
    stats = log.stats
    assert stats.written == 0
    assert stats.dropped == 25 and stats.accepted == 0 and stats.queued == 0
    assert stats.write_errors >= 1
    assert "OperationalError" in stats.last_error


@pytest.mark.postgres
def test_an_outage_buffers_rows_and_they_arrive_when_the_store_returns(postgres_admin_url, postgres_url):
    log = PredictionLog(postgres_url, capacity=300, flush_rows=50, flush_seconds=0.05)
    log.start()
    try:
        first = _hand_over(log, 40)[0]
        assert _wait(lambda: log.stats.written == 40)
        with postgres_unreachable(postgres_admin_url, postgres_url):
            during = [pid for _ in range(32) for pid in _hand_over(log, 10)[0]]
            assert _wait(lambda: log.stats.store_ok is False)
            assert _wait(lambda: log.stats.dropped == 20)  # the shipper holds 300, refuses the rest
            time.sleep(0.3)
            stats = log.stats
            assert (stats.written, stats.queued, stats.dropped) == (40, 300, 20)
        assert _wait(lambda: log.stats.written == 340, timeout=30)
        assert log.stats.store_ok is True and log.stats.queued == 0
    finally:
        log.stop()
    assert _count(postgres_url) == 340
    with session_scope(postgres_url) as session:
        stored = set(session.scalars(select(Prediction.id)))
    assert stored == set(first + during[:300])


def test_a_shipper_that_dies_is_replaced_and_its_rows_are_counted(sqlite_url, monkeypatch):
    monkeypatch.setattr("monitoring.serving.prediction_log.RESPAWN_SECONDS", 0.2)
    log = PredictionLog(sqlite_url, capacity=1000, flush_rows=1000, flush_seconds=0.05)
    log.start()
    try:
        before = _hand_over(log, 30)[0]
        assert _wait(lambda: log.stats.written == 30)
        first_shipper = log._process.pid
        os.kill(first_shipper, signal.SIGKILL)
        after = [pid for _ in range(20) for pid in _hand_over(log, 5)[0]]
        assert _wait(lambda: log.stats.written + log.stats.dropped == 130 and log.stats.queued == 0)
        assert log._process.pid != first_shipper and log.stats.shipper_restarts == 1
    finally:
        log.stop()
    stats = log.stats
    assert stats.offered == 130 and stats.accepted == stats.written == 130 - stats.dropped
    with session_scope(sqlite_url) as session:
        stored = set(session.scalars(select(Prediction.id)))
    assert set(before) <= stored and len(stored) == stats.written
    assert stored <= set(before + after)


def test_failed_predictions_are_logged_with_their_error(store_url):
    log = PredictionLog(store_url, capacity=10, flush_rows=10, flush_seconds=0.05)
    ids = [new_prediction_id(), new_prediction_id()]
    taken = log.add_predictions(model_name="m", model_version=3, created_at=utcnow(), ids=ids,
                                features=[{"age": 1}, {"age": 2}], predictions=[None, None], scores=[None, None],
                                latency_ms=2.0, status="error", error="ValueError: boom")
    log.start()
    log.stop()
    assert taken == 2 and log.stats.written == 2
    with session_scope(store_url) as session:
        stored = session.scalars(select(Prediction).where(Prediction.id == ids[1])).one()
        assert (stored.model_version, stored.features, stored.prediction, stored.score) == (3, {"age": 2}, None, None)
        assert (stored.status, stored.error) == ("error", "ValueError: boom")


def test_rows_that_do_not_line_up_are_refused_before_anything_is_buffered(sqlite_url):
    log = PredictionLog(sqlite_url, capacity=10, flush_rows=10, flush_seconds=60)
    with pytest.raises(ValueError, match="line up"):
        log.add_predictions(model_name="m", model_version=1, created_at=utcnow(), ids=["a", "b"],
                            features=[{"age": 1}], predictions=[1, 0], scores=[0.5, 0.4], latency_ms=1.0)
    assert log.stats.queued == 0 and log.stats.offered == 0


def test_sqlite_times_are_the_text_sqlalchemy_writes_across_second_boundaries():
    start = datetime(2026, 11, 27, 23, 59, 58, 999_999, tzinfo=UTC)
    for offset_us in (0, 1, 2_000_000, 1, 0, 86_400_000_000):
        when = (start + timedelta(microseconds=offset_us)).astimezone(timezone(timedelta(hours=-5)))
        [row] = encode_rows(True, model_name="m", model_version=1, created_at=when, ids=["a"],
                            features_json=["{}"], predictions=[1], scores=[0.5], latency_ms=1.0)
        assert row[COLUMNS.index("created_at")] == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
