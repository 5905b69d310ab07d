"""candles_1m: the primary key carries open, high, low, close and volume (INCLUDE)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

Never imports tradingapp. Candles are written minute by minute for every instrument at once, so
one instrument's series is spread one row per heap page: 90 days of 1h candles read ~24,000
pages. With the prices in the key's leaf pages the read is an index-only scan of a few hundred
pages (bench/candles.py: 1h over 90 days ~20 ms -> ~7 ms in SQL). The cost: the key is ~2x
larger and a candle update is no longer HOT (~+8% per tick batch's upsert).

Postgres only (SQLite has no INCLUDE; it is the development store). The key is rebuilt under an
exclusive lock: seconds for millions of candles.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEY = (
    "ALTER TABLE candles_1m DROP CONSTRAINT pk_candles_1m, "
    "ADD CONSTRAINT pk_candles_1m PRIMARY KEY (instrument_id, bucket)"
)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"{KEY} INCLUDE (open, high, low, close, volume)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(KEY)
