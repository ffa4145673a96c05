"""Deleting what retention says is due: counts and bounded, batched deletes per kind of row.

Each batch is its own short transaction of at most ``batch_rows`` rows, found through an index
on the time it is judged by. On SQLite a writer holds the whole database, so the deleter pauses
between batches (at least as long as a batch took, and long enough for SQLite's busy handler,
which re-tries every 100 ms, to get in): the API's log writes wait for one batch at most. On
PostgreSQL deletes take row locks only and never meet the API's inserts.

The prediction log is deleted per model (its index leads with the model name); on a partitioned
PostgreSQL store only the default partition is deleted from this way: whole days go with
``monitoring.store.partitions``. Their prediction segments are deleted with the same cutoff, once
a segment's newest row is due.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, bindparam, text

from monitoring.store import partitions
from monitoring.store.engine import get_engine
from monitoring.store.tables import UTCDateTime

SQLITE_MIN_PAUSE_SECONDS = 0.1


@dataclass(frozen=True)
class Kind:
    """Rows of one table that are due once ``condition`` (with ``:cutoff``) holds."""

    table: str
    condition: str


KINDS = {
    "feedback": Kind("feedback", "received_at < :cutoff"),
    # kept while an alert route has not delivered it; its delivered route rows go with it (cascade)
    "outbox": Kind("notification_outbox", "delivered_at IS NOT NULL AND delivered_at < :cutoff "
                   "AND NOT EXISTS (SELECT 1 FROM route_deliveries r WHERE "
                   "r.message_id = notification_outbox.id AND r.delivered_at IS NULL)"),
    "access_log": Kind("access_log", "created_at < :cutoff"),
    "metric_windows": Kind("metric_windows", "window_end < :cutoff"),
    "drift_results": Kind("drift_results", "window_end < :cutoff"),
    "data_quality_checks": Kind("data_quality_checks", "window_end < :cutoff"),
    "latency_histograms": Kind("latency_histograms", "window_end < :cutoff"),
    # the predictions' typed copy: a segment goes once every row of it is due (its newest is)
    "prediction_segments": Kind("prediction_segments", "last_at < :cutoff"),
}
_PREDICTIONS_DUE = "model_name = :model AND created_at < :cutoff"


def _typed(statement: str):
    return text(statement).bindparams(bindparam("cutoff", type_=UTCDateTime()))


def count_due(url: str, kind: str, cutoff: datetime) -> int:
    spec = KINDS[kind]
    with get_engine(url).connect() as connection:
        return connection.execute(_typed(f"SELECT count(*) FROM {spec.table} WHERE {spec.condition}"),
                                  {"cutoff": cutoff}).scalar_one()


def delete_due(url: str, kind: str, cutoff: datetime, *, batch_rows: int) -> int:
    """Delete the kind's due rows in batches; returns how many went."""
    spec = KINDS[kind]
    return _delete_batches(get_engine(url), spec.table, spec.condition, {"cutoff": cutoff}, batch_rows)


def clear_report_links(url: str, cutoff: datetime) -> int:
    """Forget the report file of drift rows whose window ended before ``cutoff`` (the file is gone)."""
    with get_engine(url).begin() as connection:
        return connection.execute(_typed(
            "UPDATE drift_results SET report_path = NULL WHERE window_end < :cutoff AND report_path IS NOT NULL"
        ), {"cutoff": cutoff}).rowcount


# -- the prediction log ----------------------------------------------------------------------
def prediction_partition_days(url: str) -> set[date] | None:
    """The days with a partition of their own; None when the log is not partitioned (SQLite)."""
    with get_engine(url).connect() as connection:
        if not partitions.is_partitioned(connection):
            return None
        return set(partitions.partition_days(connection))


def count_partition_rows(url: str, days: list[date]) -> int:
    with get_engine(url).connect() as connection:
        return sum(partitions.count_rows(connection, partitions.partition_name(day)) for day in days)


def create_partition(url: str, day: date, start: datetime, end: datetime) -> int:
    """Create a day's partition; returns how many rows it took over from the default partition."""
    return partitions.create_day(get_engine(url), day, start, end)


def drop_partition(url: str, day: date) -> int:
    """Drop a day's partition; returns how many rows went with it."""
    return partitions.drop_day(get_engine(url), day)


def count_due_predictions(url: str, cutoff: datetime, *, unpartitioned_only: bool) -> int:
    engine = get_engine(url)
    with engine.connect() as connection:
        table = _row_deleted_table(connection) if unpartitioned_only else "predictions"
        statement = _typed(f"SELECT count(*) FROM {table} WHERE {_PREDICTIONS_DUE}")
        return sum(connection.execute(statement, {"cutoff": cutoff, "model": model}).scalar_one()
                   for model in model_names(connection, table))


def delete_due_predictions(url: str, cutoff: datetime, *, batch_rows: int) -> int:
    """Delete due predictions row by row: all of them on SQLite, the default partition's on PostgreSQL."""
    engine = get_engine(url)
    with engine.connect() as connection:
        table = _row_deleted_table(connection)
        models = model_names(connection, table)
    return sum(_delete_batches(engine, table, _PREDICTIONS_DUE, {"cutoff": cutoff, "model": model},
                               batch_rows) for model in models)


def model_names(connection: Connection, table: str = "predictions") -> list[str]:
    """The distinct model names in a table led by a model-name index, one index probe per name
    (a loose index scan: ``SELECT DISTINCT`` would read every row's entry)."""
    return list(connection.execute(text(
        f"WITH RECURSIVE names(name) AS (SELECT min(model_name) FROM {table} "
        f"UNION ALL SELECT (SELECT min(model_name) FROM {table} WHERE model_name > names.name) "
        f"FROM names WHERE names.name IS NOT NULL) SELECT name FROM names WHERE name IS NOT NULL"
    )).scalars())


def _row_deleted_table(connection: Connection) -> str:
    return partitions.DEFAULT_PARTITION if partitions.is_partitioned(connection) else "predictions"


def _delete_batches(engine: Engine, table: str, condition: str, params: dict, batch_rows: int) -> int:
    sqlite = engine.dialect.name == "sqlite"
    row = "rowid" if sqlite else "ctid"
    statement = _typed(f"DELETE FROM {table} WHERE {row} IN "
                       f"(SELECT {row} FROM {table} WHERE {condition} LIMIT {int(batch_rows)})")
    deleted = 0
    while True:
        started = time.monotonic()
        with engine.begin() as connection:
            count = connection.execute(statement, params).rowcount
        deleted += count
        if count < batch_rows:
            return deleted
        if sqlite:  # let the API's writer in before the next batch
            time.sleep(max(time.monotonic() - started, SQLITE_MIN_PAUSE_SECONDS))
