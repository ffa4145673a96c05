"""Data quality: one ``data_quality_checks`` row per window, version, feature and check.

A new table only; no existing row changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_quality_checks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("reference_rate", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_name", "model_version", "window_start", "window_end", "feature",
                            "kind", name="uq_data_quality_checks_key"),
    )
    with op.batch_alter_table("data_quality_checks") as batch_op:
        batch_op.create_index("ix_data_quality_checks_model_time", ["model_name", "window_start"])
        batch_op.create_index("ix_data_quality_checks_end", ["window_end"])


def downgrade() -> None:
    op.drop_table("data_quality_checks")
