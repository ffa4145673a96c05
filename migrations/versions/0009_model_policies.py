"""Per-model watchdog policy: the ``model_policies`` table, one row per model whose operators
override some of the watchdog's thresholds (the fields set, as JSON; the rest follow the
environment's ``VIGIL_*`` defaults). Who changed what is in the access log.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_policies",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("model_name"),
    )


def downgrade() -> None:
    op.drop_table("model_policies")
