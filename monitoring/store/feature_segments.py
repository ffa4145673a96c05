"""Prediction segments: the prediction log's monitoring columns, stored typed and columnar.

A monitoring window reads every successful prediction's features and outputs. Parsing a million
JSON documents took 2.75 s of a 7.5 s window, so each writer of the log also stores the same
rows as segments (table ``prediction_segments``): one segment per model version and UTC minute of
a write, holding one Arrow IPC stream compressed whole with LZ4. Its columns:
``created_at`` (timestamp, UTC), ``status``, ``role``, ``prediction``, ``score`` and one column per
feature key, named ``f.<key>``, typed as pyarrow's JSON reader infers them (double, int64, string,
null, ...). A window is then read as a few hundred blobs and decoded in C
(``monitoring.store.window_columns``). LZ4 rather than zstd: a window's segments decompress in
0.45-0.5 s instead of 0.85 s (1M rows, 500 per segment), for 87 bytes per prediction instead of 61.

Why this layout, measured on the 2-core machine with 1M logged predictions of the demo model
(14 features, PostgreSQL 15; load average 5-9 from other work, so compare the rows with each
other, the method and quiet-machine figures are in benchmarks/README.md "Monitoring window"):

| layout | one window's 14 feature columns | size per 1M rows |
| --- | --- | --- |
| JSON column (the record; before) | 7.0-8.7 s (COPY + pyarrow JSON parse) | (the log: 606 MB) |
| typed per-model wide table | 7.7-11.6 s: PostgreSQL formats 14M numbers as text for COPY | 362 MB (+60 %) |
| Arrow IPC segments in the database (this) | 1.1-1.5 s | 46 MB (+8 %); with the outputs and LZ4, 87 MB |

A wide table would also need DDL at run time (a table per model, a column per new feature, from
the log writer) and doubles the rows the log writes. Parquet or IPC files under ``var_dir``
would read like the segments minus the fetch (0.1-0.2 s), but they live outside the store: API
replicas and Airflow workers on other hosts would need a shared volume, and their deletion and
backup would no longer be the store's. The segments are one table, written in the log insert's
own transaction.

Invariant: every row of a segment is a stored prediction, and a prediction is in at most one
segment. The log's insert builds the segment of the rows it really inserted (``RETURNING``), so a
batch sent again adds no copy; batch scoring replaces its interval's segments (``batch_key``);
the migration builds them for rows logged before. A window read compares the rows it found with
the log's own count and falls back to the JSON when they differ (rows from a writer that makes
no segments, a retention cut through a segment) or when a column's types cannot be read like the
JSON path reads them; a document the JSON reader cannot take into columns (a key that is a
number in one row and a text in another) gets no segment, with the same fallback.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, text

from monitoring.store.tables import PredictionSegment

log = logging.getLogger(__name__)

FEATURE_PREFIX = "f."
SEGMENT_ROWS = 10_000  # most rows in one segment (the log's batches are smaller)
BACKFILL_CHUNK = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_US = 60_000_000

SourceRow = tuple[Any, ...]
"""One prediction as a segment needs it: (model_name, model_version, created_at, features as JSON
text, prediction, score, status, role); ``created_at`` an aware datetime, or SQLite's naive UTC text."""


@functools.cache
def _codec():
    import pyarrow as pa

    return pa.Codec("lz4")


def segments(rows: Sequence[SourceRow], *, batch_key: str | None = None,
             max_rows: int = SEGMENT_ROWS) -> list[dict[str, Any]]:
    """The rows as ``prediction_segments`` rows (column -> value): one per model version and minute."""
    micros = _micros([row[2] for row in rows])
    groups: dict[tuple[str, int, int], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault((row[0], int(row[1]), micros[index] // _MINUTE_US), []).append(index)
    result = []
    for (name, version, minute), members in groups.items():
        for first in range(0, len(members), max_rows):
            part = members[first:first + max_rows]
            times = [micros[i] for i in part]
            encoded = _encode([rows[i] for i in part], times)
            if encoded is None:
                continue
            raw_size, data = encoded
            result.append({"model_name": name, "model_version": version,
                           "minute": _EPOCH + timedelta(microseconds=minute * _MINUTE_US),
                           "last_at": _EPOCH + timedelta(microseconds=max(times)), "rows": len(part),
                           "raw_size": raw_size, "batch_key": batch_key, "data": data})
    return result


def _micros(times: Sequence[Any]) -> list[int]:
    """Microseconds since the epoch; a request's rows share one time, so each value is converted once."""
    known: dict[Any, int] = {}
    result = []
    for value in times:
        micros = known.get(value)
        if micros is None:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            if moment.tzinfo is None:  # SQLite keeps naive UTC
                moment = moment.replace(tzinfo=UTC)
            micros = known[value] = (moment - _EPOCH) // timedelta(microseconds=1)
        result.append(micros)
    return result


def _encode(rows: Sequence[SourceRow], micros: list[int]) -> tuple[int, bytes] | None:
    """One segment's compressed stream and its size before compression; None when the documents
    do not decode into one column per key (the rows then have no segment)."""
    import pyarrow as pa
    from pyarrow import json as pa_json

    documents = "\n".join(row[3] for row in rows).encode()
    try:
        features = pa_json.read_json(io.BytesIO(documents), read_options=pa_json.ReadOptions(
            use_threads=False, block_size=len(documents) + 1))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if features.num_rows != len(rows):  # a document with a line break of its own, or an empty one
        return None
    columns = {
        "created_at": pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "status": pa.array([row[6] for row in rows], type=pa.string()),
        "role": pa.array([row[7] for row in rows], type=pa.string()),
        "prediction": pa.array([row[4] for row in rows], type=pa.string()),
        "score": pa.array([None if row[5] is None else float(row[5]) for row in rows], type=pa.float64()),
    }
    for name in features.column_names:
        columns[FEATURE_PREFIX + name] = features.column(name)
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    raw = sink.getvalue()
    return raw.size, _codec().compress(raw).to_pybytes()


def decode(raw_size: int, data: bytes | memoryview):
    """A segment's rows as a pyarrow Table."""
    import pyarrow as pa

    raw = _codec().decompress(pa.py_buffer(data), decompressed_size=raw_size)
    return pa.ipc.open_stream(raw).read_all()


def safely(build: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Segments made by ``build``, or none when making them fails: a segment is a copy for faster
    reads, and its failure must never cost the log its rows (the window read falls back to the JSON)."""
    try:
        return build()
    except Exception:  # noqa: BLE001 - see above; logged with its traceback
        log.exception("prediction segments not written (monitoring reads these rows' JSON instead)")
        return []


def insert_segments(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(PredictionSegment), rows)


def replace_batch_segments(connection: Connection, batch_key: str, rows: list[dict[str, Any]]) -> None:
    """A batch interval's segments, instead of the ones an earlier run of it wrote."""
    connection.execute(delete(PredictionSegment).where(PredictionSegment.batch_key == batch_key))
    insert_segments(connection, rows)


def backfill(connection: Connection, *, chunk_rows: int = BACKFILL_CHUNK) -> int:
    """Segments for every stored prediction (migration 0008), read in chunks in time order per
    model; progress is logged per chunk. Returns how many rows were read."""
    total = connection.execute(text("SELECT count(*) FROM predictions")).scalar_one()
    query = text("SELECT model_name, model_version, created_at, CAST(features AS TEXT), prediction, score, "
                 "status, role FROM predictions ORDER BY model_name, created_at")
    result = connection.execute(query.execution_options(stream_results=True, yield_per=chunk_rows))
    done = 0
    for chunk in result.partitions(chunk_rows):
        insert_segments(connection, segments([tuple(row) for row in chunk]))
        done += len(chunk)
        log.info("prediction segments: %s of %s logged predictions done", f"{done:,}", f"{total:,}")
    return done
