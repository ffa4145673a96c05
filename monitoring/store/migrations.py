"""Schema migrations of Vigil's store, run programmatically (``vigil db upgrade``, ``vigil serve``).

The API does not migrate: at start it checks that the store's schema is at head
(``check_schema``) and refuses to start when it is not; a store it cannot reach does not stop it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import InterfaceError, OperationalError

from monitoring.store.engine import get_engine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(url: str) -> str | None:
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Bring the store at ``url`` to ``revision``; a no-op when it is there already."""
    config = _config()
    with get_engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current_revision(url)


def downgrade(url: str, revision: str) -> str | None:
    """Take the store at ``url`` back to ``revision`` (each migration's ``downgrade`` keeps the rows)."""
    config = _config()
    with get_engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    return current_revision(url)


class SchemaNotCurrent(RuntimeError):
    """The store's schema is not the one this code needs: ``vigil db upgrade`` brings it there."""


def check_schema(url: str) -> bool:
    """True when the store is at head, False when it cannot be reached now.

    Raises ``SchemaNotCurrent`` when the store answers but its schema is missing, behind, or
    at a revision this code does not know.
    """
    try:
        current = current_revision(url)
    except (OperationalError, InterfaceError):  # refused, timed out, no such database
        return False
    head = head_revision()
    if current == head:
        return True
    if current is None:
        raise SchemaNotCurrent("the store has no Vigil tables: run `vigil db upgrade`")
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current not in known:
        raise SchemaNotCurrent(f"the store's schema is at revision {current}, unknown to this Vigil "
                               f"(head {head}): is the store newer than this code?")
    raise SchemaNotCurrent(f"the store's schema is at revision {current}, behind this Vigil's {head}: "
                           "run `vigil db upgrade`")
