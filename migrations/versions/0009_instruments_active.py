"""instruments.active: false for an instrument the broker's instrument master no longer lists (an
expired contract, a delisted stock). Kept, never deleted (orders, trades and candles refer to it);
new orders on it are refused.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26

Never imports tradingapp.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("instruments", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade():
    op.drop_column("instruments", "active")
