"""orders: the terms of a modification in flight; instruments: freeze quantity

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def price():
    return sa.Numeric(18, 4).with_variant(sa.BigInteger(), "sqlite")


def upgrade():
    with op.batch_alter_table("orders") as batch:
        # Set while MODIFY_PENDING: the terms asked for, applied when the broker confirms.
        batch.add_column(sa.Column("pending_quantity", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pending_limit_price", price(), nullable=True))
        batch.add_column(sa.Column("pending_stop_price", price(), nullable=True))
        # How many modifications were requested: numbers them for deterministic broker event ids.
        batch.add_column(sa.Column("modify_seq", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("instruments") as batch:
        # Largest quantity the exchange takes in one order (None: no limit).
        batch.add_column(sa.Column("freeze_quantity", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("instruments") as batch:
        batch.drop_column("freeze_quantity")
    with op.batch_alter_table("orders") as batch:
        for column in ("modify_seq", "pending_stop_price", "pending_limit_price", "pending_quantity"):
            batch.drop_column(column)
