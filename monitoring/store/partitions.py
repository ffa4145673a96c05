"""The prediction log's daily partitions on PostgreSQL: list, create ahead, drop whole.

``predictions`` is partitioned by range on ``created_at``: one partition per UTC day, named
``predictions_pYYYYMMDD``, and ``predictions_default`` for rows of any day without one, so that
no insert ever fails for want of a partition (migration 0002 sets this up).

Both changes keep the API's writes going:
- A day is created as a plain table and then attached, which takes only a SHARE UPDATE EXCLUSIVE
  lock on ``predictions`` (inserts go on). Rows of that day already caught by the default
  partition are moved into it first, in the same transaction, with the default locked so that no
  new row of that day can slip in between.
- A day is dropped with DROP TABLE, which needs a moment's exclusive lock on ``predictions``. The
  lock is asked for with a short ``lock_timeout`` and retried: a long-running reader then makes the
  drop wait, never the API's inserts queue up behind it for long.
Partitions named otherwise are not Vigil's and are never touched.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.exc import OperationalError

from monitoring.store.tables import UTCDateTime

log = logging.getLogger(__name__)

TABLE = "predictions"
DEFAULT_PARTITION = "predictions_default"
_DAY_NAME = re.compile(r"^predictions_p(\d{8})$")
LOCK_TIMEOUT = "2s"
LOCK_ATTEMPTS = 8
LOCK_NOT_AVAILABLE = "55P03"

T = TypeVar("T")


def partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def is_partition_name(name: str) -> bool:
    """Whether a table is one of the prediction log's partitions (schema comparisons skip them)."""
    return name == DEFAULT_PARTITION or _DAY_NAME.match(name) is not None


def include_in_schema_comparison(name: str | None, kind: str, parents: dict) -> bool:
    """Alembic's ``include_name``: the partitions and their indexes are managed here, not in tables.py."""
    table = name if kind == "table" else parents.get("table_name")
    return table is None or not is_partition_name(table)


def is_partitioned(connection: Connection) -> bool:
    """Whether ``predictions`` is a partitioned table (PostgreSQL after migration 0002)."""
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"),
                              {"name": TABLE}).scalar()
    return kind == "p"


def partition_days(connection: Connection) -> dict[date, str]:
    """Vigil's daily partitions: day -> table name."""
    names = connection.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:name)"), {"name": TABLE}).scalars()
    days = {}
    for name in names:
        match = _DAY_NAME.match(name)
        if match:
            try:
                days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
            except ValueError:
                continue
    return days


def count_rows(connection: Connection, table: str) -> int:
    return connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()


def create_day(engine: Engine, day: date, start: datetime, end: datetime) -> int:
    """Create the day's partition [start, end); returns how many rows moved in from the default."""
    name = partition_name(day)
    bounds = {"start": start, "end": end}
    moved_rows = text(
        f'WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE created_at >= :start AND created_at < :end '
        f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'
    ).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))

    def create(connection: Connection) -> int:
        connection.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN SHARE ROW EXCLUSIVE MODE"))
        connection.execute(text(f'CREATE TABLE IF NOT EXISTS "{name}" '
                                f"(LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
        moved = connection.execute(moved_rows, bounds).rowcount
        connection.execute(text(
            f"ALTER TABLE {TABLE} ATTACH PARTITION \"{name}\" FOR VALUES FROM (:start) TO (:end)"
        ).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())), bounds)
        return moved

    return with_lock_retries(engine, create)


def drop_day(engine: Engine, day: date) -> int:
    """Drop the day's partition; returns how many rows it held."""
    name = partition_name(day)

    def drop(connection: Connection) -> int:
        rows = count_rows(connection, name)
        connection.execute(text(f'DROP TABLE "{name}"'))
        return rows

    return with_lock_retries(engine, drop)


def with_lock_retries(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one transaction whose lock waits time out; retry a timed-out one."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with engine.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                return work(connection)
        except OperationalError as error:
            code = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None)
            if code != LOCK_NOT_AVAILABLE or attempt == LOCK_ATTEMPTS:
                raise
            log.info("partition change waited %s for its lock (attempt %d), retrying", LOCK_TIMEOUT, attempt)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
