"""paper_orders.fill_price: the price the paper exchange filled at, so a re-published fill event
carries the same price as the first one.

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


def upgrade():
    with op.batch_alter_table("paper_orders") as batch:
        batch.add_column(
            sa.Column("fill_price", sa.Numeric(18, 4).with_variant(sa.String(40), "sqlite"), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("paper_orders") as batch:
        batch.drop_column("fill_price")
