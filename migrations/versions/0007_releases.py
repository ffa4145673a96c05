"""Progressive delivery: the ``releases`` table (one shadow or canary release of a challenger
version against the champion, from start to verdict) and the role of each prediction.

Every existing prediction was answered by the champion (``role`` = ``champion``). A shadow
prediction is its own row, ``role`` = ``shadow``, whose ``paired_id`` is the champion's
prediction it shadowed: the label sent for that id judges both.
On PostgreSQL, the partitioned ``predictions`` table passes its new columns to every partition.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("challenger_version", sa.Integer(), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("bake_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.Column("verdict_reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("releases") as batch_op:
        batch_op.create_index("ix_releases_model_state", ["model_name", "state"])
    columns = (sa.Column("role", sa.String(length=16), nullable=False, server_default="champion"),
               sa.Column("paired_id", sa.String(length=36), nullable=True))
    if op.get_bind().dialect.name == "postgresql":  # no batch: that would recreate the partitioned table
        for column in columns:
            op.add_column("predictions", column)
        op.create_index("ix_predictions_paired", "predictions", ["paired_id"])
    else:
        with op.batch_alter_table("predictions") as batch_op:
            for column in columns:
                batch_op.add_column(column)
            batch_op.create_index("ix_predictions_paired", ["paired_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_predictions_paired", table_name="predictions")
        op.drop_column("predictions", "paired_id")
        op.drop_column("predictions", "role")
    else:
        with op.batch_alter_table("predictions") as batch_op:
            batch_op.drop_index("ix_predictions_paired")
            batch_op.drop_column("paired_id")
            batch_op.drop_column("role")
    with op.batch_alter_table("releases") as batch_op:
        batch_op.drop_index("ix_releases_model_state")
    op.drop_table("releases")
