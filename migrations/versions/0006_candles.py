"""candles_1m: one-minute candles kept as ticks arrive, so candle queries never scan raw ticks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

Never imports tradingapp. first_ts/last_ts are the times of the earliest and latest tick in the
candle: a late (out-of-order) tick replaces open only if it is earlier than first_ts and close
only if it is later than last_ts. No foreign key to instruments, like ticks: the feed's batch is
never refused for one unknown instrument.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def price():
    return sa.Numeric(18, 4).with_variant(sa.BigInteger(), "sqlite")


def ts():
    return sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "candles_1m",
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("bucket", ts(), nullable=False),  # the minute's start, UTC
        sa.Column("open", price(), nullable=False),
        sa.Column("high", price(), nullable=False),
        sa.Column("low", price(), nullable=False),
        sa.Column("close", price(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("first_ts", ts(), nullable=False),
        sa.Column("last_ts", ts(), nullable=False),
        sa.PrimaryKeyConstraint("instrument_id", "bucket", name="pk_candles_1m"),
    )


def downgrade():
    op.drop_table("candles_1m")
