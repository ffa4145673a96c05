"""SQLite transactions under concurrent writers: a read-then-write transaction waits, never fails."""

from __future__ import annotations

import threading

from sqlalchemy import select, text

from monitoring.store.engine import get_engine, session_scope
from monitoring.store.tables import ModelControl


def _control(session, name: str) -> None:
    session.add(ModelControl(model_name=name, frozen=False, consecutive_breaches=0, detector_state={}))


def test_a_transaction_that_reads_then_writes_waits_for_another_writer_instead_of_failing(sqlite_url):
    other_committed = threading.Event()
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            with session_scope(sqlite_url) as session:
                _control(session, "other")
            other_committed.set()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    with session_scope(sqlite_url) as session:
        assert session.scalars(select(ModelControl)).all() == []
        writer = threading.Thread(target=other_writer)
        writer.start()
        # a deferred transaction lets the other writer commit here, and then fails on its own write
        other_committed.wait(timeout=1.0)
        _control(session, "mine")
        session.flush()
    writer.join(timeout=30)

    assert errors == []
    with get_engine(sqlite_url).connect() as connection:
        names = connection.execute(text("SELECT model_name FROM model_controls ORDER BY model_name")).scalars()
        assert list(names) == ["mine", "other"]


def test_a_plain_read_does_not_hold_up_a_writer(sqlite_url):
    with get_engine(sqlite_url).connect() as reader:
        reader.execute(text("SELECT count(*) FROM model_controls")).scalar_one()
        with session_scope(sqlite_url) as session:  # would wait for the reader if reads took the lock
            _control(session, "written")
        reader.rollback()
    with get_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM model_controls")).scalar_one() == 1
