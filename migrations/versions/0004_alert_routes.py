"""Alert routes: one ``route_deliveries`` row per outbox message and non-Slack route.

Each row holds that route's attempts, next try (also its lease), delivery time and last error;
it goes with its outbox row, which retention keeps while any route has not delivered it.
No existing row changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 13:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "route_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("route", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["notification_outbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "route", name="uq_route_deliveries_message_route"),
    )
    with op.batch_alter_table("route_deliveries") as batch_op:
        batch_op.create_index("ix_route_deliveries_pending",
                              ["route", "delivered_at", "message_id"])


def downgrade() -> None:
    with op.batch_alter_table("route_deliveries") as batch_op:
        batch_op.drop_index("ix_route_deliveries_pending")
    op.drop_table("route_deliveries")
