"""The prediction segments: a typed, columnar copy of the prediction log for the monitoring reads.

Creates ``prediction_segments`` (``monitoring.store.feature_segments`` describes it) and fills it
from every stored prediction, in chunks of 50,000 rows in time order per model, logging the
progress per chunk (a million rows take about half a minute). On PostgreSQL the partitioned
``predictions`` is read through its parent, so every partition is covered. The rows' JSON stays
in ``predictions``; the downgrade drops the copy.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:00:00
"""

import sqlalchemy as sa
from alembic import op

from monitoring.store import feature_segments

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prediction_segments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column("batch_key", sa.String(length=36), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("prediction_segments") as batch_op:
        batch_op.create_index("ix_prediction_segments_model_minute", ["model_name", "model_version", "minute"])
        batch_op.create_index("ix_prediction_segments_last", ["last_at"])
        batch_op.create_index("ix_prediction_segments_batch", ["batch_key"])
    if op.get_bind().dialect.name == "postgresql":
        # the blobs are compressed already: stored out of line as they are, not compressed again
        op.execute("ALTER TABLE prediction_segments ALTER COLUMN data SET STORAGE EXTERNAL")
    feature_segments.backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("prediction_segments")
