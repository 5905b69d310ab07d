"""exact amounts: positions.cost_basis (the cost of the open quantity) and orders.filled_value
(the sum of quantity x price of an order's fills), so averages and P&L are derived from exact sums
instead of an average rounded at every fill

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Never imports tradingapp. Existing rows are backfilled from the best they hold: quantity x the
(rounded) average price. On SQLite prices are integer counts of 10^-4 units, so the same
products give the basis in the same units.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def amount():
    return sa.Numeric(24, 4).with_variant(sa.BigInteger(), "sqlite")


def upgrade():
    with op.batch_alter_table("positions") as batch:
        # Signed like the quantity (a short's is negative); 0 when flat.
        batch.add_column(sa.Column("cost_basis", amount(), nullable=False, server_default="0"))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("filled_value", amount(), nullable=False, server_default="0"))
    op.execute("UPDATE positions SET cost_basis = quantity * average_price")
    op.execute(
        "UPDATE orders SET filled_value = filled_quantity * average_price"
        " WHERE average_price IS NOT NULL AND filled_quantity > 0"
    )


def downgrade():
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("filled_value")
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("cost_basis")
