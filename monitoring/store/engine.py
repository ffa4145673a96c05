"""Connections to Vigil's own store (SQLite embedded, PostgreSQL at scale): engines and sessions.

The one module that creates SQLAlchemy engines. Engines are made on first use and cached per URL.
On SQLite, transactions are started with an explicit BEGIN, and WAL lets readers go on while a
writer works. A ``session_scope`` transaction begins IMMEDIATE, taking the write lock first: a
deferred one that read and then wrote after another connection had committed would fail at once
with "database is locked" (SQLite cannot upgrade a stale read snapshot, and the busy timeout does
not apply), which a CLI revoking a key while the API logged predictions met. Plain reads
(``get_engine(url).connect()``, the dashboard) stay deferred so that they never hold up a writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from monitoring.store.dialect import insert_ignore, is_postgres, is_sqlite
from monitoring.store.tables import ModelControl

__all__ = ["Session", "dispose_engines", "get_engine", "get_session_factory", "is_reachable",
           "is_sqlite", "lock_model", "session_scope", "undo_if_not_committed", "utcnow"]


def without_password(url: str) -> str:
    """A database URL fit for a terminal or a log: its password shown as ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a database URL (an MLflow server's http address): nothing to hide
        return url


def utcnow() -> datetime:
    return datetime.now(UTC)


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


_SQLITE_BEGIN = "vigil_sqlite_begin"  # an execution option: the statement that opens a transaction


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every sqlite test
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL still never corrupts the file; a power cut may lose the last commits
        # (an application crash loses nothing), and every commit skips an fsync.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # pragma: no cover
        connection.exec_driver_sql(connection.get_execution_options().get(_SQLITE_BEGIN, "BEGIN"))


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str) -> Engine:
    """The engine for ``url``, created on first use (never at import)."""
    if url not in _engines:
        if is_sqlite(url):
            _prepare_sqlite_file(url)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        _engines[url] = engine
    return _engines[url]


def get_session_factory(url: str) -> sessionmaker[Session]:
    """Sessions whose transactions take the write lock first on SQLite (see the module's docstring)."""
    if url not in _factories:
        engine = get_engine(url)
        if is_sqlite(url):
            engine = engine.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        _factories[url] = sessionmaker(engine, expire_on_commit=False)
    return _factories[url]


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    with get_session_factory(url).begin() as session:
        yield session


def undo_if_not_committed(session: Session, undo: Callable[[], None]) -> None:
    """Call ``undo`` once if the session's transaction rolls back instead of committing.

    For work outside the database done inside a transaction (an MLflow alias move): it is put
    back when the transaction that records it fails.
    """
    armed = True

    def _disarm(_session: Session) -> None:
        nonlocal armed
        armed = False

    def _undo(_session: Session, _transaction: Any) -> None:
        nonlocal armed
        if armed:
            armed = False
            undo()

    event.listen(session, "after_commit", _disarm, once=True)
    event.listen(session, "after_soft_rollback", _undo, once=True)


def is_reachable(url: str) -> bool:
    """Whether the store answers a trivial query now (any failure means it does not)."""
    try:
        with get_engine(url).connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    return True


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests that drop databases, forks)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _factories.clear()


def lock_model(session: Session, model_name: str) -> ModelControl:
    """Take the per-model lock that every alias move and watchdog action holds until commit.

    On PostgreSQL it is ``SELECT ... FOR UPDATE`` on the model's control row, so it must be the
    transaction's first statement; on SQLite the session's BEGIN IMMEDIATE already holds the
    database's write lock, and a second writer waits for it (busy timeout) instead of acting on a
    stale read.
    """
    now = utcnow()
    if not is_postgres(session):
        touched = session.execute(
            update(ModelControl).where(ModelControl.model_name == model_name).values(updated_at=now)
        ).rowcount
        if not touched:
            session.add(ModelControl(model_name=model_name, updated_at=now))
            session.flush()
        return session.scalars(select(ModelControl).where(ModelControl.model_name == model_name)).one()
    _insert_control_if_missing(session, model_name, now)
    return session.scalars(
        select(ModelControl).where(ModelControl.model_name == model_name).with_for_update()
    ).one()


def _insert_control_if_missing(session: Session, model_name: str, now: datetime) -> None:
    insert_ignore(session, ModelControl, [{"model_name": model_name, "frozen": False,
                                           "consecutive_breaches": 0, "detector_state": {},
                                           "updated_at": now}], key=["model_name"])
