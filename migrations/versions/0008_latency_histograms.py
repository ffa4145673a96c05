"""Incremental latency: one ``latency_histograms`` row per window and version, the online
latencies counted in log-spaced buckets, so that longer ranges merge their windows' counts.

A new table only; no existing row changes. Windows computed before it have their stored
percentiles only: a range holding them reads those (a mean), as it did before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latency_histograms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_name", "model_version", "window_start", "window_end",
                            name="uq_latency_histograms_key"),
    )
    with op.batch_alter_table("latency_histograms") as batch_op:
        batch_op.create_index("ix_latency_histograms_model_time", ["model_name", "window_start"])
        batch_op.create_index("ix_latency_histograms_end", ["window_end"])


def downgrade() -> None:
    op.drop_table("latency_histograms")
