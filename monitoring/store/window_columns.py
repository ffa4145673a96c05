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

import numpy as np
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

    tables: list[Any]  # pyarrow Tables, one per segment
    mask: Any  # pyarrow BooleanArray over their rows, in order: made in the window, ok, served

    def outputs(self) -> pd.DataFrame:
        """Predicted class (None when missing) and score of each row, like ``window_queries.outputs``."""
        import pyarrow as pa

        rows = pa.concat_tables([t.select(["prediction", "score"]) for t in self.tables]).filter(self.mask)
        return pd.DataFrame({"prediction": _texts(rows.column("prediction")),
                             "score": rows.column("score").to_numpy()})

    def features(self, numerical: list[str], categorical: list[str]) -> pd.DataFrame | None:
        """The features like ``window_queries.features``; None when only the JSON path can tell."""
        import pyarrow as pa
        from pyarrow import types

        wanted = {feature_segments.FEATURE_PREFIX + name for name in [*numerical, *categorical]}
        parts = [t.select([c for c in t.schema.names if c in wanted]) for t in self.tables]
        try:
            rows = pa.concat_tables(parts, promote_options="permissive").filter(self.mask)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a key typed one way here, another there
            return None
        columns: dict[str, Any] = {}
        for name in numerical:
            column = _column(rows, name)
            if column is None:
                columns[name] = np.full(rows.num_rows, np.nan)
            elif types.is_integer(column.type) or types.is_floating(column.type) or types.is_null(column.type):
                columns[name] = column.cast(pa.float64(), safe=False).to_numpy()
            else:
                return None
        for name in categorical:
            column = _column(rows, name)
            if column is None:
                columns[name] = np.full(rows.num_rows, None, dtype=object)
            elif types.is_string(column.type) or types.is_large_string(column.type) or types.is_null(column.type):
                columns[name] = _texts(column.cast(pa.string()))
            else:
                return None
        return pd.DataFrame(columns, columns=[*numerical, *categorical])


def _column(rows, name: str):
    key = feature_segments.FEATURE_PREFIX + name
    return rows.column(key) if key in rows.schema.names else None


def _texts(column) -> np.ndarray:
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
    tables = [feature_segments.decode(size, data) for size, data in blobs]
    meta = pa.concat_tables([t.select(["created_at", "status", "role"]) for t in tables])
    moment = pa.timestamp("us", tz="UTC")
    created = meta.column("created_at")
    mask = pc.and_kleene(
        pc.and_kleene(pc.greater_equal(created, pa.scalar(window.start, type=moment)),
                      pc.less(created, pa.scalar(window.end, type=moment))),
        pc.and_kleene(pc.equal(meta.column("status"), "ok"), pc.not_equal(meta.column("role"), SHADOW_ROLE)))
    mask = pc.fill_null(mask, False).combine_chunks()
    if (pc.sum(mask).as_py() or 0) != successes:
        return None
    return WindowColumns(tables, mask)


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
