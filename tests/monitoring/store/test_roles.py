"""The read-only role on the real PostgreSQL: ``vigil db roles`` run as the store's owner lets the
reader SELECT every table (and one a later migration adds) and refuses it every change; the
dashboard's and the Gradio page's reads work through it; a too powerful reader is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from monitoring.store import dashboard_queries, history
from monitoring.store.engine import dispose_engines, session_scope
from monitoring.store.migrations import upgrade
from monitoring.store.roles import RolesError, grant_reader
from tests.conftest import _admin_execute

pytestmark = pytest.mark.postgres
CHANGES = [
    "INSERT INTO alerts (alert_key, model_name, kind, severity, state, title, details, opened_at, "
    "updated_at, last_notified_at) VALUES ('x', 'm', 'k', 'info', 'firing', 't', '{}', now(), now(), now())",
    "UPDATE alerts SET title = 'forged'",
    "DELETE FROM feedback",
    "TRUNCATE notification_outbox CASCADE",
    "DROP TABLE access_log",
    "CREATE TABLE planted (id int)",
    "ALTER TABLE alerts ADD COLUMN planted int",
]


def _as(admin_url: str, user: str, database: str) -> str:
    return make_url(admin_url).set(username=user, password=None, database=database).render_as_string(
        hide_password=False)


@pytest.fixture
def store(postgres_admin_url):
    """A store owned by a plain role (as in compose), migrated by it, and a reader role."""
    suffix = uuid.uuid4().hex[:8]
    owner, reader, database = f"owner_{suffix}", f"reader_{suffix}", f"vigil_roles_{suffix}"
    _admin_execute(postgres_admin_url, f"CREATE ROLE {owner} LOGIN", f"CREATE ROLE {reader} LOGIN NOINHERIT",
                   f"CREATE DATABASE {database} OWNER {owner}",
                   f"REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC")
    owner_url = _as(postgres_admin_url, owner, database)
    upgrade(owner_url)
    yield owner_url, _as(postgres_admin_url, reader, database), reader
    dispose_engines()
    _admin_execute(postgres_admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)",
                   f"DROP ROLE IF EXISTS {reader}", f"DROP ROLE IF EXISTS {owner}")


def _vigil_db_roles(owner_url: str, reader: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIGIL_DATABASE_URL": owner_url}
    return subprocess.run([sys.executable, "-m", "cli", "db", "roles", "--reader", reader], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _run(url: str, statement: str):
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement))
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def test_before_the_grants_the_reader_cannot_even_connect(store):
    _owner_url, reader_url, _reader = store
    with pytest.raises(Exception, match="permission denied for database"):
        _run(reader_url, "SELECT 1")


def test_the_reader_reads_every_table_and_changes_nothing(store):
    owner_url, reader_url, reader = store
    done = _vigil_db_roles(owner_url, reader)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{reader}: may read the" in done.stdout and "it may change nothing" in done.stdout
    assert owner_url not in done.stdout + done.stderr  # no URL printed
    for table in ("predictions", "feedback", "alerts", "notification_outbox", "registry_events",
                  "access_log", "route_deliveries", "reference_data"):
        assert _run(reader_url, f"SELECT count(*) FROM {table}") == [(0,)]
    for change in CHANGES:
        with pytest.raises(ProgrammingError, match="permission denied|must be owner"):
            _run(reader_url, change)
    assert _run(owner_url, "SELECT count(*) FROM access_log") == [(0,)]  # still there


def test_a_table_a_later_migration_adds_is_readable_and_still_read_only(store):
    owner_url, reader_url, reader = store
    grant_reader(owner_url, reader)
    _run(owner_url, "CREATE TABLE added_later (id int)")
    assert _run(reader_url, "SELECT count(*) FROM added_later") == [(0,)]
    with pytest.raises(ProgrammingError, match="permission denied"):
        _run(reader_url, "INSERT INTO added_later VALUES (1)")


def test_the_dashboard_and_gradio_reads_work_through_the_reader(store):
    owner_url, reader_url, reader = store
    grant_reader(owner_url, reader)
    assert dashboard_queries.model_names(reader_url) == []
    assert dashboard_queries.alerts(reader_url).empty
    with session_scope(reader_url) as session:  # the Gradio page's form hints
        assert history.reference_for(session, "loan-default", 1) is None


def test_running_it_again_changes_nothing(store):
    owner_url, reader_url, reader = store
    first = grant_reader(owner_url, reader)
    assert grant_reader(owner_url, reader) == first
    assert _run(reader_url, "SELECT count(*) FROM alerts") == [(0,)]


def test_a_reader_that_could_do_more_is_refused(store, postgres_admin_url):
    owner_url, _reader_url, reader = store
    with pytest.raises(RolesError, match="does not exist"):
        grant_reader(owner_url, "nobody_" + uuid.uuid4().hex[:6])
    with pytest.raises(RolesError, match="owns the store"):
        grant_reader(owner_url, make_url(owner_url).username)
    with pytest.raises(RolesError, match="not a plain role name"):
        grant_reader(owner_url, 'x"; DROP TABLE alerts; --')
    _admin_execute(postgres_admin_url, f"ALTER ROLE {reader} CREATEROLE")
    done = _vigil_db_roles(owner_url, reader)
    assert done.returncode == 2 and f"role {reader} has CREATEROLE" in done.stderr
    _admin_execute(postgres_admin_url, f"ALTER ROLE {reader} NOCREATEROLE",
                   f"GRANT {make_url(owner_url).username} TO {reader}")
    with pytest.raises(RolesError, match="is a member of the owner"):
        grant_reader(owner_url, reader)
    _admin_execute(postgres_admin_url, f"REVOKE {make_url(owner_url).username} FROM {reader}")


def test_sqlite_has_no_roles(sqlite_url):
    with pytest.raises(RolesError, match="SQLite has no database roles"):
        grant_reader(sqlite_url)
