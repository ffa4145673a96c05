"""Alembic environment for Vigil's store: runs on the connection handed in by ``monitoring.store.migrations``."""

from alembic import context

from monitoring.store.partitions import include_in_schema_comparison
from monitoring.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - `alembic` CLI without monitoring.store.migrations
    raise RuntimeError("Run migrations with `vigil db upgrade` (it passes the connection).")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
    include_name=include_in_schema_comparison,
)
with context.begin_transaction():
    context.run_migrations()
