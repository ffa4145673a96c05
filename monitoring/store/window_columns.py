"""One window's features and outputs read from the prediction segments (``monitoring.store.feature_segments``).

``read`` fetches the segments of one model version whose minutes meet the window (on PostgreSQL
with psycopg2 as one binary COPY), decodes them and keeps the window's successful, served rows.
It answers None, and the caller reads the JSON path (``monitoring.store.window_queries``) instead,
when the rows found are not exactly as many as the log holds. ``features`` answers None as well
when a requested column holds values the JSON path would read differently (a text or a boolean
where a number belongs, a number, list or object where a category belongs): then the JSON path
decides what they become, so both paths always give the same frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, select

from monitoring.metrics.windows import Window
from monitoring.store import feature_segments
from monitoring.store.dialect import is_postgres
from monitoring.store.served import SHADOW_ROLE
from monitoring.store.tables import PredictionSegment
from monitoring.store.window_queries import copy_out

_COPY_HEADER = 19  # signature (11), flags (4), header extension length (4)


@dataclass(frozen=True)
class WindowColumns:
    """The decoded segments of one version's window and which of their rows count."""

    tables: list[Any]  # pyarrow Tables: the segments, those with the same columns as one
    masks: list[Any]  # per table, a BooleanArray over its rows: made in the window, ok, served

    def _rows(self, columns: list[str]) -> list[Any]:
        return [table.select([c for c in columns if c in table.schema.names]).filter(mask)
                for table, mask in zip(self.tables, self.masks, strict=True)]

    def outputs(self) -> pd.DataFrame:
        """Predicted class (None when missing) and score of each row, like ``window_queries.outputs``."""
        import pyarrow as pa

        rows = pa.concat_tables(self._rows(["prediction", "score"]))
        return pd.DataFrame({"prediction": _texts(rows.column("prediction")),
                             "score": rows.column("score").to_numpy()})

    def features(self, numerical: list[str], categorical: list[str]) -> pd.DataFrame | None:
        """The features like ``window_queries.features``; None when only the JSON path can tell."""
        import pyarrow as pa
        from pyarrow import types

        wanted = [feature_segments.FEATURE_PREFIX + name for name in [*numerical, *categorical]]
        try:
            rows = pa.concat_tables(self._rows(wanted), promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a key typed one way here, another there
            return None
        columns: dict[str, Any] = {}
        for name in numerical:
            column = _column(rows, name)
            if column is None:
                columns[name] = pa.nulls(rows.num_rows, pa.float64())
            elif types.is_integer(column.type) or types.is_floating(column.type) or types.is_null(column.type):
                columns[name] = column.cast(pa.float64(), safe=False)
            else:
                return None
        for name in categorical:
            column = _column(rows, name)
            if column is None:
                columns[name] = pa.nulls(rows.num_rows, pa.string())
            elif types.is_string(column.type) or types.is_large_string(column.type) or types.is_null(column.type):
                columns[name] = column.cast(pa.string())
            else:
                return None
        return pa.table(columns).to_pandas()  # numbers as float64 (NaN: missing), texts as objects (None)


def _column(rows, name: str):
    key = feature_segments.FEATURE_PREFIX + name
    return rows.column(key) if key in rows.schema.names else None


def _texts(column):
    """A text column as objects, missing values as None."""
    return column.to_pandas().astype(object).to_numpy()


def read(connection: Connection, window: Window, model_name: str, version: int,
         successes: int) -> WindowColumns | None:
    """The window's segments, or None when they do not hold exactly the ``successes`` successful
    served predictions the log has for the version in the window."""
    import pyarrow as pa
    from pyarrow import compute as pc

    blobs = _fetch(connection, window, model_name, version)
    if not blobs:
        return None
    by_columns: dict[Any, list[Any]] = {}
    for size, data in blobs:
        segment = feature_segments.decode(size, data)
        by_columns.setdefault(segment.schema, []).append(segment)
    # one contiguous table per set of columns: filters and conversions then run once, not per segment
    tables = [pa.concat_tables(group).combine_chunks() for group in by_columns.values()]
    moment = pa.timestamp("us", tz="UTC")
    start, end = pa.scalar(window.start, type=moment), pa.scalar(window.end, type=moment)
    masks = []
    for table in tables:
        created = table.column("created_at")
        mask = pc.and_kleene(
            pc.and_kleene(pc.greater_equal(created, start), pc.less(created, end)),
            pc.and_kleene(pc.equal(table.column("status"), "ok"), pc.not_equal(table.column("role"), SHADOW_ROLE)))
        masks.append(pc.fill_null(mask, False))
    if sum(pc.sum(mask).as_py() or 0 for mask in masks) != successes:
        return None
    return WindowColumns(tables, masks)


def _fetch(connection: Connection, window: Window, model_name: str, version: int) -> list[tuple[int, Any]]:
    first_minute = window.start - timedelta(seconds=window.start.second, microseconds=window.start.microsecond)
    query = (select(PredictionSegment.raw_size, PredictionSegment.data)
             .where(PredictionSegment.model_name == model_name, PredictionSegment.model_version == version,
                    PredictionSegment.minute >= first_minute, PredictionSegment.minute < window.end)
             .order_by(PredictionSegment.id))
    if is_postgres(connection) and connection.dialect.driver == "psycopg2":
        return _binary_rows(copy_out(connection, query, "FORMAT binary").getbuffer())
    return [(size, data) for size, data in connection.execute(query).all()]


def _binary_rows(buffer: memoryview) -> list[tuple[int, memoryview]]:
    """(raw_size, data) of each row of a binary COPY of those two columns (bytea arrives as it is,
    where a query's result would carry it as hex text)."""
    if len(buffer) == 0:
        return []
    (extension,) = struct.unpack_from(">i", buffer, _COPY_HEADER - 4)
    position = _COPY_HEADER + extension
    rows = []
    while True:
        (fields,) = struct.unpack_from(">h", buffer, position)
        if fields == -1:
            return rows
        (size_length, raw_size, data_length) = struct.unpack_from(">iii", buffer, position + 2)
        start = position + 2 + 4 + size_length + 4
        rows.append((raw_size, buffer[start:start + data_length]))
        position = start + data_length
