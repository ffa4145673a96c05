"""Watched watchdog: a heartbeat row per watchdog process, and skipped evaluations per model.

``watchdog_heartbeats`` holds each watchdog process's last completed run; ``model_controls``
gains when the evaluations skipped in a row (MLflow unreachable) began, the last one and why.
No existing row changes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchdog_heartbeats",
        sa.Column("watcher", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("watcher"),
    )
    with op.batch_alter_table("watchdog_heartbeats") as batch_op:
        batch_op.create_index("ix_watchdog_heartbeats_beat", ["beat_at"])
    with op.batch_alter_table("model_controls") as batch_op:
        batch_op.add_column(sa.Column("skipped_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_skipped_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("skip_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_controls") as batch_op:
        batch_op.drop_column("skip_reason")
        batch_op.drop_column("last_skipped_at")
        batch_op.drop_column("skipped_since")
    with op.batch_alter_table("watchdog_heartbeats") as batch_op:
        batch_op.drop_index("ix_watchdog_heartbeats_beat")
    op.drop_table("watchdog_heartbeats")
