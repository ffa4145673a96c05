"""Prediction rows as the ``predictions`` table stores them: their ids, their encoding, their insert.

Ids are time-ordered UUIDs made where the prediction is answered. Rows are encoded once, store-
ready, and inserted in multi-row statements that skip an id already stored, so a batch whose
commit was lost in transit can be sent again safely. Batch scoring's rows, whose ids come from
their data interval, are upserted instead (``upsert_batch_predictions``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select

from monitoring.labels import label_text
from monitoring.store import feature_segments
from monitoring.store.dialect import driver_placeholders, upsert
from monitoring.store.engine import get_engine
from monitoring.store.tables import Prediction

_LOW_62 = (1 << 62) - 1


def new_prediction_id() -> str:
    """A time-ordered UUID (the version-7 layout: milliseconds since the epoch, then 74 random bits).

    Ids that grow with time are appended at the end of the primary-key index; random ones
    (uuid4) land on a random page each, which made every logged row several times dearer.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 used
    value = (millis << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62) | (rand & _LOW_62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


COLUMNS = ("id", "model_name", "model_version", "created_at", "features", "prediction", "score",
           "latency_ms", "status", "error", "source", "client", "key_id", "role", "paired_id")
STATEMENT_ROWS = 1_000  # rows per INSERT statement (SQLite allows 32,766 parameters in one)

LogRow = tuple[Any, ...]
"""One prediction as the store binds it, in ``COLUMNS`` order: features already JSON text, the time
already in the store's form (see ``encode_rows``)."""


def encode_rows(sqlite_store: bool, *, model_name: str, model_version: int, created_at: datetime,
                ids: Sequence[str], features_json: Sequence[str], predictions: Sequence[Any],
                scores: Sequence[float | None], latency_ms: float, status: str = "ok", error: str | None = None,
                source: str = "api", client: str | None = None, key_id: int | None = None,
                role: str = "champion", paired_ids: Sequence[str] | None = None) -> list[LogRow]:
    """One request's predictions as store-ready rows; each row's features come as JSON text (``features_json``).

    ``role``: champion, canary or shadow; ``paired_ids``: a shadow's rows, the champion's ids they shadowed.

    The shipper process calls this (see log_shipper); the API process only serialises the features.
    """
    when = _sqlite_time(created_at) if sqlite_store else created_at
    paired = paired_ids if paired_ids is not None else [None] * len(ids)
    return [(pid, model_name, model_version, when, row, None if prediction is None else label_text(prediction),
             score, latency_ms, status, error, source, client, key_id, role, pair)
            for pid, row, prediction, score, pair in zip(ids, features_json, predictions, scores, paired,
                                                         strict=True)]


def insert_ignoring_duplicates(url: str, rows: Sequence[LogRow]) -> None:
    """Insert encoded rows in one transaction; a row already stored is skipped.

    Each statement carries many rows (one multi-row VALUES): one round trip and one parse per
    thousand rows instead of one per row. "Already stored" is a conflict on the key, (id,
    created_at): a row sent again carries the time it was answered, the same as the first time
    (``ON CONFLICT`` names no column: the key is the table's only unique constraint, and the same
    statement works on a store before and after migration 0002).

    The rows really inserted also go into the prediction segments, in the same transaction
    (``monitoring.store.feature_segments``): a row sent again is in no second segment.
    """
    engine = get_engine(url)
    mark, json_mark = driver_placeholders(engine)
    values = f"({', '.join(json_mark if c == 'features' else mark for c in COLUMNS)})"
    with engine.begin() as connection:
        inserted: set[str] = set()
        for start in range(0, len(rows), STATEMENT_ROWS):
            chunk = rows[start:start + STATEMENT_ROWS]
            inserted.update(connection.exec_driver_sql(
                f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES {', '.join([values] * len(chunk))} "
                "ON CONFLICT DO NOTHING RETURNING id",
                tuple(itertools.chain.from_iterable(chunk)),
            ).scalars())
        new_rows = []
        for row in rows:  # once each, even if a batch held an id twice
            if row[0] in inserted:
                inserted.discard(row[0])
                new_rows.append(row)
        feature_segments.insert_segments(connection, feature_segments.safely(
            lambda: feature_segments.segments([_segment_source(row) for row in new_rows])))


def _segment_source(row: LogRow) -> feature_segments.SourceRow:
    """(model, version, time, features JSON, prediction, score, status, role) of an encoded row."""
    return row[1], row[2], row[3], row[4], row[5], row[6], row[8], row[13]



BATCH_UPDATED = ("model_version", "features", "prediction", "score")
BATCH_STATEMENT_ROWS = 1000


def upsert_batch_predictions(url: str, rows: Sequence[dict[str, Any]]) -> None:
    """Write batch-scored rows (dicts by column) in one transaction, keyed on their id.

    A row already stored keeps its time and latency; its version, features, prediction and score
    are rewritten only when they changed, so re-running an interval changes nothing. The key is
    (id, created_at) and a re-run scores at a new time: a row whose id is stored takes the stored
    time first, so that it meets its earlier self instead of becoming a second row.

    The batch's prediction segments are keyed by its first row's id (the same on every run of an
    interval) and replaced by each run, in the same transaction.
    """
    # The read has a transaction of its own: on SQLite a read transaction that then writes cannot
    # wait for another writer (WAL answers "database is locked" at once); a write-first one can.
    with get_engine(url).connect() as connection:
        stored = _stored_times(connection, [row["id"] for row in rows])
    rows = [{**row, "created_at": stored[row["id"]]} if row["id"] in stored else row for row in rows]
    with get_engine(url).begin() as connection:
        upsert(connection, Prediction, rows, key=["id", "created_at"], set_columns=BATCH_UPDATED,
               changed_columns=BATCH_UPDATED, chunk=BATCH_STATEMENT_ROWS)
        if rows:
            feature_segments.replace_batch_segments(connection, rows[0]["id"], feature_segments.safely(
                lambda: feature_segments.segments([_batch_segment_source(row) for row in rows],
                                                  batch_key=rows[0]["id"])))


def _batch_segment_source(row: dict[str, Any]) -> feature_segments.SourceRow:
    return (row["model_name"], row["model_version"], row["created_at"], orjson.dumps(row["features"]).decode(),
            row.get("prediction"), row.get("score"), row.get("status", "ok"), row.get("role", "champion"))


def _stored_times(connection: Connection, ids: Sequence[str]) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for start in range(0, len(ids), BATCH_STATEMENT_ROWS):
        chunk = ids[start:start + BATCH_STATEMENT_ROWS]
        times.update(connection.execute(select(Prediction.id, Prediction.created_at)
                                        .where(Prediction.id.in_(chunk))).all())
    return times


_second_text: tuple[int, str] = (-1, "")  # the last whole second formatted, swapped in one assignment


def _sqlite_time(value: datetime) -> str:
    """Naive UTC in SQLAlchemy's SQLite DATETIME format (what tables.UTCDateTime writes and reads).

    A busy API logs thousands of rows within the same second: the date-and-time part is formatted
    once per second, not once per row.
    """
    global _second_text
    utc = value.astimezone(UTC)
    second, text = _second_text
    whole = int(utc.timestamp())
    if second != whole:
        text = utc.replace(microsecond=0, tzinfo=None).isoformat(" ")
        _second_text = (whole, text)
    return f"{text}.{utc.microsecond:06d}"


