"""Retention while the API logs: old days are dropped (PostgreSQL) or deleted in batches (SQLite)
while the real prediction log (its shipper process, its insert) writes today's rows; every one of
today's rows is stored, none is dropped, and the writer never saw an error."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import func, select

from monitoring.retention.policy import cutoffs, day_bounds
from monitoring.retention.prune import prune
from monitoring.serving.prediction_log import PredictionLog
from monitoring.settings import RetentionPolicy, Settings
from monitoring.store import retention as store
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.prediction_rows import new_prediction_id
from monitoring.store.tables import Prediction
from tests.monitoring.retention.test_prune import log_predictions

ROUNDS = 3
OLD_ROWS = 3_000


class TodaysTraffic(threading.Thread):
    """Hands requests of today's predictions to the prediction log, as the API does, until stopped."""

    def __init__(self, log: PredictionLog):
        super().__init__(daemon=True)
        self.log = log
        self.ids: list[str] = []
        self.refused = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            ids = [new_prediction_id() for _ in range(20)]
            taken = self.log.add_predictions(
                model_name="m", model_version=1, created_at=utcnow(), ids=ids,
                features=[{"x": i} for i in range(20)], predictions=[1] * 20, scores=[0.5] * 20,
                latency_ms=1.0)
            self.ids += ids[:taken]
            self.refused += len(ids) - taken
            time.sleep(0.005)


def _wait(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_old_days_go_while_todays_rows_are_written(store_url, tmp_path):
    now = utcnow()
    settings = Settings(database_url=store_url, var_dir=tmp_path, retention=RetentionPolicy(delete_batch_rows=500))
    due = cutoffs(settings.retention, now)
    partitioned = store.prediction_partition_days(store_url) is not None
    log = PredictionLog(store_url, capacity=100_000, flush_rows=200, flush_seconds=0.02)
    log.start()
    traffic = TodaysTraffic(log)
    traffic.start()
    try:
        assert _wait(lambda: log.stats.written > 0), log.stats  # the shipper is up and writing
        written_before = log.stats.written
        for round_ in range(ROUNDS):
            old_day = (due.predictions - timedelta(days=1 + round_)).date()
            if partitioned:
                store.create_partition(store_url, old_day, *day_bounds(old_day))
            log_predictions(store_url, "m", day_bounds(old_day)[0] + timedelta(hours=1),
                            [f"old-{round_}-{i}" for i in range(OLD_ROWS)])
            report = prune(store_url, settings, now=now)
            assert report.counts()["predictions"] == OLD_ROWS
            if partitioned:
                assert old_day not in store.prediction_partition_days(store_url)
        assert log.stats.written > written_before  # today's rows kept coming while days went
    finally:
        traffic.stopping.set()
        traffic.join(timeout=10)
        log.stop()
    stats = log.stats
    assert traffic.refused == 0 and (stats.dropped, stats.write_errors) == (0, 0)
    assert stats.written == len(traffic.ids) > 500
    with session_scope(store_url) as session:
        stored = set(session.scalars(select(Prediction.id).where(Prediction.created_at >= due.predictions)))
        old = session.scalar(select(func.count()).where(Prediction.created_at < due.predictions))
    assert stored == set(traffic.ids) and old == 0
