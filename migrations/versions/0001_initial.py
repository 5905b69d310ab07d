"""initial schema: users, instruments, orders, order_events, trades, positions, ticks,
processed_events, paper_orders

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Never imports tradingapp. `ticks` is created a plain table whose primary key (instrument_id, ts,
seq) serves (instrument, time) scans; 0014 makes it a TimescaleDB hypertable where the extension is
installed and preloaded (TIMESCALEDB=auto|on|off). An earlier 0001 made the hypertable here, with a
default ts index the primary key already covers, an order for compression the reads do not use and
a fixed 365-day retention policy that ignored TICK_RETENTION_DAYS: 0014 corrects databases it made.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def price(precision=18, scale=4):
    # Exact decimals: NUMERIC on Postgres; on SQLite an integer count of 10^-scale units (exact,
    # and compared numerically), as the models' Price type reads and writes it.
    return sa.Numeric(precision, scale).with_variant(sa.BigInteger(), "sqlite")


def ts():
    return sa.DateTime(timezone=True)


def big_id():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False, server_default="trader"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", ts(), nullable=False),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint("role IN ('admin', 'trader', 'viewer')", name="ck_users_role"),
    )
    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("exchange_segment", sa.String(16), nullable=False),
        sa.Column("exchange_instrument_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False, server_default=""),
        sa.Column("series", sa.String(16), nullable=False, server_default=""),
        sa.Column("lot_size", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("tick_size", price(), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("strike", price(), nullable=True),
        sa.Column("option_type", sa.String(2), nullable=True),
        sa.UniqueConstraint("exchange_segment", "exchange_instrument_id", name="uq_instruments_exchange_segment"),
    )
    op.create_index("ix_instruments_symbol", "instruments", ["symbol"])
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_orders_user_id_users"), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("broker", sa.String(16), nullable=False),
        sa.Column("broker_order_id", sa.String(64), nullable=True),
        sa.Column(
            "instrument_id",
            sa.Integer(),
            sa.ForeignKey("instruments.id", name="fk_orders_instrument_id_instruments"),
            nullable=False,
        ),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("filled_quantity", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("average_price", price(), nullable=True),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("limit_price", price(), nullable=True),
        sa.Column("stop_price", price(), nullable=True),
        sa.Column("product", sa.String(8), nullable=False),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reject_reason", sa.String(255), nullable=True),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.UniqueConstraint("user_id", "client_order_id", name="uq_orders_user_client_order_id"),
        sa.CheckConstraint("quantity > 0", name="ck_orders_quantity_positive"),
        sa.CheckConstraint(
            "filled_quantity >= 0 AND filled_quantity <= quantity", name="ck_orders_filled_within_quantity"
        ),
        sa.CheckConstraint("side IN ('BUY', 'SELL')", name="ck_orders_side"),
    )
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"])
    op.create_index("ix_orders_status_updated", "orders", ["status", "updated_at"])
    op.create_table(
        "order_events",
        sa.Column("id", big_id(), primary_key=True, autoincrement=True),
        sa.Column(
            "order_id", sa.Uuid(), sa.ForeignKey("orders.id", name="fk_order_events_order_id_orders"), nullable=False
        ),
        sa.Column("ts", ts(), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("source_event_id", sa.String(100), nullable=True),
    )
    op.create_index("ix_order_events_order_id", "order_events", ["order_id"])
    op.create_table(
        "trades",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", name="fk_trades_order_id_orders"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_trades_user_id_users"), nullable=False),
        sa.Column(
            "instrument_id",
            sa.Integer(),
            sa.ForeignKey("instruments.id", name="fk_trades_instrument_id_instruments"),
            nullable=False,
        ),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price", price(), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("traded_at", ts(), nullable=False),
        sa.UniqueConstraint("order_id", "execution_id", name="uq_trades_order_execution"),
        sa.CheckConstraint("quantity > 0", name="ck_trades_quantity_positive"),
    )
    op.create_index("ix_trades_order_id", "trades", ["order_id"])
    op.create_index("ix_trades_user_traded", "trades", ["user_id", "traded_at"])
    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_positions_user_id_users"), nullable=False),
        sa.Column(
            "instrument_id",
            sa.Integer(),
            sa.ForeignKey("instruments.id", name="fk_positions_instrument_id_instruments"),
            nullable=False,
        ),
        sa.Column("product", sa.String(8), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("average_price", price(), nullable=False),
        sa.Column("realized_pnl", price(20, 4), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.UniqueConstraint("user_id", "instrument_id", "product", name="uq_positions_user_instrument_product"),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("processed_at", ts(), nullable=False),
    )
    op.create_table(
        "paper_orders",
        sa.Column("order_id", sa.Uuid(), primary_key=True),
        sa.Column("broker_order_id", sa.String(64), nullable=False),
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("filled_quantity", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("limit_price", price(), nullable=True),
        # The price the exchange filled at, so a re-published fill carries the first one's price.
        sa.Column("fill_price", price(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.UniqueConstraint("broker_order_id", name="uq_paper_orders_broker_order_id"),
    )
    op.create_index("ix_paper_orders_instrument_status", "paper_orders", ["instrument_id", "status"])
    create_ticks()


def create_ticks():
    op.create_table(
        "ticks",
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("ts", ts(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ltp", price(), nullable=False),
        sa.Column("ltq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("bid", price(), nullable=True),
        sa.Column("ask", price(), nullable=True),
        sa.Column("bid_qty", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ask_qty", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("volume", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("instrument_id", "ts", "seq", name="pk_ticks"),
    )


def downgrade():
    for table in (
        "ticks", "paper_orders", "processed_events", "positions", "trades",
        "order_events", "orders", "instruments", "users",
    ):  # fmt: skip
        op.drop_table(table)
