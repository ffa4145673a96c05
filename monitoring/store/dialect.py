"""The one place where SQLite and PostgreSQL are written differently: upserts, inserts that skip
existing keys, raw-SQL parameter marks, and the question "which database is this?".

Every writer in the store goes through ``upsert`` and ``insert_ignore``: both dialects spell
``INSERT ... ON CONFLICT`` the same way, but SQLAlchemy builds it from dialect-specific
constructs. (Bulk appends, COPY or INSERT, are in ``monitoring.store.bulk_load``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Column, Connection, Engine, String, Table, cast, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHUNK = 500  # rows per multi-row INSERT statement (SQLite allows 32,766 parameters in one)

Executor = Session | Connection


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres(bind: Executor | Engine) -> bool:
    """Whether the session, connection or engine talks to PostgreSQL."""
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return dialect.name == "postgresql"


def table_of(table: Any) -> Table:
    """The Table of an ORM class (or the Table itself)."""
    return getattr(table, "__table__", table)


def _insert(executor: Executor, table: Table):
    return (postgresql.insert if is_postgres(executor) else sqlite.insert)(table)


def insert_ignore(
    executor: Executor,
    table: Any,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    returning: Column | None = None,
    chunk: int = CHUNK,
) -> list[Any]:
    """Insert the rows whose ``key`` is new; rows whose key exists are left as they are.

    Returns the ``returning`` column of the rows really inserted (empty without ``returning``).
    """
    inserted: list[Any] = []
    for start in range(0, len(rows), chunk):
        statement = (
            _insert(executor, table_of(table))
            .values(list(rows[start : start + chunk]))
            .on_conflict_do_nothing(index_elements=list(key))
        )
        if returning is None:
            executor.execute(statement)
        else:
            inserted.extend(executor.execute(statement.returning(returning)).scalars())
    return inserted


def upsert(
    executor: Executor,
    table: Any,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    set_columns: Sequence[str],
    changed_columns: Sequence[str] | None = None,
    chunk: int = CHUNK,
) -> None:
    """Insert the rows; a row whose ``key`` exists takes the new row's ``set_columns``.

    With ``changed_columns`` an existing row is only updated when one of them really differs (so
    a re-run leaves every row, timestamps included, as it was). JSON columns are compared as text:
    PostgreSQL's JSON has no equality operator.
    """
    target = table_of(table)
    for start in range(0, len(rows), chunk):
        statement = _insert(executor, target).values(list(rows[start : start + chunk]))
        excluded = statement.excluded
        where = None
        if changed_columns is not None:
            where = or_(*[_differs(target.c[name], excluded[name]) for name in changed_columns])
        executor.execute(
            statement.on_conflict_do_update(
                index_elements=list(key),
                set_={name: excluded[name] for name in set_columns},
                where=where,
            )
        )


def _differs(stored: Column, new: Any):
    if isinstance(stored.type, JSON):
        return cast(stored, String) != cast(new, String)
    return stored.is_distinct_from(new)


def driver_placeholders(engine: Engine) -> tuple[str, str]:
    """The driver's parameter mark for raw SQL, and the one for a JSON value (PostgreSQL casts)."""
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    return mark, f"CAST({mark} AS JSON)" if is_postgres(engine) else mark
