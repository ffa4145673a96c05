"""Bulk appends for seeding a store (the demo, tests, the dashboard benchmark): COPY on
PostgreSQL (millions of rows in minutes), batched INSERTs elsewhere.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert

from monitoring.store.dialect import is_postgres, table_of
from monitoring.store.engine import get_engine

BATCH = 20_000  # rows per executemany


def bulk_append(
    url: str,
    table: Any,
    frame: pd.DataFrame | Callable[[], pd.DataFrame],
    *,
    csv_text: Callable[[], str] | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """Append rows: COPY on PostgreSQL, batched INSERTs elsewhere; one transaction.

    ``frame`` is the rows as a DataFrame, or a function building it. A caller that already has
    COPY-ready CSV lines (in ``columns`` order) passes ``csv_text`` so PostgreSQL never needs the
    frame; either is only built when used.
    """
    engine = get_engine(url)
    target = table_of(table)
    build = frame if callable(frame) else lambda: frame
    if is_postgres(engine):
        if csv_text is None:
            rows = build()
            text, names = _frame_csv(rows), list(rows.columns)
        else:
            text, names = csv_text(), list(columns or ())
        _copy_text(engine, target.name, names, text)
        return
    with engine.begin() as connection:
        for batch in _batches(build()):
            connection.execute(insert(target), batch)


def text_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO text in UTC: pandas formats tz-aware times row by row, numpy at once."""
    times = {
        column: np.char.add(
            np.datetime_as_string(
                frame[column].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), unit="us"
            ),
            "Z",
        )
        for column in frame.columns
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype)
    }
    return frame.assign(**times)


def _frame_csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    text_times(frame).to_csv(buffer, index=False, header=False)
    return buffer.getvalue()


def _batches(frame: pd.DataFrame) -> Iterator[list[dict]]:
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, pd.Timestamp):
                record[key] = value.to_pydatetime()
            elif isinstance(value, np.generic):
                record[key] = value.item()
    for first in range(0, len(records), BATCH):
        yield records[first : first + BATCH]


def _copy_text(engine: Engine, table: str, columns: list[str], csv_text: str) -> None:
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if hasattr(cursor, "copy_expert"):  # psycopg2
            cursor.copy_expert(statement, io.StringIO(csv_text))
        else:  # psycopg 3
            with cursor.copy(statement) as copy:
                copy.write(csv_text)
        connection.commit()
    finally:
        connection.close()
