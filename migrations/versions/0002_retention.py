"""Retention: the prediction log keyed by (id, created_at) and, on PostgreSQL, partitioned by day;
indexes on the times retention deletes by.

On PostgreSQL the existing table is renamed, a partitioned ``predictions`` is created with one
partition per UTC day that has rows (plus today and the next three days) and a default
partition for anything else, every row is copied over, and the old table is dropped, all in the
migration's one transaction: either every row is in the new table or nothing changed. Partition
names are ``predictions_pYYYYMMDD`` and ``predictions_default`` (``monitoring.store.partitions``
manages them from here on). On SQLite the table is rebuilt with the new key (Alembic's batch
mode copies the rows).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 09:00:00
"""

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

AHEAD_DAYS = 3
COLUMNS = ("id", "model_name", "model_version", "created_at", "features", "prediction", "score",
           "latency_ms", "status", "error", "source")
COLUMN_DDL = """
    id VARCHAR(36) NOT NULL,
    model_name VARCHAR(200) NOT NULL,
    model_version INTEGER NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    features JSON NOT NULL,
    prediction VARCHAR(200),
    score DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION NOT NULL,
    status VARCHAR(16) NOT NULL,
    error TEXT,
    source VARCHAR(16) NOT NULL"""
RETENTION_INDEXES = (("access_log", "ix_access_log_created", ["created_at"]),
                     ("metric_windows", "ix_metric_windows_end", ["window_end"]),
                     ("drift_results", "ix_drift_results_end", ["window_end"]))


def upgrade() -> None:
    for table, name, columns in RETENTION_INDEXES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_index(name, columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _partition_predictions()
    else:
        with op.batch_alter_table("predictions", recreate="always",
                                  copy_from=_sqlite_predictions(("id", "created_at"))):
            pass  # the rebuild itself is the change: the rows are copied into the new key


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _unpartition_predictions()
    else:
        with op.batch_alter_table("predictions", recreate="always", copy_from=_sqlite_predictions(("id",))):
            pass
    for table, name, _ in reversed(RETENTION_INDEXES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(name)


def _sqlite_predictions(key: tuple[str, ...]) -> sa.Table:
    """The SQLite table as it is to be, with ``key`` as its primary key."""
    table = sa.Table(
        "predictions", sa.MetaData(),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.String(200), nullable=True),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint(*key, name="predictions_pkey"),
    )
    sa.Index("ix_predictions_model_time", table.c.model_name, table.c.created_at, table.c.model_version)
    return table


def _partition_predictions() -> None:
    op.execute("ALTER TABLE predictions RENAME TO predictions_unpartitioned")
    op.execute("ALTER TABLE predictions_unpartitioned RENAME CONSTRAINT predictions_pkey "
               "TO predictions_unpartitioned_pkey")
    op.execute("ALTER INDEX ix_predictions_model_time RENAME TO ix_predictions_unpartitioned_model_time")
    op.execute(f"CREATE TABLE predictions ({COLUMN_DDL},\n    CONSTRAINT predictions_pkey "
               "PRIMARY KEY (id, created_at)\n) PARTITION BY RANGE (created_at)")
    op.execute("CREATE INDEX ix_predictions_model_time ON predictions (model_name, created_at, model_version)")
    op.execute("CREATE TABLE predictions_default PARTITION OF predictions DEFAULT")
    stored = op.get_bind().execute(sa.text(
        "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM predictions_unpartitioned")).scalars()
    today = datetime.now(UTC).date()
    for day in sorted({*stored, *(today + timedelta(days=n) for n in range(AHEAD_DAYS + 1))}):
        _create_day(day)
    names = ", ".join(COLUMNS)
    op.execute(f"INSERT INTO predictions ({names}) SELECT {names} FROM predictions_unpartitioned")
    op.execute("DROP TABLE predictions_unpartitioned")


def _create_day(day: date) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    op.execute(f"CREATE TABLE predictions_p{day:%Y%m%d} PARTITION OF predictions "
               f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")


def _unpartition_predictions() -> None:
    op.execute(f"CREATE TABLE predictions_flat ({COLUMN_DDL},\n    CONSTRAINT predictions_flat_pkey "
               "PRIMARY KEY (id)\n)")
    names = ", ".join(COLUMNS)
    op.execute(f"INSERT INTO predictions_flat ({names}) SELECT {names} FROM predictions")
    op.execute("DROP TABLE predictions")  # and every partition with it
    op.execute("ALTER TABLE predictions_flat RENAME TO predictions")
    op.execute("ALTER TABLE predictions RENAME CONSTRAINT predictions_flat_pkey TO predictions_pkey")
    op.execute("CREATE INDEX ix_predictions_model_time ON predictions (model_name, created_at, model_version)")
