"""Client keys: the ``client_keys`` table (hashed keys with scopes); the client of each
prediction and label; a label's trust and correction time.

Existing predictions get no client (they were made before keys). Existing labels are marked
trusted, so an upgrade does not blind the watchdog in the middle of a champion's tenure;
from this revision on, the API marks a label trusted only when its key holds ``trusted``.
On PostgreSQL, the partitioned ``predictions`` table passes its new columns to every partition.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    with op.batch_alter_table("client_keys") as batch_op:
        batch_op.create_index("ix_client_keys_name", ["name"])
    if op.get_bind().dialect.name == "postgresql":  # no batch: that would recreate the partitioned table
        op.add_column("predictions", sa.Column("client", sa.String(length=64), nullable=True))
        op.add_column("predictions", sa.Column("key_id", sa.Integer(), nullable=True))
    else:
        with op.batch_alter_table("predictions") as batch_op:
            batch_op.add_column(sa.Column("client", sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column("key_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("feedback") as batch_op:
        batch_op.add_column(sa.Column("client", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("trusted", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch_op:
        for column in ("corrected_at", "trusted", "key_id", "client"):
            batch_op.drop_column(column)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("predictions", "key_id")
        op.drop_column("predictions", "client")
    else:
        with op.batch_alter_table("predictions") as batch_op:
            batch_op.drop_column("key_id")
            batch_op.drop_column("client")
    with op.batch_alter_table("client_keys") as batch_op:
        batch_op.drop_index("ix_client_keys_name")
    op.drop_table("client_keys")
