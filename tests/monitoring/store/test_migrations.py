"""Migrations create Vigil's schema on SQLite and PostgreSQL, and running them twice is safe."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from monitoring.store.engine import get_engine
from monitoring.store.migrations import current_revision, head_revision, upgrade
from monitoring.store.partitions import include_in_schema_comparison
from monitoring.store.tables import Base

EXPECTED_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh' / 'vigil.db'}"
    return request.getfixturevalue("empty_postgres_url")


def test_upgrade_creates_every_table_and_is_idempotent(empty_url: str) -> None:
    assert current_revision(empty_url) is None
    assert upgrade(empty_url) == head_revision()
    assert upgrade(empty_url) == head_revision()  # second run: nothing to do, no error

    inspector = inspect(get_engine(empty_url))
    assert set(inspector.get_table_names()) >= EXPECTED_TABLES
    indexed = {ix["name"] for ix in inspector.get_indexes("predictions")}
    assert "ix_predictions_model_time" in indexed


def test_schema_matches_the_models(empty_url: str) -> None:
    """No drift between tables.py and the migrations (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    upgrade(empty_url)
    with get_engine(empty_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": False, "include_name": include_in_schema_comparison})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_check_schema_tells_current_from_missing_unknown_and_unreachable(empty_url: str) -> None:
    from sqlalchemy import text

    from monitoring.store.migrations import SchemaNotCurrent, check_schema, downgrade

    with pytest.raises(SchemaNotCurrent, match=r"no Vigil tables: run `vigil db upgrade`"):
        check_schema(empty_url)
    upgrade(empty_url)
    assert check_schema(empty_url) is True
    previous = downgrade(empty_url, "-1")
    with pytest.raises(SchemaNotCurrent, match=f"revision {previous}, behind .*run `vigil db upgrade`"):
        check_schema(empty_url)
    upgrade(empty_url)
    with get_engine(empty_url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(SchemaNotCurrent, match="revision f00dfeed, unknown to this Vigil"):
        check_schema(empty_url)
    assert check_schema("postgresql+psycopg2://nobody@127.0.0.1:1/none") is False  # nobody listens
