"""candles_1m.first_seq/last_seq: the seq of the earliest and latest tick counted, so open and close
follow (ts, seq) across batches, not ts alone (XTS ticks carry whole-second times; a tick of the
same second but a lower seq that arrives in a later batch must not become the close)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25

Never imports tradingapp. Existing candles get 0 (a constant default: no table rewrite on
Postgres), which orders a same-time tick as before: it moves the close, never the open. A bar
imported by `flask backfill --kind bars` spans its whole minute (last_ts is the minute's last
microsecond); its last_seq becomes the largest bigint, as new bars get, so no tick moves its close.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INT64_MAX = 2**63 - 1
BAR_SPAN = {
    "postgresql": "bucket + interval '59.999999 seconds'",
    "sqlite": "strftime('%Y-%m-%d %H:%M:59.999999', bucket)",
}


def upgrade():
    with op.batch_alter_table("candles_1m") as batch:
        batch.add_column(sa.Column("first_seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"))
    span = BAR_SPAN.get(op.get_bind().dialect.name)
    if span:
        op.execute(f"UPDATE candles_1m SET last_seq = {INT64_MAX} WHERE last_ts = {span}")


def downgrade():
    with op.batch_alter_table("candles_1m") as batch:
        batch.drop_column("last_seq")
        batch.drop_column("first_seq")
