"""Least-privilege access to Vigil's store on PostgreSQL: a role that may only read.

``grant_reader`` is run as the store's owner (``vigil db roles``; the compose vigil-grants job)
after the migrations. It lets the reader connect, see the schema and SELECT every table, now and
the ones later migrations and partitions add (default privileges of the owner), and takes away
anything else it may have been given on them (INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES,
TRIGGER, CREATE in the schema). It makes no role and sets no password: PostgreSQL's superuser
does that (docker/postgres/init-databases.sh), so no password passes through Vigil. It refuses a
reader that could do more than read whatever the grants say: a superuser, a role that bypasses
row security, may create roles or databases, owns the tables, or is a member of the owner.

Safe to run again: every statement is idempotent. SQLite has no roles (``RolesError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from monitoring.store.dialect import is_sqlite
from monitoring.store.engine import get_engine

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_READER = "vigil_reader"
SCHEMA = "public"


class RolesError(ValueError):
    """The grants cannot be made: no such role, a role that is too powerful, or not PostgreSQL."""


@dataclass(frozen=True)
class Granted:
    reader: str
    owner: str
    database: str
    tables: int

    def __str__(self) -> str:
        return (f"{self.reader}: may read the {self.tables} tables of {self.database} (owner "
                f"{self.owner}) and the ones added later; it may change nothing")


def grant_reader(url: str, reader: str = DEFAULT_READER) -> Granted:
    """Give ``reader`` read access to the store at ``url`` (connected as its owner) and no more."""
    if is_sqlite(url):
        raise RolesError("SQLite has no database roles: a read-only role needs PostgreSQL")
    if not ROLE_NAME.match(reader):
        raise RolesError(f"{reader!r} is not a plain role name (lower case, digits, _; 1-63)")
    try:
        return _grant(url, reader)
    except ProgrammingError as error:  # e.g. not the owner: PostgreSQL's own first line says why
        raise RolesError(f"PostgreSQL refused a grant: {str(error.orig).splitlines()[0]}") from None


def _grant(url: str, reader: str) -> Granted:
    with get_engine(url).begin() as connection:
        owner, database = connection.execute(text("SELECT current_user, current_database()")).one()
        _check_reader(connection, reader, owner)
        quoted, db = _quote(connection, reader), _quote(connection, database)
        for statement in (
            f"GRANT CONNECT ON DATABASE {db} TO {quoted}",
            f"GRANT USAGE ON SCHEMA {SCHEMA} TO {quoted}",
            f"REVOKE CREATE ON SCHEMA {SCHEMA} FROM {quoted}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {quoted}",
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA "
            f"{SCHEMA} FROM {quoted}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} GRANT SELECT ON TABLES TO {quoted}",
        ):
            connection.execute(text(statement))
        tables = connection.execute(text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = :schema"), {"schema": SCHEMA}).scalar_one()
    return Granted(reader=reader, owner=owner, database=database, tables=tables)


def _check_reader(connection, reader: str, owner: str) -> None:
    row = connection.execute(text(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = :r"),
        {"r": reader}).one_or_none()
    if row is None:
        raise RolesError(f"role {reader} does not exist; as PostgreSQL's superuser: "
                         f"CREATE ROLE {reader} LOGIN PASSWORD '...' NOINHERIT")
    powers = [name for name, held in zip(("SUPERUSER", "BYPASSRLS", "CREATEROLE", "CREATEDB"), row,
                                         strict=True) if held]
    if powers:
        raise RolesError(f"role {reader} has {', '.join(powers)}: a read-only role must not")
    if reader == owner:
        raise RolesError(f"role {reader} owns the store: the reader must be another role")
    member = connection.execute(text("SELECT pg_has_role(:r, :o, 'MEMBER')"),
                                {"r": reader, "o": owner}).scalar_one()
    if member:
        raise RolesError(f"role {reader} is a member of the owner {owner}: it could do what the owner does")


def _quote(connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)
